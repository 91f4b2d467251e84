//! ddb-scrubber: proves that a partition's replicas equal each other and the archive.
//!
//! The scrub loops arrive with the scrubber issue; this crate exists so the workspace has its
//! final shape from the start.
