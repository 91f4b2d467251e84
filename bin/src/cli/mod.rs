//! Command-line grammar: `ddbctl <noun> <verb> [args]`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod bench;
mod cluster;
mod data;
mod drill;

pub use bench::{BenchArgs, Workload};
pub use cluster::{ClusterCommand, LocalCommand, LocalUpArgs};
pub use data::{Billing, ConditionArgs, ItemCommand, PlaceholderArgs, ReadManyArgs, TableCommand};
pub use drill::{DrillCommand, PowerOffArgs};

/// ddbctl: operate ddb, a replicated key-value store that speaks the DynamoDB protocol.
///
/// Commands that talk to a node (`table`, `item`, `bench`) sign their requests with an access
/// key from --access-key-id/--secret-access-key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
/// (ddbd prints the `export` lines on first start). `local up` starts a whole cluster on this
/// machine and prints them; `cluster status` needs no key.
///
/// Exit status:
///   0  the command succeeded and found nothing wrong;
///   1  a check found a problem (corruption, a digest mismatch, errors during a bench run,
///      a node down or a group without a leader in `cluster status`, a failed drill check),
///      or a condition expression was false (ConditionalCheckFailedException);
///   2  the command could not run: bad arguments, unreadable files, an unreachable endpoint,
///      or any other error the service returned (printed as `error: Code: message`).
#[derive(Debug, Parser)]
#[command(
    name = "ddbctl",
    version,
    propagate_version = true,
    verbatim_doc_comment
)]
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
    ///
    /// Example: --output json
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Where the node is and how to sign for it (used by `table`, `item` and `bench`; `cluster status`
/// uses only --endpoint and --timeout).
#[derive(Clone, Debug, Args)]
pub struct ConnectionArgs {
    /// The node's DynamoDB endpoint, plain http only (no https yet).
    ///
    /// Example: --endpoint http://10.0.0.5:8000
    #[arg(
        long,
        global = true,
        env = "DDB_ENDPOINT",
        default_value = "http://127.0.0.1:8000"
    )]
    pub endpoint: String,
    /// The region to sign for; falls back to AWS_REGION, then AWS_DEFAULT_REGION, then
    /// us-east-1. It must match the node's region.
    ///
    /// Example: --region eu-west-1
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Access key id; falls back to AWS_ACCESS_KEY_ID.
    ///
    /// Example: --access-key-id DDBABCDEFGHIJKLMNOPQ
    #[arg(long, global = true)]
    pub access_key_id: Option<String>,
    /// Secret access key; falls back to AWS_SECRET_ACCESS_KEY (prefer the variable: flags
    /// show up in the process list).
    ///
    /// Example: --secret-access-key "$SECRET"
    #[arg(long, global = true)]
    pub secret_access_key: Option<String>,
    /// How long one request may take, in seconds, before it fails with a timeout.
    ///
    /// Example: --timeout 30
    #[arg(long, global = true, default_value_t = 10.0)]
    pub timeout: f64,
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
    /// Create, list, describe and delete tables on a node.
    #[command(subcommand)]
    Table(TableCommand),
    /// Put, get, update, delete, query and scan items.
    #[command(subcommand)]
    Item(ItemCommand),
    /// Generate load against a node and report throughput and latency percentiles.
    Bench(BenchArgs),
    /// Run a cluster of ddbd processes on this machine, for development and drills.
    #[command(subcommand)]
    Local(LocalCommand),
    /// Inspect a running cluster: replication groups, leaders, lag.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Act on one replication group (a table partition, or group 0: the metadata group).
    #[command(subcommand)]
    Partition(PartitionCommand),
    /// Inspect the WAL archive in an object store (file:// or s3://).
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Ask the scrubber what it proved: replicas equal each other and the archive.
    #[command(subcommand)]
    Scrub(ScrubCommand),
    /// What the canaries saw: availability and latency per endpoint, AZ and operation.
    #[command(subcommand)]
    Canary(CanaryCommand),
    /// Customer-facing and operational alarms: list, history, silence.
    #[command(subcommand)]
    Alarms(AlarmsCommand),
    /// Failure drills on a local cluster: kill nodes under load, then check nothing was lost.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Print a shell completion script for ddbctl on standard output: every command,
    /// subcommand, flag and value list, generated from the same definitions as --help, so it
    /// always matches this binary. Load it the way the shell expects (below); regenerate it
    /// after upgrading ddbctl.
    ///
    /// Example: ddbctl completions bash > ~/.local/share/bash-completion/completions/ddbctl
    ///
    /// Example: ddbctl completions zsh > ~/.zfunc/_ddbctl   (with `fpath+=~/.zfunc` before
    ///            `compinit` in ~/.zshrc)
    ///
    /// Example: ddbctl completions fish > ~/.config/fish/completions/ddbctl.fish
    ///
    /// Example: eval (ddbctl completions elvish | slurp)   (in ~/.config/elvish/rc.elv)
    ///
    /// Example: ddbctl completions powershell | Out-String | Invoke-Expression   (in $PROFILE)
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),
    /// Write ddbctl's manual pages, one roff page per command and subcommand, named after the
    /// command path: ddbctl.1, ddbctl-scrub.1, ddbctl-scrub-repair.1, … Each holds that
    /// command's full --help text. DIR is created if missing; pages already there are
    /// replaced. Prints the path of every page written (`--output json`: the list).
    ///
    /// Example: ddbctl man && man -l man/ddbctl-scrub-repair.1
    ///
    /// Example: sudo ddbctl man --dir /usr/local/share/man/man1 && man ddbctl-archive-restore
    #[command(verbatim_doc_comment)]
    Man(ManArgs),
}

/// Where the archive is.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// The archive's URL: `file:///abs/path` or `s3://bucket/prefix?endpoint=URL&region=R`
    /// (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    ///
    /// Example: --archive file:///var/lib/ddb/archive
    #[arg(long, env = "DDB_ARCHIVE")]
    pub archive: String,
}

#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// List every archived partition: its chunks and snapshots, their total size, the LSNs the
    /// chunks cover, the newest snapshot, and the lag: how long ago the newest archived entry
    /// was written (only the newest chunk of each partition is downloaded).
    ///
    /// Table 0 is the metadata group (the catalog); table partitions have cluster-wide ids.
    ///
    /// Example: ddbctl archive ls --archive file:///tmp/ddb-archive
    ///
    /// Example: ddbctl archive ls --archive s3://ddb/prod?endpoint=http://127.0.0.1:9000 -o json
    #[command(verbatim_doc_comment)]
    Ls {
        #[command(flatten)]
        location: ArchiveArgs,
    },
    /// Download and check every snapshot and chunk of every archived partition (or one):
    /// checksums, footers, the LSNs each holds against its name, that the chunks cover the log
    /// from LSN 1 (or from the oldest snapshot) without a gap, and that chunks which overlap
    /// (two archivers cutting different boundaries) hold identical entries. Names every
    /// object with a problem.
    ///
    /// --deep also replays each partition into memory (from the oldest snapshot, or LSN 1) and
    /// compares the replayed state's digest with the one every chunk and snapshot recorded: it
    /// catches an archive whose objects are each intact but do not add up to the partition's
    /// state. It costs a restore's CPU and memory per partition.
    ///
    /// Exit status: 0 the archive is sound; 1 a problem was found (each one is printed);
    /// 2 the archive could not be read.
    ///
    /// Example: ddbctl archive verify --archive s3://ddb/prod?endpoint=http://127.0.0.1:9000
    ///
    /// Example: ddbctl archive verify --archive file:///tmp/a --table-id 3 --partition 7 --deep
    #[command(verbatim_doc_comment)]
    Verify {
        #[command(flatten)]
        location: ArchiveArgs,
        /// Only this table id (with --partition).
        #[arg(long, requires = "partition")]
        table_id: Option<u64>,
        /// Only this partition id (with --table-id).
        #[arg(long, requires = "table_id")]
        partition: Option<u64>,
        /// Also replay the archive and check the state digest at every chunk end and snapshot.
        #[arg(long)]
        deep: bool,
    },
    /// Prepare the bucket an archive lives in: `bucket init` creates it and turns on
    /// versioning (and object lock if asked).
    #[cfg(feature = "bucket-admin")]
    #[command(subcommand)]
    Bucket(crate::commands::archive_bucket::BucketCommand),
    /// Rebuild a table from the archive as it was at an LSN, at a time, or at the newest
    /// archived entry (the default).
    ///
    /// First the catalog is read from the archive as of the same time (the latest with
    /// --to-lsn; archivers record every catalog change), to find the table by the name it had
    /// then, its key schema and its partitions.
    /// Then each partition is rebuilt from the newest snapshot at or before the target plus
    /// the WAL chunks after it. At every chunk end it passes, the rebuilt state's digest must
    /// equal the one the chunk recorded, so a restore proves it matches what the partition
    /// held; the report gives, per partition, the snapshot used, the final LSN, the digest
    /// fingerprint and the last LSN so verified.
    ///
    /// Targets:
    ///   (none)        everything archived, in every partition;
    ///   --to-time T   every partition as of T (RFC 3339): the entries stamped at or before T;
    ///   --to-lsn N    one partition right after LSN N (--partition P, unless the table has
    ///                 only one); LSNs are per partition, so they do not name a table-wide point.
    ///
    /// Destinations (one of):
    ///   --into DIR      one replica store per partition in DIR/replicas/<partition-id> (the
    ///                   layout of a node's data directory; `ddbctl replica verify` reads it)
    ///                   and DIR/restore.json with the table definition and the report. DIR
    ///                   must be empty or missing.
    ///   --as-table NEW  create table NEW (same key schema and billing) on the node at
    ///                   --endpoint, signed like `table` and `item` commands, and write the
    ///                   items with BatchWriteItem. NEW must not exist. The partitions are
    ///                   rebuilt in a temporary directory first, so a failed restore creates
    ///                   no table.
    ///
    /// Exit status: 0 restored and verified; 2 the restore could not be done (the archive is
    /// unreadable, has a gap, a corrupt object or a digest mismatch before the target, the
    /// table did not exist at that time, DIR is not empty, NEW exists). Each names the object.
    ///
    /// Example: ddbctl archive restore --archive file:///var/lib/ddb/archive --table orders --into /tmp/orders
    ///
    /// Example: ddbctl archive restore --archive s3://ddb/prod?endpoint=http://127.0.0.1:9000 \
    ///            --table orders --to-time 2026-03-01T09:30:00Z --as-table orders_0930 \
    ///            --endpoint http://127.0.0.1:8000
    ///
    /// Example: ddbctl archive restore --archive file:///tmp/a --table orders --to-lsn 1200 \
    ///            --partition 7 --into /tmp/orders-p7 --output json
    #[command(verbatim_doc_comment)]
    Restore(RestoreArgs),
}

/// `ddbctl archive restore`'s flags.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub location: ArchiveArgs,
    /// The table to restore, by the name it had at the target time.
    ///
    /// Example: --table orders
    #[arg(long)]
    pub table: String,
    /// Restore one partition to the state right after this LSN.
    ///
    /// Example: --to-lsn 1200 --partition 7
    #[arg(long, value_name = "N", conflicts_with = "to_time")]
    pub to_lsn: Option<u64>,
    /// With --to-lsn: the partition's id (`ddbctl archive ls` and `cluster status` show them).
    #[arg(long, value_name = "P", requires = "to_lsn")]
    pub partition: Option<u64>,
    /// Restore every partition as of this time, RFC 3339 (a `Z` or an offset is required).
    ///
    /// Example: --to-time 2026-03-01T09:30:00Z
    ///
    /// Example: --to-time 2026-03-01T10:30:00.250+01:00
    #[arg(long, value_name = "RFC3339")]
    pub to_time: Option<String>,
    /// Write one replica store per partition under this directory (empty or missing).
    ///
    /// Example: --into /tmp/orders-restored
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "as_table",
        conflicts_with = "as_table"
    )]
    pub into: Option<PathBuf>,
    /// Create this table on the node at --endpoint and write the restored items into it.
    ///
    /// Example: --as-table orders_restored --endpoint http://127.0.0.1:8000
    #[arg(long, value_name = "NEW")]
    pub as_table: Option<String>,
}

/// Where the canaries serve.
#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// Every canary to ask (one per AZ), comma-separated or repeated; the default is where
    /// `ddbctl local up` starts them.
    ///
    /// Example: --canary http://10.0.1.10:9600,http://10.0.2.10:9600
    #[arg(
        long = "canary",
        env = "DDB_CANARY",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8400,http://127.0.0.1:8401,http://127.0.0.1:8402"
    )]
    pub canaries: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum CanaryCommand {
    /// Availability and latency as customers saw them, per endpoint, AZ and operation, over
    /// the windows the canaries keep (5 minutes each by default, the last hour): calls that
    /// counted, the share that succeeded, p50 and p99 latency, and a sparkline of availability
    /// per window, oldest first (█ 100%, ▇ ≥99.99%, ▆ ≥99.9%, ▅ ≥99%, ▄ ≥95%, ▃ ≥90%, ▂ ≥50%,
    /// ▁ below, blank: no calls). 5xx, timeouts, connection failures and wrong data count
    /// against availability; client errors and throttling do not (throttled calls are shown).
    ///
    /// Exit status: 0 every canary answered; 2 one did not.
    ///
    /// Example: ddbctl canary report --canary http://127.0.0.1:9600,http://127.0.0.1:9601
    #[command(verbatim_doc_comment)]
    Report {
        #[command(flatten)]
        canaries: CanaryArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlarmsCommand {
    /// Alarms pending or firing now, on every canary: name, severity, state, since when,
    /// whether silenced, and what is wrong.
    ///
    /// Exit status: 0 nothing fires; 1 an alarm fires; 2 a canary cannot be reached.
    ///
    /// Example: ddbctl alarms ls
    #[command(verbatim_doc_comment)]
    Ls {
        #[command(flatten)]
        canaries: CanaryArgs,
    },
    /// Alarm transitions (pending, firing, resolved), oldest first, as the canaries persisted
    /// them.
    ///
    /// Example: ddbctl alarms history --limit 50
    #[command(verbatim_doc_comment)]
    History {
        #[command(flatten)]
        canaries: CanaryArgs,
        /// How many entries per canary.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Silence alarms whose labels match every --match for a while: they are still evaluated
    /// and listed (as silenced) and go to the history, but send no notification. Silences
    /// persist across restarts of the canary.
    ///
    /// Example: ddbctl alarms silence --match alertname=page-fast --match endpoint=http://10.0.1.10:8000 --for 2h --comment "node 1 replaced"
    #[command(verbatim_doc_comment)]
    Silence {
        #[command(flatten)]
        canaries: CanaryArgs,
        /// A label the alarm must carry, `name=value` (alertname, severity, endpoint, az,
        /// node, partition, …); repeat for more.
        #[arg(long = "match", value_name = "NAME=VALUE", required = true)]
        matchers: Vec<String>,
        /// How long: a number with s, m, h or d.
        #[arg(long = "for", value_name = "DURATION", default_value = "1h")]
        duration: String,
        /// Why, for the history.
        #[arg(long, default_value = "")]
        comment: String,
    },
}

/// Where the scrubber serves.
#[derive(Debug, Args)]
pub struct ScrubberArgs {
    /// The scrubber's address (its `listen`); the default is where `ddbctl local up` starts it.
    ///
    /// Example: --scrubber http://127.0.0.1:9500
    #[arg(long, env = "DDB_SCRUBBER", default_value = "http://127.0.0.1:8300")]
    pub scrubber: String,
}

#[derive(Debug, Subcommand)]
pub enum ScrubCommand {
    /// Per partition: the newest LSN at which every replica and the archive were proven equal
    /// and how long ago, and the verdict of each check (peers agree; live matches archive;
    /// items at rest match their digest, from the last deep pass), naming any odd copy.
    ///
    /// Exit status: 0 no check found a difference; 1 one did (each is listed); 2 the scrubber
    /// cannot be reached.
    ///
    /// Example: ddbctl scrub status
    ///
    /// Example: ddbctl scrub status --scrubber http://127.0.0.1:9500 --output json
    #[command(verbatim_doc_comment)]
    Status {
        #[command(flatten)]
        scrubber: ScrubberArgs,
    },
    /// Everything the scrubber knows per partition: each check's LSN and odd copies, the
    /// reference replica's LSN, the keys where copies differ, archive damage, the last deep
    /// pass (when, bytes scanned), when it was last checked. `--output json` for tooling.
    ///
    /// Exit status as for `scrub status`.
    ///
    /// Example: ddbctl scrub report --output json
    #[command(verbatim_doc_comment)]
    Report {
        #[command(flatten)]
        scrubber: ScrubberArgs,
    },
    /// Pause scrubbing: no pass starts until `scrub resume` (the one under way finishes). The
    /// pause survives a restart of the scrubber. A deep pass that falls due meanwhile runs on
    /// resume.
    ///
    /// Example: ddbctl scrub pause
    #[command(verbatim_doc_comment)]
    Pause {
        #[command(flatten)]
        scrubber: ScrubberArgs,
    },
    /// Resume scrubbing after `scrub pause`; a pass starts at once.
    ///
    /// Example: ddbctl scrub resume
    Resume {
        #[command(flatten)]
        scrubber: ScrubberArgs,
    },
    /// Run a pass now and wait for it (a progress bar on a terminal), then print the status.
    /// With --deep, every replica also recomputes its digest from its items at rest (a full
    /// scan, paced by the scrubber's scan_bytes_per_sec: slow on large partitions).
    ///
    /// Exit status as for `scrub status`.
    ///
    /// Example: ddbctl scrub run --deep
    ///
    /// Example: ddbctl scrub run --partition 12
    #[command(verbatim_doc_comment)]
    Run {
        #[command(flatten)]
        scrubber: ScrubberArgs,
        /// Include the full scans (check 3).
        #[arg(long)]
        deep: bool,
        /// Check only this partition (its id, as `scrub status` lists it).
        #[arg(long, value_name = "ID")]
        partition: Option<u64>,
    },
    /// Rebuild every replica the last pass named odd — outvoted by the other replicas and the
    /// archive, or whose items at rest do not add up to its digest — from a replica of the
    /// same partition that no check named. The node copies the good replica's items, replaces
    /// its store with them and replays its own log after the copy's LSN; its WAL, which the
    /// group agreed on, is not touched, and the partition keeps serving (writes wait for the
    /// short replay). Then a pass runs (a deep one after a check-3 repair) and the status is
    /// printed. A damaged archive is never repaired from the replicas: `archive verify` names
    /// the object.
    ///
    /// Exit status: 0 the pass after the repair found no difference; 1 a repair failed or a
    /// difference remains; 2 the scrubber cannot be reached.
    ///
    /// Example: ddbctl scrub repair
    ///
    /// Example: ddbctl scrub repair --partition 12
    #[command(verbatim_doc_comment)]
    Repair {
        #[command(flatten)]
        scrubber: ScrubberArgs,
        /// Repair only this partition's odd replicas.
        #[arg(long, value_name = "ID")]
        partition: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PartitionCommand {
    /// Replace a member of a group now, as its leader does by itself when a member stays
    /// silent past heal_after_ms: teach a spare node the log, add it as a log replica, remove
    /// the member, then rebuild the log replica into a full replica. Needs a node outside the
    /// group (a cluster of four or more). `ddbctl cluster status` shows the progress.
    ///
    /// The request goes to any node (--endpoint) and is forwarded to the group's leader.
    ///
    /// Example: ddbctl partition heal --group 3 --replace 2
    #[command(verbatim_doc_comment)]
    Heal {
        /// The group's id (the partition id `cluster status` shows after the table name).
        #[arg(long)]
        group: u64,
        /// The node whose replica is replaced.
        #[arg(long)]
        replace: u32,
    },
    /// Split a hot partition in two, online (split for consumption).
    ///
    /// The boundary is where the partition's key heat divides its recent traffic most evenly
    /// (`ddbctl table capacity T` shows it), or the hash given with --at. The parent commits a
    /// fence in its own log and takes no more writes (clients' requests wait, then go to the
    /// children); its items are copied into two new partitions through their own logs; the
    /// children's digests must add up to the parent's at the fence before the table switches.
    /// Refused when one partition key carries the traffic (no boundary can divide it) or too
    /// little traffic was seen. In a cluster the request goes to the parent's leader, which
    /// loads children led elsewhere through the cluster transport.
    ///
    /// Example: ddbctl partition split --table orders --partition 3
    ///          ddbctl partition split --table orders --partition 3 --at 5a00000000000000
    #[command(verbatim_doc_comment)]
    Split {
        /// The table.
        #[arg(long)]
        table: String,
        /// The partition's id (`ddbctl table capacity` lists them).
        #[arg(long)]
        partition: u64,
        /// The first partition-key hash of the upper child, 16 hex digits; by default the
        /// partition's key heat chooses.
        #[arg(long, value_name = "HASH")]
        at: Option<String>,
    },
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

/// `ddbctl completions`' argument.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    ///
    /// Example: bash
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `ddbctl man`'s flags.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write the pages into; `man` finds them there when DIR is a `man1`
    /// directory on its MANPATH.
    ///
    /// Example: --dir /usr/local/share/man/man1
    #[arg(long, value_name = "DIR", default_value = "man")]
    pub dir: PathBuf,
}
