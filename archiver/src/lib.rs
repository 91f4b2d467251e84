//! ddb-archiver: ships each partition's committed write-ahead log to S3-compatible object storage.
//!
//! The archiving loop arrives with the archiver issue; this crate exists so the workspace has its
//! final shape from the start.
