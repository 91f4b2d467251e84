//! Shared helpers for ddb's cross-process tests (the tests live in `tests/tests/`, and other
//! crates' integration tests use these helpers as a dev-dependency).
//!
//! - [`NodeProcess`]: a real `ddbd` on a free loopback port with its own data directory,
//!   stopped when dropped.
//! - [`binary`]: the path of a workspace binary, built if needed.
//! - [`healthz_ok`]: whether a node at an address answers `/healthz`.
//! - [`free_cluster_base_port`]: free loopback ports for a local cluster.
//! - [`LocalUp`]: a running `ddbctl local up` cluster, killed when dropped.
//! - [`ArchiverProcess`]: a real `ddb-archiver` beside a node, killed when dropped.
//! - [`s3`]: real S3-compatible servers ([`s3::S3sFs`], [`s3::Moto`]) for archive tests.
//! - [`scrubber`]: a real `ddb-scrubber` beside a local cluster, driven through `ddbctl scrub`.
//! - [`admission`]: fixed-rate load through `ddbctl bench` and `ddbctl table capacity`.
//! - [`archive_fixture::TableArchive`]: a `file://` archive of a table's history, with its
//!   catalog, for restore tests.

pub mod admission;
mod archive_check;
pub mod archive_fixture;
mod archiver_process;
mod daemon;
mod local_up;
mod node_process;
mod ports;
pub mod s3;
pub mod scrubber;

pub use archive_check::{Replayed, replay_archive};
pub use archiver_process::{ArchivedNode, ArchiverProcess};
pub use daemon::{Daemon, ddbctl_json};
pub use local_up::{
    LocalUp, RestartedNode, client, create_hash_table, http_get, internal_call, kill_node,
    parse_export, restart_node,
};
pub use node_process::{NodeProcess, healthz_ok};
pub use ports::{cluster_ports, free_cluster_base_port, nothing_listens_on};

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of one of the workspace's binaries (`ddbd`, `ddbctl`) in the same target directory
/// as the running test, building the binaries once if they are not there yet (as when this
/// crate's tests run alone with `cargo test -p ddb-tests`).
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.parent()
                .and_then(|deps| deps.parent())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("target/debug"));
    let path = dir.join(name);
    BUILT.get_or_init(|| {
        let profile_is_release = dir.ends_with("release");
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        // The same selection as `cargo test --workspace` (every package, its tests, so the
        // dev-dependencies' features too): cargo resolves features per selection, and a
        // narrower one (`-p ddbctl …`) would compile the binaries and part of their
        // dependencies a second time, over a minute of a CI run. After `cargo test --workspace`
        // this is a no-op apart from the daemons' own binaries.
        build.args(["build", "--workspace", "--bins", "--tests"]);
        if profile_is_release {
            build.arg("--release");
        }
        // Always build: it is a no-op when the binaries are current, and a stale binary would
        // test old code.
        match build.status() {
            Ok(status) if status.success() => {}
            Ok(status) => panic!("building the ddb binaries failed: {status}"),
            Err(e) => panic!("running cargo to build the ddb binaries: {e}"),
        }
    });
    path
}
