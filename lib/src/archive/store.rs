//! Reading and writing archive objects: create-only uploads and partition listings.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::ArchiveError;
use super::layout::{WalChunkName, wal_dir};

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

    /// Lists the keys directly under a layout directory, as full paths.
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

    async fn list_dir(&self, dir: &str) -> Result<Vec<Path>, ArchiveError> {
        Ok(self
            .listing(dir)
            .await?
            .objects
            .into_iter()
            .map(|meta| meta.location)
            .collect())
    }

    /// One level of `dir` (a key relative to the archive root): its objects and subdirectories.
    async fn listing(&self, dir: &str) -> Result<object_store::ListResult, ArchiveError> {
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
    let path = archive.path_of(&name.key())?;
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

/// What a partition's `wal/` directory holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WalListing {
    /// Chunk names in LSN order (by first, then last LSN).
    pub chunks: Vec<WalChunkName>,
    /// Keys in the directory that are not chunk names of this partition.
    pub foreign: Vec<String>,
}

pub(crate) async fn list_wal(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
) -> Result<WalListing, ArchiveError> {
    let mut listing = WalListing::default();
    for path in archive.list_dir(&wal_dir(table_id, partition_id)).await? {
        let parsed = archive
            .key_of(&path)
            .and_then(|key| WalChunkName::parse(key).ok())
            .filter(|name| name.table_id == table_id && name.partition_id == partition_id);
        match parsed {
            Some(name) => listing.chunks.push(name),
            None => listing.foreign.push(path.to_string()),
        }
    }
    listing.chunks.sort_by_key(|name| (name.first, name.last));
    Ok(listing)
}

/// The WAL chunks of one partition, in LSN order. Objects in the partition's `wal/` directory
/// that are not chunk names are left out ([`super::verify_partition`] reports them).
pub async fn list_chunks(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
) -> Result<Vec<WalChunkName>, ArchiveError> {
    Ok(list_wal(archive, table_id, partition_id).await?.chunks)
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
