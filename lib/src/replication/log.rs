//! The replica's in-memory window onto its log: the entries above a base position.
//!
//! Entries at or below the base are committed and no longer held here (they live in the WAL and
//! the replica store); the base remembers the position of the last of them so that log matching
//! can still be checked against it.

use std::collections::VecDeque;

use crate::wal::{Ballot, Entry, Lsn};

/// A position in a log: the LSN of an entry and the ballot of the leader that proposed it.
///
/// Ordered by ballot, then LSN: the "more up to date" order in which a candidate picks the log it
/// adopts during phase 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogPosition {
    /// Ballot of the entry at `lsn` (compared first).
    pub ballot: Ballot,
    /// The entry's LSN.
    pub lsn: Lsn,
}

/// Entries above `base`, contiguous by LSN.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct LogWindow {
    base: LogPosition,
    entries: VecDeque<Entry>,
}

impl LogWindow {
    /// A window whose committed prefix ends at `base`, holding `entries` (which must continue
    /// from `base.lsn + 1` without gaps; entries that do not are dropped with everything after).
    pub(crate) fn new(base: LogPosition, entries: Vec<Entry>) -> LogWindow {
        let mut window = LogWindow {
            base,
            entries: VecDeque::with_capacity(entries.len()),
        };
        for entry in entries {
            if entry.lsn <= base.lsn {
                continue;
            }
            if entry.lsn != window.last_lsn().next() {
                break;
            }
            window.entries.push_back(entry);
        }
        window
    }

    pub(crate) fn base(&self) -> LogPosition {
        self.base
    }

    pub(crate) fn last(&self) -> LogPosition {
        self.entries.back().map_or(self.base, |entry| LogPosition {
            ballot: entry.ballot,
            lsn: entry.lsn,
        })
    }

    pub(crate) fn last_lsn(&self) -> Lsn {
        self.last().lsn
    }

    /// The entry at `lsn`, if it is held here.
    pub(crate) fn get(&self, lsn: Lsn) -> Option<&Entry> {
        let index = lsn.0.checked_sub(self.base.lsn.0 + 1)?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    /// The ballot at `lsn`: the base's for the base position, an entry's within the window,
    /// `None` below the base or past the end.
    pub(crate) fn ballot_at(&self, lsn: Lsn) -> Option<Ballot> {
        if lsn == self.base.lsn {
            return Some(self.base.ballot);
        }
        self.get(lsn).map(|entry| entry.ballot)
    }

    /// Up to `max` entries starting at `from` (clamped to the window).
    pub(crate) fn entries_from(&self, from: Lsn, max: usize) -> Vec<Entry> {
        let start = from.max(self.base.lsn.next());
        let Some(skip) = start
            .0
            .checked_sub(self.base.lsn.0 + 1)
            .and_then(|skip| usize::try_from(skip).ok())
        else {
            return Vec::new();
        };
        self.entries.iter().skip(skip).take(max).cloned().collect()
    }

    /// Entries in `from..=through`, clamped to the window.
    pub(crate) fn range(&self, from: Lsn, through: Lsn) -> Vec<Entry> {
        if through < from {
            return Vec::new();
        }
        let count = usize::try_from(through.0 - from.0 + 1).unwrap_or(usize::MAX);
        self.entries_from(from, count)
    }

    pub(crate) fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Appends an entry; it must carry the next LSN.
    pub(crate) fn push(&mut self, entry: Entry) {
        debug_assert_eq!(
            entry.lsn,
            self.last_lsn().next(),
            "log entries are contiguous"
        );
        self.entries.push_back(entry);
    }

    /// Drops every entry above `lsn`.
    pub(crate) fn truncate_after(&mut self, lsn: Lsn) {
        let keep = lsn.0.saturating_sub(self.base.lsn.0);
        self.entries
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    /// Forgets entries at or below `lsn` (which must be committed), moving the base up.
    pub(crate) fn trim_through(&mut self, lsn: Lsn) {
        while let Some(front) = self.entries.front() {
            if front.lsn > lsn {
                break;
            }
            self.base = LogPosition {
                ballot: front.ballot,
                lsn: front.lsn,
            };
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::Operation;

    fn entry(lsn: u64, round: u64) -> Entry {
        Entry {
            lsn: Lsn(lsn),
            ballot: Ballot { round, node: 1 },
            timestamp_ms: 0,
            op: Operation::Noop,
        }
    }

    #[test]
    fn window_answers_positions_relative_to_its_base() {
        let base = LogPosition {
            ballot: Ballot { round: 1, node: 1 },
            lsn: Lsn(10),
        };
        let mut log = LogWindow::new(base, vec![entry(9, 1), entry(11, 2), entry(12, 2)]);
        assert_eq!(log.last_lsn(), Lsn(12));
        assert_eq!(log.ballot_at(Lsn(10)), Some(base.ballot));
        assert_eq!(log.ballot_at(Lsn(9)), None);
        assert_eq!(log.ballot_at(Lsn(13)), None);
        assert_eq!(log.entries_from(Lsn(1), 10).len(), 2);
        assert_eq!(log.range(Lsn(12), Lsn(12)), vec![entry(12, 2)]);
        log.truncate_after(Lsn(11));
        assert_eq!(log.last_lsn(), Lsn(11));
        log.trim_through(Lsn(11));
        assert_eq!(log.base().lsn, Lsn(11));
        assert_eq!(log.last(), log.base());
        log.push(entry(12, 3));
        assert_eq!(log.get(Lsn(12)), Some(&entry(12, 3)));
    }

    #[test]
    fn a_gap_in_recovered_entries_ends_the_window() {
        let log = LogWindow::new(LogPosition::default(), vec![entry(1, 1), entry(3, 1)]);
        assert_eq!(log.last_lsn(), Lsn(1));
    }
}
