//! Reading items, keys and expression placeholders from the command line: DynamoDB JSON, or
//! plain JSON converted to it.

use std::io::Read;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

/// The text of an argument, or standard input when it is `-`.
pub fn argument_text(argument: &str) -> anyhow::Result<String> {
    if argument != "-" {
        return Ok(argument.to_owned());
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading standard input")?;
    Ok(text)
}

/// An item or key argument as a DynamoDB JSON object, checked on this side so a typo gets a
/// precise message. `what` names it in errors (`ITEM_JSON`, `KEY_JSON`).
pub fn item_argument(argument: &str, plain: bool, what: &str) -> anyhow::Result<Value> {
    let text = argument_text(argument)?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{what} is not valid JSON"))?;
    let value = if plain {
        if !value.is_object() {
            bail!("{what} must be a JSON object");
        }
        plain_to_attribute(&value)
            .get("M")
            .cloned()
            .unwrap_or_default()
    } else {
        value
    };
    let item = ddb::item::item_from_json(&value).map_err(|e| {
        anyhow::anyhow!("{what} is not DynamoDB JSON ({e}); for plain JSON add --plain")
    })?;
    Ok(ddb::item::item_to_json(&item))
}

/// `--names`: a JSON object of `#placeholder` → attribute name.
pub fn names_argument(names: &str) -> anyhow::Result<Value> {
    let value: Value = serde_json::from_str(names).context("--names is not valid JSON")?;
    match value.as_object() {
        Some(map) if map.values().all(Value::is_string) => Ok(value),
        _ => bail!(r##"--names must be a JSON object of strings, e.g. {{"#s": "status"}}"##),
    }
}

/// `--values`: a JSON object of `:placeholder` → DynamoDB JSON value (plain values with
/// `plain`).
pub fn values_argument(values: &str, plain: bool) -> anyhow::Result<Value> {
    let value: Value = serde_json::from_str(values).context("--values is not valid JSON")?;
    let Some(map) = value.as_object() else {
        bail!(r#"--values must be a JSON object, e.g. {{":v": {{"S": "x"}}}}"#);
    };
    if !plain {
        // The item parser checks every value's shape and names the bad one.
        ddb::item::item_from_json(&value).map_err(|e| {
            anyhow::anyhow!("--values is not DynamoDB JSON ({e}); for plain JSON add --plain")
        })?;
        return Ok(value);
    }
    Ok(Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), plain_to_attribute(v)))
            .collect(),
    ))
}

/// Plain JSON as a DynamoDB attribute value: strings S, numbers N, booleans BOOL, null NULL,
/// arrays L, objects M. Never produces sets or binary: plain JSON cannot tell them apart.
pub fn plain_to_attribute(value: &Value) -> Value {
    match value {
        Value::Null => json!({"NULL": true}),
        Value::Bool(b) => json!({"BOOL": b}),
        Value::Number(n) => json!({"N": n.to_string()}),
        Value::String(s) => json!({"S": s}),
        Value::Array(items) => {
            json!({"L": items.iter().map(plain_to_attribute).collect::<Vec<_>>()})
        }
        Value::Object(map) => {
            let converted: Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), plain_to_attribute(v)))
                .collect();
            json!({"M": converted})
        }
    }
}

/// Adds `ExpressionAttributeNames`/`ExpressionAttributeValues` to a request when given.
pub fn add_placeholders(
    request: &mut Value,
    names: Option<&str>,
    values: Option<&str>,
    plain: bool,
) -> anyhow::Result<()> {
    if let Some(names) = names {
        request["ExpressionAttributeNames"] = names_argument(names)?;
    }
    if let Some(values) = values {
        request["ExpressionAttributeValues"] = values_argument(values, plain)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_converts_every_json_type() {
        let plain = json!({"s": "x", "n": 1.5, "i": -3, "b": true, "z": null,
                           "l": [1, "a"], "m": {"k": false}});
        assert_eq!(
            plain_to_attribute(&plain),
            json!({"M": {
                "s": {"S": "x"}, "n": {"N": "1.5"}, "i": {"N": "-3"}, "b": {"BOOL": true},
                "z": {"NULL": true}, "l": {"L": [{"N": "1"}, {"S": "a"}]},
                "m": {"M": {"k": {"BOOL": false}}}
            }})
        );
    }

    #[test]
    fn plain_item_argument_becomes_dynamodb_json() {
        let item = item_argument(r#"{"pk": "a", "sk": 2}"#, true, "ITEM_JSON").unwrap();
        assert_eq!(item, json!({"pk": {"S": "a"}, "sk": {"N": "2"}}));
    }

    #[test]
    fn plain_json_without_plain_flag_gets_a_hint() {
        let error = item_argument(r#"{"pk": "a"}"#, false, "ITEM_JSON").unwrap_err();
        assert!(error.to_string().contains("--plain"), "{error}");
    }

    #[test]
    fn values_are_checked_or_converted() {
        assert_eq!(
            values_argument(r#"{":v": 5}"#, true).unwrap(),
            json!({":v": {"N": "5"}})
        );
        assert!(values_argument(r#"{":v": 5}"#, false).is_err());
        assert!(values_argument(r#"{":v": {"S": "x"}}"#, false).is_ok());
        assert!(names_argument(r##"{"#a": 1}"##).is_err());
    }
}
