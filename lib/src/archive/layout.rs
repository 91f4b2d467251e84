//! Names of archive objects: `v1/tables/<table-id>/partitions/<partition-id>/…`.
//!
//! Every name is built and parsed here, so the layout in `DESIGN.md` ("Archive (object store
//! layout)") lives in one place. Names are relative to the archive's key prefix.

use std::fmt;

use crate::wal::Lsn;

/// Root of version 1 of the layout.
const LAYOUT_ROOT: &str = "v1";
/// Suffix of a WAL chunk object.
pub const WAL_CHUNK_SUFFIX: &str = ".ddbwal.zst";
/// Suffix of a snapshot object.
pub const SNAPSHOT_SUFFIX: &str = ".ddbsnap.zst";
/// Width of a zero-padded LSN in an object name (`u64::MAX` has 20 digits).
const LSN_DIGITS: usize = 20;

/// Why a key is not the name of an archive object of this layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key:?} is not an archive object name: {reason}")]
pub struct ObjectNameError {
    /// The key that was rejected.
    pub key: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The name of one WAL chunk: the committed entries `first..=last` of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WalChunkName {
    /// Table the partition belongs to.
    pub table_id: u64,
    /// Partition whose log the chunk holds.
    pub partition_id: u64,
    /// LSN of the chunk's first entry.
    pub first: Lsn,
    /// LSN of the chunk's last entry (`>= first`).
    pub last: Lsn,
}

/// The name of one snapshot: a partition's state at `lsn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotName {
    /// Table the partition belongs to.
    pub table_id: u64,
    /// Partition whose state the snapshot holds.
    pub partition_id: u64,
    /// LSN the snapshot was taken at.
    pub lsn: Lsn,
}

/// Any object of the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArchiveObject {
    /// A WAL chunk.
    WalChunk(WalChunkName),
    /// A snapshot.
    Snapshot(SnapshotName),
}

/// The directory (key prefix, no trailing `/`) holding a partition's WAL chunks.
#[must_use]
pub fn wal_dir(table_id: u64, partition_id: u64) -> String {
    format!("{}/wal", partition_dir(table_id, partition_id))
}

/// The directory (key prefix, no trailing `/`) holding a partition's snapshots.
#[must_use]
pub fn snapshot_dir(table_id: u64, partition_id: u64) -> String {
    format!("{}/snapshots", partition_dir(table_id, partition_id))
}

fn partition_dir(table_id: u64, partition_id: u64) -> String {
    format!("{LAYOUT_ROOT}/tables/{table_id}/partitions/{partition_id}")
}

impl WalChunkName {
    /// The object key, e.g.
    /// `v1/tables/3/partitions/7/wal/00000000000000000001-00000000000000000100.ddbwal.zst`.
    #[must_use]
    pub fn key(&self) -> String {
        format!(
            "{}/{:0w$}-{:0w$}{WAL_CHUNK_SUFFIX}",
            wal_dir(self.table_id, self.partition_id),
            self.first.0,
            self.last.0,
            w = LSN_DIGITS
        )
    }

    /// Reads a key written by [`WalChunkName::key`]; anything else is an error.
    pub fn parse(key: &str) -> Result<Self, ObjectNameError> {
        match ArchiveObject::parse(key)? {
            ArchiveObject::WalChunk(name) => Ok(name),
            ArchiveObject::Snapshot(_) => Err(name_error(key, "a snapshot, not a WAL chunk")),
        }
    }
}

impl SnapshotName {
    /// The object key, e.g. `v1/tables/3/partitions/7/snapshots/00000000000000000100.ddbsnap.zst`.
    #[must_use]
    pub fn key(&self) -> String {
        format!(
            "{}/{:0w$}{SNAPSHOT_SUFFIX}",
            snapshot_dir(self.table_id, self.partition_id),
            self.lsn.0,
            w = LSN_DIGITS
        )
    }

    /// Reads a key written by [`SnapshotName::key`]; anything else is an error.
    pub fn parse(key: &str) -> Result<Self, ObjectNameError> {
        match ArchiveObject::parse(key)? {
            ArchiveObject::Snapshot(name) => Ok(name),
            ArchiveObject::WalChunk(_) => Err(name_error(key, "a WAL chunk, not a snapshot")),
        }
    }
}

impl ArchiveObject {
    /// Reads the key of any object of the layout. Only the exact form [`WalChunkName::key`] and
    /// [`SnapshotName::key`] write is accepted (no leading zeros in ids, 20-digit LSNs, LSN 0
    /// never, `first <= last`), so every accepted key names exactly one object.
    pub fn parse(key: &str) -> Result<Self, ObjectNameError> {
        let parts: Vec<&str> = key.split('/').collect();
        let [root, tables, table, partitions, partition, kind, file] = parts[..] else {
            return Err(name_error(key, "expected 7 path segments"));
        };
        if root != LAYOUT_ROOT {
            return Err(name_error(key, "not under the v1 layout root"));
        }
        if tables != "tables" || partitions != "partitions" {
            return Err(name_error(key, "expected v1/tables/<id>/partitions/<id>/…"));
        }
        let table_id = parse_id(table).ok_or_else(|| name_error(key, "bad table id"))?;
        let partition_id =
            parse_id(partition).ok_or_else(|| name_error(key, "bad partition id"))?;
        match kind {
            "wal" => {
                let stem = file
                    .strip_suffix(WAL_CHUNK_SUFFIX)
                    .ok_or_else(|| name_error(key, "WAL chunk must end in .ddbwal.zst"))?;
                let (first, last) = stem
                    .split_once('-')
                    .ok_or_else(|| name_error(key, "expected <first-lsn>-<last-lsn>"))?;
                let first = parse_lsn(first).ok_or_else(|| name_error(key, "bad first LSN"))?;
                let last = parse_lsn(last).ok_or_else(|| name_error(key, "bad last LSN"))?;
                if first > last {
                    return Err(name_error(key, "first LSN above last LSN"));
                }
                Ok(ArchiveObject::WalChunk(WalChunkName {
                    table_id,
                    partition_id,
                    first,
                    last,
                }))
            }
            "snapshots" => {
                let stem = file
                    .strip_suffix(SNAPSHOT_SUFFIX)
                    .ok_or_else(|| name_error(key, "snapshot must end in .ddbsnap.zst"))?;
                let lsn = parse_lsn(stem).ok_or_else(|| name_error(key, "bad snapshot LSN"))?;
                Ok(ArchiveObject::Snapshot(SnapshotName {
                    table_id,
                    partition_id,
                    lsn,
                }))
            }
            _ => Err(name_error(key, "expected a wal/ or snapshots/ directory")),
        }
    }

    /// The object key.
    #[must_use]
    pub fn key(&self) -> String {
        match self {
            ArchiveObject::WalChunk(name) => name.key(),
            ArchiveObject::Snapshot(name) => name.key(),
        }
    }
}

impl fmt::Display for WalChunkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl fmt::Display for SnapshotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

fn name_error(key: &str, reason: &'static str) -> ObjectNameError {
    ObjectNameError {
        key: key.to_owned(),
        reason,
    }
}

/// A decimal id in canonical form: ASCII digits, no sign, no leading zero (except `0` itself).
fn parse_id(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// Exactly 20 ASCII digits naming an LSN of at least 1.
fn parse_lsn(text: &str) -> Option<Lsn> {
    if text.len() != LSN_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let lsn: u64 = text.parse().ok()?;
    (lsn >= 1).then_some(Lsn(lsn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_chunk_names_round_trip_and_sort_like_lsns() {
        let name = WalChunkName {
            table_id: 3,
            partition_id: 70,
            first: Lsn(1),
            last: Lsn(100),
        };
        assert_eq!(
            name.key(),
            "v1/tables/3/partitions/70/wal/00000000000000000001-00000000000000000100.ddbwal.zst"
        );
        assert_eq!(WalChunkName::parse(&name.key()), Ok(name));
        let max = WalChunkName {
            first: Lsn(u64::MAX),
            last: Lsn(u64::MAX),
            ..name
        };
        assert_eq!(WalChunkName::parse(&max.key()), Ok(max));
        let later = WalChunkName {
            first: Lsn(101),
            last: Lsn(1000),
            ..name
        };
        assert!(name.key() < later.key(), "keys sort like LSNs");
    }

    #[test]
    fn snapshot_names_round_trip() {
        let name = SnapshotName {
            table_id: 0,
            partition_id: 12,
            lsn: Lsn(4096),
        };
        assert_eq!(
            name.key(),
            "v1/tables/0/partitions/12/snapshots/00000000000000004096.ddbsnap.zst"
        );
        assert_eq!(SnapshotName::parse(&name.key()), Ok(name));
        assert_eq!(
            ArchiveObject::parse(&name.key()),
            Ok(ArchiveObject::Snapshot(name))
        );
        assert!(WalChunkName::parse(&name.key()).is_err());
    }

    #[test]
    fn foreign_names_are_rejected() {
        let wal = "00000000000000000001-00000000000000000002.ddbwal.zst";
        for key in [
            "",
            "README",
            &format!("v2/tables/1/partitions/1/wal/{wal}"),
            &format!("v1/table/1/partitions/1/wal/{wal}"),
            &format!("v1/tables/01/partitions/1/wal/{wal}"),
            &format!("v1/tables/-1/partitions/1/wal/{wal}"),
            &format!("v1/tables/1/partitions/x/wal/{wal}"),
            &format!("v1/tables/1/partitions/1/logs/{wal}"),
            &format!("v1/tables/1/partitions/1/wal/{wal}/extra"),
            &format!("/v1/tables/1/partitions/1/wal/{wal}"),
            "v1/tables/1/partitions/1/wal/00000000000000000001-00000000000000000002.ddbwal",
            "v1/tables/1/partitions/1/wal/0000000000000000001-00000000000000000002.ddbwal.zst",
            "v1/tables/1/partitions/1/wal/00000000000000000000-00000000000000000002.ddbwal.zst",
            "v1/tables/1/partitions/1/wal/00000000000000000003-00000000000000000002.ddbwal.zst",
            "v1/tables/1/partitions/1/wal/0000000000000000000+-00000000000000000002.ddbwal.zst",
            "v1/tables/1/partitions/1/wal/99999999999999999999-99999999999999999999.ddbwal.zst",
            "v1/tables/1/partitions/1/wal/00000000000000000001.ddbwal.zst",
            "v1/tables/1/partitions/1/snapshots/00000000000000000001.ddbwal.zst",
            "v1/tables/1/partitions/1/wal/#staging",
        ] {
            assert!(ArchiveObject::parse(key).is_err(), "accepted {key:?}");
        }
        let error = ArchiveObject::parse("v1/tables/01/partitions/1/wal/x").unwrap_err();
        assert_eq!(error.reason, "bad table id");
        assert!(error.to_string().contains("v1/tables/01"));
    }
}
