//! Projection keeps only the requested paths, preserving nested structure and compacting list
//! elements in index order, as DynamoDB does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ddb::expr::ExpressionScope;
use ddb::item::{Item, item_from_json_str};

const ITEM: &str = r#"{
    "Id": {"N": "1"},
    "Title": {"S": "Book"},
    "Authors": {"L": [{"S": "a0"}, {"S": "a1"}, {"S": "a2"}, {"S": "a3"}]},
    "Info": {"M": {
        "Pages": {"N": "300"},
        "Dims": {"M": {"W": {"N": "10"}, "H": {"N": "20"}}},
        "Editions": {"L": [{"M": {"Year": {"N": "1999"}, "Isbn": {"S": "x"}}},
                           {"M": {"Year": {"N": "2005"}, "Isbn": {"S": "y"}}}]}
    }}
}"#;

fn project(expression: &str) -> Item {
    let names = BTreeMap::from([("#y".to_owned(), "Year".to_owned())]);
    let values = Item::new();
    let mut scope = ExpressionScope::new(&names, &values);
    let projection = scope
        .parse_projection(expression)
        .unwrap_or_else(|error| panic!("{expression}: {error}"));
    projection.apply(&item_from_json_str(ITEM).unwrap())
}

#[test]
fn nested_paths_keep_structure_and_lists_compact() {
    let cases: &[(&str, &str)] = &[
        ("Id, Title", r#"{"Id": {"N": "1"}, "Title": {"S": "Book"}}"#),
        ("Absent", r#"{}"#),
        ("Info.Pages", r#"{"Info": {"M": {"Pages": {"N": "300"}}}}"#),
        (
            "Info.Dims.W, Info.Pages",
            r#"{"Info": {"M": {"Pages": {"N": "300"}, "Dims": {"M": {"W": {"N": "10"}}}}}}"#,
        ),
        (
            "Authors[3], Authors[1], Authors[9]",
            r#"{"Authors": {"L": [{"S": "a1"}, {"S": "a3"}]}}"#,
        ),
        (
            "Info.Editions[1].#y",
            r#"{"Info": {"M": {"Editions": {"L": [{"M": {"Year": {"N": "2005"}}}]}}}}"#,
        ),
        (
            "Info.Editions[0].Isbn, Info.Editions[1].#y",
            r#"{"Info": {"M": {"Editions": {"L": [{"M": {"Isbn": {"S": "x"}}},
                                                   {"M": {"Year": {"N": "2005"}}}]}}}}"#,
        ),
        // Paths that do not resolve leave nothing behind, not empty containers.
        ("Info.Nothing, Title.Part, Authors[7]", r#"{}"#),
    ];
    for &(expression, expected) in cases {
        assert_eq!(
            project(expression),
            item_from_json_str(expected).unwrap(),
            "{expression}"
        );
    }
}

#[test]
fn overlapping_or_conflicting_projection_paths_are_rejected() {
    let names = BTreeMap::new();
    let values = Item::new();
    let mut scope = ExpressionScope::new(&names, &values);
    assert_eq!(
        scope
            .parse_projection("Info, Info.Pages")
            .unwrap_err()
            .to_string(),
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [Info], path two: [Info, Pages]"
    );
    assert_eq!(
        scope
            .parse_projection("Info.a, Info[0]")
            .unwrap_err()
            .to_string(),
        "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [Info, a], path two: [Info, [0]]"
    );
    assert_eq!(
        scope.parse_projection("Title,").unwrap_err().to_string(),
        "Invalid ProjectionExpression: Syntax error; token: \"<EOF>\", near: \",\""
    );
}
