//! `ddb-scrubber`: parses its configuration and runs the scrubber.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ddb_scrubber::ScrubberConfig;

/// ddb-scrubber: proves a cluster's replicas equal each other and the archive, partition by
/// partition, continuously: the replicas' digests at a common LSN (check 1), the digest of a
/// reference replica rebuilt from the archive alone at that LSN (check 2) and, on a slower
/// schedule, each replica's digest recomputed from its items at rest (check 3). `ddbctl scrub
/// status` shows the results.
///
/// Example: ddb-scrubber --config /etc/ddb/scrubber.toml
#[derive(Debug, Parser)]
#[command(name = "ddb-scrubber", version, after_help = ScrubberConfig::HELP, verbatim_doc_comment)]
struct Args {
    /// TOML configuration file.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Address of /metrics, /healthz, /status and /run (overrides `listen`).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ddb::service::init_logging("info,lsm_tree=warn,fjall=warn");
    let mut config = ScrubberConfig::load(args.config.as_deref(), |name| std::env::var(name).ok())
        .context("loading configuration")?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    ddb::service::run_daemon(
        "ddb-scrubber",
        "/status, /metrics and /healthz",
        |shutdown, ready| ddb_scrubber::run(config, shutdown, ready),
    )
}
