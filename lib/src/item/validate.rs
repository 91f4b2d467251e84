//! DynamoDB's item rules: sizes, set contents, nesting depth and key attributes.
//!
//! Sizes follow DynamoDB's documented rules (see [`attribute_value_size`]); they decide the
//! 400 KB item limit, not how many bytes ddb stores.

use base64::Engine;

use super::error::{ItemError, KeyRole};
use super::number::Number;
use super::value::{AttributeValue, Item};

/// Largest item DynamoDB accepts: 400 KB = 409,600 bytes by [`item_size`].
pub const MAX_ITEM_SIZE_BYTES: usize = 400 * 1024;
/// Deepest nesting of maps and lists: a map or list directly in an item is at level 1, a
/// container inside it at level 2, and so on up to this level.
pub const MAX_NESTING_DEPTH: usize = 32;
/// Longest partition key value in bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// Longest sort key value in bytes.
pub const MAX_SORT_KEY_BYTES: usize = 1024;

/// Size of a number by DynamoDB's rule: one byte per two significant digits (rounded up) plus
/// one byte. Zero counts as one digit, so it takes 2 bytes.
pub fn number_size(number: &Number) -> usize {
    let digits = number.digits().len().max(1);
    digits.div_ceil(2) + 1
}

/// Size of a value by DynamoDB's documented rules:
/// - `S`: UTF-8 length; `B`: byte length; `N`: [`number_size`];
/// - `SS`, `NS`, `BS`: the sum of their elements' sizes;
/// - `NULL`, `BOOL`: 1 byte;
/// - `L`: 3 bytes + for each element 1 byte plus its size;
/// - `M`: 3 bytes + for each entry 1 byte plus its name's UTF-8 length plus its value's size.
pub fn attribute_value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => number_size(number),
        AttributeValue::B(bytes) => bytes.len(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(number_size).sum(),
        AttributeValue::Bs(set) => set.iter().map(Vec::len).sum(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, value)| 1 + name.len() + attribute_value_size(value))
                .sum::<usize>()
        }
        AttributeValue::L(list) => {
            3 + list
                .iter()
                .map(|value| 1 + attribute_value_size(value))
                .sum::<usize>()
        }
        AttributeValue::Null | AttributeValue::Bool(_) => 1,
    }
}

/// Size of one top-level attribute: its name's UTF-8 length plus its value's size.
pub fn attribute_size(name: &str, value: &AttributeValue) -> usize {
    name.len() + attribute_value_size(value)
}

/// Size of an item: the sum of [`attribute_size`] over its attributes.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| attribute_size(name, value))
        .sum()
}

/// Checks every DynamoDB rule that applies to an item regardless of its table: attribute names
/// non-empty, sets non-empty and free of duplicates, nesting at most [`MAX_NESTING_DEPTH`]
/// levels, size at most [`MAX_ITEM_SIZE_BYTES`]. Empty strings and binaries are allowed outside
/// keys. Key attributes are checked separately by [`validate_key_value`].
pub fn validate_item(item: &Item) -> Result<(), ItemError> {
    for (name, value) in item {
        if name.is_empty() {
            return Err(ItemError::EmptyAttributeName);
        }
        validate_value(value, 0)?;
    }
    let size = item_size(item);
    if size > MAX_ITEM_SIZE_BYTES {
        return Err(ItemError::ItemTooLarge {
            size,
            max: MAX_ITEM_SIZE_BYTES,
        });
    }
    Ok(())
}

/// Checks one value; `enclosing` is the number of maps and lists around it.
fn validate_value(value: &AttributeValue, enclosing: usize) -> Result<(), ItemError> {
    match value {
        AttributeValue::Ss(set) => check_set("string", set, |s| s.clone()),
        AttributeValue::Ns(set) => check_set("number", set, Number::to_string),
        AttributeValue::Bs(set) => check_set("binary", set, |b| {
            base64::engine::general_purpose::STANDARD.encode(b)
        }),
        AttributeValue::M(map) => {
            check_depth(enclosing)?;
            map.values()
                .try_for_each(|inner| validate_value(inner, enclosing + 1))
        }
        AttributeValue::L(list) => {
            check_depth(enclosing)?;
            list.iter()
                .try_for_each(|inner| validate_value(inner, enclosing + 1))
        }
        AttributeValue::S(_)
        | AttributeValue::N(_)
        | AttributeValue::B(_)
        | AttributeValue::Null
        | AttributeValue::Bool(_) => Ok(()),
    }
}

/// Fails when a container with `enclosing` containers around it would exceed the nesting limit.
pub(crate) fn check_depth(enclosing: usize) -> Result<(), ItemError> {
    if enclosing >= MAX_NESTING_DEPTH {
        return Err(ItemError::TooDeeplyNested {
            max: MAX_NESTING_DEPTH,
        });
    }
    Ok(())
}

fn check_set<T: Ord>(
    set_kind: &'static str,
    set: &[T],
    show: impl Fn(&T) -> String,
) -> Result<(), ItemError> {
    if set.is_empty() {
        return Err(ItemError::EmptySet { set_kind });
    }
    // Number equality is numeric because numbers are stored normalised.
    let mut sorted: Vec<&T> = set.iter().collect();
    sorted.sort_unstable();
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(ItemError::DuplicateInSet {
            element: show(pair[0]),
        });
    }
    Ok(())
}

/// Checks a key attribute value: type S, N or B; S and B non-empty; at most
/// [`MAX_PARTITION_KEY_BYTES`] (partition key) or [`MAX_SORT_KEY_BYTES`] (sort key) bytes, where a
/// string counts its UTF-8 bytes, a binary its bytes and a number its [`number_size`].
pub fn validate_key_value(role: KeyRole, value: &AttributeValue) -> Result<(), ItemError> {
    let size = match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::B(bytes) => bytes.len(),
        AttributeValue::N(number) => number_size(number),
        other => {
            return Err(ItemError::KeyTypeNotScalar {
                role,
                actual: other.type_key(),
            });
        }
    };
    if size == 0 {
        return Err(ItemError::EmptyKeyValue { role });
    }
    let max = match role {
        KeyRole::Partition => MAX_PARTITION_KEY_BYTES,
        KeyRole::Sort => MAX_SORT_KEY_BYTES,
    };
    if size > max {
        return Err(ItemError::KeyTooLong { role, size, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    fn one(name: &str, value: AttributeValue) -> Item {
        Item::from([(name.to_owned(), value)])
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        assert_eq!(number_size(&num("0")), 2);
        assert_eq!(number_size(&num("7")), 2);
        assert_eq!(number_size(&num("12")), 2);
        assert_eq!(number_size(&num("123")), 3);
        assert_eq!(number_size(&num("1.5e100")), 2);
        assert_eq!(
            attribute_size("name", &AttributeValue::S("héllo".into())),
            4 + 6
        );
        assert_eq!(attribute_value_size(&AttributeValue::Null), 1);
        assert_eq!(attribute_value_size(&AttributeValue::L(vec![])), 3);
        // 3 overhead + (1 + 1 name + 1 bool) + (1 + 2 name + 2 string)
        let map = AttributeValue::M(
            [
                ("a".to_owned(), AttributeValue::Bool(true)),
                ("bb".to_owned(), AttributeValue::S("xy".into())),
            ]
            .into(),
        );
        assert_eq!(attribute_value_size(&map), 3 + 3 + 5);
        let set = AttributeValue::Ss(vec!["ab".into(), "c".into()]);
        assert_eq!(attribute_value_size(&set), 3);
    }

    #[test]
    fn rejects_empty_and_duplicate_sets() {
        let empty = one("s", AttributeValue::Ns(vec![]));
        assert_eq!(
            validate_item(&empty),
            Err(ItemError::EmptySet { set_kind: "number" })
        );
        let duplicate = one(
            "s",
            AttributeValue::Ns(vec![num("1"), num("2"), num("1.0")]),
        );
        assert_eq!(
            validate_item(&duplicate),
            Err(ItemError::DuplicateInSet {
                element: "1".into()
            })
        );
        let nested = one(
            "m",
            AttributeValue::L(vec![AttributeValue::Bs(vec![vec![1], vec![1]])]),
        );
        assert!(validate_item(&nested).is_err());
        // Empty strings and binaries are fine outside keys.
        let empties = Item::from([
            ("s".to_owned(), AttributeValue::S(String::new())),
            ("b".to_owned(), AttributeValue::B(vec![])),
        ]);
        assert_eq!(validate_item(&empties), Ok(()));
        assert_eq!(
            validate_item(&one("", AttributeValue::Null)),
            Err(ItemError::EmptyAttributeName)
        );
    }

    #[test]
    fn limits_nesting_to_32_levels() {
        let mut value = AttributeValue::Null;
        for _ in 0..32 {
            value = AttributeValue::M([("k".to_owned(), value)].into());
        }
        assert_eq!(validate_item(&one("a", value.clone())), Ok(()));
        let too_deep = one("a", AttributeValue::L(vec![value]));
        assert_eq!(
            validate_item(&too_deep),
            Err(ItemError::TooDeeplyNested { max: 32 })
        );
    }

    #[test]
    fn limits_item_size_to_400_kb() {
        let fits = one("a", AttributeValue::B(vec![0; MAX_ITEM_SIZE_BYTES - 1]));
        assert_eq!(validate_item(&fits), Ok(()));
        let too_big = one("ab", AttributeValue::B(vec![0; MAX_ITEM_SIZE_BYTES - 1]));
        assert_eq!(
            validate_item(&too_big),
            Err(ItemError::ItemTooLarge {
                size: MAX_ITEM_SIZE_BYTES + 1,
                max: MAX_ITEM_SIZE_BYTES
            })
        );
    }

    #[test]
    fn checks_key_values() {
        let role = KeyRole::Sort;
        assert_eq!(
            validate_key_value(role, &AttributeValue::Bool(true)),
            Err(ItemError::KeyTypeNotScalar {
                role,
                actual: "BOOL"
            })
        );
        assert_eq!(
            validate_key_value(role, &AttributeValue::S(String::new())),
            Err(ItemError::EmptyKeyValue { role })
        );
        assert!(validate_key_value(KeyRole::Partition, &AttributeValue::N(num("0"))).is_ok());
        assert!(validate_key_value(role, &AttributeValue::B(vec![1; 1024])).is_ok());
        assert_eq!(
            validate_key_value(role, &AttributeValue::B(vec![1; 1025])),
            Err(ItemError::KeyTooLong {
                role,
                size: 1025,
                max: 1024
            })
        );
    }
}
