//! Restore and deep verify on `file://` archives built from a real history: entries applied to
//! a replica store give the digests chunk footers and snapshots carry, so every restore can be
//! compared with the state the partition really had.

use std::path::PathBuf;

use bytes::Bytes;

use super::*;
use crate::catalog::{
    Billing, Catalog, KeyAttribute, KeySchema, PartitionDef, ScalarType, TableDef, TableStatus,
};
use crate::digest::{CheckpointPolicy, StateDigest};
use crate::replica::{Direction, KeyRange, MemoryReplicaStore, ReplicaStore};
use crate::wal::{Ballot, Entry, Lsn, Operation};

const TABLE: u64 = 4;
const PARTITION: u64 = 11;
const LAST: u64 = 40;
const START_MS: u64 = 1_790_000_000_000;

/// A partition's history: its entries and the state after each.
struct History {
    entries: Vec<Entry>,
}

impl History {
    /// Entries 1..=LAST over seven keys: puts, deletes and a no-op, ten milliseconds apart.
    fn new() -> Self {
        let entries = (1..=LAST)
            .map(|lsn| Entry {
                lsn: Lsn(lsn),
                ballot: Ballot { round: 1, node: 2 },
                timestamp_ms: START_MS + lsn * 10,
                op: match lsn % 6 {
                    0 => Operation::Delete {
                        key: format!("k{}", (lsn / 2) % 7).into_bytes(),
                    },
                    3 => Operation::Noop,
                    _ => Operation::Put {
                        key: format!("k{}", lsn % 7).into_bytes(),
                        item: format!("value written at {lsn}").into_bytes(),
                    },
                },
            })
            .collect();
        History { entries }
    }

    fn entries(&self, first: u64, last: u64) -> &[Entry] {
        &self.entries[(first - 1) as usize..last as usize]
    }

    /// The store after applying entries 1..=lsn.
    fn state_at(&self, lsn: u64) -> MemoryReplicaStore {
        let store = MemoryReplicaStore::new(CheckpointPolicy::default());
        if lsn > 0 {
            store.apply_batch(self.entries(1, lsn)).unwrap();
        }
        store
    }

    fn digest_at(&self, lsn: u64) -> StateDigest {
        self.state_at(lsn).applied_state().digest
    }

    fn chunk(&self, first: u64, last: u64) -> Bytes {
        let bytes = encode_chunk(self.entries(first, last), &self.digest_at(last)).unwrap();
        Bytes::from(bytes)
    }

    fn snapshot(&self, lsn: u64) -> Bytes {
        let timestamp_ms = self.entries[(lsn - 1) as usize].timestamp_ms;
        let (bytes, digest) = snapshot_of(&self.state_at(lsn), Lsn(lsn), timestamp_ms);
        assert_eq!(digest, self.digest_at(lsn));
        bytes
    }
}

/// A snapshot of everything `store` holds, sealed as the state at `lsn`.
fn snapshot_of(store: &MemoryReplicaStore, lsn: Lsn, timestamp_ms: u64) -> (Bytes, StateDigest) {
    let view = store.snapshot().unwrap();
    let mut writer = SnapshotWriter::new();
    for pair in view.scan(&KeyRange::all(), Direction::Forward) {
        let (key, item) = pair.unwrap();
        writer.push(&key, &item).unwrap();
    }
    let (bytes, digest) = writer.finish(lsn, timestamp_ms).unwrap();
    (Bytes::from(bytes), digest)
}

fn chunk_name(first: u64, last: u64) -> WalChunkName {
    WalChunkName {
        table_id: TABLE,
        partition_id: PARTITION,
        first: Lsn(first),
        last: Lsn(last),
    }
}

fn snapshot_name(lsn: u64) -> SnapshotName {
    SnapshotName {
        table_id: TABLE,
        partition_id: PARTITION,
        lsn: Lsn(lsn),
    }
}

/// A `file://` archive in a fresh temporary directory.
struct TestArchive {
    archive: Archive,
    dir: tempfile::TempDir,
    history: History,
}

impl TestArchive {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = ArchiveUrl::parse(&format!("file://{}", dir.path().display())).unwrap();
        TestArchive {
            archive: url.open_archive(|_| None).unwrap(),
            dir,
            history: History::new(),
        }
    }

    async fn chunks(&self, ranges: &[(u64, u64)]) {
        for (first, last) in ranges {
            let bytes = self.history.chunk(*first, *last);
            upload_chunk(&self.archive, &chunk_name(*first, *last), bytes)
                .await
                .unwrap();
        }
    }

    async fn snapshots(&self, lsns: &[u64]) {
        for lsn in lsns {
            let bytes = self.history.snapshot(*lsn);
            upload_snapshot(&self.archive, &snapshot_name(*lsn), bytes)
                .await
                .unwrap();
        }
    }

    /// Flips bits of one byte of an object's file, behind the object store's back.
    fn damage(&self, key: &str, at: usize, flip: u8) {
        let file: PathBuf = self.dir.path().join(key);
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[at] ^= flip;
        std::fs::write(&file, bytes).unwrap();
    }

    async fn verify(&self) -> VerifyReport {
        verify_partition(&self.archive, TABLE, PARTITION)
            .await
            .unwrap()
    }

    async fn deep_verify(&self) -> VerifyReport {
        deep_verify_partition(&self.archive, TABLE, PARTITION)
            .await
            .unwrap()
    }

    /// Restores into a fresh store and checks the report against the store.
    async fn restore(&self, target: RestoreTarget) -> Result<RestoreReport, RestoreError> {
        self.restore_into(
            &MemoryReplicaStore::new(CheckpointPolicy::default()),
            target,
        )
        .await
    }

    async fn restore_into(
        &self,
        store: &MemoryReplicaStore,
        target: RestoreTarget,
    ) -> Result<RestoreReport, RestoreError> {
        let mut seen = Vec::new();
        let report = restore_partition(
            &self.archive,
            TABLE,
            PARTITION,
            target,
            store,
            &mut |progress| seen.push(progress),
        )
        .await?;
        assert_eq!(store.applied_state().digest, report.digest);
        assert_eq!(store.applied_lsn(), report.final_lsn);
        if let Some(last) = seen.last() {
            assert_eq!(last.entries_applied, report.entries_applied);
        }
        Ok(report)
    }
}

const CHUNKS: [(u64, u64); 4] = [(1, 10), (11, 20), (21, 30), (31, 40)];

#[tokio::test]
async fn restore_to_the_latest_lsn_equals_the_partition_state() {
    let test = TestArchive::new();
    test.chunks(&CHUNKS).await;
    test.snapshots(&[10, 25]).await;
    let report = test.restore(RestoreTarget::Latest).await.unwrap();
    assert_eq!(report.final_lsn, Lsn(LAST));
    assert_eq!(report.digest, test.history.digest_at(LAST));
    assert_eq!(report.snapshot, Some(snapshot_name(25)));
    assert_eq!(report.entries_applied, 15);
    assert_eq!(report.verified_lsn, Lsn(LAST));
    assert_eq!(report.final_timestamp_ms, Some(START_MS + LAST * 10));
    // The snapshot and the two chunks after it; the chunks before it are not read.
    assert_eq!(report.objects_read, 3);
}

#[tokio::test]
async fn restore_to_an_lsn_starts_from_the_newest_snapshot_at_or_below_it() {
    let test = TestArchive::new();
    test.chunks(&CHUNKS).await;
    test.snapshots(&[10, 25]).await;

    let report = test.restore(RestoreTarget::Lsn(Lsn(22))).await.unwrap();
    assert_eq!(report.snapshot, Some(snapshot_name(10)));
    assert_eq!((report.final_lsn, report.entries_applied), (Lsn(22), 12));
    assert_eq!(report.digest, test.history.digest_at(22));
    assert_eq!(report.verified_lsn, Lsn(20), "the last chunk end passed");

    let at_snapshot = test.restore(RestoreTarget::Lsn(Lsn(25))).await.unwrap();
    assert_eq!(at_snapshot.snapshot, Some(snapshot_name(25)));
    assert_eq!(at_snapshot.entries_applied, 0);
    assert_eq!(at_snapshot.digest, test.history.digest_at(25));

    let before_any = test.restore(RestoreTarget::Lsn(Lsn(7))).await.unwrap();
    assert_eq!(before_any.snapshot, None);
    assert_eq!(before_any.digest, test.history.digest_at(7));

    let error = test.restore(RestoreTarget::Lsn(Lsn(41))).await.unwrap_err();
    assert!(
        matches!(
            error,
            RestoreError::BeyondArchive {
                target: Lsn(41),
                archived: Lsn(40)
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn restore_to_a_time_stops_before_the_first_later_entry() {
    let test = TestArchive::new();
    test.chunks(&CHUNKS).await;
    test.snapshots(&[10, 25]).await;

    let report = test
        .restore(RestoreTarget::Time(START_MS + 33 * 10 + 5))
        .await
        .unwrap();
    assert_eq!(report.final_lsn, Lsn(33));
    assert_eq!(report.digest, test.history.digest_at(33));
    assert_eq!(report.snapshot, Some(snapshot_name(25)));
    assert_eq!(report.final_timestamp_ms, Some(START_MS + 330));

    // Before snapshot 25 was taken: snapshot 10 is the newest usable one.
    let earlier = test
        .restore(RestoreTarget::Time(START_MS + 24 * 10))
        .await
        .unwrap();
    assert_eq!(earlier.snapshot, Some(snapshot_name(10)));
    assert_eq!(earlier.final_lsn, Lsn(24));
    assert_eq!(earlier.digest, test.history.digest_at(24));

    let before_everything = test.restore(RestoreTarget::Time(START_MS)).await.unwrap();
    assert_eq!(before_everything.final_lsn, Lsn::ZERO);
    assert!(before_everything.digest.is_empty());

    let after_everything = test.restore(RestoreTarget::Time(u64::MAX)).await.unwrap();
    assert_eq!(after_everything.final_lsn, Lsn(LAST));
}

#[tokio::test]
async fn overlapping_chunks_that_agree_restore_and_verify() {
    let test = TestArchive::new();
    // Two archivers' boundaries over the same entries.
    test.chunks(&[(1, 15), (1, 10), (11, 30), (16, 40), (31, 40), (33, 35)])
        .await;
    let report = test.restore(RestoreTarget::Latest).await.unwrap();
    assert_eq!(report.digest, test.history.digest_at(LAST));
    assert_eq!(report.objects_read, 6);

    let verify = test.deep_verify().await;
    assert!(verify.is_sound(), "{:?}", verify.problems);
    assert_eq!(verify.last_verified_lsn, Lsn(LAST));
    assert_eq!(verify.replayed_through, Some(Lsn(LAST)));
}

#[tokio::test]
async fn overlapping_chunks_that_disagree_are_split_brain() {
    let test = TestArchive::new();
    test.chunks(&[(1, 20), (31, 40)]).await;
    // Another leader's history from LSN 18: the same LSNs with other operations.
    let mut other: Vec<Entry> = test.history.entries(11, 30).to_vec();
    for entry in other.iter_mut().filter(|entry| entry.lsn >= Lsn(18)) {
        entry.op = Operation::Noop;
    }
    let bytes = encode_chunk(&other, &StateDigest::empty()).unwrap();
    upload_chunk(&test.archive, &chunk_name(11, 30), Bytes::from(bytes))
        .await
        .unwrap();

    let verify = test.verify().await;
    assert_eq!(
        verify.problems,
        vec![Problem::SplitBrain {
            object: chunk_name(11, 30).key(),
            other: chunk_name(1, 20).key(),
            lsn: Lsn(18),
        }]
    );
    assert_eq!(verify.last_verified_lsn, Lsn(17));

    let error = test.restore(RestoreTarget::Latest).await.unwrap_err();
    assert!(
        matches!(&error, RestoreError::SplitBrain { object, lsn: Lsn(18), .. } if *object == chunk_name(11, 30).key()),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_chunk_is_a_gap_naming_its_neighbours() {
    let test = TestArchive::new();
    test.chunks(&[(1, 10), (21, 30), (31, 40)]).await;
    let verify = test.verify().await;
    assert_eq!(
        verify.problems,
        vec![Problem::Gap {
            before: chunk_name(1, 10).key(),
            after: chunk_name(21, 30).key(),
            missing_from: Lsn(11),
            missing_to: Lsn(20),
        }]
    );

    let error = test.restore(RestoreTarget::Latest).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(
            error,
            RestoreError::Gap {
                from: Lsn(11),
                to: Lsn(20),
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains(&chunk_name(21, 30).key()), "{text}");
    let by_time = test
        .restore(RestoreTarget::Time(u64::MAX))
        .await
        .unwrap_err();
    assert!(
        matches!(&by_time, RestoreError::Gap { from: Lsn(11), to: Lsn(20), after: Some(after), .. } if *after == chunk_name(21, 30).key()),
        "{by_time}"
    );
    // Short of the gap the archive still restores.
    let early = test.restore(RestoreTarget::Lsn(Lsn(9))).await.unwrap();
    assert_eq!(early.digest, test.history.digest_at(9));

    // A snapshot after the gap makes the LSNs before it unnecessary.
    test.snapshots(&[20]).await;
    let verify = test.verify().await;
    assert!(verify.is_sound(), "{:?}", verify.problems);
    let report = test.restore(RestoreTarget::Latest).await.unwrap();
    assert_eq!(report.digest, test.history.digest_at(LAST));
}

#[tokio::test]
async fn a_corrupted_chunk_is_named() {
    let test = TestArchive::new();
    test.chunks(&CHUNKS).await;
    test.damage(&chunk_name(21, 30).key(), 3, 0x10);

    let verify = test.verify().await;
    assert_eq!(
        verify.problems,
        vec![Problem::Corrupt {
            object: chunk_name(21, 30).key(),
            error: ChunkError::Seal(SealError::BodyHashMismatch),
        }]
    );
    assert_eq!(verify.last_verified_lsn, Lsn(20));

    let error = test.restore(RestoreTarget::Latest).await.unwrap_err();
    assert!(
        error.to_string().contains(&chunk_name(21, 30).key()),
        "{error}"
    );
}

#[tokio::test]
async fn deep_verify_and_restore_catch_a_footer_digest_that_is_not_the_state() {
    let test = TestArchive::new();
    test.chunks(&[(1, 10), (21, 30), (31, 40)]).await;
    // Entries 11..=20 with the digest of LSN 19: every check of the object itself passes.
    let wrong = encode_chunk(test.history.entries(11, 20), &test.history.digest_at(19)).unwrap();
    upload_chunk(&test.archive, &chunk_name(11, 20), Bytes::from(wrong))
        .await
        .unwrap();

    let shallow = test.verify().await;
    assert!(shallow.is_sound(), "{:?}", shallow.problems);

    let deep = test.deep_verify().await;
    assert_eq!(deep.problems.len(), 1, "{:?}", deep.problems);
    let Problem::DigestMismatch {
        object,
        lsn,
        archived,
        replayed,
    } = &deep.problems[0]
    else {
        panic!("{:?}", deep.problems);
    };
    assert_eq!((object, *lsn), (&chunk_name(11, 20).key(), Lsn(20)));
    assert_eq!(archived, &test.history.digest_at(19).fingerprint());
    assert_eq!(replayed, &test.history.digest_at(20).fingerprint());
    assert_eq!(deep.last_verified_lsn, Lsn(10));

    let error = test.restore(RestoreTarget::Latest).await.unwrap_err();
    assert!(
        matches!(&error, RestoreError::DigestMismatch { object, .. } if *object == chunk_name(11, 20).key()),
        "{error}"
    );
}

#[tokio::test]
async fn deep_verify_checks_snapshots_against_the_replayed_state() {
    let test = TestArchive::new();
    test.chunks(&CHUNKS).await;
    test.snapshots(&[10]).await;
    // A snapshot of LSN 24's state named (and sealed) as LSN 25: it decodes fine on its own.
    let (bytes, _) = snapshot_of(&test.history.state_at(24), Lsn(25), START_MS + 250);
    upload_snapshot(&test.archive, &snapshot_name(25), bytes)
        .await
        .unwrap();

    let deep = test.deep_verify().await;
    assert_eq!(deep.snapshots, 2);
    assert!(
        matches!(&deep.problems[..], [Problem::DigestMismatch { object, lsn: Lsn(25), .. }] if *object == snapshot_name(25).key()),
        "{:?}",
        deep.problems
    );
}

#[tokio::test]
async fn a_corrupt_snapshot_is_named_by_verify_and_restore() {
    let test = TestArchive::new();
    test.chunks(&CHUNKS).await;
    test.snapshots(&[25]).await;
    test.damage(&snapshot_name(25).key(), 0, 1);

    let verify = test.verify().await;
    assert_eq!(
        verify.problems,
        vec![Problem::CorruptSnapshot {
            object: snapshot_name(25).key(),
            error: SnapshotError::Seal(SealError::BodyHashMismatch),
        }]
    );
    let error = test.restore(RestoreTarget::Latest).await.unwrap_err();
    assert!(
        error.to_string().contains(&snapshot_name(25).key()),
        "{error}"
    );
}

#[tokio::test]
async fn restore_needs_an_empty_store_and_a_starting_point() {
    let test = TestArchive::new();
    let nothing = test.restore(RestoreTarget::Latest).await.unwrap_err();
    assert!(
        matches!(nothing, RestoreError::NothingArchived { .. }),
        "{nothing}"
    );

    test.chunks(&[(11, 20)]).await;
    let error = test.restore(RestoreTarget::Latest).await.unwrap_err();
    assert!(
        matches!(error, RestoreError::NoStartingPoint { .. }),
        "{error}"
    );

    let store = MemoryReplicaStore::new(CheckpointPolicy::default());
    store.apply_batch(test.history.entries(1, 1)).unwrap();
    let used = test
        .restore_into(&store, RestoreTarget::Latest)
        .await
        .unwrap_err();
    assert!(
        matches!(used, RestoreError::StoreNotEmpty { applied: Lsn(1) }),
        "{used}"
    );
}

fn table_def(name: &str, id: u64, partition_id: u64) -> TableDef {
    TableDef {
        id,
        name: name.to_owned(),
        key_schema: KeySchema {
            partition_key: KeyAttribute {
                name: "pk".into(),
                scalar_type: ScalarType::S,
            },
            sort_key: None,
        },
        attribute_definitions: Vec::new(),
        billing: Billing::PayPerRequest,
        created_at_ms: 0,
        partitions: vec![PartitionDef {
            id: partition_id,
            hash_start: 0,
            hash_end: u64::MAX,
        }],
        status: TableStatus::Active,
        splits: Vec::new(),
        pending_split: None,
    }
}

#[tokio::test]
async fn the_catalog_restores_as_of_a_time() {
    let test = TestArchive::new();
    // The metadata group's log: the catalog item written twice, a second apart.
    let catalog = Catalog::scratch(None).unwrap();
    let mut encodings = Vec::new();
    for (name, id) in [("orders", 1), ("users", 2)] {
        catalog
            .create_table(name, |_, _| table_def(name, id, id * 10))
            .unwrap();
        encodings.push(catalog.encode());
    }
    let entries: Vec<Entry> = encodings
        .iter()
        .enumerate()
        .map(|(at, encoded)| Entry {
            lsn: Lsn(at as u64 + 1),
            ballot: Ballot { round: 1, node: 1 },
            timestamp_ms: START_MS + at as u64 * 1000,
            op: Operation::Put {
                key: crate::node::CATALOG_KEY.to_vec(),
                item: encoded.clone(),
            },
        })
        .collect();
    let store = MemoryReplicaStore::new(CheckpointPolicy::default());
    store.apply_batch(&entries).unwrap();
    let name = WalChunkName {
        table_id: 0,
        partition_id: 0,
        first: Lsn(1),
        last: Lsn(2),
    };
    let bytes = encode_chunk(&entries, &store.applied_state().digest).unwrap();
    upload_chunk(&test.archive, &name, Bytes::from(bytes))
        .await
        .unwrap();

    let latest = restore_catalog(&test.archive, RestoreTarget::Latest)
        .await
        .unwrap();
    assert_eq!(latest.table("users").unwrap().partitions[0].id, 20);
    let earlier = restore_catalog(&test.archive, RestoreTarget::Time(START_MS + 500))
        .await
        .unwrap();
    assert_eq!(earlier.table("orders").unwrap().id, 1);
    assert!(earlier.table("users").is_none());
}

#[tokio::test]
async fn a_reference_replica_advances_chunk_by_chunk_as_the_archive_grows() {
    let test = TestArchive::new();
    let store = MemoryReplicaStore::new(CheckpointPolicy::default());
    async fn advance_in(
        archive: &Archive,
        store: &MemoryReplicaStore,
    ) -> Result<RestoreReport, RestoreError> {
        advance_partition(archive, TABLE, PARTITION, store, &mut |_| {}).await
    }
    let advance = |store| advance_in(&test.archive, store);
    // Nothing archived yet: the store stays empty.
    let report = advance(&store).await.unwrap();
    assert_eq!((report.final_lsn, report.entries_applied), (Lsn::ZERO, 0));

    // The first chunks land (overlapping, as after a leadership change), then more.
    test.chunks(&[(1, 10), (5, 14)]).await;
    let report = advance(&store).await.unwrap();
    assert_eq!((report.final_lsn, report.entries_applied), (Lsn(14), 14));
    assert_eq!(report.digest, test.history.digest_at(14));
    assert_eq!(report.verified_lsn, Lsn(14));
    test.chunks(&[(15, 20), (21, 30)]).await;
    let report = advance(&store).await.unwrap();
    assert_eq!((report.final_lsn, report.entries_applied), (Lsn(30), 16));
    assert_eq!(store.applied_state().digest, test.history.digest_at(30));
    // Nothing new: nothing happens.
    let report = advance(&store).await.unwrap();
    assert_eq!((report.final_lsn, report.entries_applied), (Lsn(30), 0));

    // A chunk whose footer does not match the state is caught on the way.
    let bad = encode_chunk(test.history.entries(31, 35), &test.history.digest_at(34)).unwrap();
    upload_chunk(&test.archive, &chunk_name(31, 35), Bytes::from(bad))
        .await
        .unwrap();
    assert!(matches!(
        advance(&store).await,
        Err(RestoreError::DigestMismatch { lsn: Lsn(35), .. })
    ));

    // A replica behind what retention kept cannot advance: it must start over, from the
    // newest snapshot.
    let behind = test.history.state_at(5);
    let fresh = TestArchive::new();
    fresh.snapshots(&[20]).await;
    fresh.chunks(&[(21, 30)]).await;
    let outcome = advance_partition(&fresh.archive, TABLE, PARTITION, &behind, &mut |_| {}).await;
    assert!(
        matches!(outcome, Err(RestoreError::Gap { from: Lsn(6), .. })),
        "{outcome:?}"
    );
    let empty = MemoryReplicaStore::new(CheckpointPolicy::default());
    let report = advance_partition(&fresh.archive, TABLE, PARTITION, &empty, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.snapshot, Some(snapshot_name(20)));
    assert_eq!(report.final_lsn, Lsn(30));
    assert_eq!(report.digest, fresh.history.digest_at(30));
}
