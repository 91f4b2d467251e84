//! `ddb-canary`: parses its configuration and runs the canary.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ddb_canary::CanaryConfig;

/// ddb-canary: measures the availability customers see, through every endpoint from this AZ,
/// and raises customer-facing alarms. Every `interval_ms` it makes one round of the calls a
/// customer makes (PutItem, GetItem strongly and eventually consistent, Query, DeleteItem) on
/// its own table through each endpoint — SigV4-signed, one attempt, a timeout per call — and
/// checks what it reads back. Multiwindow burn-rate alarms over what it saw and over the nodes'
/// own counters, and operational alarms from the other daemons, go to a webhook and to
/// Alertmanager. `ddbctl canary report` and `ddbctl alarms ls` show them.
///
/// Example: ddb-canary --config /etc/ddb/canary.toml
#[derive(Debug, Parser)]
#[command(name = "ddb-canary", version, after_help = CanaryConfig::HELP, verbatim_doc_comment)]
struct Args {
    /// TOML configuration file.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Address of /metrics, /healthz, /report and /alarms (overrides `listen`).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ddb::service::init_logging("info");
    let mut config = CanaryConfig::load(args.config.as_deref(), |name| std::env::var(name).ok())
        .context("loading configuration")?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    ddb::service::run_daemon(
        "ddb-canary",
        "/report, /alarms, /metrics and /healthz",
        |shutdown, ready| ddb_canary::run(config, shutdown, ready),
    )
}
