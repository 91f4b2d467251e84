//! Apply throughput into fjall with and without digest upkeep, and full-scan digest speed.
//!
//! Run: `cargo bench -p ddb --bench replica_apply`
//!
//! The baseline ("without digest") writes the same fjall batches the replica store writes (the
//! items and the applied LSN) straight through fjall opened with the store's settings, without
//! reading the old item, hashing, or writing the digest: the cost the digest adds is the
//! difference.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ddb::digest::{CheckpointPolicy, digest_of_items};
use ddb::replica::{BareStore, FjallReplicaStore, ReplicaStore, full_scan_digest};
use ddb::wal::{Ballot, Entry, Lsn, Operation};

const ITEM_BYTES: usize = 1024;
/// Keys repeat after this many writes, so about half the applies overwrite an existing item.
const KEY_SPACE: u64 = 100_000;

fn entry(lsn: u64) -> Entry {
    let key_id = (lsn * 2_654_435_761) % KEY_SPACE;
    let mut item = vec![0u8; ITEM_BYTES];
    item[..8].copy_from_slice(&lsn.to_le_bytes());
    Entry {
        lsn: Lsn(lsn),
        ballot: Ballot { round: 1, node: 1 },
        timestamp_ms: lsn,
        op: Operation::Put {
            key: format!("table1#user{key_id:08}").into_bytes(),
            item,
        },
    }
}

/// `iters` batches of `batch` consecutive entries, starting at LSN `*next`.
fn next_batches(next: &mut u64, iters: u64, batch: u64) -> Vec<Vec<Entry>> {
    (0..iters)
        .map(|_| {
            let entries = (*next..*next + batch).map(entry).collect();
            *next += batch;
            entries
        })
        .collect()
}

fn bench_dir() -> tempfile::TempDir {
    // Under the working directory, so the benchmark runs on the same disk as real data.
    tempfile::tempdir_in(".").unwrap()
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("replica_apply");
    group.measurement_time(Duration::from_secs(5));
    for batch in [1u64, 64] {
        group.throughput(Throughput::Elements(batch));

        let dir = bench_dir();
        let store = FjallReplicaStore::open(dir.path(), CheckpointPolicy::default()).unwrap();
        let mut next = 1u64;
        group.bench_function(BenchmarkId::new("with_digest", batch), |b| {
            b.iter_custom(|iters| {
                let batches = next_batches(&mut next, iters, batch);
                let start = Instant::now();
                for entries in &batches {
                    store.apply_batch(entries).unwrap();
                }
                start.elapsed()
            });
        });

        let dir = bench_dir();
        // The same fjall settings as the store (cache, memtables, block size, one worker).
        let BareStore { db, items, meta } = BareStore::open(dir.path()).unwrap();
        let mut next = 1u64;
        group.bench_function(BenchmarkId::new("without_digest", batch), |b| {
            b.iter_custom(|iters| {
                let batches = next_batches(&mut next, iters, batch);
                let start = Instant::now();
                for entries in &batches {
                    let mut write = db.batch();
                    for e in entries {
                        if let Operation::Put { key, item } = &e.op {
                            write.insert(&items, key.as_slice(), item.as_slice());
                        }
                    }
                    let last = entries.last().unwrap().lsn.0;
                    write.insert(&meta, "applied_lsn", last.to_le_bytes().to_vec());
                    write.commit().unwrap();
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

fn full_scan(c: &mut Criterion) {
    const ITEMS: u64 = 200_000;
    let dir = bench_dir();
    let store = FjallReplicaStore::open(dir.path(), CheckpointPolicy::default()).unwrap();
    let entries: Vec<Entry> = (1..=ITEMS)
        .map(|lsn| {
            let mut e = entry(lsn);
            if let Operation::Put { key, .. } = &mut e.op {
                *key = format!("table1#user{lsn:08}").into_bytes();
            }
            e
        })
        .collect();
    for chunk in entries.chunks(1024) {
        store.apply_batch(chunk).unwrap();
    }
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = entries
        .iter()
        .filter_map(|e| match &e.op {
            Operation::Put { key, item } => Some((key.clone(), item.clone())),
            _ => None,
        })
        .collect();

    let mut group = c.benchmark_group("full_scan_digest_1kb_items");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(ITEMS));
    group.bench_function("fjall_store_scan_and_hash", |b| {
        b.iter(|| {
            let report = full_scan_digest(&store, &mut |_, _| {}).unwrap();
            assert!(report.matches());
        });
    });
    group.bench_function("fjall_store_scan_only", |b| {
        // The read side of a full scan alone: every item visited, nothing hashed.
        b.iter(|| {
            let snapshot = store.snapshot().unwrap();
            let mut seen = 0u64;
            snapshot
                .for_each_item(&mut |key, item| seen += (key.len() + item.len()) as u64)
                .unwrap();
            assert!(seen > ITEMS * ITEM_BYTES as u64);
        });
    });
    group.bench_function("point_read_of_every_item", |b| {
        // What digest upkeep adds to an overwrite before any hashing: reading the old item.
        b.iter(|| {
            for (key, _) in &pairs {
                assert!(store.get(key).unwrap().is_some());
            }
        });
    });
    group.bench_function("hash_only_in_memory", |b| {
        b.iter(|| digest_of_items(pairs.iter().map(|(k, v)| (k, v))));
    });
    group.finish();
}

criterion_group!(benches, apply, full_scan);
criterion_main!(benches);
