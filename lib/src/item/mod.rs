//! DynamoDB items: attribute values, validation, DynamoDB JSON, canonical and key encodings.
//!
//! - [`AttributeValue`], [`Item`] and [`Number`]: the value model. Numbers are exact decimals
//!   stored normalised, so `1`, `1.0` and `10E-1` are the same value.
//! - [`validate_item`], [`validate_key_value`], [`item_size`]: DynamoDB's rules.
//! - DynamoDB JSON: `Serialize`/`Deserialize` for [`AttributeValue`], and [`item_to_json`],
//!   [`item_from_json`], [`item_from_json_str`].
//! - [`encode_item`]/[`decode_item`]: the canonical, versioned byte form every replica hashes.
//! - [`encode_key`]/[`decode_key`], [`table_prefix`], [`partition_prefix`]: the order-preserving
//!   key encoding, and [`partition_hash`], which maps a partition key to a partition.
//!
//! The byte formats are described in `docs/formats.md`.

mod canonical;
mod error;
mod json;
mod key;
mod number;
mod ordered;
mod validate;
mod value;

pub use canonical::{CANONICAL_FORMAT_VERSION, CanonicalDecodeError, decode_item, encode_item};
pub use error::{ItemError, KeyRole};
pub use json::{attribute_value_to_json, item_from_json, item_from_json_str, item_to_json};
pub use key::{
    DecodedKey, KeyDecodeError, decode_key, encode_key, partition_hash, partition_prefix,
    prefix_successor, sort_key_prefix, table_prefix,
};
pub use number::{MAX_EXPONENT, MAX_SIGNIFICANT_DIGITS, MIN_EXPONENT, Number, NumberError};
pub use ordered::OrderedDecodeError;
pub use validate::{
    MAX_ITEM_SIZE_BYTES, MAX_NESTING_DEPTH, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES,
    attribute_size, attribute_value_size, item_size, number_size, validate_item,
    validate_key_value,
};
pub use value::{AttributeValue, Item, canonicalize_item};
