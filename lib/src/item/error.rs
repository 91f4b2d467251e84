//! [`ItemError`]: why an item, a key or a piece of DynamoDB JSON is invalid.

use std::fmt;

use super::number::NumberError;

/// Which key attribute a key check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// The partition (hash) key.
    Partition,
    /// The sort (range) key.
    Sort,
}

impl KeyRole {
    /// DynamoDB's message for a key value over its size limit, word for word (including the
    /// missing space in "limit of2048", which clients may match on).
    #[must_use]
    pub fn too_long_message(self) -> &'static str {
        match self {
            KeyRole::Partition => {
                "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
            }
            KeyRole::Sort => {
                "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
            }
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyRole::Partition => "partition key",
            KeyRole::Sort => "sort key",
        })
    }
}

/// A DynamoDB validation failure. Messages paraphrase DynamoDB's `ValidationException` texts so
/// the protocol layer can return them as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// A number is malformed or out of range.
    #[error(transparent)]
    InvalidNumber(#[from] NumberError),
    /// A set (`SS`, `NS` or `BS`) has no elements.
    #[error("One or more parameter values were invalid: An {set_kind} set may not be empty")]
    EmptySet {
        /// `"string"`, `"number"` or `"binary"`.
        set_kind: &'static str,
    },
    /// A set holds the same element twice (numbers compared numerically).
    #[error(
        "One or more parameter values were invalid: Input collection contains duplicates: {element}"
    )]
    DuplicateInSet {
        /// The repeated element, as text (binary as base64).
        element: String,
    },
    /// Maps and lists nest deeper than allowed.
    #[error("Nesting Levels have exceeded supported limits")]
    TooDeeplyNested {
        /// The limit.
        max: usize,
    },
    /// The item is larger than 400 KB by DynamoDB's size rules.
    #[error("Item size has exceeded the maximum allowed size")]
    ItemTooLarge {
        /// The item's size as computed by [`item_size`](super::item_size).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A top-level attribute name is empty.
    #[error("One or more parameter values were invalid: An attribute name may not be empty")]
    EmptyAttributeName,
    /// A key attribute is not of type S, N or B.
    #[error(
        "One or more parameter values were invalid: the {role} must be of type S, N or B, not {actual}"
    )]
    KeyTypeNotScalar {
        /// Which key.
        role: KeyRole,
        /// The DynamoDB type key of the value given.
        actual: &'static str,
    },
    /// A key attribute is an empty string or empty binary.
    #[error(
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string or binary value ({role})"
    )]
    EmptyKeyValue {
        /// Which key.
        role: KeyRole,
    },
    /// A key attribute is longer than its limit (2048 bytes partition, 1024 bytes sort).
    #[error("{}", role.too_long_message())]
    KeyTooLong {
        /// Which key.
        role: KeyRole,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// DynamoDB JSON that does not describe an attribute value or item.
    #[error("{0}")]
    InvalidJson(String),
}
