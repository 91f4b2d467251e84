//! The archive: every partition's committed log, as immutable objects in an object store.
//!
//! This is the archiver's foundation (`DESIGN.md`, "Archive (object store layout)"):
//!
//! - [`ArchiveUrl`]: `file:///abs/path` or `s3://bucket/prefix?endpoint=…&region=…`, and
//!   opening the store one names;
//! - [`layout`]: object names, `v1/tables/<table>/partitions/<partition>/wal/…` and
//!   `…/snapshots/…`;
//! - [`encode_chunk`] / [`decode_chunk`]: the `.ddbwal.zst` format (`docs/formats.md`,
//!   "Archive WAL chunk");
//! - [`SnapshotWriter`] / [`decode_snapshot`]: the `.ddbsnap.zst` format (`docs/formats.md`,
//!   "Archive snapshot"): a partition's items at one LSN;
//! - [`upload_chunk`] / [`upload_snapshot`]: create-only uploads that turn a conflicting object
//!   into [`ArchiveError::SplitBrain`]; [`list_chunks`], [`list_snapshots`],
//!   [`list_partition_objects`] read back;
//! - [`verify_partition`] / [`deep_verify_partition`]: every object checked, coverage without
//!   gaps, overlapping chunks identical, and (deep) the replayed state against every footer;
//! - [`restore_partition`] / [`restore_catalog`]: a partition or the catalog rebuilt at an LSN
//!   or a time from the newest snapshot below it and the chunks after it.
//!
//! All traffic goes through `object_store`, so a local directory and S3 behave alike.

#[cfg(feature = "network")]
pub mod catalog;
mod chunk;
pub mod layout;
#[cfg(feature = "network")]
mod replay;
#[cfg(feature = "network")]
mod restore;
mod sealed;

mod snapshot;
#[cfg(feature = "network")]
mod store;
#[cfg(feature = "network")]
mod url;
#[cfg(feature = "network")]
mod verify;

#[cfg(test)]
#[cfg(feature = "network")]
mod restore_tests;
#[cfg(test)]
#[cfg(feature = "network")]
mod tests;

#[cfg(feature = "network")]
use std::path::PathBuf;

pub use chunk::{
    CHUNK_MAGIC, CHUNK_VERSION, Chunk, ChunkEncodeError, ChunkError, FOOTER_LEN, MAX_BODY_BYTES,
    decode_chunk, encode_chunk,
};
pub use layout::{ArchiveObject, ObjectNameError, SnapshotName, WalChunkName};
#[cfg(feature = "network")]
pub use restore::{
    RestoreError, RestoreProgress, RestoreReport, RestoreTarget, advance_partition,
    restore_catalog, restore_partition, snapshot_info,
};
pub use sealed::SealError;
pub use snapshot::{
    MAX_SNAPSHOT_BODY_BYTES, MAX_SNAPSHOT_FIELD_BYTES, SNAPSHOT_FOOTER_LEN, SNAPSHOT_MAGIC,
    SNAPSHOT_VERSION, Snapshot, SnapshotEncodeError, SnapshotError, SnapshotInfo, SnapshotWriter,
    check_snapshot, decode_snapshot,
};
#[cfg(feature = "network")]
pub use store::{
    Archive, Listed, PartitionObjects, Uploaded, list_chunks, list_partition_objects,
    list_partitions, list_snapshots, upload_chunk, upload_snapshot,
};
#[cfg(feature = "network")]
pub use url::{ArchiveUrl, ArchiveUrlError, DEFAULT_REGION};
#[cfg(feature = "network")]
pub use verify::{Problem, VerifyReport, deep_verify_partition, verify_partition};

/// Why an archive operation failed.
#[cfg(feature = "network")]
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An object already exists under the name with different bytes: two writers archived
    /// different entries for the same LSNs. Nothing was overwritten; this needs an operator.
    #[error("split brain: {path} already exists with different contents")]
    SplitBrain {
        /// The object.
        path: String,
    },
    /// A credential the S3 archive needs is not in the environment.
    #[error("S3 archive needs {0} in the environment")]
    MissingCredential(&'static str),
    /// The file archive's root directory could not be created.
    #[error("cannot create archive directory {}: {source}", root.display())]
    CreateRoot {
        /// The directory.
        root: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The object store could not be configured.
    #[error("cannot open archive: {source}")]
    Open {
        /// object_store's error.
        source: object_store::Error,
    },
    /// A request to the object store failed.
    #[error("archive {operation} {path}: {source}")]
    ObjectStore {
        /// What was attempted (`get`, `put`, `list`, `name`).
        operation: &'static str,
        /// The object or directory.
        path: String,
        /// object_store's error.
        source: object_store::Error,
    },
}
