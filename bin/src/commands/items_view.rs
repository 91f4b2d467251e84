//! Items as a table for people: one row per item, one column per attribute.

use comfy_table::Table;
use serde_json::Value;

use crate::output::table;

/// A table of `items` (DynamoDB JSON objects). The key attributes come first in `key_names`
/// order, then attributes every item has, then the rest, each group by name.
pub fn items_table(items: &[Value], key_names: &[String]) -> Table {
    let mut columns: Vec<((usize, bool), &str)> = Vec::new();
    for item in items {
        if let Some(map) = item.as_object() {
            for name in map.keys() {
                if !columns.iter().any(|(_, c)| c == name) {
                    let key_rank = key_names
                        .iter()
                        .position(|k| k == name)
                        .unwrap_or(key_names.len());
                    let in_all = items.iter().all(|i| i.get(name).is_some());
                    columns.push(((key_rank, !in_all), name));
                }
            }
        }
    }
    columns.sort_unstable();
    let header: Vec<&str> = columns.iter().map(|(_, name)| *name).collect();
    let mut t = table(&header);
    for item in items {
        t.add_row(
            columns
                .iter()
                .map(|(_, name)| item.get(*name).map(cell).unwrap_or_default())
                .collect::<Vec<_>>(),
        );
    }
    t
}

/// The key attribute names of `table` (partition key first), for ordering columns; empty if
/// the table cannot be described (the items still print).
pub fn key_names(client: &ddb::client::Client, table: &str) -> Vec<String> {
    client
        .call("DescribeTable", &serde_json::json!({"TableName": table}))
        .ok()
        .and_then(|answer| answer.pointer("/Table/KeySchema").cloned())
        .and_then(|schema| schema.as_array().cloned())
        .map(|schema| {
            schema
                .iter()
                .filter_map(|k| k.get("AttributeName").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// One attribute value as short text: S and N bare, BOOL and NULL as words, B as base64,
/// sets in braces, lists and maps as compact plain JSON.
pub fn cell(value: &Value) -> String {
    let Some((kind, inner)) = value.as_object().and_then(|m| m.iter().next()) else {
        return value.to_string();
    };
    match (kind.as_str(), inner) {
        ("S" | "N" | "B", Value::String(s)) => s.clone(),
        ("BOOL", Value::Bool(b)) => b.to_string(),
        ("NULL", _) => "null".to_owned(),
        ("SS" | "NS" | "BS", Value::Array(members)) => {
            let members: Vec<String> = members
                .iter()
                .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                .collect();
            format!("{{{}}}", members.join(", "))
        }
        ("L" | "M", _) => plain(value).to_string(),
        _ => value.to_string(),
    }
}

/// DynamoDB JSON as plain JSON (numbers stay strings to keep their precision).
fn plain(value: &Value) -> Value {
    let Some((kind, inner)) = value.as_object().and_then(|m| m.iter().next()) else {
        return value.clone();
    };
    match (kind.as_str(), inner) {
        ("L", Value::Array(items)) => Value::Array(items.iter().map(plain).collect()),
        ("M", Value::Object(map)) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), plain(v))).collect())
        }
        ("NULL", _) => Value::Null,
        _ => Value::String(cell(value)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cells_are_short_and_readable() {
        assert_eq!(cell(&json!({"S": "ann"})), "ann");
        assert_eq!(cell(&json!({"N": "1.50"})), "1.50");
        assert_eq!(cell(&json!({"BOOL": true})), "true");
        assert_eq!(cell(&json!({"SS": ["a", "b"]})), "{a, b}");
        assert_eq!(
            cell(&json!({"M": {"k": {"L": [{"N": "1"}, {"NULL": true}]}}})),
            r#"{"k":["1",null]}"#
        );
    }

    #[test]
    fn keys_then_common_attributes_come_first() {
        let items = [
            json!({"pk": {"S": "a"}, "x": {"N": "1"}, "c": {"N": "1"}, "z": {"N": "0"}}),
            json!({"pk": {"S": "b"}, "a": {"N": "2"}, "c": {"N": "1"}, "z": {"N": "0"}}),
        ];
        let rendered = items_table(&items, &["z".to_owned(), "pk".to_owned()]).to_string();
        let header = rendered.lines().nth(1).unwrap_or_default();
        let at = |name: &str| header.find(&format!(" {name} ")).unwrap();
        assert!(
            at("z") < at("pk") && at("pk") < at("c") && at("c") < at("a"),
            "{header}"
        );
    }
}
