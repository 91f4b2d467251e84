//! Evaluating conditions against an item, with DynamoDB's typed comparison semantics.
//!
//! - A missing item behaves as an item without attributes.
//! - Operands of different types are unequal and unordered: `=` is false, `<>` is true, and
//!   `<`, `<=`, `>`, `>=`, `BETWEEN` are false. A missing operand is unequal to everything.
//! - Numbers compare numerically, strings and binaries bytewise; only those three types order.
//! - Sets are equal when they hold the same elements in any order.

use std::cmp::Ordering;

use crate::item::{AttributeValue, Item, Number};

use super::ast::{Comparator, Condition, Operand};
use super::parser::compare_values;
use super::paths::resolve_path;

/// `size(value)` by DynamoDB's rules: UTF-8 bytes of a string, bytes of a binary, elements of
/// a set, list or map. `None` for numbers, booleans and null, which have no size.
pub fn value_size(value: &AttributeValue) -> Option<usize> {
    Some(match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::B(bytes) => bytes.len(),
        AttributeValue::Ss(set) => set.len(),
        AttributeValue::Ns(set) => set.len(),
        AttributeValue::Bs(set) => set.len(),
        AttributeValue::L(list) => list.len(),
        AttributeValue::M(map) => map.len(),
        AttributeValue::N(_) | AttributeValue::Bool(_) | AttributeValue::Null => return None,
    })
}

/// DynamoDB equality: structural, except that sets compare by content.
pub fn values_equal(left: &AttributeValue, right: &AttributeValue) -> bool {
    if left.type_key() != right.type_key() {
        return false;
    }
    match (left, right) {
        (AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_), _)
        | (AttributeValue::M(_) | AttributeValue::L(_), _) => {
            let (mut a, mut b) = (left.clone(), right.clone());
            a.canonicalize();
            b.canonicalize();
            a == b
        }
        _ => left == right,
    }
}

/// An evaluated operand: borrowed from the item or the expression, or computed by `size`.
enum Resolved<'v> {
    Borrowed(&'v AttributeValue),
    Owned(AttributeValue),
}

impl Resolved<'_> {
    fn value(&self) -> &AttributeValue {
        match self {
            Resolved::Borrowed(value) => value,
            Resolved::Owned(value) => value,
        }
    }
}

fn resolve<'v>(operand: &'v Operand, item: Option<&'v Item>) -> Option<Resolved<'v>> {
    match operand {
        Operand::Value(value) => Some(Resolved::Borrowed(value)),
        Operand::Path(path) => item
            .and_then(|item| resolve_path(item, path))
            .map(Resolved::Borrowed),
        Operand::Size(path) => {
            let value = item.and_then(|item| resolve_path(item, path))?;
            let size = value_size(value)?;
            let size = i64::try_from(size).ok()?;
            Some(Resolved::Owned(AttributeValue::N(Number::from(size))))
        }
    }
}

fn compare(
    comparator: Comparator,
    left: Option<&AttributeValue>,
    right: Option<&AttributeValue>,
) -> bool {
    let (Some(left), Some(right)) = (left, right) else {
        return comparator == Comparator::NotEqual;
    };
    match comparator {
        Comparator::Equal => values_equal(left, right),
        Comparator::NotEqual => !values_equal(left, right),
        ordering => match compare_values(left, right) {
            None => false,
            Some(order) => match ordering {
                Comparator::Less => order == Ordering::Less,
                Comparator::LessOrEqual => order != Ordering::Greater,
                Comparator::Greater => order == Ordering::Greater,
                _ => order != Ordering::Less,
            },
        },
    }
}

fn begins_with(value: &AttributeValue, prefix: &AttributeValue) -> bool {
    match (value, prefix) {
        (AttributeValue::S(text), AttributeValue::S(prefix)) => text.starts_with(prefix.as_str()),
        (AttributeValue::B(bytes), AttributeValue::B(prefix)) => bytes.starts_with(prefix),
        _ => false,
    }
}

fn contains(container: &AttributeValue, element: &AttributeValue) -> bool {
    match (container, element) {
        (AttributeValue::S(text), AttributeValue::S(part)) => text.contains(part.as_str()),
        (AttributeValue::B(bytes), AttributeValue::B(part)) => {
            part.is_empty()
                || bytes
                    .windows(part.len())
                    .any(|window| window == part.as_slice())
        }
        (AttributeValue::Ss(set), AttributeValue::S(member)) => set.contains(member),
        (AttributeValue::Ns(set), AttributeValue::N(member)) => set.contains(member),
        (AttributeValue::Bs(set), AttributeValue::B(member)) => set.contains(member),
        (AttributeValue::L(list), member) => list.iter().any(|entry| values_equal(entry, member)),
        _ => false,
    }
}

impl Condition {
    /// Evaluates the condition against `item` (`None`: the item does not exist, so every path
    /// is missing). Evaluation never fails: type mismatches make comparisons false, as in
    /// DynamoDB; every static error was reported when parsing.
    pub fn evaluate(&self, item: Option<&Item>) -> bool {
        match self {
            Condition::Compare {
                comparator,
                left,
                right,
            } => {
                let left = resolve(left, item);
                let right = resolve(right, item);
                compare(
                    *comparator,
                    left.as_ref().map(Resolved::value),
                    right.as_ref().map(Resolved::value),
                )
            }
            Condition::Between { operand, low, high } => {
                let (Some(value), Some(low), Some(high)) = (
                    resolve(operand, item),
                    resolve(low, item),
                    resolve(high, item),
                ) else {
                    return false;
                };
                let above_low = compare_values(value.value(), low.value())
                    .is_some_and(|order| order != Ordering::Less);
                let below_high = compare_values(value.value(), high.value())
                    .is_some_and(|order| order != Ordering::Greater);
                above_low && below_high
            }
            Condition::In {
                operand,
                candidates,
            } => {
                let Some(value) = resolve(operand, item) else {
                    return false;
                };
                candidates.iter().any(|candidate| {
                    resolve(candidate, item)
                        .is_some_and(|candidate| values_equal(value.value(), candidate.value()))
                })
            }
            Condition::AttributeExists(path) => {
                item.and_then(|item| resolve_path(item, path)).is_some()
            }
            Condition::AttributeNotExists(path) => {
                item.and_then(|item| resolve_path(item, path)).is_none()
            }
            Condition::AttributeType(path, code) => item
                .and_then(|item| resolve_path(item, path))
                .is_some_and(|value| code.matches(value)),
            Condition::BeginsWith(value, prefix) => {
                match (resolve(value, item), resolve(prefix, item)) {
                    (Some(value), Some(prefix)) => begins_with(value.value(), prefix.value()),
                    _ => false,
                }
            }
            Condition::Contains(container, element) => {
                match (resolve(container, item), resolve(element, item)) {
                    (Some(container), Some(element)) => {
                        contains(container.value(), element.value())
                    }
                    _ => false,
                }
            }
            Condition::And(left, right) => left.evaluate(item) && right.evaluate(item),
            Condition::Or(left, right) => left.evaluate(item) || right.evaluate(item),
            Condition::Not(inner) => !inner.evaluate(item),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_equality_ignores_order() {
        let a = AttributeValue::Ss(vec!["x".into(), "y".into()]);
        let b = AttributeValue::Ss(vec!["y".into(), "x".into()]);
        assert!(values_equal(&a, &b));
        assert!(!values_equal(&a, &AttributeValue::S("x".into())));
    }

    #[test]
    fn contains_covers_strings_binaries_sets_and_lists() {
        let s = |text: &str| AttributeValue::S(text.into());
        assert!(contains(&s("hello"), &s("ell")));
        assert!(!contains(&s("hello"), &s("z")));
        assert!(contains(
            &AttributeValue::B(vec![1, 2, 3]),
            &AttributeValue::B(vec![2, 3])
        ));
        assert!(contains(&AttributeValue::Ss(vec!["a".into()]), &s("a")));
        assert!(contains(&AttributeValue::L(vec![s("a"), s("b")]), &s("b")));
        assert!(!contains(
            &AttributeValue::Ss(vec!["a".into()]),
            &AttributeValue::N(Number::from(1))
        ));
    }

    #[test]
    fn size_counts_bytes_and_elements() {
        assert_eq!(value_size(&AttributeValue::S("héllo".into())), Some(6));
        assert_eq!(
            value_size(&AttributeValue::L(vec![AttributeValue::Null])),
            Some(1)
        );
        assert_eq!(value_size(&AttributeValue::N(Number::from(5))), None);
    }
}
