//! The scrubber's findings, shared by `ddb-scrubber` (which makes them) and `ddbctl scrub`
//! (which shows them): the per-partition report served at the scrubber's `/status`, and the
//! judging of copies' digests ([`judge`]).

pub mod judge;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use judge::{Check, Copy, Outcome, compare};

/// What the scrubber last found about one partition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartitionReport {
    /// The table (0 for the metadata group).
    pub table_id: u64,
    /// The partition.
    pub partition_id: u64,
    /// Check 1: the full replicas agree.
    pub peers: Check,
    /// Check 2: the replicas agree with the reference replica rebuilt from the archive.
    pub archive: Check,
    /// Check 3, from the last deep pass: every full replica's items add up to its digest.
    pub at_rest: Option<AtRest>,
    /// The reference replica's LSN.
    pub reference_lsn: u64,
    /// What is wrong with the archive itself (a corrupt chunk, a digest that does not match
    /// the replayed state), as opposed to a replica.
    pub archive_error: Option<String>,
    /// The newest LSN at which every full replica and the archive were proven equal.
    pub proven_lsn: Option<u64>,
    /// When that proof was made (ms since the epoch).
    pub proven_at_ms: Option<u64>,
    /// When this partition was last checked.
    pub checked_at_ms: u64,
}

/// Check 3's result for one partition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AtRest {
    /// The outcome.
    pub outcome: Outcome,
    /// The replicas whose items do not add up to their digest.
    pub odd: Vec<String>,
    /// When the scans ran (ms since the epoch).
    pub at_ms: u64,
    /// Bytes scanned over all replicas.
    pub bytes: u64,
}

/// Everything `/status` serves and `status.json` keeps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Status {
    /// Passes completed.
    pub passes: u64,
    /// Deep passes completed.
    pub deep_passes: u64,
    /// When the last pass ended (ms since the epoch).
    pub last_pass_ms: u64,
    /// Nodes the last pass could not reach.
    pub nodes_down: Vec<String>,
    /// By partition id.
    pub partitions: BTreeMap<u64, PartitionReport>,
}

impl Status {
    /// True if any check found copies that differ, or the archive is damaged.
    #[must_use]
    pub fn has_mismatch(&self) -> bool {
        self.partitions.values().any(|p| {
            p.peers.outcome == Outcome::Disagree
                || p.archive.outcome == Outcome::Disagree
                || p.at_rest
                    .as_ref()
                    .is_some_and(|rest| rest.outcome == Outcome::Disagree)
        })
    }
}
