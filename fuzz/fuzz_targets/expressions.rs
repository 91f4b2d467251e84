//! The four expression parsers on arbitrary text, with placeholders from the input; whatever
//! parses is also evaluated or applied to a small item. Errors are fine, panics are not.
//!
//! Input: the first line is the expression. Each further line declares a placeholder:
//! `#name attribute` or `:value {"S": "DynamoDB JSON"}`, added to a few fixed ones.

#![no_main]

use std::collections::BTreeMap;

use ddb::expr::{ExpressionKind, ExpressionScope};
use ddb::item::{AttributeValue, Item, item_from_json_str};
use libfuzzer_sys::fuzz_target;

fn placeholders(lines: std::str::Lines<'_>) -> (BTreeMap<String, String>, Item) {
    let mut names = BTreeMap::from([
        ("#a".to_owned(), "a".to_owned()),
        ("#pk".to_owned(), "pk".to_owned()),
    ]);
    let mut values = Item::from([
        (":n".to_owned(), AttributeValue::N(1.into())),
        (":s".to_owned(), AttributeValue::S("x".into())),
    ]);
    for line in lines {
        let (placeholder, rest) = line.split_once(' ').unwrap_or((line, ""));
        if placeholder.starts_with('#') {
            names.insert(placeholder.to_owned(), rest.to_owned());
        } else if let Ok(mut item) = item_from_json_str(&format!("{{\"v\": {rest}}}")) {
            if let Some(value) = item.remove("v") {
                values.insert(placeholder.to_owned(), value);
            }
        }
    }
    (names, values)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let expression = lines.next().unwrap_or("");
    let (names, values) = placeholders(lines);
    let item = Item::from([
        ("pk".to_owned(), AttributeValue::S("k".into())),
        (
            "a".to_owned(),
            AttributeValue::L(vec![AttributeValue::N(2.into())]),
        ),
        ("b".to_owned(), AttributeValue::S("xy".into())),
    ]);

    let mut scope = ExpressionScope::new(&names, &values);
    if let Ok(condition) = scope.parse_condition(ExpressionKind::Condition, expression) {
        condition.evaluate(Some(&item));
        condition.evaluate(None);
    }
    if let Ok(update) = scope.parse_update(expression, &["pk"]) {
        let _ = update.apply(&item);
        let _ = update.apply(&Item::new());
    }
    if let Ok(projection) = scope.parse_projection(expression) {
        projection.apply(&item);
    }
    let _ = scope.parse_key_condition(expression, "pk", Some("b"));
    let _ = scope.parse_key_condition(expression, "pk", None);
    let _ = scope.check_all_used();
});
