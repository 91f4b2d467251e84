//! Property: any sequence of appends, reopens, truncations and retention keeps the log equal to a
//! model `Vec<Entry>`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod wal_common;

use ddb::wal::{Entry, Lsn, Wal};
use proptest::prelude::*;
use wal_common::{entry, preallocating, read_all, small_segments};

#[derive(Clone, Debug)]
enum Op {
    /// Append this many entries in one batch.
    Append(u64),
    /// Close and reopen the log.
    Reopen,
    /// Drop this many entries from the end (clamped to what is retained).
    TruncateBack(u64),
    /// Delete sealed segments below (last LSN - this many).
    DeleteBelowBack(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..6).prop_map(Op::Append),
        1 => Just(Op::Reopen),
        2 => (0u64..8).prop_map(Op::TruncateBack),
        1 => (0u64..20).prop_map(Op::DeleteBelowBack),
    ]
}

/// A variant of the shared test entry that depends on a generation, so that a truncated and
/// re-appended LSN holds a different entry.
fn versioned(lsn: u64, generation: u64) -> Entry {
    let mut e = entry(lsn);
    e.ballot.round += generation * 1000;
    e
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(
        ops in proptest::collection::vec(op(), 1..14),
        preallocate_bytes in prop_oneof![Just(0u64), Just(64), Just(1024 * 1024)],
    ) {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let options = preallocating(small_segments(350), preallocate_bytes);
        let mut wal = Wal::open(dir.path(), options.clone()).unwrap();
        // model[i] holds LSN first + i.
        let mut model: Vec<Entry> = Vec::new();
        let mut first = 1u64;
        for (generation, op) in ops.into_iter().enumerate() {
            let next = first + model.len() as u64;
            match op {
                Op::Append(n) => {
                    let batch: Vec<Entry> = (next..next + n).map(|l| versioned(l, generation as u64)).collect();
                    wal.append_batch(batch.clone()).unwrap();
                    model.extend(batch);
                }
                Op::Reopen => {
                    drop(wal);
                    wal = Wal::open(dir.path(), options.clone()).unwrap();
                    prop_assert!(wal.recovery_report().cut.is_none());
                    let inspection = ddb::wal::inspect(dir.path()).unwrap();
                    let (active, sealed) = inspection.segments.split_last().unwrap();
                    prop_assert!(sealed.iter().all(|s| s.preallocated_bytes == 0));
                    prop_assert_eq!(
                        wal.recovery_report().preallocated_bytes,
                        active.preallocated_bytes
                    );
                }
                Op::TruncateBack(k) => {
                    let k = k.min(model.len() as u64);
                    wal.truncate_after(Lsn(next - 1 - k)).unwrap();
                    model.truncate(model.len() - k as usize);
                }
                Op::DeleteBelowBack(k) => {
                    let watermark = Lsn((next - 1).saturating_sub(k));
                    wal.delete_below(watermark).unwrap();
                    let new_first = wal.first_lsn().unwrap().0;
                    prop_assert!(new_first >= first && new_first <= watermark.0.max(first) + 1);
                    model.drain(..(new_first - first) as usize);
                    first = new_first;
                }
            }
            prop_assert_eq!(wal.first_lsn().unwrap(), Lsn(first));
            prop_assert_eq!(wal.last_lsn().unwrap(), Lsn(first + model.len() as u64 - 1));
            prop_assert_eq!(&read_all(&wal), &model);
        }
    }
}
