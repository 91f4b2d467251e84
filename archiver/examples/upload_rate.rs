//! Measures the archiver's upload path against the same server's raw multipart upload rate, in
//! one run (docs/benchmarks.md, "Archive"):
//!
//! 1. raw: one object of `--mib` MiB of random bytes through object_store's multipart upload,
//!    8 MiB parts, `--parallel` parts in flight;
//! 2. archiver: the same bytes as WAL entries cut into 8 MiB chunks, each encoded
//!    (zstd, footer) and uploaded create-only by `ddb::archive::upload_chunk`, `--parallel`
//!    chunks in flight (the archiver's `parallel_uploads`).
//!
//! The payload is random, so compression does not flatter the archiver: both move about the
//! same bytes. Run against s3s-fs or MinIO:
//!
//! `cargo run --release -p ddb-archiver --example upload_rate -- --archive 's3://bench/rate?endpoint=http://127.0.0.1:9000' --mib 256`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use bytes::Bytes;
use ddb::archive::{ArchiveUrl, WalChunkName, encode_chunk, upload_chunk};
use ddb::digest::StateDigest;
use ddb::wal::{Ballot, Entry, Lsn, Operation};
use futures_util::StreamExt as _;
use object_store::{ObjectStoreExt as _, WriteMultipart};

const PART: usize = 8 * 1024 * 1024;
const ENTRY_BYTES: usize = 4000;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

#[tokio::main]
async fn main() {
    let url = arg("--archive", "");
    assert!(!url.is_empty(), "--archive URL is required");
    let mib: usize = arg("--mib", "256").parse().unwrap();
    let parallel: usize = arg("--parallel", "4").parse().unwrap();
    let archive = ArchiveUrl::parse(&url)
        .unwrap()
        .open_archive(|name| std::env::var(name).ok())
        .unwrap();
    let total = mib * 1024 * 1024;
    let run = fastrand::u64(..);

    // 1. Raw multipart.
    let data = Bytes::from(random_bytes(total, run));
    let path = archive.path_of(&format!("bench/raw-{run}")).unwrap();
    let started = Instant::now();
    let upload = archive.store().put_multipart(&path).await.unwrap();
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    for part in data.chunks(PART) {
        writer.wait_for_capacity(parallel).await.unwrap();
        writer.put(data.slice_ref(part));
    }
    writer.finish().await.unwrap();
    let raw_s = started.elapsed().as_secs_f64();
    archive.store().delete(&path).await.unwrap();

    // 2. The archiver's path: entries → chunk (zstd + footer) → create-only upload.
    let per_chunk = PART / ENTRY_BYTES;
    let chunks: Vec<Vec<Entry>> = data
        .chunks(ENTRY_BYTES)
        .enumerate()
        .map(|(index, payload)| Entry {
            lsn: Lsn(index as u64 + 1),
            ballot: Ballot { round: 1, node: 1 },
            timestamp_ms: 0,
            op: Operation::Put {
                key: format!("k{index}").into_bytes(),
                item: payload.to_vec(),
            },
        })
        .collect::<Vec<_>>()
        .chunks(per_chunk)
        .map(<[Entry]>::to_vec)
        .collect();
    let table_id = run;
    let started = Instant::now();
    let uploaded: Vec<u64> = futures_util::stream::iter(chunks)
        .map(|entries| {
            let archive = archive.clone();
            async move {
                let name = WalChunkName {
                    table_id,
                    partition_id: 1,
                    first: entries[0].lsn,
                    last: entries[entries.len() - 1].lsn,
                };
                let encoded = tokio::task::spawn_blocking(move || {
                    encode_chunk(&entries, &StateDigest::empty()).unwrap()
                })
                .await
                .unwrap();
                let size = encoded.len() as u64;
                upload_chunk(&archive, &name, Bytes::from(encoded))
                    .await
                    .unwrap();
                size
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let archiver_s = started.elapsed().as_secs_f64();
    let archiver_bytes: u64 = uploaded.iter().sum();

    let mb = |bytes: f64| bytes / 1e6;
    let raw_rate = mb(total as f64) / raw_s;
    let archiver_rate = mb(archiver_bytes as f64) / archiver_s;
    println!(
        "raw multipart: {:.1} MB in {raw_s:.2} s = {raw_rate:.1} MB/s ({parallel} parts in flight)",
        mb(total as f64)
    );
    println!(
        "archiver path: {:.1} MB in {} chunks in {archiver_s:.2} s = {archiver_rate:.1} MB/s ({parallel} chunks in flight)",
        mb(archiver_bytes as f64),
        uploaded.len()
    );
    println!("ratio archiver / raw: {:.2}", archiver_rate / raw_rate);
}
