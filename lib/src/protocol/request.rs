//! Reading request parameters with DynamoDB's validation messages.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::ApiError;
use crate::item::{AttributeValue, Item, item_from_json};

/// A parsed request body: a JSON object of parameters.
pub struct Params<'a> {
    body: &'a Map<String, Value>,
}

/// DynamoDB names members in validation messages in lowerCamelCase (`tableName`).
fn member_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `1 validation error detected: Value null at 'x' failed to satisfy constraint: Member must not be null`.
pub fn missing(name: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
        member_name(name)
    ))
}

fn wrong_type(name: &str, expected: &str) -> ApiError {
    ApiError::serialization(format!(
        "Unexpected value type in payload: {name} must be {expected}"
    ))
}

impl<'a> Params<'a> {
    /// Wraps a request body, which must be a JSON object.
    pub fn new(body: &'a Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(map) => Ok(Params { body: map }),
            _ => Err(ApiError::serialization(
                "Start of structure or map found where not expected",
            )),
        }
    }

    /// The raw value of a parameter, if present and not null.
    #[must_use]
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.body.get(name).filter(|v| !v.is_null())
    }

    /// A required string parameter.
    pub fn required_str(&self, name: &str) -> Result<&'a str, ApiError> {
        self.optional_str(name)?.ok_or_else(|| missing(name))
    }

    /// An optional string parameter.
    pub fn optional_str(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    /// An optional boolean parameter.
    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong_type(name, "a boolean")),
        }
    }

    /// An optional non-negative integer parameter.
    pub fn optional_u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) => Ok(Some(v)),
                None => Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{n}' at '{}' failed to satisfy constraint: Member must have value greater than or equal to 1",
                    member_name(name)
                ))),
            },
            Some(_) => Err(wrong_type(name, "an integer")),
        }
    }

    /// An optional JSON array parameter.
    pub fn optional_array(&self, name: &str) -> Result<Option<&'a Vec<Value>>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(wrong_type(name, "a list")),
        }
    }

    /// An optional JSON object parameter.
    pub fn optional_object(&self, name: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(wrong_type(name, "a map")),
        }
    }

    /// A required item-shaped parameter (`Item`, `Key`): a map of DynamoDB JSON values.
    pub fn required_item(&self, name: &str) -> Result<Item, ApiError> {
        self.optional_item(name)?.ok_or_else(|| missing(name))
    }

    /// An optional item-shaped parameter.
    pub fn optional_item(&self, name: &str) -> Result<Option<Item>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(value) => parse_item(value).map(Some),
        }
    }

    /// `ExpressionAttributeNames`, empty if absent.
    pub fn attribute_names(&self) -> Result<BTreeMap<String, String>, ApiError> {
        let mut names = BTreeMap::new();
        if let Some(map) = self.optional_object("ExpressionAttributeNames")? {
            for (placeholder, value) in map {
                match value {
                    Value::String(name) => {
                        names.insert(placeholder.clone(), name.clone());
                    }
                    _ => return Err(wrong_type("ExpressionAttributeNames", "a map of strings")),
                }
            }
        }
        Ok(names)
    }

    /// `ExpressionAttributeValues`, empty if absent.
    pub fn attribute_values(&self) -> Result<BTreeMap<String, AttributeValue>, ApiError> {
        let mut values = BTreeMap::new();
        if let Some(map) = self.optional_object("ExpressionAttributeValues")? {
            for (placeholder, value) in map {
                let value: AttributeValue = serde_json::from_value(value.clone())
                    .map_err(|e| ApiError::validation(format!("ExpressionAttributeValues contains invalid value: {e} for key {placeholder}")))?;
                values.insert(placeholder.clone(), value);
            }
        }
        Ok(values)
    }
}

/// Parses a map of DynamoDB JSON values into an item.
pub fn parse_item(value: &Value) -> Result<Item, ApiError> {
    item_from_json(value).map_err(|e| ApiError::validation(e.to_string()))
}

/// Checks a table name against DynamoDB's rules: 3 to 255 characters of `[a-zA-Z0-9_.-]`.
pub fn validate_table_name(name: &str) -> Result<(), ApiError> {
    if name.len() < 3 {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3"
        )));
    }
    if name.len() > 255 {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: Member must have length less than or equal to 255"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_follow_dynamodb_rules() {
        assert!(validate_table_name("abc").is_ok());
        assert!(validate_table_name("a.b-c_9").is_ok());
        assert!(validate_table_name("ab").is_err());
        assert!(validate_table_name("has space").is_err());
        assert!(validate_table_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn missing_members_are_named_in_camel_case() {
        assert!(missing("TableName").message.contains("'tableName'"));
    }
}
