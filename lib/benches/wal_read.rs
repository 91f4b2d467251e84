//! Reading the WAL from an LSN: through the writer's sparse index (`Wal::read_from`) against
//! scanning the LSN's segment from its start (`read_entries`, which has no index), on the same
//! log in the same run.
//!
//! Run: `cargo bench -p ddb --bench wal_read`
//!
//! The log is one full 64 MiB segment of ~200-byte entries (what a busy partition holds); each
//! iteration reads 100 entries from an LSN spread over the segment, as a lagging follower's
//! catch-up batch or a replay does.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ddb::wal::{Ballot, Entry, Lsn, Operation, Wal, WalOptions, read_entries};

const ENTRIES: u64 = 300_000;
const READ: usize = 100;

fn entry(lsn: u64) -> Entry {
    Entry {
        lsn: Lsn(lsn),
        ballot: Ballot { round: 1, node: 1 },
        timestamp_ms: lsn,
        op: Operation::Put {
            key: format!("table1#user{lsn:08}").into_bytes(),
            item: vec![(lsn % 251) as u8; 160],
        },
    }
}

/// LSNs to start reading at: spread over the log, never the same twice in a row.
fn starts() -> impl Iterator<Item = Lsn> {
    (0..).map(|i: u64| Lsn(1 + (i * 7_919 * 31) % (ENTRIES - READ as u64)))
}

fn read_from(c: &mut Criterion) {
    // On the build's filesystem, not a tmpfs /tmp.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    for first in (1..=ENTRIES).step_by(1_000) {
        wal.append_batch((first..first + 1_000).map(entry).collect())
            .unwrap();
    }
    let segments = ddb::wal::inspect(dir.path()).unwrap().segments.len();
    assert_eq!(segments, 1, "the log fits one segment");

    let mut group = c.benchmark_group("wal_read_from_100_entries");
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    let mut at = starts();
    group.bench_function("indexed_read_from", |b| {
        b.iter(|| {
            let from = at.next().unwrap();
            let got = wal.read_from(from).unwrap().take(READ).count();
            assert_eq!(got, READ);
        });
    });
    let mut at = starts();
    group.bench_function("scan_from_segment_start", |b| {
        b.iter(|| {
            let from = at.next().unwrap();
            let got = read_entries(dir.path(), from).unwrap().take(READ).count();
            assert_eq!(got, READ);
        });
    });
    group.finish();
}

criterion_group!(benches, read_from);
criterion_main!(benches);
