//! Reading and writing archive objects: create-only uploads and partition listings.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};

use super::ArchiveError;
use super::layout::{SnapshotName, WalChunkName, snapshot_dir, wal_dir};

/// An opened archive: the object store and the key prefix every object name goes under.
#[derive(Clone, Debug)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

/// How a create-only upload ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uploaded {
    /// The object did not exist and now holds the bytes.
    Created,
    /// The object already held exactly these bytes (an earlier attempt, or another archiver
    /// that uploaded the same committed entries).
    AlreadyThere,
}

impl Archive {
    /// An archive in `store` under `prefix` (empty for the store's root).
    #[must_use]
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Archive { store, prefix }
    }

    /// The object store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The full object-store path of a layout key (see [`super::layout`]).
    pub fn path_of(&self, key: &str) -> Result<Path, ArchiveError> {
        let full = if self.prefix.as_ref().is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(&full).map_err(|source| ArchiveError::ObjectStore {
            operation: "name",
            path: full,
            source: source.into(),
        })
    }

    /// The layout key of a full object-store path, if it lies under the prefix.
    fn key_of<'a>(&self, path: &'a Path) -> Option<&'a str> {
        if self.prefix.as_ref().is_empty() {
            return Some(path.as_ref());
        }
        path.as_ref()
            .strip_prefix(self.prefix.as_ref())?
            .strip_prefix('/')
    }

    /// Reads a whole object.
    pub async fn get(&self, path: &Path) -> Result<Bytes, ArchiveError> {
        let object_error = |source| ArchiveError::ObjectStore {
            operation: "get",
            path: path.to_string(),
            source,
        };
        let result = self.store.get(path).await.map_err(object_error)?;
        result.bytes().await.map_err(object_error)
    }

    /// Reads the last `len` bytes of an object (all of it if shorter) and the object's size.
    pub async fn get_tail(&self, path: &Path, len: u64) -> Result<(Bytes, u64), ArchiveError> {
        let object_error = |source| ArchiveError::ObjectStore {
            operation: "get",
            path: path.to_string(),
            source,
        };
        let options = GetOptions::new().with_range(Some(GetRange::Suffix(len)));
        let result = self
            .store
            .get_opts(path, options)
            .await
            .map_err(object_error)?;
        let size = result.meta.size;
        Ok((result.bytes().await.map_err(object_error)?, size))
    }

    /// The names of the directories directly below `dir` (a key relative to the archive root).
    async fn list_subdirs(&self, dir: &str) -> Result<Vec<String>, ArchiveError> {
        Ok(self
            .listing(dir)
            .await?
            .common_prefixes
            .iter()
            .filter_map(|prefix| prefix.filename().map(str::to_owned))
            .collect())
    }

    /// One level of `dir` (a key relative to the archive root): its objects and subdirectories.
    pub(crate) async fn listing(
        &self,
        dir: &str,
    ) -> Result<object_store::ListResult, ArchiveError> {
        let dir = self.path_of(dir)?;
        self.store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|source| ArchiveError::ObjectStore {
                operation: "list",
                path: dir.to_string(),
                source,
            })
    }
}

/// Uploads a WAL chunk create-only (S3 `If-None-Match: *`). If the object exists already, it
/// is downloaded and compared: the same bytes are [`Uploaded::AlreadyThere`]; different bytes
/// are [`ArchiveError::SplitBrain`], and the stored object is left as it was.
pub async fn upload_chunk(
    archive: &Archive,
    name: &WalChunkName,
    bytes: Bytes,
) -> Result<Uploaded, ArchiveError> {
    put_create_only(archive, &name.key(), bytes).await
}

/// Uploads a snapshot create-only, exactly as [`upload_chunk`] does a chunk: an existing object
/// with the same bytes is [`Uploaded::AlreadyThere`], with other bytes
/// [`ArchiveError::SplitBrain`] (two snapshots of one LSN must hold the same state, and a
/// snapshot written by this code is a function of that state).
pub async fn upload_snapshot(
    archive: &Archive,
    name: &SnapshotName,
    bytes: Bytes,
) -> Result<Uploaded, ArchiveError> {
    put_create_only(archive, &name.key(), bytes).await
}

/// Writes `bytes` under layout key `key` unless an object is there; if one is, compares it.
async fn put_create_only(
    archive: &Archive,
    key: &str,
    bytes: Bytes,
) -> Result<Uploaded, ArchiveError> {
    let path = archive.path_of(key)?;
    let options = PutOptions::from(PutMode::Create);
    match archive
        .store
        .put_opts(&path, PutPayload::from(bytes.clone()), options)
        .await
    {
        Ok(_) => Ok(Uploaded::Created),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let stored = archive.get(&path).await?;
            if stored == bytes {
                Ok(Uploaded::AlreadyThere)
            } else {
                Err(ArchiveError::SplitBrain {
                    path: path.to_string(),
                })
            }
        }
        Err(source) => Err(ArchiveError::ObjectStore {
            operation: "put",
            path: path.to_string(),
            source,
        }),
    }
}

/// An object of a partition as listed: its name and its size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed<N> {
    /// The object's name.
    pub name: N,
    /// Its size in bytes, from the listing.
    pub size: u64,
}

/// What one partition's directories hold, from two listings (no object is read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionObjects {
    /// WAL chunks in LSN order (by first, then last LSN).
    pub chunks: Vec<Listed<WalChunkName>>,
    /// Snapshots in LSN order.
    pub snapshots: Vec<Listed<SnapshotName>>,
    /// Keys in the partition's `wal/` and `snapshots/` directories that are not object names
    /// of this partition (full object-store paths).
    pub foreign: Vec<String>,
}

impl PartitionObjects {
    /// Total bytes of the chunks and snapshots.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        let chunks = self.chunks.iter().map(|chunk| chunk.size);
        let snapshots = self.snapshots.iter().map(|snapshot| snapshot.size);
        chunks.chain(snapshots).sum()
    }
}

/// Lists one partition's chunks and snapshots with their sizes.
pub async fn list_partition_objects(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
) -> Result<PartitionObjects, ArchiveError> {
    let wal = wal_dir(table_id, partition_id);
    let (chunks, mut foreign) = list_named(archive, &wal, chunk_of(table_id, partition_id)).await?;
    let snapshot_dir = snapshot_dir(table_id, partition_id);
    let (snapshots, foreign_snapshots) =
        list_named(archive, &snapshot_dir, snapshot_of(table_id, partition_id)).await?;
    foreign.extend(foreign_snapshots);
    Ok(PartitionObjects {
        chunks,
        snapshots,
        foreign,
    })
}

/// The WAL chunks of one partition, in LSN order. Objects in the partition's `wal/` directory
/// that are not chunk names are left out ([`super::verify_partition`] reports them).
pub async fn list_chunks(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
) -> Result<Vec<WalChunkName>, ArchiveError> {
    let wal = wal_dir(table_id, partition_id);
    let (chunks, _) = list_named(archive, &wal, chunk_of(table_id, partition_id)).await?;
    Ok(chunks.into_iter().map(|chunk| chunk.name).collect())
}

/// The snapshots of one partition, in LSN order. Other objects in the partition's `snapshots/`
/// directory are left out ([`super::verify_partition`] reports them).
pub async fn list_snapshots(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
) -> Result<Vec<SnapshotName>, ArchiveError> {
    let dir = snapshot_dir(table_id, partition_id);
    let (snapshots, _) = list_named(archive, &dir, snapshot_of(table_id, partition_id)).await?;
    Ok(snapshots
        .into_iter()
        .map(|snapshot| snapshot.name)
        .collect())
}

/// Reads a key as the name of a chunk of this partition.
fn chunk_of(table_id: u64, partition_id: u64) -> impl Fn(&str) -> Option<WalChunkName> {
    move |key| {
        WalChunkName::parse(key)
            .ok()
            .filter(|name| (name.table_id, name.partition_id) == (table_id, partition_id))
    }
}

/// Reads a key as the name of a snapshot of this partition.
fn snapshot_of(table_id: u64, partition_id: u64) -> impl Fn(&str) -> Option<SnapshotName> {
    move |key| {
        SnapshotName::parse(key)
            .ok()
            .filter(|name| (name.table_id, name.partition_id) == (table_id, partition_id))
    }
}

/// The objects directly under layout directory `dir` whose keys `parse` accepts, sorted by
/// name, and the full paths of those it does not.
async fn list_named<N: Ord>(
    archive: &Archive,
    dir: &str,
    parse: impl Fn(&str) -> Option<N>,
) -> Result<(Vec<Listed<N>>, Vec<String>), ArchiveError> {
    let mut named = Vec::new();
    let mut foreign = Vec::new();
    for meta in archive.listing(dir).await?.objects {
        match archive.key_of(&meta.location).and_then(&parse) {
            Some(name) => named.push(Listed {
                name,
                size: meta.size,
            }),
            None => foreign.push(meta.location.to_string()),
        }
    }
    named.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((named, foreign))
}

/// Every partition with objects in the archive, as `(table id, partition id)`, in order.
pub async fn list_partitions(archive: &Archive) -> Result<Vec<(u64, u64)>, ArchiveError> {
    let mut partitions = Vec::new();
    for table_dir in archive.list_subdirs("v1/tables").await? {
        let Ok(table_id) = table_dir.parse::<u64>() else {
            continue;
        };
        for partition_dir in archive
            .list_subdirs(&format!("v1/tables/{table_id}/partitions"))
            .await?
        {
            if let Ok(partition_id) = partition_dir.parse::<u64>() {
                partitions.push((table_id, partition_id));
            }
        }
    }
    partitions.sort_unstable();
    Ok(partitions)
}
