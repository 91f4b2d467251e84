//! `ExpressionAttributeNames` and `ExpressionAttributeValues`: undefined placeholders are
//! errors, and every entry must be used by some expression of the request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ddb::expr::{ExpressionKind, ExpressionScope, PlaceholderUsage};
use ddb::item::{AttributeValue, Item};

fn names(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn values(keys: &[&str]) -> Item {
    keys.iter()
        .map(|key| ((*key).to_owned(), AttributeValue::S((*key).to_owned())))
        .collect()
}

#[test]
fn undefined_placeholders_are_reported_with_dynamodb_messages() {
    let names = names(&[]);
    let values = values(&[]);
    let mut scope = ExpressionScope::new(&names, &values);
    assert_eq!(
        scope
            .parse_condition(ExpressionKind::Condition, "#x = a")
            .unwrap_err()
            .to_string(),
        "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #x"
    );
    assert_eq!(
        scope
            .parse_update("SET a = :x", &[])
            .unwrap_err()
            .to_string(),
        "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :x"
    );
    assert_eq!(
        scope
            .parse_projection("a.#missing")
            .unwrap_err()
            .to_string(),
        "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: #missing"
    );
}

#[test]
fn usage_is_checked_across_all_expressions_of_a_request() {
    let names = names(&[("#n", "name"), ("#d", "date")]);
    let values = values(&[":a", ":b", ":c"]);

    // Condition uses :a and #n, update uses :b and #d: :c is unused.
    let mut scope = ExpressionScope::new(&names, &values);
    scope
        .parse_condition(ExpressionKind::Condition, "#n = :a")
        .unwrap();
    scope.parse_update("SET #d = :b", &[]).unwrap();
    assert_eq!(
        scope.check_all_used().unwrap_err().to_string(),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:c}"
    );

    // Values all used, names not.
    let mut scope = ExpressionScope::new(&names, &values);
    scope
        .parse_condition(ExpressionKind::Filter, "a IN (:a, :b, :c)")
        .unwrap();
    assert_eq!(
        scope.check_all_used().unwrap_err().to_string(),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#d, #n}"
    );
    scope.parse_projection("#n, #d").unwrap();
    assert!(scope.check_all_used().is_ok());
    assert_eq!(
        scope.usage().names().iter().collect::<Vec<_>>(),
        ["#d", "#n"]
    );

    // Nothing parsed: everything unused, listed sorted.
    let scope = ExpressionScope::new(&names, &values);
    assert_eq!(
        scope.check_all_used().unwrap_err().to_string(),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:a, :b, :c}"
    );
}

#[test]
fn usage_merges_for_handlers_that_parse_separately() {
    let names = names(&[("#n", "n")]);
    let values = values(&[":a", ":b"]);
    let mut first = ExpressionScope::new(&names, &values);
    first.parse_projection("#n").unwrap();
    let mut second = ExpressionScope::new(&names, &values);
    second
        .parse_key_condition("pk = :a AND sk > :b", "pk", Some("sk"))
        .unwrap();
    let mut usage = PlaceholderUsage::default();
    usage.merge(first.usage());
    assert!(usage.check_all_used(&names, &values).is_err());
    usage.merge(second.usage());
    assert!(usage.check_all_used(&names, &values).is_ok());
}
