//! Byte layout of segment headers and record frames (see `docs/formats.md`).
//!
//! A segment file is a 32-byte header followed by records. A record is an 8-byte frame header
//! (body length, masked crc32c of the body, both u32 little-endian) and the entry body of
//! [`Entry::encode_into`].

use super::{Entry, EntryDecodeError, Lsn};

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"DDBWALSG";
/// The segment format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the segment header in bytes.
pub const HEADER_LEN: usize = 32;
/// Length of a record's frame header (body length + checksum) in bytes.
pub const FRAME_HEADER_LEN: usize = 8;
/// Smallest possible entry body: the fixed fields of a `Noop`.
pub const MIN_BODY_LEN: usize = 8 + 8 + 4 + 8 + 1;
/// Largest entry body a record may hold. Items are at most 400 KB; the bound keeps a damaged
/// length field from making a reader allocate gigabytes.
pub const MAX_BODY_LEN: usize = 16 * 1024 * 1024;

const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// The checksum stored in a frame: crc32c of the body, masked (rotated right by 15 bits plus a
/// constant) so that an all-zero region never looks like a valid empty record and a checksum of
/// data that itself embeds checksums stays well distributed.
#[must_use]
pub fn masked_crc(body: &[u8]) -> u32 {
    let crc = crc32c::crc32c(body);
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// Encodes a segment header for a segment whose first entry has LSN `first_lsn`.
#[must_use]
pub fn encode_header(first_lsn: Lsn) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // 12..16 flags and 24..28 reserved stay zero in version 1.
    h[16..24].copy_from_slice(&first_lsn.0.to_le_bytes());
    let crc = crc32c::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a segment header, returning the first LSN it declares.
pub fn decode_header(bytes: &[u8]) -> Result<Lsn, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "header is {} bytes, expected {HEADER_LEN}",
            bytes.len()
        ));
    }
    let stored = u32::from_le_bytes(array(&bytes[28..32]));
    if crc32c::crc32c(&bytes[..28]) != stored {
        return Err("header checksum mismatch".to_string());
    }
    if bytes[0..8] != SEGMENT_MAGIC {
        return Err("bad magic bytes".to_string());
    }
    let version = u32::from_le_bytes(array(&bytes[8..12]));
    if version != FORMAT_VERSION {
        return Err(format!("unsupported format version {version}"));
    }
    let flags = u32::from_le_bytes(array(&bytes[12..16]));
    if flags != 0 || bytes[24..28] != [0; 4] {
        return Err(format!("unknown header flags {flags:#x}"));
    }
    Ok(Lsn(u64::from_le_bytes(array(&bytes[16..24]))))
}

/// Appends `entry` as one record (frame header + body) to `out`.
pub fn encode_frame(entry: &Entry, out: &mut Vec<u8>) -> Result<(), usize> {
    let len = entry.encoded_len();
    if len > MAX_BODY_LEN {
        return Err(len);
    }
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    entry.encode_into(out);
    let crc = masked_crc(&out[start + FRAME_HEADER_LEN..]);
    // `len <= MAX_BODY_LEN` fits in u32.
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A parsed frame header: the declared body length and checksum.
#[derive(Clone, Copy, Debug)]
pub struct FrameHeader {
    /// Declared body length.
    pub body_len: usize,
    /// Declared masked crc32c of the body.
    pub crc: u32,
}

impl FrameHeader {
    /// Parses the 8 header bytes of a frame.
    #[must_use]
    pub fn parse(bytes: [u8; FRAME_HEADER_LEN]) -> FrameHeader {
        FrameHeader {
            body_len: u32::from_le_bytes(array(&bytes[0..4])) as usize,
            crc: u32::from_le_bytes(array(&bytes[4..8])),
        }
    }

    /// Whether the declared length could belong to a record this format writes.
    #[must_use]
    pub fn plausible(&self) -> bool {
        (MIN_BODY_LEN..=MAX_BODY_LEN).contains(&self.body_len)
    }
}

/// How one record at a given offset of a segment looks.
#[derive(Debug)]
pub enum FrameRead {
    /// A complete record with a matching checksum that decodes to an entry.
    Good {
        /// The decoded entry.
        entry: Entry,
        /// Total record length (frame header + body).
        len: usize,
    },
    /// The file ends inside the record (or inside its frame header).
    Short,
    /// The length is implausible or the checksum does not match: a torn write or damage.
    BadChecksum(String),
    /// The checksum matches but the body does not decode: damage or a newer writer.
    Undecodable(EntryDecodeError),
}

/// Reads the record starting at `offset` of `buf` (a whole segment image).
#[must_use]
pub fn read_frame(buf: &[u8], offset: usize) -> FrameRead {
    let rest = buf.get(offset..).unwrap_or(&[]);
    let Some(head) = rest.get(..FRAME_HEADER_LEN) else {
        return FrameRead::Short;
    };
    let header = FrameHeader::parse(array(head));
    if !header.plausible() {
        return FrameRead::BadChecksum(format!("implausible record length {}", header.body_len));
    }
    let Some(body) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + header.body_len) else {
        return FrameRead::Short;
    };
    check_body(header, body)
}

/// Verifies a body against its frame header and decodes it.
#[must_use]
pub fn check_body(header: FrameHeader, body: &[u8]) -> FrameRead {
    if masked_crc(body) != header.crc {
        return FrameRead::BadChecksum("record checksum mismatch".to_string());
    }
    match Entry::decode(body) {
        Ok(entry) => FrameRead::Good {
            entry,
            len: FRAME_HEADER_LEN + body.len(),
        },
        Err(e) => FrameRead::Undecodable(e),
    }
}

/// Looks for any offset after `from` where a good record with an LSN above `last_good` starts. Used to tell a torn tail (nothing valid follows) from corruption.
///
/// `from` is the offset of the bad record, which would carry `last_good + 1`. Candidates are
/// filtered by their LSN before any checksum is computed, which keeps the scan linear: in a dense
/// log the record at `offset` carries `last_good + k` where the `k - 1` records before it fit
/// between `from` and `offset`, so `k <= (offset - from) / (FRAME_HEADER_LEN + MIN_BODY_LEN) + 1`.
#[must_use]
pub fn find_valid_frame_after(buf: &[u8], from: usize, last_good: Lsn) -> Option<usize> {
    let min_record = FRAME_HEADER_LEN + MIN_BODY_LEN;
    let mut offset = from + 1;
    while offset + min_record <= buf.len() {
        let max_records = ((offset - from) / min_record) as u64 + 1;
        let lsn_at = offset + FRAME_HEADER_LEN;
        let lsn = u64::from_le_bytes(array(&buf[lsn_at..lsn_at + 8]));
        if lsn > last_good.0
            && lsn - last_good.0 <= max_records
            && matches!(read_frame(buf, offset), FrameRead::Good { .. })
        {
            return Some(offset);
        }
        offset += 1;
    }
    None
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::{Ballot, Operation};

    fn entry(lsn: u64) -> Entry {
        Entry {
            lsn: Lsn(lsn),
            ballot: Ballot { round: 1, node: 2 },
            timestamp_ms: 3,
            op: Operation::Put {
                key: b"k".to_vec(),
                item: vec![7; 10],
            },
        }
    }

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = encode_header(Lsn(77));
        assert_eq!(decode_header(&h), Ok(Lsn(77)));
        for i in 0..HEADER_LEN {
            let mut bad = h;
            bad[i] ^= 0x10;
            assert!(decode_header(&bad).is_err(), "flip at byte {i} accepted");
        }
        assert!(decode_header(&h[..HEADER_LEN - 1]).is_err());
    }

    #[test]
    fn golden_frame_layout() {
        let e = entry(5);
        let mut out = Vec::new();
        encode_frame(&e, &mut out).unwrap();
        let body = e.encode();
        assert_eq!(&out[0..4], &(body.len() as u32).to_le_bytes());
        let expected_crc = crc32c::crc32c(&body)
            .rotate_right(15)
            .wrapping_add(0xa282_ead8);
        assert_eq!(&out[4..8], &expected_crc.to_le_bytes());
        assert_eq!(&out[8..], &body[..]);
        assert!(
            matches!(read_frame(&out, 0), FrameRead::Good { entry, len } if entry == e && len == out.len())
        );
    }

    #[test]
    fn zeros_are_never_a_record() {
        let zeros = vec![0u8; 200];
        assert!(matches!(read_frame(&zeros, 0), FrameRead::BadChecksum(_)));
        assert_ne!(masked_crc(&[]), 0);
        assert_eq!(find_valid_frame_after(&zeros, 0, Lsn(0)), None);
    }

    #[test]
    fn every_cut_of_a_frame_is_short_and_every_flip_is_detected() {
        let mut out = Vec::new();
        encode_frame(&entry(9), &mut out).unwrap();
        for cut in 0..out.len() {
            assert!(matches!(
                read_frame(&out[..cut], 0),
                FrameRead::Short | FrameRead::BadChecksum(_)
            ));
        }
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 1;
            assert!(
                !matches!(read_frame(&bad, 0), FrameRead::Good { .. }),
                "flip at {i}"
            );
        }
    }

    #[test]
    fn finds_a_good_frame_behind_garbage() {
        let mut buf = vec![0xAB; 13];
        let start = buf.len();
        encode_frame(&entry(4), &mut buf).unwrap();
        assert_eq!(find_valid_frame_after(&buf, 0, Lsn(3)), Some(start));
        // An LSN that cannot follow the last good one is not evidence.
        assert_eq!(find_valid_frame_after(&buf, 0, Lsn(4)), None);
        assert_eq!(find_valid_frame_after(&buf, 0, Lsn(0)), None);
    }
}
