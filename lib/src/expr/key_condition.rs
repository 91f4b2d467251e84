//! `KeyConditionExpression` for Query: validated into the partition key value and an optional
//! sort key condition, which the node turns into a key range.

use crate::item::AttributeValue;

use super::ast::{Comparator, Condition, Operand, PathElement};
use super::error::ExprError;

/// A validated key condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCondition {
    /// The value the partition key must equal.
    pub partition_value: AttributeValue,
    /// The condition on the sort key, if any.
    pub sort: Option<SortKeyCondition>,
}

/// The condition on the sort key of a Query. Comparisons use DynamoDB's sort order (numbers
/// numerically, strings and binaries bytewise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKeyCondition {
    /// `sk = v`
    Equal(AttributeValue),
    /// `sk < v`
    Less(AttributeValue),
    /// `sk <= v`
    LessOrEqual(AttributeValue),
    /// `sk > v`
    Greater(AttributeValue),
    /// `sk >= v`
    GreaterOrEqual(AttributeValue),
    /// `sk BETWEEN low AND high` (inclusive)
    Between(AttributeValue, AttributeValue),
    /// `begins_with(sk, prefix)`, only for strings and binaries.
    BeginsWith(AttributeValue),
}

/// One key attribute constrained by one leaf of the condition.
struct KeyLeaf {
    name: String,
    condition: SortKeyCondition,
}

fn top_level_name(operand: &Operand) -> Result<Option<&str>, ExprError> {
    match operand {
        Operand::Path(path) => match path.elements() {
            [PathElement::Attribute(name)] => Ok(Some(name)),
            _ => Err(ExprError::KeyConditionNotSupported),
        },
        Operand::Value(_) => Ok(None),
        Operand::Size(_) => Err(ExprError::InvalidKeyConditionOperator {
            operator: "size".into(),
        }),
    }
}

fn leaf(condition: &Condition) -> Result<KeyLeaf, ExprError> {
    match condition {
        Condition::Compare {
            comparator,
            left,
            right,
        } => {
            // Either side may hold the attribute; normalise to `name <op> value`.
            let (name, comparator, value) =
                match (top_level_name(left)?, top_level_name(right)?, left, right) {
                    (Some(name), None, _, Operand::Value(value)) => (name, *comparator, value),
                    (None, Some(name), Operand::Value(value), _) => {
                        (name, comparator.mirrored(), value)
                    }
                    _ => return Err(ExprError::KeyConditionNotSupported),
                };
            let value = value.clone();
            let condition = match comparator {
                Comparator::Equal => SortKeyCondition::Equal(value),
                Comparator::Less => SortKeyCondition::Less(value),
                Comparator::LessOrEqual => SortKeyCondition::LessOrEqual(value),
                Comparator::Greater => SortKeyCondition::Greater(value),
                Comparator::GreaterOrEqual => SortKeyCondition::GreaterOrEqual(value),
                Comparator::NotEqual => {
                    return Err(ExprError::InvalidKeyConditionOperator {
                        operator: "<>".into(),
                    });
                }
            };
            Ok(KeyLeaf {
                name: name.to_owned(),
                condition,
            })
        }
        Condition::Between { operand, low, high } => match (top_level_name(operand)?, low, high) {
            (Some(name), Operand::Value(low), Operand::Value(high)) => Ok(KeyLeaf {
                name: name.to_owned(),
                condition: SortKeyCondition::Between(low.clone(), high.clone()),
            }),
            _ => Err(ExprError::KeyConditionNotSupported),
        },
        Condition::BeginsWith(operand, prefix) => match (top_level_name(operand)?, prefix) {
            (Some(name), Operand::Value(prefix)) => Ok(KeyLeaf {
                name: name.to_owned(),
                condition: SortKeyCondition::BeginsWith(prefix.clone()),
            }),
            _ => Err(ExprError::KeyConditionNotSupported),
        },
        other => Err(ExprError::InvalidKeyConditionOperator {
            operator: operator_name(other).into(),
        }),
    }
}

fn operator_name(condition: &Condition) -> &'static str {
    match condition {
        Condition::Or(..) => "OR",
        Condition::Not(_) => "NOT",
        Condition::In { .. } => "IN",
        Condition::AttributeExists(_) => "attribute_exists",
        Condition::AttributeNotExists(_) => "attribute_not_exists",
        Condition::AttributeType(..) => "attribute_type",
        Condition::Contains(..) => "contains",
        Condition::And(..) => "AND",
        Condition::Compare { .. } => "=",
        Condition::Between { .. } => "BETWEEN",
        Condition::BeginsWith(..) => "begins_with",
    }
}

/// Flattens `a AND b AND …` into its leaves.
fn conjuncts<'c>(condition: &'c Condition, out: &mut Vec<&'c Condition>) {
    match condition {
        Condition::And(left, right) => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        other => out.push(other),
    }
}

/// Validates a parsed key condition against the key schema: exactly one `=` on
/// `partition_key`, at most one condition on `sort_key`, nothing else.
pub(crate) fn key_condition_from(
    condition: &Condition,
    partition_key: &str,
    sort_key: Option<&str>,
) -> Result<KeyCondition, ExprError> {
    let mut parts = Vec::new();
    conjuncts(condition, &mut parts);
    let mut partition_value = None;
    let mut sort = None;
    let mut unknown = false;
    let leaves = parts.into_iter().map(leaf).collect::<Result<Vec<_>, _>>()?;
    if leaves.len() > 2 {
        return Err(ExprError::KeyConditionRepeated);
    }
    for KeyLeaf { name, condition } in leaves {
        if name == partition_key {
            let SortKeyCondition::Equal(value) = condition else {
                return Err(ExprError::KeyConditionNotSupported);
            };
            if partition_value.replace(value).is_some() {
                return Err(ExprError::KeyConditionRepeated);
            }
        } else if Some(name.as_str()) == sort_key {
            if let SortKeyCondition::BeginsWith(prefix) = &condition
                && !matches!(prefix, AttributeValue::S(_) | AttributeValue::B(_))
            {
                return Err(ExprError::IncorrectOperandType {
                    kind: super::ExpressionKind::KeyCondition,
                    function: "begins_with".into(),
                    operand_type: prefix.type_key().into(),
                });
            }
            if sort.replace(condition).is_some() {
                return Err(ExprError::KeyConditionRepeated);
            }
        } else {
            unknown = true;
        }
    }
    if unknown {
        // A leaf on a non-key attribute means a key schema element went unmatched.
        let missed = match (&partition_value, sort_key) {
            (None, _) => partition_key,
            (Some(_), Some(sort_key)) => sort_key,
            (Some(_), None) => return Err(ExprError::KeyConditionNotSupported),
        };
        return Err(ExprError::MissingKeySchemaElement {
            name: missed.to_owned(),
        });
    }
    let partition_value = partition_value.ok_or_else(|| ExprError::MissingKeySchemaElement {
        name: partition_key.to_owned(),
    })?;
    Ok(KeyCondition {
        partition_value,
        sort,
    })
}
