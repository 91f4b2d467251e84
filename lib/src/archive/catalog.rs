//! The catalog in the archive: every version of the node's table definitions, so a table can
//! be restored from the bucket alone (its key schema and partitions as of the restore time).
//!
//! Objects are `v1/catalog/<unix-ms:020>-<blake3:16 hex>.json`, the catalog's JSON encoding
//! (`ddb::catalog::Catalog::encode`) as an archiver saw it at that time. A new object is written
//! only when the newest one holds different bytes; two archivers that see the same change at
//! once write two objects with equal contents, which is harmless.

use bytes::Bytes;
use object_store::{PutMode, PutOptions, PutPayload};

use super::{Archive, ArchiveError};

/// The directory of catalog versions, relative to the archive root.
pub const CATALOG_DIR: &str = "v1/catalog";

/// One catalog version's name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CatalogVersion {
    /// When an archiver saw it (ms since the epoch).
    pub at_ms: u64,
    /// The first 16 hex digits of the blake3 of its bytes.
    pub hash: String,
}

impl CatalogVersion {
    fn of(encoded: &[u8], at_ms: u64) -> Self {
        CatalogVersion {
            at_ms,
            hash: blake3::hash(encoded).to_hex()[..16].to_string(),
        }
    }

    /// The object key.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{CATALOG_DIR}/{:020}-{}.json", self.at_ms, self.hash)
    }

    fn parse(file_name: &str) -> Option<Self> {
        let stem = file_name.strip_suffix(".json")?;
        let (at_ms, hash) = stem.split_once('-')?;
        (at_ms.len() == 20 && hash.len() == 16).then_some(())?;
        Some(CatalogVersion {
            at_ms: at_ms.parse().ok()?,
            hash: hash.to_string(),
        })
    }
}

/// Every catalog version in the archive, oldest first.
pub async fn list_catalog_versions(archive: &Archive) -> Result<Vec<CatalogVersion>, ArchiveError> {
    let listing = archive.listing(CATALOG_DIR).await?;
    let mut versions: Vec<CatalogVersion> = listing
        .objects
        .iter()
        .filter_map(|meta| CatalogVersion::parse(meta.location.filename()?))
        .collect();
    versions.sort();
    Ok(versions)
}

/// Writes `encoded` as the catalog version seen at `at_ms`, unless the newest version already
/// holds these bytes. Returns whether an object was written.
pub async fn upload_catalog(
    archive: &Archive,
    encoded: &[u8],
    at_ms: u64,
) -> Result<bool, ArchiveError> {
    let version = CatalogVersion::of(encoded, at_ms);
    let newest = list_catalog_versions(archive).await?.pop();
    if newest.is_some_and(|newest| newest.hash == version.hash) {
        return Ok(false);
    }
    let path = archive.path_of(&version.key())?;
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    let payload = PutPayload::from_bytes(Bytes::copy_from_slice(encoded));
    match archive.store().put_opts(&path, payload, options).await {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(true),
        Err(source) => Err(ArchiveError::ObjectStore {
            operation: "put",
            path: path.to_string(),
            source,
        }),
    }
}

/// The newest catalog version seen at or before `at_ms` (any, for `None`), with its time.
pub async fn catalog_at(
    archive: &Archive,
    at_ms: Option<u64>,
) -> Result<Option<(u64, Vec<u8>)>, ArchiveError> {
    let Some(version) = list_catalog_versions(archive)
        .await?
        .into_iter()
        .rev()
        .find(|version| at_ms.is_none_or(|at| version.at_ms <= at))
    else {
        return Ok(None);
    };
    let path = archive.path_of(&version.key())?;
    let bytes = archive.get(&path).await?;
    Ok(Some((version.at_ms, bytes.to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ArchiveUrl;

    #[tokio::test]
    async fn a_catalog_is_written_once_per_change_and_found_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let url = ArchiveUrl::parse(&format!("file://{}", dir.path().display())).unwrap();
        let archive = url.open_archive(|_| None).unwrap();
        assert_eq!(catalog_at(&archive, None).await.unwrap(), None);
        assert!(upload_catalog(&archive, b"{\"v\":1}", 1_000).await.unwrap());
        assert!(!upload_catalog(&archive, b"{\"v\":1}", 2_000).await.unwrap());
        assert!(upload_catalog(&archive, b"{\"v\":2}", 3_000).await.unwrap());
        assert_eq!(list_catalog_versions(&archive).await.unwrap().len(), 2);
        assert_eq!(catalog_at(&archive, Some(999)).await.unwrap(), None);
        let (at, bytes) = catalog_at(&archive, Some(2_500)).await.unwrap().unwrap();
        assert_eq!((at, bytes.as_slice()), (1_000, b"{\"v\":1}".as_slice()));
        let (at, _) = catalog_at(&archive, None).await.unwrap().unwrap();
        assert_eq!(at, 3_000);
    }
}
