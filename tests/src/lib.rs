//! Shared helpers for ddb's cross-process tests (the tests live in `tests/tests/`, and other
//! crates' integration tests use these helpers as a dev-dependency).
//!
//! - [`NodeProcess`]: a real `ddbd` on a free loopback port with its own data directory,
//!   stopped when dropped.

mod node_process;

pub use node_process::NodeProcess;
