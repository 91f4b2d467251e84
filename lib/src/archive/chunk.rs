//! The WAL chunk format (`.ddbwal.zst`): committed entries, zstd-compressed, and a footer that
//! lets a reader check the object on its own. Byte layout: `docs/formats.md`, "Archive WAL chunk".

use std::io::Read;

use super::sealed::{self, SealError, SealFormat, array, u64_at};
use crate::digest::StateDigest;
use crate::wal::{Entry, EntryDecodeError, Lsn};

/// First bytes of the footer.
pub const CHUNK_MAGIC: [u8; 8] = *b"DDBWALCK";
/// The only footer version this code reads and writes.
pub const CHUNK_VERSION: u32 = 1;
/// Size of the footer: magic, version, entry count, first and last LSN, body length, body hash,
/// state digest, footer CRC.
pub const FOOTER_LEN: usize = SEAL.footer_len();
/// Largest decompressed body a reader accepts, so a corrupt or hostile object cannot make it
/// allocate without bound. The archiver cuts chunks far below this.
pub const MAX_BODY_BYTES: u64 = 1 << 30;
/// zstd level for chunk bodies: zstd's default, a good ratio at low CPU cost.
const ZSTD_LEVEL: i32 = 3;

/// A decoded and fully verified WAL chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The entries, consecutive and non-empty.
    pub entries: Vec<Entry>,
    /// The partition's state digest after applying the last entry.
    pub digest: StateDigest,
}

impl Chunk {
    /// LSN of the first entry.
    #[must_use]
    pub fn first_lsn(&self) -> Lsn {
        self.entries.first().map_or(Lsn::ZERO, |entry| entry.lsn)
    }

    /// LSN of the last entry.
    #[must_use]
    pub fn last_lsn(&self) -> Lsn {
        self.entries.last().map_or(Lsn::ZERO, |entry| entry.lsn)
    }
}

/// Why entries cannot be written as a chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkEncodeError {
    /// A chunk holds at least one entry.
    #[error("a WAL chunk needs at least one entry")]
    Empty,
    /// Entries must carry consecutive LSNs.
    #[error(
        "entry {index} has LSN {found}, expected {expected}: chunk entries must be consecutive"
    )]
    NotConsecutive {
        /// Position of the offending entry.
        index: usize,
        /// The LSN it should have carried.
        expected: Lsn,
        /// The LSN it carries.
        found: Lsn,
    },
    /// LSN 0 is never an entry's.
    #[error("entry LSN 0 is not a log position")]
    LsnZero,
    /// More entries than the footer's u32 count can hold.
    #[error("{0} entries do not fit one chunk")]
    TooManyEntries(usize),
    /// zstd failed to compress.
    #[error("zstd compression failed: {0}")]
    Compress(String),
}

/// Why bytes are not a valid WAL chunk. Each variant names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The footer does not seal the object: length, magic, CRC, version, body length or
    /// body hash.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The body is not a valid zstd frame.
    #[error("body does not decompress: {0}")]
    Decompress(String),
    /// The body decompresses to more than [`MAX_BODY_BYTES`].
    #[error("body decompresses to more than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    /// The footer claims no entries.
    #[error("footer claims an empty chunk")]
    EmptyChunk,
    /// The body ended inside an entry's length prefix or body.
    #[error("decompressed body ends inside entry {index} (offset {offset})")]
    EntryTruncated {
        /// Position of the entry.
        index: usize,
        /// Offset of its length prefix in the decompressed body.
        offset: usize,
    },
    /// An entry's bytes do not decode.
    #[error("entry {index} does not decode: {source}")]
    EntryUndecodable {
        /// Position of the entry.
        index: usize,
        /// What is wrong with it.
        source: EntryDecodeError,
    },
    /// Entries inside the body skip or repeat an LSN.
    #[error("entry {index} has LSN {found}, expected {expected}")]
    EntriesNotConsecutive {
        /// Position of the entry.
        index: usize,
        /// LSN that should follow the previous entry.
        expected: Lsn,
        /// LSN found.
        found: Lsn,
    },
    /// The body holds a different number of entries than the footer says.
    #[error("footer counts {footer} entries, the body holds {actual}")]
    EntryCountMismatch {
        /// Count in the footer.
        footer: u32,
        /// Entries in the body.
        actual: usize,
    },
    /// The first entry's LSN differs from the footer's.
    #[error("footer's first LSN is {footer}, the first entry's is {actual}")]
    FirstLsnMismatch {
        /// First LSN in the footer.
        footer: Lsn,
        /// LSN of the first entry.
        actual: Lsn,
    },
    /// The last entry's LSN differs from the footer's.
    #[error("footer's last LSN is {footer}, the last entry's is {actual}")]
    LastLsnMismatch {
        /// Last LSN in the footer.
        footer: Lsn,
        /// LSN of the last entry.
        actual: Lsn,
    },
}

/// How chunks are sealed: the chunk's own footer fields are the entry count (u32), the first
/// and the last LSN (u64 each).
const SEAL: SealFormat = SealFormat {
    magic: CHUNK_MAGIC,
    version: CHUNK_VERSION,
    fields_len: 4 + 8 + 8,
};

/// Writes `entries` (consecutive, non-empty, committed) and the state digest after the last one
/// as a chunk. The result decodes with [`decode_chunk`] to the same entries and digest.
pub fn encode_chunk(entries: &[Entry], digest: &StateDigest) -> Result<Vec<u8>, ChunkEncodeError> {
    let (first, last) = match (entries.first(), entries.last()) {
        (Some(first), Some(last)) => (first.lsn, last.lsn),
        _ => return Err(ChunkEncodeError::Empty),
    };
    if first == Lsn::ZERO {
        return Err(ChunkEncodeError::LsnZero);
    }
    let count = u32::try_from(entries.len())
        .map_err(|_| ChunkEncodeError::TooManyEntries(entries.len()))?;
    let mut raw = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        if let Some(previous) = index.checked_sub(1).map(|at| entries[at].lsn)
            && Some(entry.lsn) != successor(previous)
        {
            return Err(ChunkEncodeError::NotConsecutive {
                index,
                expected: successor(previous).unwrap_or(previous),
                found: entry.lsn,
            });
        }
        let len = u32::try_from(entry.encoded_len())
            .map_err(|_| ChunkEncodeError::TooManyEntries(entries.len()))?;
        raw.extend_from_slice(&len.to_le_bytes());
        entry.encode_into(&mut raw);
    }
    let body = zstd::bulk::compress(&raw, ZSTD_LEVEL)
        .map_err(|error| ChunkEncodeError::Compress(error.to_string()))?;
    let mut fields = Vec::with_capacity(SEAL.fields_len);
    fields.extend_from_slice(&count.to_le_bytes());
    fields.extend_from_slice(&first.0.to_le_bytes());
    fields.extend_from_slice(&last.0.to_le_bytes());
    Ok(sealed::seal(body, &SEAL, &fields, digest))
}

/// The chunk's own footer fields.
struct Footer {
    count: u32,
    first: Lsn,
    last: Lsn,
}

/// Reads and checks a chunk: footer magic, CRC and version, body length and blake3, the zstd
/// body, every entry, their contiguity, and the footer's count and LSN range against them.
pub fn decode_chunk(bytes: &[u8]) -> Result<Chunk, ChunkError> {
    let opened = sealed::open(bytes, &SEAL)?;
    let footer = Footer {
        count: u32::from_le_bytes(array(&opened.fields[..4])),
        first: Lsn(u64_at(opened.fields, 4)),
        last: Lsn(u64_at(opened.fields, 12)),
    };
    if footer.count == 0 {
        return Err(ChunkError::EmptyChunk);
    }
    let raw = decompress(opened.body)?;
    let entries = read_entries(&raw)?;
    check_against_footer(&entries, &footer)?;
    Ok(Chunk {
        entries,
        digest: opened.digest,
    })
}

/// The LSN after `lsn`, or `None` past the last one (`Lsn::next` would overflow: bytes read
/// from an object must never make the reader panic).
pub(crate) fn successor(lsn: Lsn) -> Option<Lsn> {
    lsn.0.checked_add(1).map(Lsn)
}

fn decompress(body: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let decoder = zstd::stream::read::Decoder::with_buffer(body)
        .map_err(|error| ChunkError::Decompress(error.to_string()))?;
    let mut raw = Vec::new();
    decoder
        .take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|error| ChunkError::Decompress(error.to_string()))?;
    if raw.len() as u64 > MAX_BODY_BYTES {
        return Err(ChunkError::BodyTooLarge);
    }
    Ok(raw)
}

fn read_entries(raw: &[u8]) -> Result<Vec<Entry>, ChunkError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut offset = 0;
    while offset < raw.len() {
        let index = entries.len();
        let truncated = ChunkError::EntryTruncated { index, offset };
        let len_bytes = raw.get(offset..offset + 4).ok_or(truncated.clone())?;
        let len = u32::from_le_bytes(array(len_bytes)) as usize;
        let start = offset + 4;
        let entry_bytes = start
            .checked_add(len)
            .and_then(|end| raw.get(start..end))
            .ok_or(truncated)?;
        let entry = Entry::decode(entry_bytes)
            .map_err(|source| ChunkError::EntryUndecodable { index, source })?;
        if let Some(previous) = entries.last()
            && Some(entry.lsn) != successor(previous.lsn)
        {
            return Err(ChunkError::EntriesNotConsecutive {
                index,
                expected: successor(previous.lsn).unwrap_or(previous.lsn),
                found: entry.lsn,
            });
        }
        entries.push(entry);
        offset = start + len;
    }
    Ok(entries)
}

fn check_against_footer(entries: &[Entry], footer: &Footer) -> Result<(), ChunkError> {
    if entries.len() != footer.count as usize {
        return Err(ChunkError::EntryCountMismatch {
            footer: footer.count,
            actual: entries.len(),
        });
    }
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Err(ChunkError::EmptyChunk);
    };
    if first.lsn != footer.first {
        return Err(ChunkError::FirstLsnMismatch {
            footer: footer.first,
            actual: first.lsn,
        });
    }
    if last.lsn != footer.last {
        return Err(ChunkError::LastLsnMismatch {
            footer: footer.last,
            actual: last.lsn,
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wal::{Ballot, Operation};

    /// Entries `first..=last` with a mix of operations.
    pub(crate) fn entries(first: u64, last: u64) -> Vec<Entry> {
        (first..=last)
            .map(|lsn| Entry {
                lsn: Lsn(lsn),
                ballot: Ballot { round: 2, node: 1 },
                timestamp_ms: 1_790_000_000_000_u64.wrapping_add(lsn),
                op: match lsn % 3 {
                    0 => Operation::Delete {
                        key: format!("k{}", lsn.wrapping_sub(1)).into_bytes(),
                    },
                    1 => Operation::Put {
                        key: format!("k{lsn}").into_bytes(),
                        item: vec![lsn as u8; 40],
                    },
                    _ => Operation::Noop,
                },
            })
            .collect()
    }

    pub(crate) fn digest(seed: &str) -> StateDigest {
        StateDigest::of_item(seed.as_bytes(), b"item")
    }

    /// Offsets of footer fields, counted from the footer's start.
    const COUNT_AT: usize = 12;
    const FIRST_AT: usize = 16;
    const LAST_AT: usize = 24;
    const BODY_LEN_AT: usize = 32;

    /// Overwrites a footer field and recomputes the footer CRC, as a buggy writer would.
    fn reseal(chunk: &mut [u8], field_at: usize, value: &[u8]) {
        let start = chunk.len() - FOOTER_LEN;
        chunk[start + field_at..start + field_at + value.len()].copy_from_slice(value);
        let crc = crc32c::crc32c(&chunk[start..chunk.len() - 4]);
        let end = chunk.len();
        chunk[end - 4..].copy_from_slice(&crc.to_le_bytes());
    }

    /// A chunk whose body is `raw` (uncompressed records) and whose footer is consistent with
    /// the body bytes but claims `count`, `first`, `last`.
    fn sealed(raw: &[u8], count: u32, first: u64, last: u64) -> Vec<u8> {
        let mut chunk = encode_chunk(&entries(1, 1), &digest("d")).unwrap();
        let body = zstd::bulk::compress(raw, 3).unwrap();
        let footer_start = chunk.len() - FOOTER_LEN;
        let mut out = body.clone();
        out.extend_from_slice(&chunk.split_off(footer_start));
        reseal(&mut out, COUNT_AT, &count.to_le_bytes());
        reseal(&mut out, FIRST_AT, &first.to_le_bytes());
        reseal(&mut out, LAST_AT, &last.to_le_bytes());
        reseal(&mut out, BODY_LEN_AT, &(body.len() as u64).to_le_bytes());
        reseal(&mut out, 40, blake3::hash(&body).as_bytes());
        out
    }

    fn records(entries: &[Entry]) -> Vec<u8> {
        let mut raw = Vec::new();
        for entry in entries {
            raw.extend_from_slice(&(entry.encoded_len() as u32).to_le_bytes());
            entry.encode_into(&mut raw);
        }
        raw
    }

    #[test]
    fn a_chunk_round_trips_its_entries_and_digest() {
        for (first, last) in [(1, 1), (1, 300), (41, 57), (u64::MAX - 2, u64::MAX)] {
            let written = entries(first, last);
            let bytes = encode_chunk(&written, &digest("state")).unwrap();
            let chunk = decode_chunk(&bytes).unwrap();
            assert_eq!(chunk.entries, written);
            assert_eq!(chunk.digest, digest("state"));
            assert_eq!(
                (chunk.first_lsn(), chunk.last_lsn()),
                (Lsn(first), Lsn(last))
            );
        }
    }

    #[test]
    fn the_body_is_compressed() {
        let written = entries(1, 1000);
        let raw_len = records(&written).len();
        let bytes = encode_chunk(&written, &digest("d")).unwrap();
        assert!(
            bytes.len() - FOOTER_LEN < raw_len / 2,
            "{} compressed bytes for {raw_len} raw",
            bytes.len() - FOOTER_LEN
        );
    }

    #[test]
    fn encoding_rejects_empty_and_non_consecutive_entries() {
        assert_eq!(
            encode_chunk(&[], &digest("d")),
            Err(ChunkEncodeError::Empty)
        );
        let mut gap = entries(5, 8);
        gap.remove(2);
        assert_eq!(
            encode_chunk(&gap, &digest("d")),
            Err(ChunkEncodeError::NotConsecutive {
                index: 2,
                expected: Lsn(7),
                found: Lsn(8)
            })
        );
        let mut repeat = entries(5, 6);
        repeat[1].lsn = Lsn(5);
        assert!(matches!(
            encode_chunk(&repeat, &digest("d")),
            Err(ChunkEncodeError::NotConsecutive { index: 1, .. })
        ));
        assert_eq!(
            encode_chunk(&entries(0, 2), &digest("d")),
            Err(ChunkEncodeError::LsnZero)
        );
    }

    #[test]
    fn every_single_byte_flip_is_rejected() {
        let bytes = encode_chunk(&entries(10, 40), &digest("d")).unwrap();
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] ^= flip;
                assert!(
                    decode_chunk(&damaged).is_err(),
                    "flip {flip:#x} at byte {at} of {} went unnoticed",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = encode_chunk(&entries(10, 40), &digest("d")).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode_chunk(&bytes[..len]).is_err(),
                "truncation to {len} of {} bytes went unnoticed",
                bytes.len()
            );
            assert!(
                decode_chunk(&bytes[bytes.len() - len..]).is_err(),
                "cutting the first {} bytes went unnoticed",
                bytes.len() - len
            );
        }
    }

    #[test]
    fn each_damage_is_named() {
        let bytes = encode_chunk(&entries(10, 20), &digest("d")).unwrap();
        let footer = bytes.len() - FOOTER_LEN;
        assert_eq!(
            decode_chunk(&bytes[..10]),
            Err(ChunkError::Seal(SealError::TooShort { len: 10 }))
        );

        let mut magic = bytes.clone();
        magic[footer] = b'X';
        assert_eq!(
            decode_chunk(&magic),
            Err(ChunkError::Seal(SealError::BadMagic))
        );

        let mut crc = bytes.clone();
        crc[footer + 60] ^= 1;
        assert!(matches!(
            decode_chunk(&crc),
            Err(ChunkError::Seal(SealError::FooterCrcMismatch { .. }))
        ));

        let mut version = bytes.clone();
        reseal(&mut version, 8, &2u32.to_le_bytes());
        assert_eq!(
            decode_chunk(&version),
            Err(ChunkError::Seal(SealError::UnsupportedVersion(2)))
        );

        let mut body = bytes.clone();
        body[0] ^= 1;
        assert_eq!(
            decode_chunk(&body),
            Err(ChunkError::Seal(SealError::BodyHashMismatch))
        );

        let mut body_len = bytes.clone();
        reseal(&mut body_len, BODY_LEN_AT, &1u64.to_le_bytes());
        assert_eq!(
            decode_chunk(&body_len),
            Err(ChunkError::Seal(SealError::BodyLengthMismatch {
                footer: 1,
                actual: footer as u64
            }))
        );

        let mut count = bytes.clone();
        reseal(&mut count, COUNT_AT, &12u32.to_le_bytes());
        assert_eq!(
            decode_chunk(&count),
            Err(ChunkError::EntryCountMismatch {
                footer: 12,
                actual: 11
            })
        );

        let mut empty = bytes.clone();
        reseal(&mut empty, COUNT_AT, &0u32.to_le_bytes());
        assert_eq!(decode_chunk(&empty), Err(ChunkError::EmptyChunk));

        let mut first = bytes.clone();
        reseal(&mut first, FIRST_AT, &9u64.to_le_bytes());
        assert_eq!(
            decode_chunk(&first),
            Err(ChunkError::FirstLsnMismatch {
                footer: Lsn(9),
                actual: Lsn(10)
            })
        );

        let mut last = bytes.clone();
        reseal(&mut last, LAST_AT, &21u64.to_le_bytes());
        assert_eq!(
            decode_chunk(&last),
            Err(ChunkError::LastLsnMismatch {
                footer: Lsn(21),
                actual: Lsn(20)
            })
        );
    }

    #[test]
    fn a_consistent_footer_over_a_bad_body_is_rejected() {
        let mut gap = entries(1, 4);
        gap.remove(1);
        assert_eq!(
            decode_chunk(&sealed(&records(&gap), 3, 1, 4)),
            Err(ChunkError::EntriesNotConsecutive {
                index: 1,
                expected: Lsn(2),
                found: Lsn(3)
            })
        );

        let mut past_the_end = entries(u64::MAX, u64::MAX);
        past_the_end.push(past_the_end[0].clone());
        assert!(matches!(
            decode_chunk(&sealed(&records(&past_the_end), 2, u64::MAX, u64::MAX)),
            Err(ChunkError::EntriesNotConsecutive { index: 1, .. })
        ));

        let mut torn = records(&entries(1, 2));
        torn.truncate(torn.len() - 1);
        assert!(matches!(
            decode_chunk(&sealed(&torn, 2, 1, 2)),
            Err(ChunkError::EntryTruncated { index: 1, .. })
        ));

        let mut bad_tag = records(&entries(1, 1));
        bad_tag[4 + 28] = 99;
        assert!(matches!(
            decode_chunk(&sealed(&bad_tag, 1, 1, 1)),
            Err(ChunkError::EntryUndecodable { index: 0, .. })
        ));

        let mut not_zstd = sealed(&records(&entries(1, 1)), 1, 1, 1);
        let body_len = not_zstd.len() - FOOTER_LEN;
        not_zstd[..body_len].fill(0x55);
        let hash = *blake3::hash(&not_zstd[..body_len]).as_bytes();
        reseal(&mut not_zstd, 40, &hash);
        assert!(matches!(
            decode_chunk(&not_zstd),
            Err(ChunkError::Decompress(_))
        ));
    }
}
