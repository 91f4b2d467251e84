//! One conformance suite that every `ReplicaStore` implementation must pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::{delete, entry, put};
use ddb::digest::{CheckpointPolicy, StateDigest, digest_of_items};
use ddb::replica::{
    Direction, FjallReplicaStore, KeyRange, MemoryReplicaStore, ReplicaError, ReplicaStore,
    full_scan_digest,
};
use ddb::wal::{Entry, Lsn, Operation};
use proptest::prelude::*;

/// Makes a fresh, empty store; the returned guard keeps its directory alive.
type Factory = fn(CheckpointPolicy) -> (Box<dyn ReplicaStore>, Option<tempfile::TempDir>);

fn memory(policy: CheckpointPolicy) -> (Box<dyn ReplicaStore>, Option<tempfile::TempDir>) {
    (Box::new(MemoryReplicaStore::new(policy)), None)
}

fn fjall(policy: CheckpointPolicy) -> (Box<dyn ReplicaStore>, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().unwrap();
    let store = FjallReplicaStore::open(dir.path(), policy).unwrap();
    (Box::new(store), Some(dir))
}

fn small_policy() -> CheckpointPolicy {
    CheckpointPolicy {
        interval: 4,
        retained: 3,
    }
}

fn scan_all(store: &dyn ReplicaStore, range: &KeyRange, direction: Direction) -> Vec<Vec<u8>> {
    let snapshot = store.snapshot().unwrap();
    snapshot
        .scan(range, direction)
        .map(|pair| pair.unwrap().0)
        .collect()
}

fn empty_store_has_nothing(make: Factory) {
    let (store, _dir) = make(small_policy());
    let state = store.applied_state();
    assert_eq!(state.applied_lsn, Lsn::ZERO);
    assert!(state.digest.is_empty());
    assert_eq!(store.get(b"k").unwrap(), None);
    assert!(store.checkpoints().unwrap().is_empty());
    assert!(scan_all(&*store, &KeyRange::all(), Direction::Forward).is_empty());
}

fn put_overwrite_delete_are_visible(make: Factory) {
    let (store, _dir) = make(small_policy());
    store.apply(&put(1, b"a", b"1")).unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    store.apply(&put(2, b"a", b"2")).unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"2".to_vec()));
    store.apply(&delete(3, b"a")).unwrap();
    assert_eq!(store.get(b"a").unwrap(), None);
    // Deleting what is not there and a no-op still advance the applied LSN.
    store.apply(&delete(4, b"missing")).unwrap();
    store.apply(&entry(5, Operation::Noop)).unwrap();
    store
        .apply(&entry(6, Operation::Config(b"members".to_vec())))
        .unwrap();
    let state = store.applied_state();
    assert_eq!(state.applied_lsn, Lsn(6));
    assert!(state.digest.is_empty(), "every item was deleted again");
}

fn out_of_order_entries_change_nothing(make: Factory) {
    let (store, _dir) = make(small_policy());
    store.apply(&put(1, b"a", b"1")).unwrap();
    let before = store.applied_state();
    for bad in [vec![put(3, b"b", b"x")], vec![put(1, b"b", b"x")]] {
        match store.apply_batch(&bad) {
            Err(ReplicaError::OutOfOrder { expected, got }) => {
                assert_eq!(expected, Lsn(2));
                assert_eq!(got, bad[0].lsn);
            }
            other => panic!("expected OutOfOrder, got {other:?}"),
        }
    }
    // A batch with a gap inside is refused whole.
    assert!(matches!(
        store.apply_batch(&[put(2, b"b", b"x"), put(4, b"c", b"y")]),
        Err(ReplicaError::OutOfOrder { .. })
    ));
    assert_eq!(store.applied_state(), before);
    assert_eq!(store.get(b"b").unwrap(), None);
}

fn a_batch_touching_one_key_twice_ends_in_its_last_write(make: Factory) {
    let (store, _dir) = make(small_policy());
    store
        .apply_batch(&[
            put(1, b"k", b"first"),
            put(2, b"k", b"second"),
            delete(3, b"k"),
            put(4, b"k", b"third"),
            put(5, b"gone", b"x"),
            delete(6, b"gone"),
        ])
        .unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"third".to_vec()));
    assert_eq!(store.get(b"gone").unwrap(), None);
    assert_eq!(
        store.applied_state().digest,
        digest_of_items([(b"k".to_vec(), b"third".to_vec())])
    );
}

fn scans_follow_key_order_both_ways(make: Factory) {
    let (store, _dir) = make(small_policy());
    let keys: Vec<&[u8]> = vec![b"a", b"ab", b"b", b"ba", b"c", &[0xff, 0x01]];
    let entries: Vec<Entry> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| put(i as u64 + 1, k, b"v"))
        .collect();
    store.apply_batch(&entries).unwrap();
    let forward = scan_all(&*store, &KeyRange::all(), Direction::Forward);
    let mut sorted: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    sorted.sort();
    assert_eq!(forward, sorted);
    let mut backward = scan_all(&*store, &KeyRange::all(), Direction::Backward);
    backward.reverse();
    assert_eq!(backward, sorted);
    assert_eq!(
        scan_all(&*store, &KeyRange::prefix(b"a"), Direction::Forward),
        vec![b"a".to_vec(), b"ab".to_vec()]
    );
    assert_eq!(
        scan_all(&*store, &KeyRange::prefix(b"b"), Direction::Backward),
        vec![b"ba".to_vec(), b"b".to_vec()]
    );
    let exclusive = KeyRange {
        start: Bound::Excluded(b"a".to_vec()),
        end: Bound::Included(b"b".to_vec()),
    };
    assert_eq!(
        scan_all(&*store, &exclusive, Direction::Forward),
        vec![b"ab".to_vec(), b"b".to_vec()]
    );
    assert!(scan_all(&*store, &KeyRange::between(b"c", b"a"), Direction::Forward).is_empty());
    assert!(scan_all(&*store, &KeyRange::between(b"b", b"b"), Direction::Backward).is_empty());
}

fn snapshots_do_not_see_later_applies(make: Factory) {
    let (store, _dir) = make(small_policy());
    store.apply(&put(1, b"a", b"1")).unwrap();
    let snapshot = store.snapshot().unwrap();
    let at_snapshot = snapshot.applied_state().clone();
    store.apply(&put(2, b"a", b"2")).unwrap();
    store.apply(&put(3, b"b", b"3")).unwrap();
    assert_eq!(at_snapshot.applied_lsn, Lsn(1));
    assert_eq!(snapshot.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(snapshot.get(b"b").unwrap(), None);
    let items: Vec<_> = snapshot
        .scan(&KeyRange::all(), Direction::Forward)
        .map(Result::unwrap)
        .collect();
    assert_eq!(items, vec![(b"a".to_vec(), b"1".to_vec())]);
    assert_eq!(at_snapshot.digest, digest_of_items(items));
    assert_eq!(store.applied_lsn(), Lsn(3));
}

fn checkpoints_land_on_interval_multiples_and_age_out(make: Factory) {
    let policy = small_policy();
    let (store, _dir) = make(policy);
    let mut model = BTreeMap::new();
    let mut expected = Vec::new();
    let mut entries = Vec::new();
    for lsn in 1..=21u64 {
        let key = format!("k{}", lsn % 5).into_bytes();
        let value = format!("v{lsn}").into_bytes();
        entries.push(put(lsn, &key, &value));
        model.insert(key, value);
        if lsn % policy.interval == 0 {
            expected.push((Lsn(lsn), digest_of_items(&model)));
        }
    }
    // Batches of 3 against an interval of 4: checkpoints fall inside batches too.
    for chunk in entries.chunks(3) {
        store.apply_batch(chunk).unwrap();
    }
    let kept: Vec<_> = expected[expected.len() - policy.retained..].to_vec();
    let got: Vec<_> = store
        .checkpoints()
        .unwrap()
        .into_iter()
        .map(|c| (c.lsn, c.digest))
        .collect();
    assert_eq!(got, kept);
}

fn full_scan_matches_incremental_digest(make: Factory) {
    let (store, _dir) = make(small_policy());
    let entries: Vec<Entry> = (1..=200u64)
        .map(|lsn| match lsn % 7 {
            0 => delete(lsn, format!("key{}", lsn % 31).as_bytes()),
            _ => put(
                lsn,
                format!("key{}", lsn % 31).as_bytes(),
                &vec![lsn as u8; (lsn % 50) as usize],
            ),
        })
        .collect();
    for chunk in entries.chunks(13) {
        store.apply_batch(chunk).unwrap();
    }
    let mut progress_calls = 0;
    let report = full_scan_digest(&*store, &mut |_, _| progress_calls += 1).unwrap();
    assert!(report.matches());
    assert_eq!(report.applied_lsn, Lsn(200));
    assert_eq!(report.incremental, store.applied_state().digest);
    assert_eq!(
        report.items as usize,
        scan_all(&*store, &KeyRange::all(), Direction::Forward).len()
    );
    assert!(progress_calls >= 1);
}

/// A replica rebuilt from pages of a peer's snapshot taken at different LSNs, plus the log from
/// the oldest of them, ends equal to the peer: same items, same digest.
fn a_store_rebuilt_from_a_fuzzy_snapshot_and_the_log_converges(make: Factory) {
    let entries: Vec<Entry> = (1..=200u64)
        .map(|lsn| match lsn % 5 {
            0 => delete(lsn, format!("key{:02}", lsn % 31).as_bytes()),
            _ => put(
                lsn,
                format!("key{:02}", lsn % 31).as_bytes(),
                &[lsn as u8; 9],
            ),
        })
        .collect();
    let (source, _source_dir) = make(small_policy());
    let page = |store: &dyn ReplicaStore, low: bool| -> Vec<(Vec<u8>, Vec<u8>)> {
        let snapshot = store.snapshot().unwrap();
        snapshot
            .scan(&KeyRange::all(), Direction::Forward)
            .map(Result::unwrap)
            .filter(|(key, _)| (key.as_slice() < b"key15".as_slice()) == low)
            .collect()
    };
    source.apply_batch(&entries[..100]).unwrap();
    let first = page(&*source, true);
    source.apply_batch(&entries[100..150]).unwrap();
    let second = page(&*source, false);
    source.apply_batch(&entries[150..]).unwrap();

    let (rebuilt, _rebuilt_dir) = make(small_policy());
    rebuilt.install_items(&first, None).unwrap();
    rebuilt.install_items(&second, Some(Lsn(100))).unwrap();
    assert_eq!(rebuilt.applied_lsn(), Lsn(100));
    rebuilt.apply_batch(&entries[100..]).unwrap();
    assert_eq!(rebuilt.applied_state(), source.applied_state());
    assert_eq!(
        scan_all(&*rebuilt, &KeyRange::all(), Direction::Forward),
        scan_all(&*source, &KeyRange::all(), Direction::Forward)
    );
    let report = full_scan_digest(&*rebuilt, &mut |_, _| {}).unwrap();
    assert!(report.matches());
    assert!(matches!(
        rebuilt.install_items(&first, None),
        Err(ReplicaError::NotRebuilding { .. })
    ));
}

macro_rules! conformance {
    ($module:ident, $factory:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn empty_store_has_nothing() {
                super::empty_store_has_nothing($factory);
            }
            #[test]
            fn put_overwrite_delete_are_visible() {
                super::put_overwrite_delete_are_visible($factory);
            }
            #[test]
            fn out_of_order_entries_change_nothing() {
                super::out_of_order_entries_change_nothing($factory);
            }
            #[test]
            fn a_batch_touching_one_key_twice_ends_in_its_last_write() {
                super::a_batch_touching_one_key_twice_ends_in_its_last_write($factory);
            }
            #[test]
            fn scans_follow_key_order_both_ways() {
                super::scans_follow_key_order_both_ways($factory);
            }
            #[test]
            fn snapshots_do_not_see_later_applies() {
                super::snapshots_do_not_see_later_applies($factory);
            }
            #[test]
            fn checkpoints_land_on_interval_multiples_and_age_out() {
                super::checkpoints_land_on_interval_multiples_and_age_out($factory);
            }
            #[test]
            fn full_scan_matches_incremental_digest() {
                super::full_scan_matches_incremental_digest($factory);
            }
            #[test]
            fn a_store_rebuilt_from_a_fuzzy_snapshot_and_the_log_converges() {
                super::a_store_rebuilt_from_a_fuzzy_snapshot_and_the_log_converges($factory);
            }
        }
    };
}

conformance!(memory_store, memory);
conformance!(fjall_store, fjall);

/// A random workload: keys from a small space so that overwrites and deletes of present keys
/// are common; values of varied length.
fn workload() -> impl Strategy<Value = Vec<(u8, Option<Vec<u8>>)>> {
    prop::collection::vec(
        (
            0u8..24,
            prop::option::weighted(0.75, prop::collection::vec(any::<u8>(), 0..40)),
        ),
        1..120,
    )
}

fn entries_of(ops: &[(u8, Option<Vec<u8>>)]) -> Vec<Entry> {
    ops.iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let lsn = i as u64 + 1;
            let key = [b'k', *k];
            match v {
                Some(item) => put(lsn, &key, item),
                None => delete(lsn, &key),
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// After any put/overwrite/delete workload, both stores hold the model's items, their
    /// incremental digests equal a full recompute, and they agree with each other at every
    /// checkpoint.
    #[test]
    fn incremental_digest_equals_full_recompute(ops in workload(), batch in 1usize..9) {
        let entries = entries_of(&ops);
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for e in &entries {
            match &e.op {
                Operation::Put { key, item } => { model.insert(key.clone(), item.clone()); }
                Operation::Delete { key } => { model.remove(key); }
                _ => {}
            }
        }
        let mut checkpoints = Vec::new();
        for make in [memory as Factory, fjall as Factory] {
            let (store, _dir) = make(small_policy());
            for chunk in entries.chunks(batch) {
                store.apply_batch(chunk).unwrap();
            }
            let snapshot = store.snapshot().unwrap();
            let held: BTreeMap<Vec<u8>, Vec<u8>> = snapshot
                .scan(&KeyRange::all(), Direction::Forward)
                .map(Result::unwrap)
                .collect();
            prop_assert_eq!(&held, &model);
            let report = full_scan_digest(&*store, &mut |_, _| {}).unwrap();
            prop_assert!(report.matches());
            prop_assert_eq!(&report.full, &digest_of_items(&model));
            checkpoints.push(store.checkpoints().unwrap());
        }
        prop_assert_eq!(&checkpoints[0], &checkpoints[1]);
    }
}

#[test]
fn empty_digest_is_all_zero_lanes() {
    assert!(StateDigest::empty().lanes().iter().all(|l| *l == 0));
}
