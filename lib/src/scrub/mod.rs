//! The scrubber's findings, shared by `ddb-scrubber` (which makes them) and `ddbctl scrub`
//! (which shows them): the per-partition report served at the scrubber's `/status`, and the
//! judging of copies' digests ([`judge`]).

pub mod judge;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use judge::{Check, Copy, Outcome, compare};

/// An item's key and [`item_hash`], as the scrubber compares copies by.
pub type KeyHash = (Vec<u8>, [u8; 16]);

/// The hash of an item the scrubber compares copies' keys by: the first 16 bytes of blake3.
#[must_use]
pub fn item_hash(item: &[u8]) -> [u8; 16] {
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&blake3::hash(item).as_bytes()[..16]);
    hash
}

/// Hex of bytes, for keys and hashes in reports.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex string (`None` if it is not hex).
#[must_use]
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The keys where two sorted `(key, item hash)` streams differ (present in one only, or with
/// different hashes), in key order, at most `limit`.
pub fn differing_keys<E>(
    mut left: impl Iterator<Item = Result<KeyHash, E>>,
    mut right: impl Iterator<Item = Result<KeyHash, E>>,
    limit: usize,
) -> Result<Vec<Vec<u8>>, E> {
    let mut found = Vec::new();
    let mut a = left.next().transpose()?;
    let mut b = right.next().transpose()?;
    while found.len() < limit {
        match (&a, &b) {
            (None, None) => break,
            (Some((key, _)), None) => {
                found.push(key.clone());
                a = left.next().transpose()?;
            }
            (None, Some((key, _))) => {
                found.push(key.clone());
                b = right.next().transpose()?;
            }
            (Some((ka, ha)), Some((kb, hb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    found.push(ka.clone());
                    a = left.next().transpose()?;
                }
                std::cmp::Ordering::Greater => {
                    found.push(kb.clone());
                    b = right.next().transpose()?;
                }
                std::cmp::Ordering::Equal => {
                    if ha != hb {
                        found.push(ka.clone());
                    }
                    a = left.next().transpose()?;
                    b = right.next().transpose()?;
                }
            },
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repair_targets_the_replicas_named_odd_and_never_the_archive() {
        let check = |outcome, odd: &[&str]| Check {
            outcome,
            lsn: Some(64),
            odd: odd.iter().map(|name| (*name).to_string()).collect(),
        };
        let mut report = PartitionReport {
            table_id: 1,
            partition_id: 7,
            peers: check(Outcome::Disagree, &["node 2"]),
            archive: check(Outcome::Disagree, &["node 2"]),
            at_rest: Some(AtRest {
                outcome: Outcome::Disagree,
                odd: vec!["node 3".to_string()],
                at_ms: 0,
                bytes: 0,
            }),
            reference_lsn: 64,
            archive_error: None,
            proven_lsn: None,
            proven_at_ms: None,
            checked_at_ms: 0,
            differing_keys: Vec::new(),
        };
        assert_eq!(
            report.odd_replicas().into_iter().collect::<Vec<_>>(),
            [2, 3]
        );
        report.peers = check(Outcome::Agree, &[]);
        report.archive = check(Outcome::Disagree, &["archive"]);
        report.at_rest = None;
        assert!(report.odd_replicas().is_empty());
        // A stale name on a check that now agrees repairs nothing.
        report.archive = check(Outcome::Agree, &["node 1"]);
        assert!(report.odd_replicas().is_empty());
    }

    #[test]
    fn progress_estimates_the_end_from_the_pace_so_far() {
        let start = Progress::at(true, 0, 10, 1_000, 1_000);
        assert_eq!(start.eta_ms, None);
        let midway = Progress::at(true, 4, 10, 1_000, 9_000);
        // 2 s per partition, six to go.
        assert_eq!(midway.eta_ms, Some(21_000));
        assert_eq!(
            Progress::at(false, 10, 10, 1_000, 5_000).eta_ms,
            Some(5_000)
        );
    }

    #[test]
    fn a_sorted_merge_names_missing_extra_and_changed_keys() {
        let stream = |pairs: &[(&str, &str)]| -> Vec<Result<KeyHash, ()>> {
            pairs
                .iter()
                .map(|(key, item)| Ok((key.as_bytes().to_vec(), item_hash(item.as_bytes()))))
                .collect()
        };
        let left = stream(&[("a", "1"), ("b", "2"), ("d", "4"), ("e", "5")]);
        let right = stream(&[("a", "1"), ("b", "X"), ("c", "3"), ("e", "5"), ("f", "6")]);
        let found = differing_keys(left.into_iter(), right.into_iter(), 10).unwrap();
        assert_eq!(
            found,
            vec![b"b".to_vec(), b"c".to_vec(), b"d".to_vec(), b"f".to_vec()]
        );
        assert_eq!(unhex(&hex(b"\x00\xffk")), Some(b"\x00\xffk".to_vec()));
    }
}

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
    /// Where copies disagree: the first keys (hex of the encoded key) whose items differ between
    /// an odd copy and a copy of the majority, by a sorted merge of their `(key, item hash)`
    /// streams taken now (under writes, keys written since the compared LSN may show too).
    #[serde(default)]
    pub differing_keys: Vec<String>,
}

impl PartitionReport {
    /// The node ids of the replicas a check named odd (outvoted by the other copies and the
    /// archive, or whose items do not add up to their digest): the ones a repair rebuilds.
    /// The archive is never among them: a damaged archive is not repaired from the replicas.
    #[must_use]
    pub fn odd_replicas(&self) -> std::collections::BTreeSet<u32> {
        let mut named: Vec<&String> = Vec::new();
        for check in [&self.peers, &self.archive] {
            if check.outcome == Outcome::Disagree {
                named.extend(&check.odd);
            }
        }
        if let Some(rest) = self
            .at_rest
            .as_ref()
            .filter(|r| r.outcome == Outcome::Disagree)
        {
            named.extend(&rest.odd);
        }
        named
            .into_iter()
            .filter_map(|name| name.strip_prefix("node ")?.parse().ok())
            .collect()
    }
}

/// One replica a repair rebuilt (or could not), as `ddb-scrubber`'s `/repair` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    /// The partition.
    pub partition_id: u64,
    /// The node whose replica was odd.
    pub node_id: u32,
    /// The node it was rebuilt from, if one was found.
    pub source: Option<u32>,
    /// What the node reported (`RepairReport`), or why the repair did not happen.
    pub outcome: Result<serde_json::Value, String>,
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
    /// Bytes the replicas' full scans (check 3) have read, over every deep pass.
    #[serde(default)]
    pub scanned_bytes: u64,
    /// When the last pass ended (ms since the epoch).
    pub last_pass_ms: u64,
    /// Nodes the last pass could not reach.
    pub nodes_down: Vec<String>,
    /// By partition id.
    pub partitions: BTreeMap<u64, PartitionReport>,
    /// True while an operator has paused scrubbing (`ddbctl scrub pause`).
    #[serde(default)]
    pub paused: bool,
    /// The pass under way, if any.
    #[serde(default)]
    pub progress: Option<Progress>,
    /// When the next deep pass is due (ms since the epoch), by `deep_every_ms` or on the
    /// `deep_schedule` calendar.
    #[serde(default)]
    pub next_deep_ms: Option<u64>,
}

/// How far the pass under way has got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// A deep pass (with full scans).
    pub deep: bool,
    /// Partitions checked so far.
    pub done: u64,
    /// Partitions to check.
    pub total: u64,
    /// When the pass started (ms since the epoch).
    pub started_ms: u64,
    /// When it should end at the pace so far (ms since the epoch), once a partition is done.
    pub eta_ms: Option<u64>,
}

impl Progress {
    /// Progress after `done` of `total` partitions, `started_ms` to `now_ms`.
    #[must_use]
    pub fn at(deep: bool, done: u64, total: u64, started_ms: u64, now_ms: u64) -> Self {
        let eta_ms = (done > 0).then(|| {
            let per = now_ms.saturating_sub(started_ms) / done;
            now_ms + per * total.saturating_sub(done)
        });
        Progress {
            deep,
            done,
            total,
            started_ms,
            eta_ms,
        }
    }
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
