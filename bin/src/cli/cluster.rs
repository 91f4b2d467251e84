//! `ddbctl local …` and `ddbctl cluster …`: the flags for running and watching a cluster.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Start a whole cluster on this machine (loopback only) and watch it until Ctrl-C.
    ///
    /// Node i (1, 2, 3…) runs in AZ a, b, c…, serves the DynamoDB API on 127.0.0.1:BASE+i-1
    /// and replicates over 127.0.0.1:BASE+100+i-1. Everything lives under --dir:
    ///
    ///   credentials.toml    the access key every node accepts (mode 0600)
    ///   cluster.secret      the secret nodes authenticate each other with (mode 0600)
    ///   node<i>/ddbd.toml   node i's configuration, rewritten on every start (mode 0600)
    ///   node<i>/data/       node i's data (WALs, replicas, catalog)
    ///   node<i>/ddbd.log    node i's output, appended
    ///   node<i>/archiver.*  the archiver beside node i (its /metrics on BASE+200+i-1)
    ///   scrubber.*          the scrubber (BASE+300): ddbctl scrub status --scrubber …
    ///   canary-<az>.*       a canary per AZ (BASE+400+k): ddbctl canary report, alarms ls
    ///   archive/            the archive (unless --archive or --no-archive)
    ///
    /// The first run generates the key and the secret; later runs on the same directory reuse
    /// them and the data. Once every node answers /healthz it prints the endpoints, the
    /// `export AWS_…` line and `ready: N nodes`, then a status table refreshed every second
    /// (unless --no-status). A node that dies is shown as down and not restarted. Ctrl-C or
    /// SIGTERM stops every node (SIGTERM, then SIGKILL after 10 s) and exits 0.
    ///
    /// Example: ddbctl local up
    ///
    /// Example: ddbctl local up --dir /tmp/ddb5 --nodes 5 --base-port 9000
    ///
    /// Example: ddbctl local up --no-status > cluster.out &   # for scripts: wait for `ready:`
    #[command(verbatim_doc_comment)]
    Up(LocalUpArgs),
}

/// `ddbctl local up`'s flags.
#[derive(Debug, Args)]
pub struct LocalUpArgs {
    /// How many nodes to start (1 to 26; a replication group needs three AZs).
    ///
    /// Example: --nodes 5
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=26))]
    pub nodes: u32,
    /// The cluster's directory: keys, configurations, data and logs of every node.
    ///
    /// Example: --dir /tmp/ddb-local
    #[arg(long, default_value = "ddb-local")]
    pub dir: PathBuf,
    /// Node i's API listens on BASE+i-1 and its peer transport on BASE+100+i-1.
    ///
    /// Example: --base-port 9000
    #[arg(long, default_value_t = 8000, value_parser = clap::value_parser!(u16).range(1..))]
    pub base_port: u16,
    /// Print no status table after `ready:`; only lines about nodes that exit.
    #[arg(long)]
    pub no_status: bool,
    /// A group whose replica is silent this long is healed by its leader: a log replica on a
    /// spare node (start four or more nodes to have one), rebuilt into a full replica, and the
    /// silent replica removed. 0 never heals.
    ///
    /// Example: --heal-after-ms 3000
    #[arg(long, default_value_t = 5_000)]
    pub heal_after_ms: u64,
    /// Sets a key of every node's `[admission]` section (repeatable; keys as in
    /// `ddbd --help`): the admission mode, or smaller ceilings and capacities to watch
    /// throttling, bursting and GAC at laptop rates.
    ///
    /// Example: --admission mode=static --admission partition_write_units=100
    #[arg(long, value_name = "KEY=VALUE")]
    pub admission: Vec<String>,
    /// Where the archivers (one beside each node) archive the log: `file:///abs/path` or
    /// `s3://bucket/prefix` (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    /// Default: file://<dir>/archive.
    ///
    /// Example: --archive s3://ddb-archive/local --s3-endpoint http://127.0.0.1:9000
    #[arg(long, conflicts_with = "no_archive")]
    pub archive: Option<String>,
    /// The S3-compatible server of an s3:// --archive (MinIO, for instance), added to the URL
    /// as its `endpoint`.
    ///
    /// Example: --s3-endpoint http://127.0.0.1:9000
    #[arg(long, requires = "archive")]
    pub s3_endpoint: Option<String>,
    /// Run no archivers: nothing is archived and nodes do not bound their unarchived log.
    #[arg(long)]
    pub no_archive: bool,
    /// Run no canaries (by default one per AZ probes every node, on its own table
    /// `ddb-canary-<az>`, and raises the alarms: `ddbctl alarms ls`).
    #[arg(long)]
    pub no_canary: bool,
    /// Shrink every alarm window (and the alarms' hysteresis) by this factor, for demos and
    /// tests: at 0.01 the fast page alarm's hour lasts 36 s, so a killed node pages within a
    /// second and resolves seconds after it is back. 1 keeps the production windows.
    ///
    /// Example: --alarm-window-scale 0.01
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub alarm_window_scale: f64,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show every replication group's replicas: role, state, leader, commit and applied LSNs,
    /// and lag behind the leader's commit.
    ///
    /// Asks the node at --endpoint for GET /cluster/status, learns every node from its answer
    /// and asks each of them. Nodes that do not answer are shown as down.
    ///
    /// Exit status: 0 every node answered and every group has a leader; 1 a node is down or
    /// without status, or a group has no leader (each problem is listed); 2 the node at
    /// --endpoint cannot be reached or serves no cluster status.
    ///
    /// Example: ddbctl cluster status
    ///
    /// Example: ddbctl cluster status --endpoint http://127.0.0.1:8001 --output json
    #[command(verbatim_doc_comment)]
    Status,
}
