//! `ddb-archiver`: parses its configuration and runs the archiver beside one `ddbd`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ddb_archiver::ArchiverConfig;

/// ddb-archiver: ships the committed write-ahead log of every partition this node leads to
/// an archive (a directory or an S3-compatible bucket), as ordered, gap-free, create-only,
/// zstd-compressed chunks sealed with the state digest at their last entry.
///
/// Run one beside each ddbd, on the same host: it reads the node's WAL files and talks to the
/// node's internal API with the token in the node's data directory. Precedence: flags over
/// DDB_* environment variables over the --config file over built-in defaults.
///
/// Example: ddb-archiver --node-data-dir /var/lib/ddb --archive s3://ddb-archive/prod?endpoint=http://127.0.0.1:9000
#[derive(Debug, Parser)]
#[command(name = "ddb-archiver", version, after_help = ArchiverConfig::HELP, verbatim_doc_comment)]
struct Args {
    /// TOML configuration file.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// The node's API address (overrides `node_url`).
    #[arg(long)]
    node_url: Option<String>,
    /// The node's data directory (overrides `node_data_dir`).
    #[arg(long)]
    node_data_dir: Option<PathBuf>,
    /// Archive URL (overrides `archive`).
    #[arg(long)]
    archive: Option<String>,
    /// Address of /metrics and /healthz (overrides `listen`).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ddb::service::init_logging("info");
    let mut config = ArchiverConfig::load(args.config.as_deref(), |name| std::env::var(name).ok())
        .context("loading configuration")?;
    if let Some(url) = args.node_url {
        config.node_url = url;
    }
    if let Some(dir) = args.node_data_dir {
        config.node_data_dir = dir;
    }
    if let Some(archive) = args.archive {
        config.archive = archive;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    ddb::service::run_daemon(
        "ddb-archiver",
        "/metrics and /healthz",
        |shutdown, ready| ddb_archiver::run(config, shutdown, ready),
    )
}
