//! Condition and filter expressions evaluate with DynamoDB's typed semantics, on the
//! ProductCatalog item of DynamoDB's Developer Guide examples.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ddb::expr::{ExprError, ExpressionKind, ExpressionScope};
use ddb::item::{AttributeValue, Item, item_from_json_str};

/// The Developer Guide's ProductCatalog item 456 (trimmed), plus a few typed attributes.
const PRODUCT: &str = r#"{
    "Id": {"N": "456"},
    "ProductCategory": {"S": "Sporting Goods"},
    "Price": {"N": "650"},
    "Color": {"SS": ["Red", "Black"]},
    "Tags": {"L": [{"S": "sale"}, {"N": "7"}]},
    "Sizes": {"NS": ["1", "2.5"]},
    "Thumbnail": {"B": "AQID"},
    "InStock": {"BOOL": true},
    "Discontinued": {"NULL": true},
    "Description": {"S": "Fancy bike"},
    "ProductReviews": {"M": {
        "FiveStar": {"L": [{"S": "Excellent! Can't recommend it highly enough! Buy it!"},
                           {"S": "Do yourself a favor and buy this."}]},
        "OneStar": {"L": [{"S": "Terrible product! Do not buy this."}]}
    }},
    "Pictures": {"M": {"FrontView": {"S": "http://example.com/products/456_front.jpg"}}}
}"#;

/// Values every case may use; unused ones are fine here (the unused check is tested
/// elsewhere).
const VALUES: &str = r#"{
    ":p": {"N": "500"}, ":lo": {"N": "600"}, ":hi": {"N": "650.0"},
    ":cat": {"S": "Sporting Goods"}, ":other": {"S": "Books"},
    ":red": {"S": "Red"}, ":seven": {"N": "7"}, ":sale": {"S": "sale"},
    ":http": {"S": "http://"}, ":bike": {"S": "bike"}, ":b12": {"B": "AQI="},
    ":t_ss": {"S": "SS"}, ":t_n": {"S": "N"}, ":t_m": {"S": "M"}, ":t_null": {"S": "NULL"},
    ":t_bool": {"S": "BOOL"}, ":t_l": {"S": "L"}, ":t_b": {"S": "B"}, ":t_ns": {"S": "NS"},
    ":two": {"N": "2"}, ":ten": {"N": "10"}, ":s650": {"S": "650"},
    ":colors": {"SS": ["Black", "Red"]}, ":size": {"N": "2.50"}, ":true": {"BOOL": true}
}"#;

fn evaluate(expression: &str, item: Option<&Item>) -> bool {
    let names = BTreeMap::from([
        ("#pr".to_owned(), "ProductReviews".to_owned()),
        ("#c".to_owned(), "Color".to_owned()),
    ]);
    let values = item_from_json_str(VALUES).unwrap();
    let mut scope = ExpressionScope::new(&names, &values);
    let condition = scope
        .parse_condition(ExpressionKind::Condition, expression)
        .unwrap_or_else(|error| panic!("{expression}: {error}"));
    condition.evaluate(item)
}

#[test]
fn documented_examples_and_typed_comparisons_evaluate_like_dynamodb() {
    let product = item_from_json_str(PRODUCT).unwrap();
    let cases: &[(&str, bool)] = &[
        // Comparisons: numbers numerically, strings bytewise.
        ("Price > :p", true),
        ("Price >= :hi", true),
        ("Price = :hi", true),
        ("Price <> :hi", false),
        ("Price < :p", false),
        ("ProductCategory = :cat", true),
        ("ProductCategory < :other", false),
        ("ProductCategory > :other", true),
        // Different types: = false, <> true, ordering false.
        ("Price = :s650", false),
        ("Price <> :s650", true),
        ("Price < :s650", false),
        ("Price >= :s650", false),
        // Absent attributes: = false, <> true, ordering false.
        ("Absent = :p", false),
        ("Absent <> :p", true),
        ("Absent < :p", false),
        // Sets compare by content regardless of order.
        ("#c = :colors", true),
        ("Sizes = :size", false),
        // BETWEEN and IN.
        ("Price BETWEEN :lo AND :hi", true),
        ("Price BETWEEN :p AND :lo", false),
        ("ProductCategory BETWEEN :lo AND :hi", false),
        ("Price IN (:p, :hi)", true),
        ("Price IN (:p, :lo)", false),
        ("ProductCategory IN (:other, :cat)", true),
        // Functions.
        ("attribute_exists(Pictures.FrontView)", true),
        ("attribute_exists(Pictures.SideView)", false),
        ("attribute_not_exists(Manufacturer)", true),
        ("attribute_exists(#pr.FiveStar[1])", true),
        ("attribute_exists(#pr.FiveStar[2])", false),
        ("attribute_exists(#pr.OneStar[0])", true),
        ("attribute_type(#c, :t_ss)", true),
        ("attribute_type(Price, :t_n)", true),
        ("attribute_type(Pictures, :t_m)", true),
        ("attribute_type(Discontinued, :t_null)", true),
        ("attribute_type(InStock, :t_bool)", true),
        ("attribute_type(Tags, :t_l)", true),
        ("attribute_type(Thumbnail, :t_b)", true),
        ("attribute_type(Sizes, :t_ns)", true),
        ("attribute_type(Price, :t_ss)", false),
        ("attribute_type(Absent, :t_n)", false),
        ("begins_with(Pictures.FrontView, :http)", true),
        ("begins_with(Description, :http)", false),
        ("begins_with(Thumbnail, :b12)", true),
        ("begins_with(Price, :http)", false),
        ("contains(#c, :red)", true),
        ("contains(Description, :bike)", true),
        ("contains(Tags, :seven)", true),
        ("contains(Tags, :sale)", true),
        ("contains(Sizes, :size)", true),
        ("contains(Price, :seven)", false),
        ("contains(#c, :seven)", false),
        // size(): strings in bytes, sets/lists/maps in elements.
        ("size(Description) = :ten", true),
        ("size(#c) = :two", true),
        ("size(#pr) = :two", true),
        ("size(Tags) < :ten", true),
        ("size(Price) = :two", false),
        ("size(Absent) <> :two", true),
        // Boolean structure and precedence: NOT > AND > OR.
        ("Price > :p AND ProductCategory = :cat", true),
        ("Price > :p AND ProductCategory = :other", false),
        ("Price < :p OR ProductCategory = :cat", true),
        ("NOT Price < :p", true),
        ("NOT (Price > :p AND ProductCategory = :cat)", false),
        (
            "Price < :p AND ProductCategory = :other OR InStock = :true",
            true,
        ),
        (
            "Price < :p AND (ProductCategory = :other OR InStock = :true)",
            false,
        ),
        ("NOT Price < :p AND Price < :p", false),
        ("NOT NOT attribute_exists(Price)", true),
        // Keywords are case-insensitive.
        ("price between :lo and :hi", false),
        (
            "Price between :lo and :hi or not attribute_exists(Id)",
            true,
        ),
    ];
    for &(expression, expected) in cases {
        assert_eq!(
            evaluate(expression, Some(&product)),
            expected,
            "{expression}"
        );
    }
}

#[test]
fn missing_item_behaves_as_item_without_attributes() {
    assert!(evaluate("attribute_not_exists(Id)", None));
    assert!(!evaluate("attribute_exists(Id)", None));
    assert!(evaluate("Price <> :p", None));
    assert!(!evaluate("Price = :p", None));
    assert!(!evaluate("size(Description) < :ten", None));
    assert!(!evaluate("contains(#c, :red)", None));
}

fn parse_error(expression: &str) -> ExprError {
    let values = item_from_json_str(VALUES).unwrap();
    let names = BTreeMap::new();
    let mut scope = ExpressionScope::new(&names, &values);
    scope
        .parse_condition(ExpressionKind::Condition, expression)
        .expect_err(expression)
}

#[test]
fn statically_wrong_operands_are_validation_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "attribute_type(Price, :p)",
            "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
        ),
        (
            "attribute_type(Price, :red)",
            "Invalid ConditionExpression: Invalid attribute type name found; type: Red, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
        ),
        (
            "begins_with(Description, :p)",
            "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
        ),
        (
            "Price < :colors",
            "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: SS",
        ),
        (
            "attribute_exists(:p)",
            "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists",
        ),
        (
            "attribute_exists(Price, Id)",
            "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2",
        ),
        (
            "frobnicate(Price)",
            "Invalid ConditionExpression: Invalid function name; function: frobnicate",
        ),
        (
            "if_not_exists(Price, :p) = :p",
            "Invalid ConditionExpression: The function is not allowed in a condition expression; function: if_not_exists",
        ),
        (
            "Price = Price",
            "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [Price]",
        ),
        (
            "contains(Tags, Tags)",
            "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [Tags]",
        ),
        (
            "Price BETWEEN :hi AND :p",
            "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower operand: AttributeValue: {N:650}, upper operand: AttributeValue: {N:500}",
        ),
        (
            "((Price = :p))",
            "Invalid ConditionExpression: The expression has redundant parentheses;",
        ),
    ];
    for &(expression, message) in cases {
        assert_eq!(parse_error(expression).to_string(), message, "{expression}");
    }
    // Single parentheses, even around everything, are fine.
    let values = item_from_json_str(VALUES).unwrap();
    let names = BTreeMap::new();
    let mut scope = ExpressionScope::new(&names, &values);
    assert!(
        scope
            .parse_condition(
                ExpressionKind::Filter,
                "(Price = :p) AND ((Id = :p) OR (Id = :two))"
            )
            .is_ok()
    );
}

#[test]
fn in_accepts_up_to_one_hundred_operands() {
    let values: Item = (0..101)
        .map(|i| (format!(":v{i}"), AttributeValue::N(i64::from(i).into())))
        .collect();
    let names = BTreeMap::new();
    let list = |count: usize| {
        (0..count)
            .map(|i| format!(":v{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut scope = ExpressionScope::new(&names, &values);
    let hundred = format!("a IN ({})", list(100));
    let condition = scope
        .parse_condition(ExpressionKind::Filter, &hundred)
        .unwrap();
    let item = Item::from([("a".to_owned(), AttributeValue::N(99.into()))]);
    assert!(condition.evaluate(Some(&item)));
    let too_many = format!("a IN ({})", list(101));
    assert_eq!(
        scope
            .parse_condition(ExpressionKind::Filter, &too_many)
            .unwrap_err()
            .to_string(),
        "Invalid FilterExpression: The IN operator is provided with too many operands; number of operands: 101"
    );
}
