//! The canonical item encoding, format version 1: one deterministic byte string per item.
//!
//! Replicas, the archive and the reference replica all hash this form, so it is an on-disk
//! format; `docs/formats.md` describes it byte by byte. Equal items (numbers spelt
//! differently, sets in any order or with repeats) always encode identically, and decoding
//! accepts only what the encoder can produce.

use std::collections::BTreeMap;

use super::number::Number;
use super::ordered::{OrderedDecodeError, decode_number, encode_number};
use super::validate::MAX_NESTING_DEPTH;
use super::value::{AttributeValue, Item};

/// The format version written as the first byte of every encoding.
pub const CANONICAL_FORMAT_VERSION: u8 = 1;

/// Most elements reserved up front for a decoded list or set; larger ones grow as they are read,
/// so a hostile count cannot make nested containers reserve far more memory than the input.
const PREALLOCATE_LIMIT: usize = 1024;

const TAG_S: u8 = 0x01;
const TAG_N: u8 = 0x02;
const TAG_B: u8 = 0x03;
const TAG_SS: u8 = 0x04;
const TAG_NS: u8 = 0x05;
const TAG_BS: u8 = 0x06;
const TAG_M: u8 = 0x07;
const TAG_L: u8 = 0x08;
const TAG_NULL: u8 = 0x09;
const TAG_BOOL: u8 = 0x0A;

/// Why bytes are not a canonical item encoding. Each case carries the byte offset where decoding
/// stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalDecodeError {
    /// The first byte is not a known format version (or the input is empty).
    #[error("unsupported canonical item format version {0:?}")]
    UnsupportedVersion(Option<u8>),
    /// The input ended early.
    #[error("canonical item truncated at offset {offset}")]
    Truncated {
        /// Where more bytes were needed.
        offset: usize,
    },
    /// Bytes left over after the item.
    #[error("{count} trailing bytes after the canonical item")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// An unknown type tag.
    #[error("unknown type tag 0x{tag:02x} at offset {offset}")]
    UnknownTag {
        /// The tag byte.
        tag: u8,
        /// Its offset.
        offset: usize,
    },
    /// A varint that is overlong, overflows 64 bits or exceeds the remaining input.
    #[error("invalid length or count at offset {offset}")]
    BadLength {
        /// Where the varint starts.
        offset: usize,
    },
    /// A string or name that is not UTF-8.
    #[error("invalid UTF-8 at offset {offset}")]
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// Map names or set elements not in strictly increasing order (unsorted or repeated).
    #[error("map names or set elements not strictly increasing at offset {offset}")]
    NotStrictlyIncreasing {
        /// The offset of the offending name or element.
        offset: usize,
    },
    /// A malformed number.
    #[error("invalid number at offset {offset}: {reason}")]
    InvalidNumber {
        /// Where the number starts.
        offset: usize,
        /// What is wrong.
        reason: OrderedDecodeError,
    },
    /// A boolean byte other than 0 or 1.
    #[error("invalid boolean byte 0x{byte:02x} at offset {offset}")]
    InvalidBool {
        /// The byte.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// Maps and lists nested more than 32 levels.
    #[error("maps and lists nested more than {MAX_NESTING_DEPTH} levels at offset {offset}")]
    TooDeeplyNested {
        /// The offset of the container that is too deep.
        offset: usize,
    },
}

/// Encodes `item` canonically: version byte, then the item's attributes as a map body.
///
/// Sets are written sorted and without repeats whatever their stored order, so this is a
/// function of the item's DynamoDB meaning. The item should be valid (see
/// [`validate_item`](super::validate_item)); deeper nesting than 32 levels encodes but will not
/// decode.
pub fn encode_item(item: &Item) -> Vec<u8> {
    let mut out = vec![CANONICAL_FORMAT_VERSION];
    encode_map_body(item, &mut out);
    out
}

fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn write_len(len: usize, out: &mut Vec<u8>) {
    write_varint(len as u64, out);
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    write_len(bytes.len(), out);
    out.extend_from_slice(bytes);
}

fn encode_map_body(map: &BTreeMap<String, AttributeValue>, out: &mut Vec<u8>) {
    write_len(map.len(), out);
    // BTreeMap<String, _> iterates in bytewise UTF-8 order.
    for (name, value) in map {
        write_bytes(name.as_bytes(), out);
        encode_value(value, out);
    }
}

/// Sorts byte strings and removes repeats, then writes a count and each one length-prefixed.
fn write_byte_set<'a>(elements: impl Iterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    let mut sorted: Vec<&[u8]> = elements.collect();
    sorted.sort_unstable();
    sorted.dedup();
    write_len(sorted.len(), out);
    for element in sorted {
        write_bytes(element, out);
    }
}

fn encode_value(value: &AttributeValue, out: &mut Vec<u8>) {
    match value {
        AttributeValue::S(text) => {
            out.push(TAG_S);
            write_bytes(text.as_bytes(), out);
        }
        AttributeValue::N(number) => {
            out.push(TAG_N);
            encode_number(number, out);
        }
        AttributeValue::B(bytes) => {
            out.push(TAG_B);
            write_bytes(bytes, out);
        }
        AttributeValue::Ss(set) => {
            out.push(TAG_SS);
            write_byte_set(set.iter().map(String::as_bytes), out);
        }
        AttributeValue::Ns(set) => {
            out.push(TAG_NS);
            // The ordered number encoding sorts numerically and is prefix-free, so sorting the
            // encodings bytewise sorts the numbers and equal numbers have equal encodings.
            let mut encoded: Vec<Vec<u8>> = set
                .iter()
                .map(|number| {
                    let mut bytes = Vec::new();
                    encode_number(number, &mut bytes);
                    bytes
                })
                .collect();
            encoded.sort_unstable();
            encoded.dedup();
            write_len(encoded.len(), out);
            encoded
                .iter()
                .for_each(|bytes| out.extend_from_slice(bytes));
        }
        AttributeValue::Bs(set) => {
            out.push(TAG_BS);
            write_byte_set(set.iter().map(Vec::as_slice), out);
        }
        AttributeValue::M(map) => {
            out.push(TAG_M);
            encode_map_body(map, out);
        }
        AttributeValue::L(list) => {
            out.push(TAG_L);
            write_len(list.len(), out);
            list.iter().for_each(|element| encode_value(element, out));
        }
        AttributeValue::Null => out.push(TAG_NULL),
        AttributeValue::Bool(flag) => {
            out.push(TAG_BOOL);
            out.push(u8::from(*flag));
        }
    }
}

/// Decodes a canonical item encoding. Rejects unknown versions and tags, truncation, trailing
/// bytes, overlong varints, invalid UTF-8, malformed numbers, unsorted or repeated map names and
/// set elements, and nesting deeper than 32 levels. Never panics, and allocates memory in
/// proportion to the input length.
pub fn decode_item(bytes: &[u8]) -> Result<Item, CanonicalDecodeError> {
    match bytes.first() {
        Some(&CANONICAL_FORMAT_VERSION) => {}
        other => return Err(CanonicalDecodeError::UnsupportedVersion(other.copied())),
    }
    let mut reader = Reader { bytes, at: 1 };
    let item = reader.map_body(0)?;
    if reader.at != bytes.len() {
        return Err(CanonicalDecodeError::TrailingBytes {
            count: bytes.len() - reader.at,
        });
    }
    Ok(item)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Result<u8, CanonicalDecodeError> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or(CanonicalDecodeError::Truncated { offset: self.at })?;
        self.at += 1;
        Ok(byte)
    }

    /// Reads a minimal LEB128 varint no larger than the remaining input: every length and count
    /// counts at least one byte per unit still to come.
    fn len(&mut self) -> Result<usize, CanonicalDecodeError> {
        let start = self.at;
        let bad = CanonicalDecodeError::BadLength { offset: start };
        let mut value: u64 = 0;
        for index in 0..10 {
            let byte = self.byte()?;
            let payload = u64::from(byte & 0x7F);
            if index == 9 && payload > 1 {
                return Err(bad);
            }
            value |= payload << (7 * index);
            if byte & 0x80 == 0 {
                // A final zero byte after other bytes is an overlong encoding.
                if byte == 0 && index > 0 {
                    return Err(bad);
                }
                return match usize::try_from(value) {
                    Ok(len) if len <= self.remaining() => Ok(len),
                    _ => Err(bad),
                };
            }
        }
        Err(bad)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], CanonicalDecodeError> {
        let slice = self
            .bytes
            .get(self.at..self.at + len)
            .ok_or(CanonicalDecodeError::Truncated { offset: self.at })?;
        self.at += len;
        Ok(slice)
    }

    fn length_prefixed(&mut self) -> Result<&'a [u8], CanonicalDecodeError> {
        let len = self.len()?;
        self.take(len)
    }

    fn string(&mut self) -> Result<(String, usize), CanonicalDecodeError> {
        let start = self.at;
        let bytes = self.length_prefixed()?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| CanonicalDecodeError::InvalidUtf8 { offset: start })?;
        Ok((text.to_owned(), start))
    }

    fn number(&mut self) -> Result<(Number, usize), CanonicalDecodeError> {
        let start = self.at;
        let (number, used) = decode_number(&self.bytes[start..]).map_err(|reason| {
            CanonicalDecodeError::InvalidNumber {
                offset: start,
                reason,
            }
        })?;
        self.at += used;
        Ok((number, start))
    }

    /// Reads a count and that many elements, each strictly greater than the one before by `key`.
    fn strictly_increasing<T, K: Ord>(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<(T, usize), CanonicalDecodeError>,
        key: impl Fn(&T) -> K,
    ) -> Result<Vec<T>, CanonicalDecodeError> {
        let count = self.len()?;
        let mut elements: Vec<T> = Vec::with_capacity(count.min(PREALLOCATE_LIMIT));
        for _ in 0..count {
            let (next, offset) = element(self)?;
            if elements.last().is_some_and(|last| key(last) >= key(&next)) {
                return Err(CanonicalDecodeError::NotStrictlyIncreasing { offset });
            }
            elements.push(next);
        }
        Ok(elements)
    }

    /// Reads a map body whose values sit inside `enclosing` containers.
    fn map_body(
        &mut self,
        enclosing: usize,
    ) -> Result<BTreeMap<String, AttributeValue>, CanonicalDecodeError> {
        let count = self.len()?;
        let mut map = BTreeMap::new();
        let mut previous: Option<String> = None;
        for _ in 0..count {
            let (name, offset) = self.string()?;
            if previous.as_ref().is_some_and(|last| *last >= name) {
                return Err(CanonicalDecodeError::NotStrictlyIncreasing { offset });
            }
            let value = self.value(enclosing)?;
            previous = Some(name.clone());
            map.insert(name, value);
        }
        Ok(map)
    }

    /// Reads a value that sits inside `enclosing` containers.
    fn value(&mut self, enclosing: usize) -> Result<AttributeValue, CanonicalDecodeError> {
        let offset = self.at;
        let tag = self.byte()?;
        let child_depth = || {
            if enclosing >= MAX_NESTING_DEPTH {
                Err(CanonicalDecodeError::TooDeeplyNested { offset })
            } else {
                Ok(enclosing + 1)
            }
        };
        Ok(match tag {
            TAG_S => AttributeValue::S(self.string()?.0),
            TAG_N => AttributeValue::N(self.number()?.0),
            TAG_B => AttributeValue::B(self.length_prefixed()?.to_vec()),
            TAG_SS => AttributeValue::Ss(self.strictly_increasing(Self::string, |s| s.clone())?),
            TAG_NS => AttributeValue::Ns(self.strictly_increasing(Self::number, |n| n.clone())?),
            TAG_BS => AttributeValue::Bs(self.strictly_increasing(
                |reader| {
                    let start = reader.at;
                    Ok((reader.length_prefixed()?.to_vec(), start))
                },
                |b| b.clone(),
            )?),
            TAG_M => AttributeValue::M(self.map_body(child_depth()?)?),
            TAG_L => {
                let depth = child_depth()?;
                let count = self.len()?;
                let mut list = Vec::with_capacity(count.min(PREALLOCATE_LIMIT));
                for _ in 0..count {
                    list.push(self.value(depth)?);
                }
                AttributeValue::L(list)
            }
            TAG_NULL => AttributeValue::Null,
            TAG_BOOL => {
                let at = self.at;
                match self.byte()? {
                    0 => AttributeValue::Bool(false),
                    1 => AttributeValue::Bool(true),
                    byte => return Err(CanonicalDecodeError::InvalidBool { byte, offset: at }),
                }
            }
            tag => return Err(CanonicalDecodeError::UnknownTag { tag, offset }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect()
    }

    #[test]
    fn encodes_the_documented_bytes() {
        let encoded = encode_item(&item(&[
            ("a", AttributeValue::S("hi".into())),
            ("b", AttributeValue::Bool(true)),
        ]));
        assert_eq!(
            encoded,
            [1, 2, 1, b'a', TAG_S, 2, b'h', b'i', 1, b'b', TAG_BOOL, 1]
        );
        assert_eq!(encode_item(&Item::new()), [1, 0]);
    }

    #[test]
    fn rejects_non_canonical_input() {
        let reject = |bytes: &[u8]| decode_item(bytes).unwrap_err();
        assert_eq!(reject(&[]), CanonicalDecodeError::UnsupportedVersion(None));
        assert_eq!(
            reject(&[2, 0]),
            CanonicalDecodeError::UnsupportedVersion(Some(2))
        );
        assert_eq!(
            reject(&[1, 0, 0]),
            CanonicalDecodeError::TrailingBytes { count: 1 }
        );
        // Overlong varint for the count 0.
        assert!(matches!(
            reject(&[1, 0x80, 0x00]),
            CanonicalDecodeError::BadLength { .. }
        ));
        // Names "b" then "a".
        assert!(matches!(
            reject(&[1, 2, 1, b'b', TAG_NULL, 1, b'a', TAG_NULL]),
            CanonicalDecodeError::NotStrictlyIncreasing { .. }
        ));
        // Repeated set element.
        assert!(matches!(
            reject(&[1, 1, 1, b'a', TAG_SS, 2, 1, b'x', 1, b'x']),
            CanonicalDecodeError::NotStrictlyIncreasing { .. }
        ));
        assert!(matches!(
            reject(&[1, 1, 1, 0xFF, TAG_NULL]),
            CanonicalDecodeError::InvalidUtf8 { .. }
        ));
        assert!(matches!(
            reject(&[1, 1, 1, b'a', 0x0B]),
            CanonicalDecodeError::UnknownTag { .. }
        ));
        assert!(matches!(
            reject(&[1, 1, 1, b'a', TAG_BOOL, 2]),
            CanonicalDecodeError::InvalidBool { .. }
        ));
        // A count larger than the input.
        assert!(matches!(
            reject(&[1, 0xFF, 0xFF, 0xFF, 0x0F]),
            CanonicalDecodeError::BadLength { .. }
        ));
    }

    #[test]
    fn bounds_nesting_depth() {
        let mut value = AttributeValue::Null;
        for _ in 0..32 {
            value = AttributeValue::L(vec![value]);
        }
        let ok = item(&[("a", value.clone())]);
        assert_eq!(decode_item(&encode_item(&ok)).unwrap(), ok);
        let too_deep = item(&[("a", AttributeValue::L(vec![value]))]);
        assert!(matches!(
            decode_item(&encode_item(&too_deep)),
            Err(CanonicalDecodeError::TooDeeplyNested { .. })
        ));
    }
}
