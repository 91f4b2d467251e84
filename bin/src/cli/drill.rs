//! `ddbctl drill …`: failure drills against a local cluster.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Power-off game day: SIGKILL random nodes of a fresh 3-node local cluster under a mixed
    /// workload, restart them, many times, then prove that nothing was lost.
    ///
    /// The drill starts a cluster under --dir exactly as `ddbctl local up` would (ports
    /// BASE..BASE+2 and BASE+100..BASE+102), creates table `drill` (hash key `k`, S) and runs
    /// --clients threads against random nodes: ~70% PutItem of a random key k0..k<KEYS-1> with
    /// a unique value, ~30% strongly consistent GetItem. Every operation is recorded with its
    /// start and end instants and its outcome: ok, failed (a ValidationException: certainly
    /// not applied) or unknown (a timeout, a dropped connection, a 5xx: it may or may not have
    /// taken effect).
    ///
    /// Meanwhile, every --interval-ms it picks a node at random (from --seed), SIGKILLs it,
    /// keeps it down --down-ms, restarts it and waits for its /healthz (a node not back within
    /// 30 s fails the drill). After --kills kills it stops the clients, waits until every
    /// group's replicas have applied the group's whole commit, and checks:
    ///
    ///   1. no acknowledged write lost: a final strongly consistent read of every key returns
    ///      the last acknowledged write or a write that may have come after it;
    ///   2. linearizability: the full history of --sample-keys keys (plus the final read) is
    ///      that of a single register;
    ///   3. replicas equal: every group's replicas have the same state digest at the same LSN.
    ///
    /// The report gives the seed, the kills, operations by outcome and error kind, the time
    /// from each kill to the next acknowledged write (min/median/max) and each check's verdict
    /// with the evidence of any failure. The cluster is stopped at the end, its logs left in
    /// --dir (node<i>/ddbd.log). docs/drill.md explains it all.
    ///
    /// Exit status: 0 every check passed; 1 a check failed or a node did not come back;
    /// 2 the drill could not run (non-empty --dir, a port taken, the cluster did not start).
    ///
    /// Example: ddbctl drill power-off --fresh                          # 20 kills, under a minute
    ///
    /// Example: ddbctl drill power-off --fresh --seed 7                 # repeat a run's choices
    ///
    /// Example: ddbctl drill power-off --fresh --kills 500 --clients 8 --keys 1000   # long form
    ///
    /// Example: ddbctl drill power-off --fresh --output json > drill.json
    #[command(verbatim_doc_comment)]
    PowerOff(PowerOffArgs),
}

/// `ddbctl drill power-off`'s flags.
#[derive(Debug, Args)]
pub struct PowerOffArgs {
    /// The cluster's directory. It must be empty or missing, unless --fresh.
    ///
    /// Example: --dir /tmp/drill
    #[arg(long, default_value = "ddb-drill")]
    pub dir: PathBuf,
    /// Wipe --dir first (only a directory that holds a ddbctl cluster: it must contain
    /// cluster.secret or credentials.toml).
    #[arg(long)]
    pub fresh: bool,
    /// Node i's API listens on BASE+i-1 and its peer transport on BASE+100+i-1.
    ///
    /// Example: --base-port 9300
    #[arg(long, default_value_t = 8300, value_parser = clap::value_parser!(u16).range(1..))]
    pub base_port: u16,
    /// How many nodes to kill, one after another.
    ///
    /// Example: --kills 500
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub kills: u32,
    /// Client threads, each with its own connection to a random node.
    ///
    /// Example: --clients 8
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// The key space: keys k0 … k<KEYS-1>.
    ///
    /// Example: --keys 1000
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub keys: u32,
    /// Milliseconds from one kill to the next (at least; a kill waits for the last victim's
    /// restart).
    ///
    /// Example: --interval-ms 800
    #[arg(long, default_value_t = 1500)]
    pub interval_ms: u64,
    /// Milliseconds a killed node stays down before it is restarted.
    ///
    /// Example: --down-ms 2000
    #[arg(long, default_value_t = 300)]
    pub down_ms: u64,
    /// The seed of every random choice (victims, clients' keys and operations); defaults to
    /// one from the clock. Printed in the report so a run can be repeated (timing still varies).
    ///
    /// Example: --seed 7
    #[arg(long)]
    pub seed: Option<u64>,
    /// How many keys get their whole history checked for linearizability (the others get the
    /// lost-write check only).
    ///
    /// Example: --sample-keys 100
    #[arg(long, default_value_t = 30)]
    pub sample_keys: u32,
}
