//! The snapshot format (`.ddbsnap.zst`): a partition's items at one LSN, zstd-compressed, and a
//! footer that lets a reader check the object on its own, down to the state digest of the items.
//! Byte layout: `docs/formats.md`, "Archive snapshot".
//!
//! A restore starts from the newest snapshot at or below its target and applies the WAL chunks
//! after it, so it does not have to replay a partition's whole history.

use std::io::{Read, Write};

use super::sealed::{self, SealError, SealFormat, u64_at};
use crate::digest::StateDigest;
use crate::replica::KeyItem;
use crate::wal::Lsn;

/// First bytes of the footer.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"DDBSNAPF";
/// The only footer version this code reads and writes.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Size of the footer: magic, version, item count, LSN, timestamp, body length, body hash,
/// state digest, footer CRC.
pub const SNAPSHOT_FOOTER_LEN: usize = SEAL.footer_len();
/// Largest decompressed body a reader accepts (and a writer writes).
pub const MAX_SNAPSHOT_BODY_BYTES: u64 = 1 << 36;
/// Largest key or item in a snapshot: the largest WAL record body, so every item a log entry can
/// carry fits, and a hostile length prefix is refused before anything is read for it.
pub const MAX_SNAPSHOT_FIELD_BYTES: usize = crate::wal::frame::MAX_BODY_LEN;
/// zstd level for snapshot bodies, as for chunks: zstd's default.
const ZSTD_LEVEL: i32 = 3;

/// How snapshots are sealed: the snapshot's own footer fields are the item count, the LSN and
/// the timestamp of the entry at that LSN (u64 each).
const SEAL: SealFormat = SealFormat {
    magic: SNAPSHOT_MAGIC,
    version: SNAPSHOT_VERSION,
    fields_len: 8 + 8 + 8,
};

/// A decoded and fully verified snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The LSN whose state the snapshot holds (every entry up to it applied, none after).
    pub lsn: Lsn,
    /// The timestamp of the entry at `lsn`, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The state digest of `items`, equal to the partition's digest at `lsn`.
    pub digest: StateDigest,
    /// `(encoded key, canonical item)` pairs in strictly increasing key order.
    pub items: Vec<KeyItem>,
}

/// Why items cannot be written as a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotEncodeError {
    /// Keys must be pushed in strictly increasing order.
    #[error("item {index}: key is not above the previous key: snapshot keys must increase")]
    KeysNotIncreasing {
        /// Position of the offending item.
        index: u64,
    },
    /// A key or item larger than [`MAX_SNAPSHOT_FIELD_BYTES`].
    #[error("item {index}: a {len}-byte key or item is larger than a snapshot holds")]
    FieldTooLong {
        /// Position of the offending item.
        index: u64,
        /// Its length.
        len: usize,
    },
    /// The items add up to more than [`MAX_SNAPSHOT_BODY_BYTES`].
    #[error("the items are more than a snapshot holds ({MAX_SNAPSHOT_BODY_BYTES} bytes)")]
    TooLarge,
    /// LSN 0 is no entry's; a snapshot is of the state after some entry.
    #[error("a snapshot at LSN 0 holds nothing: snapshots start at LSN 1")]
    LsnZero,
    /// zstd failed to compress.
    #[error("zstd compression failed: {0}")]
    Compress(String),
}

/// Why bytes are not a valid snapshot. Each variant names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The footer does not seal the object: length, magic, CRC, version, body length or
    /// body hash.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The footer's LSN is 0.
    #[error("footer claims a snapshot at LSN 0")]
    LsnZero,
    /// The body is not a valid zstd frame.
    #[error("body does not decompress: {0}")]
    Decompress(String),
    /// The body decompresses to more than [`MAX_SNAPSHOT_BODY_BYTES`].
    #[error("body decompresses to more than {MAX_SNAPSHOT_BODY_BYTES} bytes")]
    BodyTooLarge,
    /// The body ended inside a record.
    #[error("decompressed body ends inside item {index} (offset {offset})")]
    RecordTruncated {
        /// Position of the item.
        index: u64,
        /// Offset of its record in the decompressed body.
        offset: u64,
    },
    /// A length prefix above [`MAX_SNAPSHOT_FIELD_BYTES`].
    #[error("item {index} claims a {len}-byte key or item, more than a snapshot holds")]
    FieldTooLong {
        /// Position of the item.
        index: u64,
        /// The length claimed.
        len: u64,
    },
    /// A key not above the key before it.
    #[error("item {index}: key is not above the previous key")]
    KeysNotIncreasing {
        /// Position of the item.
        index: u64,
    },
    /// The body holds a different number of items than the footer says. When the body holds
    /// more, reading stops at the first extra item, so `actual` is `footer + 1`.
    #[error("footer counts {footer} items, the body holds {actual}")]
    ItemCountMismatch {
        /// Count in the footer.
        footer: u64,
        /// Items read from the body.
        actual: u64,
    },
    /// The digest of the items differs from the footer's: the items are not the state the
    /// footer describes.
    #[error("the state digest of the items does not match the footer's")]
    DigestMismatch,
}

/// Writes a snapshot item by item: the body is compressed as items arrive, so memory holds the
/// compressed snapshot, not the items. The digest of the items is computed on the way (the same
/// [`StateDigest::insert_item`] a replica applies), so the caller can compare it with the
/// partition's digest at the snapshot's LSN before uploading.
pub struct SnapshotWriter {
    /// Created at the first push (creating it can fail, [`SnapshotWriter::new`] cannot).
    encoder: Option<zstd::stream::write::Encoder<'static, Vec<u8>>>,
    last_key: Option<Vec<u8>>,
    count: u64,
    raw_bytes: u64,
    digest: StateDigest,
}

impl Default for SnapshotWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotWriter {
    /// A writer with no items yet.
    #[must_use]
    pub fn new() -> Self {
        SnapshotWriter {
            encoder: None,
            last_key: None,
            count: 0,
            raw_bytes: 0,
            digest: StateDigest::empty(),
        }
    }

    /// Adds one `(encoded key, canonical item)` pair. Keys must be strictly increasing.
    pub fn push(&mut self, key: &[u8], item: &[u8]) -> Result<(), SnapshotEncodeError> {
        let index = self.count;
        if let Some(last) = &self.last_key
            && key <= last.as_slice()
        {
            return Err(SnapshotEncodeError::KeysNotIncreasing { index });
        }
        let too_long = [key.len(), item.len()]
            .into_iter()
            .find(|len| *len > MAX_SNAPSHOT_FIELD_BYTES);
        if let Some(len) = too_long {
            return Err(SnapshotEncodeError::FieldTooLong { index, len });
        }
        let record_len = (8 + key.len() + item.len()) as u64;
        if self.raw_bytes + record_len > MAX_SNAPSHOT_BODY_BYTES {
            return Err(SnapshotEncodeError::TooLarge);
        }
        let encoder = self.encoder()?;
        // Both lengths are at most MAX_SNAPSHOT_FIELD_BYTES, which fits a u32.
        for field in [key, item] {
            encoder
                .write_all(&(field.len() as u32).to_le_bytes())
                .and_then(|()| encoder.write_all(field))
                .map_err(|error| SnapshotEncodeError::Compress(error.to_string()))?;
        }
        self.digest.insert_item(key, item);
        self.raw_bytes += record_len;
        self.count += 1;
        let last = self.last_key.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(key);
        Ok(())
    }

    /// Seals the snapshot as the state at `lsn`, whose entry was stamped `timestamp_ms`, and
    /// returns the object's bytes with the digest of the items pushed.
    pub fn finish(
        mut self,
        lsn: Lsn,
        timestamp_ms: u64,
    ) -> Result<(Vec<u8>, StateDigest), SnapshotEncodeError> {
        if lsn == Lsn::ZERO {
            return Err(SnapshotEncodeError::LsnZero);
        }
        self.encoder()?;
        let body = self
            .encoder
            .take()
            .map_or(Ok(Vec::new()), zstd::stream::write::Encoder::finish)
            .map_err(|error| SnapshotEncodeError::Compress(error.to_string()))?;
        let mut fields = Vec::with_capacity(SEAL.fields_len);
        fields.extend_from_slice(&self.count.to_le_bytes());
        fields.extend_from_slice(&lsn.0.to_le_bytes());
        fields.extend_from_slice(&timestamp_ms.to_le_bytes());
        let bytes = sealed::seal(body, &SEAL, &fields, &self.digest);
        Ok((bytes, self.digest))
    }

    fn encoder(
        &mut self,
    ) -> Result<&mut zstd::stream::write::Encoder<'static, Vec<u8>>, SnapshotEncodeError> {
        if self.encoder.is_none() {
            let encoder = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)
                .map_err(|error| SnapshotEncodeError::Compress(error.to_string()))?;
            self.encoder = Some(encoder);
        }
        self.encoder
            .as_mut()
            .ok_or_else(|| SnapshotEncodeError::Compress("no encoder".into()))
    }
}

/// Reads and checks a whole snapshot: footer magic, CRC and version, body length and blake3,
/// LSN not 0, the zstd body, every record, strictly increasing keys, the item count, and that the
/// digest of the items equals the footer's. Memory grows with the items actually read, never
/// with a length or count the object claims.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let mut items = Vec::new();
    let info = read_all(bytes, |item| items.push(item))?;
    Ok(Snapshot {
        lsn: info.lsn,
        timestamp_ms: info.timestamp_ms,
        digest: info.digest,
        items,
    })
}

/// Everything [`decode_snapshot`] checks (seal, body hash, records, the digest of the items
/// against the footer's), without keeping the items.
pub fn check_snapshot(bytes: &[u8]) -> Result<SnapshotInfo, SnapshotError> {
    read_all(bytes, drop)
}

/// Reads every record, handing each to `keep`, and checks the digest of them all.
fn read_all(bytes: &[u8], mut keep: impl FnMut(KeyItem)) -> Result<SnapshotInfo, SnapshotError> {
    let (info, records) = open_snapshot(bytes)?;
    let mut digest = StateDigest::empty();
    let mut updates = digest.updates();
    for record in records {
        let (key, item) = record?;
        updates.insert_item(&key, &item);
        keep((key, item));
    }
    drop(updates);
    if digest != info.digest {
        return Err(SnapshotError::DigestMismatch);
    }
    Ok(info)
}

/// What a snapshot's footer says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The LSN the snapshot reflects.
    pub lsn: Lsn,
    /// When it was taken (ms since the epoch): every entry it reflects is older.
    pub timestamp_ms: u64,
    /// How many items it holds.
    pub item_count: u64,
    /// The state digest of its items.
    pub digest: StateDigest,
}

/// Checks a snapshot's seal and returns its footer and its records as they decompress. The
/// records are checked one by one (length limits, key order, count at the end); the digest of
/// the items is left to the caller, who sees them all.
pub(crate) fn open_snapshot(
    bytes: &[u8],
) -> Result<(SnapshotInfo, SnapshotRecords<'_>), SnapshotError> {
    let opened = sealed::open(bytes, &SEAL)?;
    let info = info_of(opened.fields, opened.digest)?;
    let decoder = zstd::stream::read::Decoder::with_buffer(opened.body)
        .map_err(|error| SnapshotError::Decompress(error.to_string()))?;
    let records = SnapshotRecords {
        decoder,
        expected: info.item_count,
        index: 0,
        offset: 0,
        last_key: None,
        finished: false,
    };
    Ok((info, records))
}

/// Reads the footer of a snapshot object of `object_len` bytes from its last
/// [`SNAPSHOT_FOOTER_LEN`] bytes, without the body (whose hash is not checked). Restores use
/// it to plan before they download a snapshot; without the `network` feature nothing does.
#[cfg_attr(not(feature = "network"), allow(dead_code))]
pub(crate) fn read_snapshot_footer(
    footer: &[u8],
    object_len: u64,
) -> Result<SnapshotInfo, SnapshotError> {
    let read = sealed::read_footer(footer, object_len, &SEAL)?;
    info_of(read.fields, read.digest)
}

fn info_of(fields: &[u8], digest: StateDigest) -> Result<SnapshotInfo, SnapshotError> {
    let info = SnapshotInfo {
        item_count: u64_at(fields, 0),
        lsn: Lsn(u64_at(fields, 8)),
        timestamp_ms: u64_at(fields, 16),
        digest,
    };
    if info.lsn == Lsn::ZERO {
        return Err(SnapshotError::LsnZero);
    }
    Ok(info)
}

/// A snapshot's records as they decompress, each checked; the iterator ends after the last
/// record, or after the first error.
pub(crate) struct SnapshotRecords<'a> {
    decoder: zstd::stream::read::Decoder<'a, &'a [u8]>,
    expected: u64,
    index: u64,
    /// Offset of the next record in the decompressed body.
    offset: u64,
    last_key: Option<Vec<u8>>,
    finished: bool,
}

impl Iterator for SnapshotRecords<'_> {
    type Item = Result<KeyItem, SnapshotError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let record = self.read_record();
        if !matches!(record, Some(Ok(_))) {
            self.finished = true;
        }
        record
    }
}

impl SnapshotRecords<'_> {
    fn read_record(&mut self) -> Option<Result<KeyItem, SnapshotError>> {
        let start = self.offset;
        let truncated = SnapshotError::RecordTruncated {
            index: self.index,
            offset: start,
        };
        let mut len = [0u8; 4];
        match self.fill(&mut len) {
            Err(error) => return Some(Err(error)),
            Ok(0) if self.index == self.expected => return None,
            Ok(0) => {
                return Some(Err(SnapshotError::ItemCountMismatch {
                    footer: self.expected,
                    actual: self.index,
                }));
            }
            Ok(4) => {}
            Ok(_) => return Some(Err(truncated)),
        }
        if self.index == self.expected {
            return Some(Err(SnapshotError::ItemCountMismatch {
                footer: self.expected,
                actual: self.index + 1,
            }));
        }
        Some(self.read_fields(u32::from_le_bytes(len), truncated))
    }

    /// Reads the key (whose length prefix is read) and the item of one record.
    fn read_fields(
        &mut self,
        key_len: u32,
        truncated: SnapshotError,
    ) -> Result<KeyItem, SnapshotError> {
        let key = self.field(key_len, &truncated)?;
        let mut len = [0u8; 4];
        if self.fill(&mut len)? != 4 {
            return Err(truncated);
        }
        let item = self.field(u32::from_le_bytes(len), &truncated)?;
        if let Some(last) = &self.last_key
            && key <= *last
        {
            return Err(SnapshotError::KeysNotIncreasing { index: self.index });
        }
        self.last_key = Some(key.clone());
        self.index += 1;
        Ok((key, item))
    }

    /// Reads a `len`-byte field, growing the buffer only as bytes arrive.
    fn field(&mut self, len: u32, truncated: &SnapshotError) -> Result<Vec<u8>, SnapshotError> {
        if len as usize > MAX_SNAPSHOT_FIELD_BYTES {
            return Err(SnapshotError::FieldTooLong {
                index: self.index,
                len: u64::from(len),
            });
        }
        let mut field = Vec::new();
        (&mut self.decoder)
            .take(u64::from(len))
            .read_to_end(&mut field)
            .map_err(|error| SnapshotError::Decompress(error.to_string()))?;
        self.advance(field.len())?;
        if field.len() != len as usize {
            return Err(truncated.clone());
        }
        Ok(field)
    }

    /// Reads into `buf` until it is full or the body ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, SnapshotError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.decoder.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(SnapshotError::Decompress(error.to_string())),
            }
        }
        self.advance(filled)?;
        Ok(filled)
    }

    fn advance(&mut self, read: usize) -> Result<(), SnapshotError> {
        self.offset += read as u64;
        if self.offset > MAX_SNAPSHOT_BODY_BYTES {
            return Err(SnapshotError::BodyTooLarge);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
