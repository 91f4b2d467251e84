//! WAL append throughput with real `fdatasync`, against the disk's raw `fdatasync` rate.
//!
//! Run: `cargo bench -p ddb --bench wal_append`. Prints, after criterion's report, appends/s at
//! 1, 8 and 64 appender threads and the ratio of the 64-thread rate to raw fdatasync/s.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ddb::wal::sync_probe::SyncProbe;
use ddb::wal::{Ballot, Operation, Wal, WalOptions};

/// Total operations and time spent on them over every sample of one case.
#[derive(Default)]
struct Rate {
    ops: u64,
    elapsed: Duration,
}

impl Rate {
    fn record(&mut self, ops: u64, elapsed: Duration) -> Duration {
        self.ops += ops;
        self.elapsed += elapsed;
        elapsed
    }

    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// A directory on the same filesystem as the build (not a tmpfs /tmp).
fn bench_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// How a raw `fdatasync` case writes.
#[derive(Clone, Copy)]
enum RawWrite {
    /// Appends to the file, so every sync also journals a new file size.
    Append,
    /// Writes over a region written with zeros and synced first, as the WAL does.
    OverSyncedZeros,
}

/// `write` + `fdatasync` of `bytes` at a time, in a loop: the disk's own sync rate.
fn raw_fdatasync(c: &mut Criterion, dir: &Path, bytes: usize, how: RawWrite) -> Rate {
    let name = match how {
        RawWrite::Append => format!("raw_fdatasync_{bytes}B_append"),
        RawWrite::OverSyncedZeros => format!("raw_fdatasync_{bytes}B_over_synced_zeros"),
    };
    let mut rate = Rate::default();
    let payload = vec![0x5Au8; bytes];
    c.bench_function(&name, |b| match how {
        RawWrite::Append => {
            let file = File::create(dir.join(&name)).unwrap();
            let mut offset = 0u64;
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    file.write_all_at(&payload, offset).unwrap();
                    offset += bytes as u64;
                    file.sync_data().unwrap();
                }
                rate.record(iters, start.elapsed())
            });
        }
        RawWrite::OverSyncedZeros => {
            // The probe ddbctl bench --sync-baseline uses too.
            let mut probe = SyncProbe::create(&dir.join(&name)).unwrap();
            b.iter_custom(|iters| {
                // Zero enough for this sample before timing it, like the WAL's preallocation.
                probe.prepare(iters, bytes).unwrap();
                let start = Instant::now();
                for _ in 0..iters {
                    probe.write_and_sync(&payload).unwrap();
                }
                rate.record(iters, start.elapsed())
            });
        }
    });
    rate
}

fn wal_appends(c: &mut Criterion, dir: &Path, threads: u64) -> Rate {
    let mut rate = Rate::default();
    let wal =
        Arc::new(Wal::open(&dir.join(format!("wal-{threads}")), WalOptions::default()).unwrap());
    c.bench_function(&format!("wal_append_200B_{threads}_threads"), |b| {
        b.iter_custom(|iters| {
            let per_thread = iters.div_ceil(threads);
            let barrier = Arc::new(Barrier::new(threads as usize + 1));
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let wal = Arc::clone(&wal);
                    let barrier = Arc::clone(&barrier);
                    thread::spawn(move || {
                        barrier.wait();
                        for i in 0..per_thread {
                            let op = Operation::Put {
                                key: format!("key-{t}-{i}").into_bytes(),
                                item: vec![0xA5; 180],
                            };
                            wal.append_next(Ballot { round: 1, node: 1 }, 0, op)
                                .unwrap();
                        }
                    })
                })
                .collect();
            barrier.wait();
            let start = Instant::now();
            for h in handles {
                h.join().unwrap();
            }
            rate.record(per_thread * threads, start.elapsed())
        });
    });
    let stats = wal.stats();
    println!(
        "  {threads} threads: {} appends, {} fdatasyncs ({:.1} appends per sync)",
        stats.appends,
        stats.syncs,
        stats.appends as f64 / stats.syncs.max(1) as f64
    );
    rate
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let dir = bench_dir();
    println!("benchmark directory: {}", dir.path().display());
    let raw = raw_fdatasync(&mut c, dir.path(), 100, RawWrite::Append);
    // The size of a group-commit batch at 64 appenders (~56 entries): why the WAL writes over
    // synced zeros (docs/benchmarks.md).
    let raw_batch_append = raw_fdatasync(&mut c, dir.path(), 14 * 1024, RawWrite::Append);
    let raw_batch_zeros = raw_fdatasync(&mut c, dir.path(), 14 * 1024, RawWrite::OverSyncedZeros);
    let rates: Vec<(u64, Rate)> = [1, 8, 64]
        .into_iter()
        .map(|threads| (threads, wal_appends(&mut c, dir.path(), threads)))
        .collect();
    c.final_summary();

    let raw_rate = raw.per_second();
    println!("raw fdatasync (100 B writes): {raw_rate:.0}/s");
    println!(
        "raw fdatasync of 14 KiB: appended {:.0}/s, over synced zeros {:.0}/s",
        raw_batch_append.per_second(),
        raw_batch_zeros.per_second()
    );
    for (threads, rate) in &rates {
        println!(
            "WAL appends, {threads:>2} threads: {:.0}/s",
            rate.per_second()
        );
    }
    if let Some((_, rate64)) = rates.iter().find(|(t, _)| *t == 64) {
        println!(
            "ratio appends/s at 64 threads / raw fdatasync/s: {:.1}x (target >= 20x)",
            rate64.per_second() / raw_rate
        );
    }
}
