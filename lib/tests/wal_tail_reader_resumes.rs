//! A tail reader (the archiver's) bounded by a commit LSN stops right after it, and resumes
//! from where it stopped — across segment rotations and while the writer keeps appending —
//! yielding every entry exactly once, in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod wal_common;

use ddb::wal::{Lsn, Wal, WalOptions, read_entries, resume_entries};

#[test]
fn a_bounded_tail_read_resumes_after_its_last_entry_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        WalOptions {
            // Small segments: the reads below cross several rotations.
            segment_max_bytes: 2048,
            ..WalOptions::default()
        },
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut resume = None;
    let mut appended = 0u64;
    for round in 1..=40u64 {
        let batch: Vec<_> = (appended + 1..=appended + round % 7 + 1)
            .map(wal_common::entry)
            .collect();
        appended += batch.len() as u64;
        wal.append_batch(batch).unwrap();
        // The "committed" bound trails the log, as an applied LSN does.
        let bound = Lsn(appended.saturating_sub(round % 3));
        let mut entries = match &resume {
            None => read_entries(dir.path(), Lsn(1)).unwrap(),
            Some(point) => resume_entries(dir.path(), point).unwrap(),
        }
        .stop_after(bound);
        let budget = (round % 4) as usize + 1;
        for (index, entry) in entries.by_ref().enumerate() {
            let entry = entry.unwrap();
            assert!(entry.lsn <= bound, "read past the bound: {}", entry.lsn);
            seen.push(entry);
            if round % 5 == 0 && index + 1 == budget {
                // A reader that stops early resumes right after its last entry too.
                break;
            }
        }
        let point = entries
            .resume_point()
            .expect("an ended read has a resume point");
        assert_eq!(point.next_lsn(), Lsn(seen.len() as u64 + 1));
        resume = Some(point);
    }
    let expected: Vec<_> = (1..=seen.len() as u64).map(wal_common::entry).collect();
    assert_eq!(seen, expected);
    assert!(
        seen.len() as u64 + 20 >= appended,
        "{} of {appended}",
        seen.len()
    );
}
