//! Command-line grammar: `ddbctl <noun> <verb> [args]`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// ddbctl: operate ddb, a replicated key-value store that speaks the DynamoDB protocol.
///
/// Exit status: 0 when the command succeeded and found nothing wrong; 1 when a check ran and
/// found a problem (corruption, a digest mismatch); 2 when the command could not run (bad
/// arguments, unreadable files).
#[derive(Debug, Parser)]
#[command(name = "ddbctl", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// How to print results: `table` for people, `json` for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// Result format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned tables for a terminal.
    Table,
    /// One JSON document on standard output.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect a partition's write-ahead log on disk.
    #[command(subcommand)]
    Wal(WalCommand),
    /// Check a partition replica's store on disk.
    #[command(subcommand)]
    Replica(ReplicaCommand),
}

#[derive(Debug, Subcommand)]
pub enum WalCommand {
    /// List a WAL directory's segments with their LSN ranges, sizes and checksum verdicts.
    ///
    /// Reads every record and checks its frame checksum; never modifies the files, so it is
    /// safe on a live node's WAL. A torn tail in the last segment (an append cut short by a
    /// crash) is reported but is not an error: recovery cuts it. Any other bad frame is
    /// corruption and makes the command exit with status 1.
    ///
    /// Example: ddbctl wal inspect ./ddb-data/wal/1
    Inspect {
        /// The partition's WAL directory (`<data>/wal/<partition>`).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReplicaCommand {
    /// Recompute a replica's state digest from every stored item and compare it with the
    /// digest the replica maintained on each write.
    ///
    /// A mismatch means the items at rest are not what was applied (bit rot, or an apply bug on
    /// this copy); the command then exits with status 1. The store must not be open in a
    /// running node (stop the node, or verify a copy).
    ///
    /// Example: ddbctl replica verify ./ddb-data/replicas/1
    Verify {
        /// The replica store's directory.
        dir: PathBuf,
    },
}
