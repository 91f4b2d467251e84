//! Hostile expression strings get errors, never panics or stack overflows; syntax errors carry
//! DynamoDB's message shape.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ddb::expr::{ExprError, ExpressionKind, ExpressionScope, MAX_EXPRESSION_NESTING};
use ddb::item::{AttributeValue, Item};
use proptest::prelude::*;

fn placeholders() -> (BTreeMap<String, String>, Item) {
    let names = BTreeMap::from([
        ("#a".to_owned(), "a".to_owned()),
        ("#b".to_owned(), "b".to_owned()),
    ]);
    let values = Item::from([
        (":n".to_owned(), AttributeValue::N(1.into())),
        (":s".to_owned(), AttributeValue::S("x".into())),
        (":l".to_owned(), AttributeValue::L(vec![])),
        (":ss".to_owned(), AttributeValue::Ss(vec!["x".into()])),
    ]);
    (names, values)
}

/// Parses `text` as every kind of expression, evaluating or applying whatever parses.
fn parse_everything(text: &str) {
    let (names, values) = placeholders();
    let item = Item::from([
        (
            "a".to_owned(),
            AttributeValue::L(vec![AttributeValue::N(2.into())]),
        ),
        ("b".to_owned(), AttributeValue::S("xy".into())),
    ]);
    let mut scope = ExpressionScope::new(&names, &values);
    if let Ok(condition) = scope.parse_condition(ExpressionKind::Condition, text) {
        condition.evaluate(Some(&item));
        condition.evaluate(None);
    }
    if let Ok(update) = scope.parse_update(text, &["pk"]) {
        let _ = update.apply(&item);
    }
    if let Ok(projection) = scope.parse_projection(text) {
        projection.apply(&item);
    }
    let _ = scope.parse_key_condition(text, "a", Some("b"));
    let _ = scope.check_all_used();
}

/// Fragments of the expression languages, so random strings reach deep into the grammar.
const FRAGMENTS: &[&str] = &[
    "a",
    "#a",
    "#b",
    ":n",
    ":s",
    ":l",
    ":ss",
    "#undefined",
    ":undefined",
    "name",
    "(",
    ")",
    "[",
    "]",
    "0",
    "99999999999999999999999",
    ".",
    ",",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "AND",
    "or",
    "NOT",
    "BETWEEN",
    "IN",
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "size",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "if_not_exists",
    "list_append",
    "unknown_fn",
    " ",
    "é",
    "$",
    "#",
    ":",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_strings_never_panic(text in "\\PC{0,80}") {
        parse_everything(&text);
    }

    #[test]
    fn random_token_soup_never_panics(indexes in prop::collection::vec(0..FRAGMENTS.len(), 0..40)) {
        let text = indexes.iter().map(|&i| FRAGMENTS[i]).collect::<Vec<_>>().join(" ");
        parse_everything(&text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let (names, values) = placeholders();
    let mut scope = ExpressionScope::new(&names, &values);
    for depth in [MAX_EXPRESSION_NESTING + 1, 2000] {
        let parens = format!("{}a = :n{}", "(".repeat(depth), ")".repeat(depth));
        let nots = format!("{}a = :n", "NOT ".repeat(depth));
        let functions = format!(
            "SET a = {}:l{}",
            "list_append(:l, ".repeat(depth),
            ")".repeat(depth)
        );
        for text in [&parens, &nots] {
            let error = scope
                .parse_condition(ExpressionKind::Condition, text)
                .unwrap_err();
            assert!(
                matches!(error, ExprError::TooDeep { .. } | ExprError::TooLong { .. }),
                "{error}"
            );
        }
        let error = scope.parse_update(&functions, &[]).unwrap_err();
        assert!(
            matches!(error, ExprError::TooDeep { .. } | ExprError::TooLong { .. }),
            "{error}"
        );
    }
    // Nesting within the limit parses (one level is taken by each parenthesis pair, and
    // redundant parentheses need something between them).
    let within = format!(
        "{}a = :n{}",
        "NOT (".repeat(MAX_EXPRESSION_NESTING / 2),
        ")".repeat(MAX_EXPRESSION_NESTING / 2)
    );
    assert!(
        scope
            .parse_condition(ExpressionKind::Condition, &within)
            .is_ok()
    );
}

#[test]
fn syntax_errors_name_the_token_and_its_neighbours() {
    let (names, values) = placeholders();
    let mut scope = ExpressionScope::new(&names, &values);
    let cases: &[(ExpressionKind, &str, &str)] = &[
        (
            ExpressionKind::Condition,
            "#a",
            "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"#a\"",
        ),
        (
            ExpressionKind::Condition,
            "#a attribute_not_exists :n",
            "Invalid ConditionExpression: Syntax error; token: \"attribute_not_exists\", near: \"#a attribute_not_exists :n\"",
        ),
        (
            ExpressionKind::Filter,
            "()",
            "Invalid FilterExpression: Syntax error; token: \")\", near: \"()\"",
        ),
        (
            ExpressionKind::Condition,
            "a = = :n",
            "Invalid ConditionExpression: Syntax error; token: \"=\", near: \"= = :n\"",
        ),
        (
            ExpressionKind::Condition,
            "a = :n AND",
            "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"AND\"",
        ),
        (
            ExpressionKind::Condition,
            "a BETWEEN :n OR :n",
            "Invalid ConditionExpression: Syntax error; token: \"OR\", near: \":n OR :n\"",
        ),
        (
            ExpressionKind::Condition,
            "a[x] = :n",
            "Invalid ConditionExpression: Syntax error; token: \"x\", near: \"[x]\"",
        ),
        (
            ExpressionKind::Condition,
            "a = :n)",
            "Invalid ConditionExpression: Syntax error; token: \")\", near: \":n)\"",
        ),
        (
            ExpressionKind::Condition,
            "status = :n",
            "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status",
        ),
        (
            ExpressionKind::Condition,
            "a.Date = :n",
            "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Date",
        ),
    ];
    for &(kind, text, message) in cases {
        assert_eq!(
            scope.parse_condition(kind, text).unwrap_err().to_string(),
            message,
            "{text}"
        );
    }
    let long = format!("a IN ({})", vec![":n"; 1200].join(", "));
    assert_eq!(
        scope
            .parse_condition(ExpressionKind::Condition, &long)
            .unwrap_err()
            .to_string(),
        format!(
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: {}",
            long.len()
        )
    );
}
