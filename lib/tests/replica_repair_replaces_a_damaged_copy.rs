//! Repair of a replica store: `replace_all` swaps a damaged copy's items (a diverged item, an
//! item rotted at rest, keys the good copy does not hold yet) for a good copy's snapshot at an LSN, recomputes the
//! digest from the items, drops the checkpoints and digest points that described the damaged
//! copy, and replaying the log after the snapshot's LSN brings it level with the good copy —
//! digest, items and digest points alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::put;
use ddb::digest::CheckpointPolicy;
use ddb::replica::{FjallReplicaStore, ReplicaStore, full_scan_digest};
use ddb::wal::{Entry, Lsn};

fn entry(lsn: u64) -> Entry {
    put(
        lsn,
        format!("key{:03}", (lsn * 37) % 200).as_bytes(),
        format!("value at {lsn}").as_bytes(),
    )
}

fn apply(store: &FjallReplicaStore, from: u64, through: u64) {
    let entries: Vec<Entry> = (from..=through).map(entry).collect();
    for batch in entries.chunks(50) {
        store.apply_batch(batch).unwrap();
    }
}

fn items(store: &FjallReplicaStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    let snapshot = store.snapshot().unwrap();
    snapshot
        .scan(
            &ddb::replica::KeyRange::all(),
            ddb::replica::Direction::Forward,
        )
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_damaged_copy_replaced_and_replayed_equals_the_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let policy = CheckpointPolicy {
        interval: 64,
        retained: 8,
    };
    let good = FjallReplicaStore::open(&dir.path().join("good"), policy).unwrap();
    let odd = FjallReplicaStore::open(&dir.path().join("odd"), policy).unwrap();
    apply(&good, 1, 300);
    apply(&odd, 1, 300);
    // Both noted the same digests at the same LSNs between their checkpoints.
    let points = good.recent_points();
    assert!(!points.is_empty());
    assert!(
        points
            .iter()
            .all(|p| p.lsn.0 % 16 == 0 && p.lsn.0 % 64 != 0)
    );
    assert_eq!(points, odd.recent_points());

    // The odd copy diverges (digest kept true to its items) and rots (digest not).
    odd.inject_divergence(b"not what the log says").unwrap();
    odd.inject_rot().unwrap();
    assert_ne!(
        odd.applied_state().digest,
        good.applied_state().digest,
        "diverged"
    );
    assert!(!full_scan_digest(&odd, &mut |_, _| {}).unwrap().matches());

    // Repair: the good copy's items at LSN 150 (a snapshot taken earlier: 50 of the odd
    // copy's keys were not written yet), then the odd copy's own log from 151 to where it
    // stood.
    let copy_dir = dir.path().join("copy");
    let copy = FjallReplicaStore::open(&copy_dir, policy).unwrap();
    apply(&copy, 1, 150);
    odd.replace_all(&items(&copy), Lsn(150)).unwrap();
    assert_eq!(odd.applied_lsn(), Lsn(150));
    assert_eq!(items(&odd), items(&copy));
    assert_eq!(odd.applied_state().digest, copy.applied_state().digest);
    assert!(
        odd.checkpoints().unwrap().is_empty(),
        "the damaged copy's checkpoints are gone"
    );
    assert!(odd.recent_points().is_empty());
    apply(&odd, 151, 300);

    assert_eq!(odd.applied_state(), good.applied_state());
    assert_eq!(items(&odd), items(&good));
    assert!(full_scan_digest(&odd, &mut |_, _| {}).unwrap().matches());
    // Digest points noted while replaying agree with the good copy's at the same LSNs.
    let replayed = odd.recent_points();
    assert!(!replayed.is_empty());
    for point in &replayed {
        assert!(points.contains(point), "{:?}", point.lsn);
    }
    // And the repair is durable: reopened, the store stands where it was left.
    drop(odd);
    let reopened = FjallReplicaStore::open(&dir.path().join("odd"), policy).unwrap();
    assert_eq!(reopened.applied_state(), good.applied_state());
}
