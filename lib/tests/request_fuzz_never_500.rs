//! Malformed requests get client errors, never a panic nor a server fault: valid requests of
//! every operation, mutated at random (fields dropped, values of the wrong type, huge, empty or
//! odd strings, deeply nested values, wrong key types, random expressions), go through
//! `Node::handle` on a real node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ddb::node::{Node, NodeOptions};
use ddb::protocol::ErrorCode;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

/// Tables the requests name, recreated whenever a request deletes one.
const BASE_TABLES: [&str; 2] = ["fuzz-hash", "fuzz-range"];

fn create_table_request(name: &str, range: bool) -> Value {
    let mut definitions = vec![json!({"AttributeName": "pk", "AttributeType": "S"})];
    let mut schema = vec![json!({"AttributeName": "pk", "KeyType": "HASH"})];
    if range {
        definitions.push(json!({"AttributeName": "sk", "AttributeType": "N"}));
        schema.push(json!({"AttributeName": "sk", "KeyType": "RANGE"}));
    }
    json!({
        "TableName": name,
        "AttributeDefinitions": definitions,
        "KeySchema": schema,
        "BillingMode": "PAY_PER_REQUEST",
    })
}

/// One valid request of every operation, using every parameter the node reads.
fn valid_requests() -> Vec<(&'static str, Value)> {
    let key = json!({"pk": {"S": "k1"}, "sk": {"N": "1"}});
    let item = json!({
        "pk": {"S": "k1"}, "sk": {"N": "1"},
        "n": {"N": "12.5"}, "s": {"S": "text"}, "b": {"B": "AAEC"},
        "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "bs": {"BS": ["AA=="]},
        "l": {"L": [{"S": "x"}, {"N": "2"}, {"NULL": true}]},
        "m": {"M": {"deep": {"BOOL": false}}},
    });
    let values = json!({":v": {"N": "1"}, ":a": {"S": "a"}});
    let names = json!({"#n": "n", "#s": "s"});
    vec![
        (
            "CreateTable",
            json!({
                "TableName": "made-by-test",
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "B"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "BillingMode": "PROVISIONED",
                "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
            }),
        ),
        ("DescribeTable", json!({"TableName": "fuzz-range"})),
        (
            "ListTables",
            json!({"ExclusiveStartTableName": "fuzz-hash", "Limit": 10}),
        ),
        (
            "UpdateTable",
            json!({
                "TableName": "fuzz-hash",
                "BillingMode": "PROVISIONED",
                "ProvisionedThroughput": {"ReadCapacityUnits": 100, "WriteCapacityUnits": 100},
            }),
        ),
        ("DeleteTable", json!({"TableName": "fuzz-hash"})),
        (
            "PutItem",
            json!({
                "TableName": "fuzz-range", "Item": item,
                "ConditionExpression": "attribute_not_exists(pk) OR #n < :v",
                "ExpressionAttributeNames": {"#n": "n"},
                "ExpressionAttributeValues": {":v": {"N": "1"}},
                "ReturnValues": "ALL_OLD", "ReturnConsumedCapacity": "TOTAL",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }),
        ),
        (
            "GetItem",
            json!({
                "TableName": "fuzz-range", "Key": key, "ConsistentRead": true,
                "ProjectionExpression": "#n, l[1], m.deep",
                "ExpressionAttributeNames": {"#n": "n"}, "ReturnConsumedCapacity": "TOTAL",
            }),
        ),
        (
            "UpdateItem",
            json!({
                "TableName": "fuzz-range", "Key": key,
                "UpdateExpression": "SET #n = #n + :v, l = list_append(l, :l) REMOVE m.deep ADD ns :ns DELETE ss :ss",
                "ConditionExpression": "attribute_type(#n, :t)",
                "ExpressionAttributeNames": {"#n": "n"},
                "ExpressionAttributeValues": {
                    ":v": {"N": "1"}, ":l": {"L": [{"S": "y"}]}, ":ns": {"NS": ["3"]},
                    ":ss": {"SS": ["b"]}, ":t": {"S": "N"},
                },
                "ReturnValues": "UPDATED_NEW",
            }),
        ),
        (
            "DeleteItem",
            json!({
                "TableName": "fuzz-range", "Key": key,
                "ConditionExpression": "size(#s) > :v AND contains(ss, :a)",
                "ExpressionAttributeNames": {"#s": "s"}, "ExpressionAttributeValues": values,
                "ReturnValues": "ALL_OLD",
            }),
        ),
        (
            "Query",
            json!({
                "TableName": "fuzz-range",
                "KeyConditionExpression": "pk = :p AND sk BETWEEN :lo AND :hi",
                "FilterExpression": "#s <> :s", "ProjectionExpression": "pk, sk, #s",
                "ExpressionAttributeNames": {"#s": "s"},
                "ExpressionAttributeValues": {
                    ":p": {"S": "k1"}, ":lo": {"N": "0"}, ":hi": {"N": "10"}, ":s": {"S": "x"},
                },
                "ScanIndexForward": false, "Limit": 5, "Select": "SPECIFIC_ATTRIBUTES",
                "ExclusiveStartKey": key, "ConsistentRead": true,
            }),
        ),
        (
            "Scan",
            json!({
                "TableName": "fuzz-range", "FilterExpression": "begins_with(#s, :s)",
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": {":s": {"S": "t"}},
                "ProjectionExpression": "#n, #s",
                "Segment": 1, "TotalSegments": 3, "Limit": 2, "Select": "SPECIFIC_ATTRIBUTES",
                "ExclusiveStartKey": key, "ReturnConsumedCapacity": "TOTAL",
            }),
        ),
        (
            "BatchGetItem",
            json!({
                "RequestItems": {
                    "fuzz-range": {"Keys": [key], "ProjectionExpression": "#n",
                        "ExpressionAttributeNames": {"#n": "n"}, "ConsistentRead": true},
                    "fuzz-hash": {"Keys": [{"pk": {"S": "h"}}]},
                },
                "ReturnConsumedCapacity": "TOTAL",
            }),
        ),
        (
            "BatchWriteItem",
            json!({
                "RequestItems": {
                    "fuzz-range": [
                        {"PutRequest": {"Item": item}},
                        {"DeleteRequest": {"Key": {"pk": {"S": "k2"}, "sk": {"N": "2"}}}},
                    ],
                    "fuzz-hash": [{"PutRequest": {"Item": {"pk": {"S": "h"}}}}],
                },
                "ReturnConsumedCapacity": "TOTAL",
            }),
        ),
    ]
}

/// What a mutation does at one place in the request.
#[derive(Clone, Debug)]
enum Mutation {
    /// Drops the value (from its object or array); at the root, empties the body.
    Remove,
    /// Puts another value in its place.
    Replace(Value),
}

/// Pieces of expressions, so random expressions reach past the lexer (with a NUL and an empty
/// piece added: see `random_expression`).
const EXPRESSION_WORDS: &str = "pk sk #n #s #missing :v :s :missing n l[0] l[99999999999] m.deep
    = <> < >= + - ( ) , . [ ] AND OR NOT BETWEEN IN SET REMOVE ADD DELETE size( attribute_exists(
    attribute_not_exists( attribute_type( begins_with( contains( list_append( if_not_exists( é # :";

fn random_expression() -> impl Strategy<Value = String> {
    let pieces: Vec<&str> = EXPRESSION_WORDS
        .split_whitespace()
        .chain(["\u{0}", ""])
        .collect();
    prop::collection::vec(prop::sample::select(pieces), 0..24).prop_map(|parts| parts.join(" "))
}

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,16}",
        "[ -~]{0,40}",
        (0usize..600_000).prop_map(|n| "x".repeat(n)),
        Just("\u{0}\u{ffff}\u{10ffff}".to_owned()),
        random_expression(),
    ]
}

fn odd_number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "-",
            "0",
            "-0",
            "1e126",
            "1e-131",
            "1e999999999",
            "NaN",
            "Infinity",
            "0x10",
            " 1",
            "1.",
            ".5",
            "+1",
            "1e",
            "00001",
        ])
        .prop_map(str::to_owned),
        (1usize..100).prop_map(|n| "9".repeat(n)),
        any::<f64>().prop_map(|f| f.to_string()),
    ]
}

/// DynamoDB JSON values of every type, valid or not: wrong key types come from these.
fn attribute_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        odd_string().prop_map(|s| json!({"S": s})),
        odd_number_text().prop_map(|n| json!({"N": n})),
        odd_string().prop_map(|b| json!({"B": b})),
        prop::collection::vec(odd_string(), 0..3).prop_map(|v| json!({"SS": v})),
        prop::collection::vec(odd_number_text(), 0..3).prop_map(|v| json!({"NS": v})),
        Just(json!({"BS": ["AA==", "AA=="]})),
        Just(json!({"L": []})),
        Just(json!({"M": {}})),
        Just(json!({"NULL": false})),
        Just(json!({"BOOL": "yes"})),
        Just(json!({"S": "a", "N": "1"})),
        Just(json!({"X": 1})),
        Just(json!({})),
    ]
}

/// `depth` levels of lists (or maps) around a string, as DynamoDB JSON or as plain JSON.
fn deeply_nested() -> impl Strategy<Value = Value> {
    (0usize..140, any::<bool>(), any::<bool>()).prop_map(|(depth, maps, dynamo)| {
        let mut value = json!({"S": "deep"});
        for _ in 0..depth {
            value = match (maps, dynamo) {
                (false, true) => json!({"L": [value]}),
                (true, true) => json!({"M": {"a": value}}),
                (false, false) => json!([value]),
                (true, false) => json!({"a": value}),
            };
        }
        value
    })
}

fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        any::<f64>().prop_map(Value::from),
        odd_string().prop_map(Value::String),
        Just(json!([])),
        Just(json!({})),
        attribute_value(),
        attribute_value().prop_map(|v| json!({"pk": v, "sk": {"N": "1"}})),
        attribute_value().prop_map(|v| json!({":v": v})),
        deeply_nested(),
        prop::collection::vec(attribute_value(), 0..30).prop_map(Value::from),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::Remove),
        3 => replacement().prop_map(Mutation::Replace),
    ]
}

/// Paths (object keys and array indices) to every value in `value`, the root included.
fn paths(value: &Value) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (step, child) in children {
        for mut path in paths(child) {
            path.insert(0, step.clone());
            out.push(path);
        }
    }
    out
}

fn apply(value: &mut Value, path: &[String], mutation: &Mutation) {
    let Some((last, parent_path)) = path.split_last() else {
        *value = match mutation {
            Mutation::Remove => json!({}),
            Mutation::Replace(new) => new.clone(),
        };
        return;
    };
    let mut parent = value;
    for step in parent_path {
        parent = match parent {
            Value::Object(map) => map.get_mut(step).expect("path from paths()"),
            Value::Array(list) => &mut list[step.parse::<usize>().expect("an index")],
            _ => unreachable!("paths() only descends into objects and arrays"),
        };
    }
    match (parent, mutation) {
        (Value::Object(map), Mutation::Remove) => {
            map.remove(last);
        }
        (Value::Array(list), Mutation::Remove) => {
            list.remove(last.parse::<usize>().expect("an index"));
        }
        (Value::Object(map), Mutation::Replace(new)) => {
            map.insert(last.clone(), new.clone());
        }
        (Value::Array(list), Mutation::Replace(new)) => {
            list[last.parse::<usize>().expect("an index")] = new.clone();
        }
        _ => unreachable!("paths() only descends into objects and arrays"),
    }
}

/// A valid request of some operation, mutated one to three times.
fn mutated_request() -> impl Strategy<Value = (&'static str, Value)> {
    let requests = valid_requests();
    let count = requests.len();
    (
        0..count,
        prop::collection::vec((any::<Index>(), mutation()), 1..4),
    )
        .prop_map(move |(which, mutations)| {
            let (operation, mut body) = requests[which].clone();
            for (at, mutation) in &mutations {
                let places = paths(&body);
                apply(&mut body, &places[at.index(places.len())], mutation);
            }
            (operation, body)
        })
}

/// Puts the node back in the shape the requests expect: base tables present, no others.
fn reset_tables(node: &Node) {
    for table in node.catalog().tables() {
        if !BASE_TABLES.contains(&table.name.as_str()) {
            node.handle("DeleteTable", json!({"TableName": table.name}))
                .unwrap();
        }
    }
    for name in BASE_TABLES {
        if node.catalog().table(name).is_none() {
            node.handle(
                "CreateTable",
                create_table_request(name, name == "fuzz-range"),
            )
            .unwrap();
        }
    }
}

/// The request as JSON, cut short enough to read in a failure message.
fn abbreviated(body: &Value) -> String {
    let text = body.to_string();
    match text.char_indices().nth(2000) {
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
        None => text,
    }
}

#[test]
/// Found by this fuzzer: huge provisioned throughput once meant millions of partitions.
fn create_table_with_huge_throughput_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path(), NodeOptions::default()).unwrap();
    let mut request = create_table_request("greedy", false);
    request["BillingMode"] = json!("PROVISIONED");
    request["ProvisionedThroughput"] =
        json!({"ReadCapacityUnits": 1, "WriteCapacityUnits": u64::MAX});
    let error = node.handle("CreateTable", request.clone()).unwrap_err();
    assert_eq!(error.code, ErrorCode::LimitExceededException, "{error}");
    assert!(node.catalog().table("greedy").is_none());
}

#[test]
fn valid_requests_of_every_operation_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path(), NodeOptions::default()).unwrap();
    for (operation, body) in valid_requests() {
        reset_tables(&node);
        let answer = node.handle(operation, body.clone());
        assert!(answer.is_ok(), "{operation} {body}: {answer:?}");
    }
}

#[test]
fn mutated_requests_never_get_a_server_fault() {
    let dir = tempfile::tempdir().unwrap();
    let options = NodeOptions {
        on_demand_partitions: 1,
        ..NodeOptions::default()
    };
    let node = Node::open(dir.path(), options).unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 2500,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&mutated_request(), |(operation, body)| {
        reset_tables(&node);
        match node.handle(operation, body.clone()) {
            Err(error) if error.code.is_server_fault() => Err(TestCaseError::fail(format!(
                "{operation} answered a server fault {error} to {}",
                abbreviated(&body)
            ))),
            _ => Ok(()),
        }
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
