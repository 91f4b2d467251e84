//! Checkpoints: `(lsn, digest)` pairs recorded at fixed LSN multiples.

use super::StateDigest;
use crate::wal::Lsn;

/// The digest of a replica's state right after applying the entry at `lsn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last LSN applied when the digest was taken.
    pub lsn: Lsn,
    /// The state digest at that LSN.
    pub digest: StateDigest,
}

/// When replicas record checkpoints and how many they keep.
///
/// Every copy of a partition must use the same interval, or they share no checkpoint LSNs to
/// compare at; it is part of a partition's configuration, not a local tuning knob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// A checkpoint is recorded at every LSN that is a multiple of this (never 0).
    pub interval: u64,
    /// How many of the most recent checkpoints a replica keeps.
    pub retained: usize,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            interval: 1024,
            retained: 64,
        }
    }
}

impl CheckpointPolicy {
    /// True if a checkpoint is due right after applying `lsn`.
    #[must_use]
    pub fn is_checkpoint(&self, lsn: Lsn) -> bool {
        lsn.0 != 0 && self.interval != 0 && lsn.0.is_multiple_of(self.interval)
    }

    /// The oldest checkpoint LSN still kept once a checkpoint at `newest` has been recorded.
    #[must_use]
    pub fn oldest_retained(&self, newest: Lsn) -> Lsn {
        let span = self
            .interval
            .saturating_mul(self.retained.saturating_sub(1) as u64);
        Lsn(newest.0.saturating_sub(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_fall_on_interval_multiples_only() {
        let policy = CheckpointPolicy {
            interval: 4,
            retained: 3,
        };
        let due: Vec<u64> = (0..=13).filter(|l| policy.is_checkpoint(Lsn(*l))).collect();
        assert_eq!(due, vec![4, 8, 12]);
        assert_eq!(policy.oldest_retained(Lsn(12)), Lsn(4));
        assert_eq!(policy.oldest_retained(Lsn(4)), Lsn(0));
    }
}
