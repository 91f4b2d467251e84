//! A sparse LSN → offset index of the writer's retained segments, so that reading from an LSN
//! seeks near its record instead of reading its segment from the start.
//!
//! Records are variable-length and a segment holds up to `segment_max_bytes` of them (64 MiB by
//! default: ~300k records of 200 bytes), so finding an LSN by scanning costs up to a whole
//! segment per read. Followers that lag are sent their missing entries a batch at a time, each
//! batch a read from an LSN; replay after a restart and a split's log copy read from an LSN too.
//!
//! The index holds one point per segment start and then one at the first record of a written
//! batch whenever the previous point of that segment is at least
//! [`crate::wal::WalOptions::index_every_bytes`] behind: a read from any LSN starts at most that
//! many bytes (plus one batch) before its record. Recovery builds the points while it checks
//! every segment; the writer adds them as it flushes; truncation and retirement drop theirs. It
//! lives in memory only (a 64 MiB segment needs ~1,000 points at the default 64 KiB).

use std::collections::BTreeMap;

use super::Lsn;
use super::frame::HEADER_LEN;

/// Where a reader starts: the segment, and a record boundary at or before the LSN sought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeekPoint {
    /// First LSN of the segment holding the point.
    pub segment_first: Lsn,
    /// LSN of the record that starts at `offset`.
    pub lsn: Lsn,
    /// Byte offset of that record in the segment.
    pub offset: u64,
}

impl SeekPoint {
    /// The first record of the segment starting at `first` (right after its header).
    pub fn segment_start(first: Lsn) -> Self {
        SeekPoint {
            segment_first: first,
            lsn: first,
            offset: HEADER_LEN as u64,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct SparseIndex {
    /// Record LSN → (segment first LSN, byte offset of the record).
    points: BTreeMap<Lsn, (Lsn, u64)>,
    /// Minimum distance in bytes between two points of one segment.
    every_bytes: u64,
}

impl SparseIndex {
    pub fn new(every_bytes: u64) -> Self {
        SparseIndex {
            points: BTreeMap::new(),
            every_bytes,
        }
    }

    /// Notes that the record of `lsn` starts at `offset` of the segment starting at
    /// `segment_first`; kept if it is a segment's first point or far enough from the last one.
    /// Points must be noted in LSN order.
    pub fn note(&mut self, segment_first: Lsn, lsn: Lsn, offset: u64) {
        let far_enough = match self.points.last_key_value() {
            Some((last, (segment, last_offset))) => {
                *last < lsn
                    && (*segment != segment_first
                        || offset.saturating_sub(*last_offset) >= self.every_bytes)
            }
            None => true,
        };
        if far_enough {
            self.points.insert(lsn, (segment_first, offset));
        }
    }

    /// The nearest point at or before `lsn`, if any.
    pub fn seek(&self, lsn: Lsn) -> Option<SeekPoint> {
        self.points
            .range(..=lsn)
            .next_back()
            .map(|(point, (segment_first, offset))| SeekPoint {
                segment_first: *segment_first,
                lsn: *point,
                offset: *offset,
            })
    }

    /// Forgets every point above `lsn` (the log was cut after it).
    pub fn cut_after(&mut self, lsn: Lsn) {
        self.points.split_off(&lsn.next());
    }

    /// Forgets every point below `lsn` (the segments holding them were deleted).
    pub fn retire_below(&mut self, lsn: Lsn) {
        self.points = self.points.split_off(&lsn);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.points.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_spaced_per_segment_and_seek_finds_the_nearest_before() {
        let mut index = SparseIndex::new(100);
        index.note(Lsn(1), Lsn(1), 16);
        index.note(Lsn(1), Lsn(2), 60); // too close to the last point
        index.note(Lsn(1), Lsn(5), 116);
        index.note(Lsn(9), Lsn(9), 16); // a new segment always gets a point
        index.note(Lsn(9), Lsn(9), 16); // not twice
        assert_eq!(index.len(), 3);
        assert_eq!(index.seek(Lsn(0)), None);
        let at = |segment_first, lsn, offset| {
            Some(SeekPoint {
                segment_first: Lsn(segment_first),
                lsn: Lsn(lsn),
                offset,
            })
        };
        assert_eq!(index.seek(Lsn(4)), at(1, 1, 16));
        assert_eq!(index.seek(Lsn(5)), at(1, 5, 116));
        assert_eq!(index.seek(Lsn(8)), at(1, 5, 116));
        assert_eq!(index.seek(Lsn(100)), at(9, 9, 16));

        index.cut_after(Lsn(8));
        assert_eq!(index.seek(Lsn(100)), at(1, 5, 116));
        index.retire_below(Lsn(5));
        assert_eq!(index.seek(Lsn(4)), None);
        assert_eq!(index.seek(Lsn(6)), at(1, 5, 116));
    }
}
