//! Query key conditions validate against the key schema into a partition value and an
//! optional sort key condition.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ddb::expr::{ExprError, ExpressionScope, KeyCondition, SortKeyCondition};
use ddb::item::{AttributeValue, Item};

fn parse(expression: &str, sort_key: Option<&str>) -> Result<KeyCondition, ExprError> {
    let names = BTreeMap::from([("#sk".to_owned(), "sk".to_owned())]);
    let values = Item::from([
        (":p".to_owned(), AttributeValue::S("user#1".into())),
        (":a".to_owned(), AttributeValue::N(1.into())),
        (":b".to_owned(), AttributeValue::N(9.into())),
        (":s".to_owned(), AttributeValue::S("2024-".into())),
    ]);
    let mut scope = ExpressionScope::new(&names, &values);
    scope.parse_key_condition(expression, "pk", sort_key)
}

#[test]
fn supported_shapes_become_key_conditions() {
    let p = AttributeValue::S("user#1".into());
    let a = AttributeValue::N(1.into());
    let b = AttributeValue::N(9.into());
    let s = AttributeValue::S("2024-".into());
    let cases: Vec<(&str, Option<SortKeyCondition>)> = vec![
        ("pk = :p", None),
        ("(pk = :p)", None),
        (":p = pk", None),
        (
            "pk = :p AND sk = :a",
            Some(SortKeyCondition::Equal(a.clone())),
        ),
        (
            "pk = :p AND sk < :a",
            Some(SortKeyCondition::Less(a.clone())),
        ),
        (
            "pk = :p AND sk <= :a",
            Some(SortKeyCondition::LessOrEqual(a.clone())),
        ),
        (
            "pk = :p AND #sk > :a",
            Some(SortKeyCondition::Greater(a.clone())),
        ),
        (
            "sk >= :a AND pk = :p",
            Some(SortKeyCondition::GreaterOrEqual(a.clone())),
        ),
        (
            ":a < sk AND pk = :p",
            Some(SortKeyCondition::Greater(a.clone())),
        ),
        (
            "pk = :p and sk between :a and :b",
            Some(SortKeyCondition::Between(a.clone(), b.clone())),
        ),
        (
            "pk = :p AND begins_with(sk, :s)",
            Some(SortKeyCondition::BeginsWith(s)),
        ),
    ];
    for (expression, sort) in cases {
        assert_eq!(
            parse(expression, Some("sk")).unwrap_or_else(|e| panic!("{expression}: {e}")),
            KeyCondition {
                partition_value: p.clone(),
                sort,
            },
            "{expression}"
        );
    }
}

#[test]
fn unsupported_shapes_get_dynamodb_errors() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            "sk = :a",
            Some("sk"),
            "Query condition missed key schema element: pk",
        ),
        (
            "extra = :a",
            None,
            "Query condition missed key schema element: pk",
        ),
        (
            "pk = :p AND extra = :a",
            Some("sk"),
            "Query condition missed key schema element: sk",
        ),
        (
            "pk = :p AND extra = :a",
            None,
            "Query key condition not supported",
        ),
        ("pk < :p", Some("sk"), "Query key condition not supported"),
        (
            "pk = :p AND sk = extra",
            Some("sk"),
            "Query key condition not supported",
        ),
        (
            "pk = :p AND sk.x = :a",
            Some("sk"),
            "Query key condition not supported",
        ),
        (
            "pk = :p AND pk = :p",
            Some("sk"),
            "KeyConditionExpressions must only contain one condition per key",
        ),
        (
            "pk = :p AND sk > :a AND sk < :b",
            Some("sk"),
            "KeyConditionExpressions must only contain one condition per key",
        ),
        (
            "pk = :p OR sk = :a",
            Some("sk"),
            "Invalid operator used in KeyConditionExpression: OR",
        ),
        (
            "NOT pk = :p",
            Some("sk"),
            "Invalid operator used in KeyConditionExpression: NOT",
        ),
        (
            "pk IN (:p)",
            Some("sk"),
            "Invalid operator used in KeyConditionExpression: IN",
        ),
        (
            "pk = :p AND sk <> :a",
            Some("sk"),
            "Invalid operator used in KeyConditionExpression: <>",
        ),
        (
            "pk = :p AND attribute_exists(sk)",
            Some("sk"),
            "Invalid operator used in KeyConditionExpression: attribute_exists",
        ),
        (
            "pk = :p AND begins_with(sk, :a)",
            Some("sk"),
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
        ),
    ];
    for &(expression, sort_key, message) in cases {
        assert_eq!(
            parse(expression, sort_key).unwrap_err().to_string(),
            message,
            "{expression}"
        );
    }
}
