//! Reading an archive back in tests: replay each partition's chunks into a fresh replica,
//! checking every chunk's sealed digest against the replayed state on the way.

use ddb::archive::{Archive, decode_chunk, list_chunks, list_partitions};
use ddb::digest::{CheckpointPolicy, StateDigest};
use ddb::replica::{MemoryReplicaStore, ReplicaStore};
use ddb::wal::Lsn;

/// One partition replayed from the archive.
pub struct Replayed {
    /// Table id.
    pub table_id: u64,
    /// Partition id.
    pub partition_id: u64,
    /// The last LSN applied.
    pub lsn: Lsn,
    /// The digest there.
    pub digest: StateDigest,
    /// The replica itself.
    pub store: MemoryReplicaStore,
}

/// Replays every partition of the archive from LSN 1. Overlapping chunks must agree entry for
/// entry; a gap or a sealed digest that differs from the replayed state panics.
///
/// # Panics
/// On any problem with the archive.
#[allow(clippy::unwrap_used)]
pub async fn replay_archive(archive: &Archive) -> Vec<Replayed> {
    let mut out = Vec::new();
    for (table_id, partition_id) in list_partitions(archive).await.unwrap() {
        let store = MemoryReplicaStore::new(CheckpointPolicy::default());
        for name in list_chunks(archive, table_id, partition_id).await.unwrap() {
            let path = archive.path_of(&name.key()).unwrap();
            let chunk = decode_chunk(&archive.get(&path).await.unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", name.key()));
            let applied = store.applied_lsn();
            assert!(
                chunk.first_lsn().0 <= applied.0 + 1,
                "gap before {}: replayed through {applied}",
                name.key()
            );
            let fresh: Vec<_> = chunk
                .entries
                .iter()
                .filter(|entry| entry.lsn > applied)
                .cloned()
                .collect();
            if fresh.is_empty() {
                continue;
            }
            store.apply_batch(&fresh).unwrap();
            assert_eq!(
                store.applied_state().digest,
                chunk.digest,
                "{}: the sealed digest differs from the replayed state",
                name.key()
            );
        }
        let state = store.applied_state();
        out.push(Replayed {
            table_id,
            partition_id,
            lsn: state.applied_lsn,
            digest: state.digest,
            store,
        });
    }
    out
}
