//! The order-preserving key encoding: `table id ‖ partition key ‖ sort key`.
//!
//! Within one table and partition key, the bytewise order of encoded keys is DynamoDB's sort-key
//! order (numbers numerically, strings by UTF-8 bytes, binaries bytewise, a proper prefix first),
//! so a byte-range scan is a Query. Every key attribute encoding is prefix-free, so all keys of
//! one partition key lie in the one contiguous range starting with [`partition_prefix`].

use super::error::{ItemError, KeyRole};
use super::ordered::{
    OrderedDecodeError, decode_escaped, decode_number, encode_escaped, encode_number,
};
use super::validate::validate_key_value;
use super::value::AttributeValue;

/// Type tag of a string key attribute.
const KEY_TAG_S: u8 = 0x01;
/// Type tag of a number key attribute.
const KEY_TAG_N: u8 = 0x02;
/// Type tag of a binary key attribute.
const KEY_TAG_B: u8 = 0x03;

/// A key split back into its parts by [`decode_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedKey {
    /// The table the key belongs to.
    pub table_id: u64,
    /// The partition key value (S, N or B).
    pub partition_key: AttributeValue,
    /// The sort key value, for tables that have one.
    pub sort_key: Option<AttributeValue>,
}

/// Why bytes are not an encoded key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyDecodeError {
    /// Fewer than 8 bytes: no table id.
    #[error("key shorter than its 8-byte table id")]
    MissingTableId,
    /// A key attribute's type tag is not 0x01 (S), 0x02 (N) or 0x03 (B).
    #[error("unknown key attribute type tag 0x{tag:02x} at offset {offset}")]
    UnknownTag {
        /// The tag byte.
        tag: u8,
        /// Its offset.
        offset: usize,
    },
    /// The input ended where a key attribute was expected.
    #[error("key truncated at offset {offset}")]
    Truncated {
        /// Where the attribute should start.
        offset: usize,
    },
    /// A key attribute's body is malformed.
    #[error("invalid key attribute at offset {offset}: {reason}")]
    InvalidAttribute {
        /// Where the attribute's body starts.
        offset: usize,
        /// What is wrong.
        reason: OrderedDecodeError,
    },
    /// A string key attribute that is not UTF-8.
    #[error("string key attribute at offset {offset} is not UTF-8")]
    InvalidUtf8 {
        /// Where the attribute's body starts.
        offset: usize,
    },
    /// The decoded value breaks a key rule (empty, too long).
    #[error(transparent)]
    InvalidKey(#[from] ItemError),
    /// Bytes after the sort key.
    #[error("{count} trailing bytes after the sort key")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

/// The 8-byte big-endian table id that starts every key of the table: all of a table's keys lie
/// in the range starting with it.
pub fn table_prefix(table_id: u64) -> [u8; 8] {
    table_id.to_be_bytes()
}

/// Appends the ordered encoding of one key attribute after checking it with
/// [`validate_key_value`].
fn encode_key_attribute(
    role: KeyRole,
    value: &AttributeValue,
    out: &mut Vec<u8>,
) -> Result<(), ItemError> {
    validate_key_value(role, value)?;
    match value {
        AttributeValue::S(text) => {
            out.push(KEY_TAG_S);
            encode_escaped(text.as_bytes(), out);
        }
        AttributeValue::N(number) => {
            out.push(KEY_TAG_N);
            encode_number(number, out);
        }
        AttributeValue::B(bytes) => {
            out.push(KEY_TAG_B);
            encode_escaped(bytes, out);
        }
        // validate_key_value admits only S, N and B.
        other => {
            return Err(ItemError::KeyTypeNotScalar {
                role,
                actual: other.type_key(),
            });
        }
    }
    Ok(())
}

/// The bytes every key with this table and partition key starts with: table id then the encoded
/// partition key. Keys of one partition key form exactly the range of byte strings with this
/// prefix (see [`prefix_successor`] for its end), ordered by sort key.
pub fn partition_prefix(
    table_id: u64,
    partition_key: &AttributeValue,
) -> Result<Vec<u8>, ItemError> {
    let mut out = table_prefix(table_id).to_vec();
    encode_key_attribute(KeyRole::Partition, partition_key, &mut out)?;
    Ok(out)
}

/// The bytes every key starts with whose sort key is a string (or binary) beginning with
/// `sort_prefix`: what `begins_with(sk, prefix)` scans. The prefix is escaped like a key value
/// but not terminated, so every longer value, and the value equal to it, starts with these
/// bytes. Only S and B prefixes exist.
pub fn sort_key_prefix(
    table_id: u64,
    partition_key: &AttributeValue,
    sort_prefix: &AttributeValue,
) -> Result<Vec<u8>, ItemError> {
    let mut out = partition_prefix(table_id, partition_key)?;
    let (tag, bytes) = match sort_prefix {
        AttributeValue::S(text) => (KEY_TAG_S, text.as_bytes()),
        AttributeValue::B(bytes) => (KEY_TAG_B, bytes.as_slice()),
        other => {
            return Err(ItemError::KeyTypeNotScalar {
                role: KeyRole::Sort,
                actual: other.type_key(),
            });
        }
    };
    out.push(tag);
    encode_escaped(bytes, &mut out);
    // Drop the terminator `00 01` that encode_escaped appends.
    out.truncate(out.len() - 2);
    Ok(out)
}

/// Encodes a full key: [`partition_prefix`] followed by the encoded sort key, if any. Both key
/// values are checked with [`validate_key_value`].
pub fn encode_key(
    table_id: u64,
    partition_key: &AttributeValue,
    sort_key: Option<&AttributeValue>,
) -> Result<Vec<u8>, ItemError> {
    let mut out = partition_prefix(table_id, partition_key)?;
    if let Some(sort_key) = sort_key {
        encode_key_attribute(KeyRole::Sort, sort_key, &mut out)?;
    }
    Ok(out)
}

/// The smallest byte string greater than every string that starts with `prefix`: the exclusive
/// end of a prefix range scan. `None` when no such string exists (the prefix is empty or all
/// `0xFF`), meaning the range is unbounded above.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&byte| byte != 0xFF)?;
    let mut end = prefix[..=keep].to_vec();
    end[keep] += 1;
    Some(end)
}

/// Decodes one key attribute at `offset`; returns it and the offset after it.
fn decode_key_attribute(
    bytes: &[u8],
    offset: usize,
    role: KeyRole,
) -> Result<(AttributeValue, usize), KeyDecodeError> {
    let tag = *bytes
        .get(offset)
        .ok_or(KeyDecodeError::Truncated { offset })?;
    let body = offset + 1;
    let rest = &bytes[body..];
    let invalid = |reason| KeyDecodeError::InvalidAttribute {
        offset: body,
        reason,
    };
    let (value, used) = match tag {
        KEY_TAG_S => {
            let (raw, used) = decode_escaped(rest).map_err(invalid)?;
            let text =
                String::from_utf8(raw).map_err(|_| KeyDecodeError::InvalidUtf8 { offset: body })?;
            (AttributeValue::S(text), used)
        }
        KEY_TAG_N => {
            let (number, used) = decode_number(rest).map_err(invalid)?;
            (AttributeValue::N(number), used)
        }
        KEY_TAG_B => {
            let (raw, used) = decode_escaped(rest).map_err(invalid)?;
            (AttributeValue::B(raw), used)
        }
        tag => return Err(KeyDecodeError::UnknownTag { tag, offset }),
    };
    validate_key_value(role, &value)?;
    Ok((value, body + used))
}

/// Decodes a key made by [`encode_key`]. Accepts only byte strings `encode_key` can produce:
/// known tags, canonical bodies, valid key values, nothing after the sort key. Never panics.
pub fn decode_key(bytes: &[u8]) -> Result<DecodedKey, KeyDecodeError> {
    let table_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|head| head.try_into().ok())
        .ok_or(KeyDecodeError::MissingTableId)?;
    let table_id = u64::from_be_bytes(table_bytes);
    let (partition_key, after_partition) = decode_key_attribute(bytes, 8, KeyRole::Partition)?;
    if after_partition == bytes.len() {
        return Ok(DecodedKey {
            table_id,
            partition_key,
            sort_key: None,
        });
    }
    let (sort_key, end) = decode_key_attribute(bytes, after_partition, KeyRole::Sort)?;
    if end != bytes.len() {
        return Err(KeyDecodeError::TrailingBytes {
            count: bytes.len() - end,
        });
    }
    Ok(DecodedKey {
        table_id,
        partition_key,
        sort_key: Some(sort_key),
    })
}

/// Maps a partition key to a point of the 64-bit hash space: the first 8 bytes, read big-endian,
/// of the blake3 hash of the partition key's key-attribute encoding (type tag then body, as in
/// [`encode_key`], without the table id). Stable forever: partitions own ranges of this space.
/// Fails if the value is not a valid partition key.
pub fn partition_hash(partition_key: &AttributeValue) -> Result<u64, ItemError> {
    let mut encoded = Vec::new();
    encode_key_attribute(KeyRole::Partition, partition_key, &mut encoded)?;
    let hash = blake3::hash(&encoded);
    let mut first = [0_u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    Ok(u64::from_be_bytes(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Number;

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).unwrap())
    }

    #[test]
    fn key_bytes_match_the_documented_layout() {
        assert_eq!(
            encode_key(7, &s("a"), Some(&n("1"))).unwrap(),
            [
                0, 0, 0, 0, 0, 0, 0, 7, KEY_TAG_S, b'a', 0, 1, KEY_TAG_N, 0x03, 130, 20
            ]
        );
        assert_eq!(
            encode_key(1, &AttributeValue::B(vec![0, 0xFF]), None).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 1, KEY_TAG_B, 0, 0xFF, 0xFF, 0, 1]
        );
    }

    #[test]
    fn round_trips_and_rejects_bad_keys() {
        let key = encode_key(u64::MAX, &n("-12.5"), Some(&s("x\0y"))).unwrap();
        assert_eq!(
            decode_key(&key).unwrap(),
            DecodedKey {
                table_id: u64::MAX,
                partition_key: n("-12.5"),
                sort_key: Some(s("x\0y")),
            }
        );
        assert!(decode_key(&key[..7]).is_err());
        assert!(decode_key(&[key.as_slice(), &[0]].concat()).is_err());
        assert!(encode_key(1, &s(""), None).is_err());
        assert!(encode_key(1, &s("a"), Some(&AttributeValue::B(vec![]))).is_err());
        assert!(encode_key(1, &AttributeValue::Null, None).is_err());
        assert!(encode_key(1, &s(&"x".repeat(2049)), None).is_err());
        assert!(encode_key(1, &s(&"x".repeat(2048)), Some(&s(&"y".repeat(1024)))).is_ok());
        assert!(encode_key(1, &s("a"), Some(&s(&"y".repeat(1025)))).is_err());
        // An empty string key can be spelt in bytes but is not a valid key.
        assert!(decode_key(&[0, 0, 0, 0, 0, 0, 0, 1, KEY_TAG_S, 0, 1]).is_err());
    }

    #[test]
    fn partitions_are_contiguous_ranges() {
        let prefix = partition_prefix(3, &s("a")).unwrap();
        let end = prefix_successor(&prefix).unwrap();
        let inside = encode_key(3, &s("a"), Some(&s("zzz"))).unwrap();
        let other = encode_key(3, &s("a\0"), Some(&s("b"))).unwrap();
        let longer = encode_key(3, &s("ab"), Some(&s("0"))).unwrap();
        assert!(prefix <= inside && inside < end);
        assert!(!other.starts_with(&prefix) && !longer.starts_with(&prefix));
        assert!(!(prefix <= longer && longer < end));
        assert_eq!(prefix_successor(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF]), None);
    }

    #[test]
    fn partition_hash_is_stable() {
        // Pinned: partitions own hash ranges, so this value must never change.
        let mut encoded = vec![KEY_TAG_S];
        encode_escaped(b"user#1", &mut encoded);
        let hash = blake3::hash(&encoded);
        let expected = u64::from_be_bytes(hash.as_bytes()[..8].try_into().unwrap());
        assert_eq!(partition_hash(&s("user#1")).unwrap(), expected);
        assert_ne!(partition_hash(&s("user#1")), partition_hash(&s("user#2")));
        assert_eq!(partition_hash(&n("1.0")), partition_hash(&n("1")));
    }
}

#[cfg(test)]
mod sort_key_prefix_tests {
    use super::*;

    #[test]
    fn begins_with_prefix_covers_exactly_the_matching_sort_keys() {
        let pk = AttributeValue::S("p".into());
        let prefix = sort_key_prefix(7, &pk, &AttributeValue::S("ab".into())).unwrap();
        for (sk, matches) in [
            ("ab", true),
            ("abc", true),
            ("ab\0x", true),
            ("a", false),
            ("ac", false),
            ("b", false),
        ] {
            let key = encode_key(7, &pk, Some(&AttributeValue::S(sk.into()))).unwrap();
            assert_eq!(key.starts_with(&prefix), matches, "{sk:?}");
        }
        let zero = sort_key_prefix(7, &pk, &AttributeValue::B(vec![1, 0])).unwrap();
        let key = encode_key(7, &pk, Some(&AttributeValue::B(vec![1, 0, 5]))).unwrap();
        assert!(key.starts_with(&zero));
        let other = encode_key(7, &pk, Some(&AttributeValue::B(vec![1, 1]))).unwrap();
        assert!(!other.starts_with(&zero));
    }
}
