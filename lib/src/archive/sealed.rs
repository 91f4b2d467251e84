//! What WAL chunks and snapshots share: a compressed body followed by a fixed-size footer that
//! seals it, so a reader can check an object on its own.
//!
//! Footer: magic (8 bytes) | version (u32) | the format's own fields | body length (u64) |
//! BLAKE3 of the body (32 bytes) | state digest (2048 bytes) | crc32c of everything before it
//! (u32). Integers are little-endian. `docs/formats.md` ("Archive") has both layouts.

use crate::digest::{DIGEST_BYTES, StateDigest};

/// Bytes of the footer after the format's own fields: body length, body hash, digest, CRC.
const TAIL_LEN: usize = 8 + 32 + DIGEST_BYTES + 4;

/// One sealed object format: its magic, its version and how many bytes its own fields take.
pub(crate) struct SealFormat {
    /// First bytes of the footer.
    pub magic: [u8; 8],
    /// The only footer version this code reads and writes.
    pub version: u32,
    /// Bytes of the format's own fields, between the version and the body length.
    pub fields_len: usize,
}

impl SealFormat {
    /// Size of the whole footer.
    pub const fn footer_len(&self) -> usize {
        8 + 4 + self.fields_len + TAIL_LEN
    }
}

/// Why the footer that seals an archive object (a WAL chunk or a snapshot) does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Shorter than its footer.
    #[error("object is {len} bytes, shorter than its footer")]
    TooShort {
        /// Length of the object.
        len: usize,
    },
    /// The footer does not start with the format's magic (truncated, or another format).
    #[error("footer magic is wrong: truncated or not this kind of object")]
    BadMagic,
    /// The footer's CRC does not match its bytes.
    #[error("footer crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    FooterCrcMismatch {
        /// CRC stored in the footer.
        stored: u32,
        /// CRC of the footer bytes read.
        computed: u32,
    },
    /// A version this code does not read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u32),
    /// The footer's body length differs from the bytes before the footer.
    #[error("footer says the body is {footer} bytes, the object holds {actual}")]
    BodyLengthMismatch {
        /// Body length in the footer.
        footer: u64,
        /// Bytes before the footer.
        actual: u64,
    },
    /// The BLAKE3 of the compressed body differs from the footer's.
    #[error("blake3 of the compressed body does not match the footer")]
    BodyHashMismatch,
}

/// An object whose seal holds: its body, the format's own footer fields and the digest.
pub(crate) struct Opened<'a> {
    /// The (still compressed) body.
    pub body: &'a [u8],
    /// The format's own footer fields, `fields_len` bytes.
    pub fields: &'a [u8],
    /// The state digest in the footer.
    pub digest: StateDigest,
}

/// Appends the footer sealing `body` (compressed bytes) to it.
pub(crate) fn seal(
    mut body: Vec<u8>,
    format: &SealFormat,
    fields: &[u8],
    digest: &StateDigest,
) -> Vec<u8> {
    debug_assert_eq!(fields.len(), format.fields_len);
    let body_len = body.len() as u64;
    let body_hash = blake3::hash(&body);
    let footer_start = body.len();
    body.extend_from_slice(&format.magic);
    body.extend_from_slice(&format.version.to_le_bytes());
    body.extend_from_slice(fields);
    body.extend_from_slice(&body_len.to_le_bytes());
    body.extend_from_slice(body_hash.as_bytes());
    body.extend_from_slice(&digest.to_bytes());
    let crc = crc32c::crc32c(&body[footer_start..]);
    body.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(body.len() - footer_start, format.footer_len());
    body
}

/// Checks an object's seal, in this order: length, magic, footer CRC, version, body length,
/// body hash. Nothing in the body is read beyond hashing it.
pub(crate) fn open<'a>(bytes: &'a [u8], format: &SealFormat) -> Result<Opened<'a>, SealError> {
    let footer_start = bytes
        .len()
        .checked_sub(format.footer_len())
        .ok_or(SealError::TooShort { len: bytes.len() })?;
    let (body, footer) = bytes.split_at(footer_start);
    let read = read_footer(footer, bytes.len() as u64, format)?;
    if blake3::hash(body).as_bytes() != read.body_hash {
        return Err(SealError::BodyHashMismatch);
    }
    Ok(Opened {
        body,
        fields: read.fields,
        digest: read.digest,
    })
}

/// A footer whose magic, CRC, version and body length hold; the body is not checked.
pub(crate) struct FooterRead<'a> {
    /// The format's own footer fields, `fields_len` bytes.
    pub fields: &'a [u8],
    /// The BLAKE3 of the body the footer claims.
    pub body_hash: &'a [u8],
    /// The state digest in the footer.
    pub digest: StateDigest,
}

/// Checks the footer of an object of `object_len` bytes on its own (magic, CRC, version, body
/// length), so a reader can learn a large object's footer fields from its last bytes alone.
/// `footer` must be exactly the footer's bytes.
pub(crate) fn read_footer<'a>(
    footer: &'a [u8],
    object_len: u64,
    format: &SealFormat,
) -> Result<FooterRead<'a>, SealError> {
    let footer_len = format.footer_len();
    if footer.len() != footer_len {
        return Err(SealError::TooShort { len: footer.len() });
    }
    let (magic, rest) = footer.split_at(8);
    if magic != format.magic {
        return Err(SealError::BadMagic);
    }
    let (covered, crc) = footer.split_at(footer_len - 4);
    let stored = u32::from_le_bytes(array(crc));
    let computed = crc32c::crc32c(covered);
    if stored != computed {
        return Err(SealError::FooterCrcMismatch { stored, computed });
    }
    let (version, rest) = rest.split_at(4);
    let version = u32::from_le_bytes(array(version));
    if version != format.version {
        return Err(SealError::UnsupportedVersion(version));
    }
    let (fields, rest) = rest.split_at(format.fields_len);
    let (body_len, rest) = rest.split_at(8);
    let (body_hash, rest) = rest.split_at(32);
    let (digest, _crc) = rest.split_at(DIGEST_BYTES);
    let body_len = u64::from_le_bytes(array(body_len));
    let actual = object_len.saturating_sub(footer_len as u64);
    if body_len != actual {
        return Err(SealError::BodyLengthMismatch {
            footer: body_len,
            actual,
        });
    }
    Ok(FooterRead {
        fields,
        body_hash,
        digest: StateDigest::from_bytes(&array(digest)),
    })
}

/// Copies a slice whose length the caller has fixed into an array.
pub(crate) fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

/// The little-endian `u64` at `at` in `fields` (the caller's layout puts one there).
pub(crate) fn u64_at(fields: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(array(&fields[at..at + 8]))
}
