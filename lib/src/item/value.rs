//! The attribute value model: [`AttributeValue`] and [`Item`].

use std::collections::BTreeMap;

use super::number::Number;

/// An item: attribute names mapped to values. `BTreeMap` keeps names in bytewise UTF-8 order,
/// which is the order of the canonical encoding.
pub type Item = BTreeMap<String, AttributeValue>;

/// One DynamoDB attribute value.
///
/// Equality is structural: sets compare as the vectors they are stored in. Call
/// [`AttributeValue::canonicalize`] (or compare canonical encodings) to compare set contents
/// regardless of order and duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// A UTF-8 string (`S`).
    S(String),
    /// A decimal number (`N`).
    N(Number),
    /// Raw bytes (`B`; base64 in DynamoDB JSON).
    B(Vec<u8>),
    /// A string set (`SS`).
    Ss(Vec<String>),
    /// A number set (`NS`).
    Ns(Vec<Number>),
    /// A binary set (`BS`).
    Bs(Vec<Vec<u8>>),
    /// A map of names to values (`M`).
    M(BTreeMap<String, AttributeValue>),
    /// An ordered list of values (`L`).
    L(Vec<AttributeValue>),
    /// The null value (`NULL`, always `true` on the wire).
    Null,
    /// A boolean (`BOOL`).
    Bool(bool),
}

impl AttributeValue {
    /// The DynamoDB JSON type key of this value: `"S"`, `"N"`, `"B"`, `"SS"`, `"NS"`, `"BS"`,
    /// `"M"`, `"L"`, `"NULL"` or `"BOOL"`.
    pub fn type_key(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Null => "NULL",
            AttributeValue::Bool(_) => "BOOL",
        }
    }

    /// Sorts every set (strings and binaries bytewise, numbers numerically) and removes
    /// duplicates, recursively through maps and lists. Two values that DynamoDB considers equal
    /// are structurally equal after this; it is the form [`decode_item`](super::decode_item)
    /// returns.
    pub fn canonicalize(&mut self) {
        match self {
            AttributeValue::Ss(set) => {
                set.sort_unstable();
                set.dedup();
            }
            AttributeValue::Ns(set) => {
                set.sort_unstable();
                set.dedup();
            }
            AttributeValue::Bs(set) => {
                set.sort_unstable();
                set.dedup();
            }
            AttributeValue::M(map) => canonicalize_item(map),
            AttributeValue::L(list) => list.iter_mut().for_each(AttributeValue::canonicalize),
            AttributeValue::S(_)
            | AttributeValue::N(_)
            | AttributeValue::B(_)
            | AttributeValue::Null
            | AttributeValue::Bool(_) => {}
        }
    }
}

/// Applies [`AttributeValue::canonicalize`] to every attribute of `item`.
pub fn canonicalize_item(item: &mut Item) {
    item.values_mut().for_each(AttributeValue::canonicalize);
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> Self {
        AttributeValue::S(value.to_owned())
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> Self {
        AttributeValue::S(value)
    }
}

impl From<Number> for AttributeValue {
    fn from(value: Number) -> Self {
        AttributeValue::N(value)
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> Self {
        AttributeValue::Bool(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalize_sorts_and_dedups_sets_recursively() {
        let mut value = AttributeValue::L(vec![
            AttributeValue::Ns(vec![
                Number::parse("10").unwrap(),
                Number::parse("2").unwrap(),
                Number::parse("2.0").unwrap(),
            ]),
            AttributeValue::Ss(vec!["b".into(), "a".into(), "b".into()]),
        ]);
        value.canonicalize();
        assert_eq!(
            value,
            AttributeValue::L(vec![
                AttributeValue::Ns(vec![
                    Number::parse("2").unwrap(),
                    Number::parse("10").unwrap()
                ]),
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
            ])
        );
    }
}
