//! The archive against real object stores: in memory, and a `file://` archive in a tempdir.

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::memory::InMemory;
use object_store::path::Path;

use super::chunk::tests::{digest, entries};
use super::*;
use crate::wal::Lsn;

const TABLE: u64 = 3;
const PARTITION: u64 = 9;

fn name(first: u64, last: u64) -> WalChunkName {
    WalChunkName {
        table_id: TABLE,
        partition_id: PARTITION,
        first: Lsn(first),
        last: Lsn(last),
    }
}

fn chunk_bytes(first: u64, last: u64) -> Bytes {
    Bytes::from(encode_chunk(&entries(first, last), &digest(&format!("at {last}"))).unwrap())
}

async fn upload(archive: &Archive, first: u64, last: u64) {
    let uploaded = upload_chunk(archive, &name(first, last), chunk_bytes(first, last))
        .await
        .unwrap();
    assert_eq!(uploaded, Uploaded::Created);
}

/// Runs `check` on a fresh in-memory archive (with a key prefix) and a fresh `file://` archive;
/// the tempdir is handed over so a check can damage files behind the store's back.
async fn on_both_stores<F, Fut>(check: F)
where
    F: Fn(Archive, Option<std::path::PathBuf>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let memory = Archive::new(Arc::new(InMemory::new()), Path::from("cluster-a/archive"));
    check(memory, None).await;
    let dir = tempfile::tempdir().unwrap();
    let url = ArchiveUrl::parse(&format!("file://{}", dir.path().display())).unwrap();
    let local = url.open_archive(|_| None).unwrap();
    check(local, Some(dir.path().to_owned())).await;
}

#[tokio::test]
async fn an_uploaded_chunk_reads_back_identical() {
    on_both_stores(|archive, _| async move {
        upload(&archive, 1, 50).await;
        let path = archive.path_of(&name(1, 50).key()).unwrap();
        let stored = archive.get(&path).await.unwrap();
        let chunk = decode_chunk(&stored).unwrap();
        assert_eq!(chunk.entries, entries(1, 50));
        assert_eq!(chunk.digest, digest("at 50"));
    })
    .await;
}

#[tokio::test]
async fn uploading_the_same_chunk_again_is_already_there() {
    on_both_stores(|archive, _| async move {
        upload(&archive, 1, 10).await;
        let again = upload_chunk(&archive, &name(1, 10), chunk_bytes(1, 10)).await;
        assert_eq!(again.unwrap(), Uploaded::AlreadyThere);
    })
    .await;
}

#[tokio::test]
async fn a_different_chunk_under_the_same_name_is_split_brain_and_changes_nothing() {
    on_both_stores(|archive, _| async move {
        upload(&archive, 1, 10).await;
        let other = Bytes::from(encode_chunk(&entries(1, 10), &digest("elsewhere")).unwrap());
        let error = upload_chunk(&archive, &name(1, 10), other)
            .await
            .unwrap_err();
        let ArchiveError::SplitBrain { path } = &error else {
            panic!("expected split brain, got {error}");
        };
        assert!(path.ends_with(&name(1, 10).key()), "{path}");
        let stored = archive
            .get(&archive.path_of(&name(1, 10).key()).unwrap())
            .await
            .unwrap();
        assert_eq!(stored, chunk_bytes(1, 10), "the first upload must survive");
    })
    .await;
}

#[tokio::test]
async fn listing_returns_chunks_in_lsn_order() {
    on_both_stores(|archive, _| async move {
        // 00…9-… sorts before 00…10-… only because LSNs are zero-padded; upload out of order.
        upload(&archive, 10, 25).await;
        upload(&archive, 1, 9).await;
        upload(&archive, 26, 26).await;
        // Another partition and a snapshot are not this partition's chunks.
        let other = WalChunkName {
            partition_id: PARTITION + 1,
            ..name(1, 5)
        };
        upload_chunk(&archive, &other, chunk_bytes(1, 5))
            .await
            .unwrap();
        let chunks = list_chunks(&archive, TABLE, PARTITION).await.unwrap();
        assert_eq!(chunks, vec![name(1, 9), name(10, 25), name(26, 26)]);
        assert!(list_chunks(&archive, TABLE, 999).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_contiguous_archive_verifies() {
    on_both_stores(|archive, _| async move {
        upload(&archive, 1, 9).await;
        upload(&archive, 10, 25).await;
        upload(&archive, 26, 26).await;
        let report = verify_partition(&archive, TABLE, PARTITION).await.unwrap();
        assert!(report.is_sound(), "{:?}", report.problems);
        assert_eq!(report.chunks, 3);
        assert_eq!(report.last_verified_lsn, Lsn(26));
    })
    .await;
}

#[tokio::test]
async fn verify_names_both_chunks_around_a_gap() {
    on_both_stores(|archive, _| async move {
        upload(&archive, 1, 9).await;
        upload(&archive, 13, 20).await;
        let report = verify_partition(&archive, TABLE, PARTITION).await.unwrap();
        assert_eq!(
            report.problems,
            vec![Problem::Gap {
                before: name(1, 9).key(),
                after: name(13, 20).key(),
                missing_from: Lsn(10),
                missing_to: Lsn(12),
            }]
        );
        assert_eq!(report.last_verified_lsn, Lsn(9));
    })
    .await;
}

#[tokio::test]
async fn chunks_that_overlap_with_the_same_entries_verify() {
    on_both_stores(|archive, _| async move {
        // After a leadership change two archivers cut different boundaries over the same
        // committed entries: 1..=9 and 5..=20, 5..=12 inside the second, 21..=30 after both.
        upload(&archive, 1, 9).await;
        upload(&archive, 5, 20).await;
        upload(&archive, 5, 12).await;
        upload(&archive, 21, 30).await;
        let report = verify_partition(&archive, TABLE, PARTITION).await.unwrap();
        assert!(report.is_sound(), "{:?}", report.problems);
        assert_eq!(report.last_verified_lsn, Lsn(30));
    })
    .await;
}

#[tokio::test]
async fn verify_names_both_chunks_of_an_overlap_that_disagrees() {
    on_both_stores(|archive, _| async move {
        upload(&archive, 1, 9).await;
        // Another writer's history from LSN 7 on: same LSNs, other ballots.
        let mut other = entries(5, 20);
        for entry in other.iter_mut().filter(|entry| entry.lsn >= Lsn(7)) {
            entry.ballot.round += 1;
        }
        let bytes = Bytes::from(encode_chunk(&other, &digest("other")).unwrap());
        upload_chunk(&archive, &name(5, 20), bytes).await.unwrap();
        let report = verify_partition(&archive, TABLE, PARTITION).await.unwrap();
        assert_eq!(
            report.problems,
            vec![Problem::SplitBrain {
                object: name(5, 20).key(),
                other: name(1, 9).key(),
                lsn: Lsn(7),
            }]
        );
        assert_eq!(report.last_verified_lsn, Lsn(6));
        let text = report.problems[0].to_string();
        assert!(text.contains("split brain") && text.contains(&name(1, 9).key()));
    })
    .await;
}

#[tokio::test]
async fn verify_finds_a_deleted_middle_chunk() {
    on_both_stores(|archive, _| async move {
        upload(&archive, 1, 9).await;
        upload(&archive, 10, 19).await;
        upload(&archive, 20, 29).await;
        let middle = archive.path_of(&name(10, 19).key()).unwrap();
        archive.store().delete(&middle).await.unwrap();
        let report = verify_partition(&archive, TABLE, PARTITION).await.unwrap();
        assert_eq!(
            report.problems,
            vec![Problem::Gap {
                before: name(1, 9).key(),
                after: name(20, 29).key(),
                missing_from: Lsn(10),
                missing_to: Lsn(19),
            }]
        );
        assert_eq!(report.last_verified_lsn, Lsn(9));
    })
    .await;
}

#[tokio::test]
async fn verify_names_a_chunk_corrupted_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let url = ArchiveUrl::parse(&format!("file://{}", dir.path().display())).unwrap();
    let archive = url.open_archive(|_| None).unwrap();
    upload(&archive, 1, 9).await;
    upload(&archive, 10, 19).await;
    upload(&archive, 20, 29).await;

    // Bit rot in the middle chunk's file, behind the object store's back.
    let file = dir.path().join(name(10, 19).key());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[7] ^= 0x20;
    std::fs::write(&file, bytes).unwrap();

    let report = verify_partition(&archive, TABLE, PARTITION).await.unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::Corrupt {
            object: name(10, 19).key(),
            error: ChunkError::Seal(SealError::BodyHashMismatch),
        }]
    );
    assert_eq!(report.last_verified_lsn, Lsn(9));
    assert!(report.problems[0].to_string().contains(&name(10, 19).key()));
}

#[tokio::test]
async fn verify_reports_misnamed_and_foreign_objects_and_a_missing_start() {
    on_both_stores(|archive, _| async move {
        // Entries 2..=9 stored under a name claiming 2..=10.
        let misnamed = name(2, 10);
        upload_chunk(&archive, &misnamed, chunk_bytes(2, 9))
            .await
            .unwrap();
        let stray = archive
            .path_of(&format!("{}/notes.txt", layout::wal_dir(TABLE, PARTITION)))
            .unwrap();
        archive
            .store()
            .put(&stray, Bytes::from_static(b"hello").into())
            .await
            .unwrap();
        let report = verify_partition(&archive, TABLE, PARTITION).await.unwrap();
        assert_eq!(
            report.problems,
            vec![
                Problem::ForeignObject {
                    object: stray.to_string()
                },
                Problem::NameMismatch {
                    object: misnamed.key(),
                    holds: (Lsn(2), Lsn(9)),
                },
                Problem::MissingStart {
                    first: misnamed.key()
                },
            ]
        );
        assert_eq!(report.last_verified_lsn, Lsn::ZERO);
    })
    .await;
}
