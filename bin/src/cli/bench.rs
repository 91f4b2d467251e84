//! `ddbctl bench`: the load generator's flags.

use clap::{Args, ValueEnum};

/// Generate load against a node and report throughput and latency percentiles.
///
/// The table (default `ddb-bench`) is created if missing (PAY_PER_REQUEST, HASH pk S, RANGE sk
/// N). Read workloads first write --items items into it, ten per partition key. Every client
/// has its own connection and keeps one request in flight. Exit status 1 if any request failed.
///
/// Example: ddbctl bench --workload put --concurrency 32 --duration 10
///
/// Example: ddbctl bench --workload get-strong --concurrency 1 --duration 10 --output json
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What each request does.
    ///
    /// Example: --workload mix
    #[arg(long, value_enum, default_value_t = Workload::Put)]
    pub workload: Workload,
    /// Clients, each with its own connection and one request in flight.
    ///
    /// Example: --concurrency 32
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Threads driving the clients, each an event loop serving its share of the connections.
    /// One thread sends well over 10,000 requests/s; add more only when the generator itself
    /// saturates a core (it then shows as a client-side latency the node's stages do not).
    ///
    /// Example: --client-threads 2
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub client_threads: u32,
    /// How long to run, in seconds (at most 3600).
    ///
    /// Example: --duration 30
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// The key space: items are numbered 0..N, ten per partition key.
    ///
    /// Example: --items 100000
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub items: u64,
    /// Size of each written item's payload attribute, in bytes.
    ///
    /// Example: --item-bytes 1024
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=390_000))]
    pub item_bytes: u64,
    /// The table to use.
    ///
    /// Example: --table bench-1
    #[arg(long, default_value = "ddb-bench")]
    pub table: String,
    /// Spread the clients over these endpoints (client i uses endpoint i mod N), e.g.
    /// every node of a cluster; default: only --endpoint.
    ///
    /// Example: --spread http://127.0.0.1:8000,http://127.0.0.1:8001,http://127.0.0.1:8002
    #[arg(long, value_delimiter = ',')]
    pub spread: Vec<String>,
    /// Hold the total request rate to this many per second (spread evenly over the clients)
    /// instead of sending as fast as answers come back: for measuring at a fixed fraction of
    /// the maximum rate. A client that falls behind its schedule sends at once, without
    /// bursting to catch up.
    ///
    /// Example: --rate 2000
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Pick keys from a Zipf distribution with this exponent instead of uniformly: the item of
    /// rank r is chosen in proportion to 1/r^S, so a few items (and the partitions holding them)
    /// take most of the traffic, as real traffic does. Ranks are shuffled over the key space
    /// (the same way in every client and run), so the hot items land in random partitions.
    ///
    /// Example: --zipf 1.1
    #[arg(long, value_parser = parse_zipf)]
    pub zipf: Option<f64>,
    /// Also measure the raw sync rate of the disk under this directory — the node's data
    /// directory, or any directory on the same disk — for 2 s just before and just after the
    /// run, and report ops/s as a multiple of it: a write workload's baseline, measured in the
    /// same run. The probe writes 200-byte records over zeros synced first, each followed by
    /// `fdatasync`, as the WAL writes, in a file it removes afterwards. Meaningful only when
    /// the node runs on this machine.
    ///
    /// Example: --sync-baseline ./ddb-data
    #[arg(long, value_name = "DIR")]
    pub sync_baseline: Option<std::path::PathBuf>,
}

fn parse_zipf(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 10.0 => Ok(s),
        _ => Err(format!("{text:?} is not a Zipf exponent in (0, 10]")),
    }
}

/// `--workload`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// PutItem of a random key.
    Put,
    /// GetItem of a random key with ConsistentRead.
    GetStrong,
    /// GetItem of a random key, eventually consistent.
    GetEventual,
    /// Query of one random partition key (ten items).
    Query,
    /// 50% PutItem, 50% eventually consistent GetItem.
    Mix,
}

impl Workload {
    /// The workload's name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::GetStrong => "get-strong",
            Workload::GetEventual => "get-eventual",
            Workload::Query => "query",
            Workload::Mix => "mix",
        }
    }

    /// True if the workload reads items that must exist first.
    pub fn reads(self) -> bool {
        !matches!(self, Workload::Put)
    }
}
