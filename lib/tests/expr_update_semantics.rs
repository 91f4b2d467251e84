//! Update expressions change items the way DynamoDB documents, reject what DynamoDB rejects,
//! and never half-apply.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ddb::expr::{ExprError, ExpressionScope, UpdateExpression};
use ddb::item::{Item, item_from_json_str};

const VALUES: &str = r#"{
    ":one": {"N": "1"}, ":five": {"N": "5"}, ":half": {"N": "0.5"}, ":zero": {"N": "0"},
    ":big": {"N": "99999999999999999999999999999999999999"},
    ":name": {"S": "Bike"}, ":list": {"L": [{"S": "x"}, {"S": "y"}]},
    ":empty": {"L": []}, ":red": {"SS": ["Red"]}, ":redblue": {"SS": ["Red", "Blue"]},
    ":black": {"SS": ["Black"]}, ":ns": {"NS": ["1", "2"]}, ":map": {"M": {"k": {"S": "v"}}}
}"#;

fn parse(expression: &str) -> Result<UpdateExpression, ExprError> {
    let names = BTreeMap::from([
        ("#pr".to_owned(), "ProductReviews".to_owned()),
        ("#name".to_owned(), "name".to_owned()),
    ]);
    let values = item_from_json_str(VALUES).unwrap();
    let mut scope = ExpressionScope::new(&names, &values);
    scope.parse_update(expression, &["Id"])
}

fn item(json: &str) -> Item {
    item_from_json_str(json).unwrap()
}

/// Applies `expression` to `before` and compares with `after` (all DynamoDB JSON).
fn check(before: &str, expression: &str, after: &str) {
    let update = parse(expression).unwrap_or_else(|error| panic!("{expression}: {error}"));
    let updated = update
        .apply(&item(before))
        .unwrap_or_else(|error| panic!("{expression}: {error}"));
    let mut expected = item(after);
    let mut actual = updated;
    ddb::item::canonicalize_item(&mut expected);
    ddb::item::canonicalize_item(&mut actual);
    assert_eq!(actual, expected, "{expression}");
}

#[test]
fn set_assigns_values_paths_arithmetic_and_functions() {
    let base = r#"{"Id": {"N": "1"}, "Price": {"N": "100"}, "Tags": {"L": [{"S": "a"}]},
                  "Info": {"M": {"Nested": {"M": {}}}}}"#;
    check(
        base,
        "SET Title = :name",
        r#"{"Id": {"N": "1"}, "Price": {"N": "100"}, "Tags": {"L": [{"S": "a"}]},
            "Info": {"M": {"Nested": {"M": {}}}}, "Title": {"S": "Bike"}}"#,
    );
    check(
        base,
        "SET Price = Price - :five, Saved = Price",
        r#"{"Id": {"N": "1"}, "Price": {"N": "95"}, "Saved": {"N": "100"},
            "Tags": {"L": [{"S": "a"}]}, "Info": {"M": {"Nested": {"M": {}}}}}"#,
    );
    check(
        base,
        "set Price = :half + Price, Info.Nested.Deep = :one",
        r#"{"Id": {"N": "1"}, "Price": {"N": "100.5"}, "Tags": {"L": [{"S": "a"}]},
            "Info": {"M": {"Nested": {"M": {"Deep": {"N": "1"}}}}}}"#,
    );
    check(
        base,
        "SET Tags = list_append(Tags, :list), Visits = if_not_exists(Visits, :zero) + :one",
        r#"{"Id": {"N": "1"}, "Price": {"N": "100"}, "Visits": {"N": "1"},
            "Tags": {"L": [{"S": "a"}, {"S": "x"}, {"S": "y"}]}, "Info": {"M": {"Nested": {"M": {}}}}}"#,
    );
    check(
        base,
        "SET Tags = list_append(:list, Tags), Price = if_not_exists(Price, :zero)",
        r#"{"Id": {"N": "1"}, "Price": {"N": "100"},
            "Tags": {"L": [{"S": "x"}, {"S": "y"}, {"S": "a"}]}, "Info": {"M": {"Nested": {"M": {}}}}}"#,
    );
    // Index past the end appends; an existing index is replaced.
    check(
        base,
        "SET Tags[5] = :name",
        r#"{"Id": {"N": "1"}, "Price": {"N": "100"}, "Tags": {"L": [{"S": "a"}, {"S": "Bike"}]},
            "Info": {"M": {"Nested": {"M": {}}}}}"#,
    );
    check(
        base,
        "SET Tags[0] = :map",
        r#"{"Id": {"N": "1"}, "Price": {"N": "100"}, "Tags": {"L": [{"M": {"k": {"S": "v"}}}]},
            "Info": {"M": {"Nested": {"M": {}}}}}"#,
    );
    // Operands read the item before the update: a swap.
    check(
        r#"{"A": {"N": "1"}, "B": {"S": "b"}}"#,
        "SET A = B, B = A",
        r#"{"A": {"S": "b"}, "B": {"N": "1"}}"#,
    );
    // Reserved words go through placeholders.
    check(r#"{}"#, "SET #name = :name", r#"{"name": {"S": "Bike"}}"#);
}

#[test]
fn remove_add_and_delete_follow_documented_behaviour() {
    check(
        r#"{"Id": {"N": "1"}, "A": {"S": "x"}, "L": {"L": [{"N": "0"}, {"N": "1"}, {"N": "2"}, {"N": "3"}]}}"#,
        "REMOVE A, L[1], L[3], Nope, L[9]",
        r#"{"Id": {"N": "1"}, "L": {"L": [{"N": "0"}, {"N": "2"}]}}"#,
    );
    check(
        r#"{"M": {"M": {"a": {"N": "1"}, "b": {"N": "2"}}}}"#,
        "REMOVE M.a, M.zzz",
        r#"{"M": {"M": {"b": {"N": "2"}}}}"#,
    );
    check(
        r#"{"Hits": {"N": "5"}, "Color": {"SS": ["Black"]}}"#,
        "ADD Hits :one, Color :redblue, Fresh :five, Nums :ns",
        r#"{"Hits": {"N": "6"}, "Color": {"SS": ["Black", "Blue", "Red"]}, "Fresh": {"N": "5"},
            "Nums": {"NS": ["1", "2"]}}"#,
    );
    check(
        r#"{"Color": {"SS": ["Black", "Red", "Blue"]}, "Single": {"SS": ["Red"]}}"#,
        "DELETE Color :redblue, Single :red, Absent :red",
        r#"{"Color": {"SS": ["Black"]}}"#,
    );
    // Clauses in any order, keywords in any case.
    check(
        r#"{"A": {"N": "1"}, "B": {"N": "2"}, "S": {"SS": ["Red", "Black"]}}"#,
        "delete S :black remove B add A :five set C = :one",
        r#"{"A": {"N": "6"}, "C": {"N": "1"}, "S": {"SS": ["Red"]}}"#,
    );
}

fn apply_error(before: &str, expression: &str) -> String {
    let update = parse(expression).unwrap_or_else(|error| panic!("{expression}: {error}"));
    update.apply(&item(before)).unwrap_err().to_string()
}

#[test]
fn runtime_errors_match_dynamodb_and_leave_nothing_applied() {
    let before = r#"{"Id": {"N": "1"}, "S": {"S": "text"}, "N": {"N": "1"}, "Colors": {"SS": ["Red"]},
                     "Dict": {"M": {}}}"#;
    let incorrect = "An operand in the update expression has an incorrect data type";
    let invalid_path = "The document path provided in the update expression is invalid for update";
    let cases: &[(&str, &str)] = &[
        ("SET A = S + :one", incorrect),
        ("SET A = list_append(S, :list)", incorrect),
        ("ADD S :one", incorrect),
        ("ADD Colors :ns", incorrect),
        ("DELETE N :red", incorrect),
        ("SET Nope.Child = :one", invalid_path),
        ("SET S.Child = :one", invalid_path),
        ("SET Dict.a.b = :one", invalid_path),
        ("SET N[0] = :one", invalid_path),
        ("REMOVE Nope.Child", invalid_path),
        ("ADD Nope.Hits :one", invalid_path),
        (
            "SET A = Nope",
            "The provided expression refers to an attribute that does not exist in the item",
        ),
        (
            "SET A = :big + :half",
            "Attempting to store more than 38 significant digits in a Number",
        ),
    ];
    for &(expression, message) in cases {
        assert_eq!(apply_error(before, expression), message, "{expression}");
    }
    // A failing later action leaves the input untouched (apply works on a copy).
    let original = item(before);
    let update = parse("SET Fresh = :one, Bad = S + :one").unwrap();
    assert!(update.apply(&original).is_err());
    assert_eq!(original, item(before));
}

#[test]
fn parse_errors_for_overlaps_keys_clauses_and_operand_types() {
    let cases: &[(&str, &str)] = &[
        (
            "SET a = :one REMOVE a.b",
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
        ),
        (
            "SET a.b = :one, a.b = :five",
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, b]",
        ),
        (
            "SET l[1] = :one ADD l :ns",
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [l, [1]], path two: [l]",
        ),
        (
            "SET a.b = :one, a[0] = :one",
            "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [0]]",
        ),
        (
            "SET Id = :one",
            "One or more parameter values were invalid: Cannot update attribute Id. This attribute is part of the key",
        ),
        (
            "REMOVE Id",
            "One or more parameter values were invalid: Cannot update attribute Id. This attribute is part of the key",
        ),
        (
            "SET a = :one SET b = :one",
            "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;",
        ),
        (
            "ADD a :name",
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND",
        ),
        (
            "DELETE a :one",
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND",
        ),
        (
            "SET a = b + :name",
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S",
        ),
        (
            "SET a = list_append(b, :one)",
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: N",
        ),
        (
            "SET a = if_not_exists(:one, :one)",
            "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists",
        ),
        (
            "SET a = attribute_exists(b)",
            "Invalid UpdateExpression: The function is not allowed in an update expression; function: attribute_exists",
        ),
        (
            "SET name = :one",
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: name",
        ),
        (
            "SET a = :one + :one + :one",
            "Invalid UpdateExpression: Syntax error; token: \"+\", near: \":one + :one\"",
        ),
        (
            "SET",
            "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \"SET\"",
        ),
        (
            "UPSERT a = :one",
            "Invalid UpdateExpression: Syntax error; token: \"UPSERT\", near: \"UPSERT a\"",
        ),
        (
            "   ",
            "Invalid UpdateExpression: The expression can not be empty;",
        ),
    ];
    for &(expression, message) in cases {
        assert_eq!(
            parse(expression).unwrap_err().to_string(),
            message,
            "{expression}"
        );
    }
}
