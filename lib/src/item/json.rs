//! DynamoDB JSON: `{"S":"x"}`, `{"N":"1"}`, `{"B":"<base64>"}`, `{"SS":[…]}`, `{"NS":[…]}`,
//! `{"BS":[…]}`, `{"M":{…}}`, `{"L":[…]}`, `{"NULL":true}`, `{"BOOL":false}`.
//!
//! Deserialising checks the shape (exactly one type key, `NULL` is `true`, numbers parse,
//! base64 decodes, no repeated names in a map) and bounds nesting to
//! [`MAX_NESTING_DEPTH`](super::MAX_NESTING_DEPTH) *before* descending, so hostile input cannot
//! exhaust the stack. It does not apply the other item rules (empty sets, duplicates, size):
//! that is [`validate_item`](super::validate_item)'s job, so callers can report them as DynamoDB
//! does.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::ItemError;
use super::number::Number;
use super::validate::MAX_NESTING_DEPTH;
use super::value::{AttributeValue, Item};

impl Serialize for Number {
    /// A number serialises as its canonical text (see its `Display`).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Number {
    /// A number deserialises from DynamoDB's string form.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Number, D::Error> {
        let text = String::deserialize(deserializer)?;
        Number::parse(&text).map_err(de::Error::custom)
    }
}

/// Serialises a byte slice as a base64 string.
struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(self.0))
    }
}

/// Serialises a slice of byte strings as a JSON array of base64 strings.
struct Base64List<'a>(&'a [Vec<u8>]);

impl Serialize for Base64List<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for bytes in self.0 {
            seq.serialize_element(&Base64(bytes))?;
        }
        seq.end()
    }
}

impl Serialize for AttributeValue {
    /// Writes the DynamoDB JSON wire form: an object with exactly one type key. Sets are written
    /// in their stored order.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        let key = self.type_key();
        match self {
            AttributeValue::S(text) => map.serialize_entry(key, text)?,
            AttributeValue::N(number) => map.serialize_entry(key, number)?,
            AttributeValue::B(bytes) => map.serialize_entry(key, &Base64(bytes))?,
            AttributeValue::Ss(set) => map.serialize_entry(key, set)?,
            AttributeValue::Ns(set) => map.serialize_entry(key, set)?,
            AttributeValue::Bs(set) => map.serialize_entry(key, &Base64List(set))?,
            AttributeValue::M(inner) => map.serialize_entry(key, inner)?,
            AttributeValue::L(list) => map.serialize_entry(key, list)?,
            AttributeValue::Null => map.serialize_entry(key, &true)?,
            AttributeValue::Bool(flag) => map.serialize_entry(key, flag)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for AttributeValue {
    /// Reads the DynamoDB JSON wire form; see the module documentation for what is checked.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AttributeValue, D::Error> {
        ValueSeed { enclosing: 0 }.deserialize(deserializer)
    }
}

/// Deserialises one attribute value that sits inside `enclosing` maps and lists.
#[derive(Clone, Copy)]
struct ValueSeed {
    enclosing: usize,
}

impl ValueSeed {
    /// The seed for the elements of a container holding this value, or an error if such a
    /// container would nest too deeply.
    fn child<E: de::Error>(self) -> Result<ValueSeed, E> {
        if self.enclosing >= MAX_NESTING_DEPTH {
            return Err(E::custom(ItemError::TooDeeplyNested {
                max: MAX_NESTING_DEPTH,
            }));
        }
        Ok(ValueSeed {
            enclosing: self.enclosing + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = AttributeValue;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<AttributeValue, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = AttributeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an attribute value object with exactly one type key (S, N, B, SS, NS, BS, M, L, NULL or BOOL)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttributeValue, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            ));
        };
        let value = match key.as_str() {
            "S" => AttributeValue::S(map.next_value()?),
            "N" => AttributeValue::N(map.next_value()?),
            "B" => AttributeValue::B(decode_base64(&map.next_value::<String>()?)?),
            "SS" => AttributeValue::Ss(map.next_value()?),
            "NS" => AttributeValue::Ns(map.next_value()?),
            "BS" => AttributeValue::Bs(
                map.next_value::<Vec<String>>()?
                    .iter()
                    .map(|text| decode_base64(text))
                    .collect::<Result<_, _>>()?,
            ),
            "M" => AttributeValue::M(map.next_value_seed(MapSeed {
                elements: self.child()?,
            })?),
            "L" => AttributeValue::L(map.next_value_seed(ListSeed {
                elements: self.child()?,
            })?),
            "NULL" => {
                if !map.next_value::<bool>()? {
                    return Err(de::Error::custom(
                        "One or more parameter values were invalid: Null attribute value types must have the value of true",
                    ));
                }
                AttributeValue::Null
            }
            "BOOL" => AttributeValue::Bool(map.next_value()?),
            other => {
                return Err(de::Error::custom(format_args!(
                    "unknown attribute value type {other:?}; expected one of S, N, B, SS, NS, BS, M, L, NULL, BOOL"
                )));
            }
        };
        if map.next_key::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
            ));
        }
        Ok(value)
    }
}

fn decode_base64<E: de::Error>(text: &str) -> Result<Vec<u8>, E> {
    BASE64
        .decode(text)
        .map_err(|error| E::custom(format_args!("invalid base64 in a binary value: {error}")))
}

/// Deserialises a JSON object of names to attribute values, rejecting repeated names.
struct MapSeed {
    elements: ValueSeed,
}

impl<'de> DeserializeSeed<'de> for MapSeed {
    type Value = BTreeMap<String, AttributeValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MapSeed {
    type Value = BTreeMap<String, AttributeValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of attribute names to attribute values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.elements)?;
            if entries.contains_key(&name) {
                return Err(de::Error::custom(format_args!(
                    "duplicate attribute name {name:?}"
                )));
            }
            entries.insert(name, value);
        }
        Ok(entries)
    }
}

/// Deserialises a JSON array of attribute values.
struct ListSeed {
    elements: ValueSeed,
}

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Vec<AttributeValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = Vec<AttributeValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of attribute values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(value) = seq.next_element_seed(self.elements)? {
            list.push(value);
        }
        Ok(list)
    }
}

/// Converts an item to its DynamoDB JSON object (`{"name": {"S": "x"}, …}`).
pub fn item_to_json(item: &Item) -> serde_json::Value {
    serde_json::Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), attribute_value_to_json(value)))
            .collect(),
    )
}

/// Converts one attribute value to its DynamoDB JSON object.
pub fn attribute_value_to_json(value: &AttributeValue) -> serde_json::Value {
    let inner = match value {
        AttributeValue::S(text) => serde_json::Value::String(text.clone()),
        AttributeValue::N(number) => serde_json::Value::String(number.to_string()),
        AttributeValue::B(bytes) => serde_json::Value::String(BASE64.encode(bytes)),
        AttributeValue::Ss(set) => set.iter().cloned().map(serde_json::Value::String).collect(),
        AttributeValue::Ns(set) => set
            .iter()
            .map(|number| serde_json::Value::String(number.to_string()))
            .collect(),
        AttributeValue::Bs(set) => set
            .iter()
            .map(|bytes| serde_json::Value::String(BASE64.encode(bytes)))
            .collect(),
        AttributeValue::M(map) => item_to_json(map),
        AttributeValue::L(list) => list.iter().map(attribute_value_to_json).collect(),
        AttributeValue::Null => serde_json::Value::Bool(true),
        AttributeValue::Bool(flag) => serde_json::Value::Bool(*flag),
    };
    let mut object = serde_json::Map::with_capacity(1);
    object.insert(value.type_key().to_owned(), inner);
    serde_json::Value::Object(object)
}

/// Reads an item from a DynamoDB JSON object value. Checks shape and nesting only; call
/// [`validate_item`](super::validate_item) for the remaining rules.
pub fn item_from_json(json: &serde_json::Value) -> Result<Item, ItemError> {
    MapSeed {
        elements: ValueSeed { enclosing: 0 },
    }
    .deserialize(json)
    .map_err(|error| ItemError::InvalidJson(error.to_string()))
}

/// Reads an item from DynamoDB JSON text; like [`item_from_json`] but without building a
/// `serde_json::Value` first. Trailing non-whitespace is rejected.
pub fn item_from_json_str(text: &str) -> Result<Item, ItemError> {
    let invalid = |error: serde_json::Error| ItemError::InvalidJson(error.to_string());
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let item = MapSeed {
        elements: ValueSeed { enclosing: 0 },
    }
    .deserialize(&mut deserializer)
    .map_err(invalid)?;
    deserializer.end().map_err(invalid)?;
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Item, ItemError> {
        item_from_json_str(text)
    }

    fn error_text(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_every_type() {
        let item = parse(
            r#"{"s":{"S":"x"},"n":{"N":"1.50"},"b":{"B":"AAE="},"ss":{"SS":["a","b"]},
                "ns":{"NS":["1","2"]},"bs":{"BS":["AA=="]},"m":{"M":{"k":{"NULL":true}}},
                "l":{"L":[{"BOOL":false}]}}"#,
        )
        .unwrap();
        assert_eq!(item["s"], AttributeValue::S("x".into()));
        assert_eq!(item["n"], AttributeValue::N(Number::parse("1.5").unwrap()));
        assert_eq!(item["b"], AttributeValue::B(vec![0, 1]));
        assert_eq!(item["bs"], AttributeValue::Bs(vec![vec![0]]));
        assert_eq!(
            item["l"],
            AttributeValue::L(vec![AttributeValue::Bool(false)])
        );
        assert_eq!(item_from_json(&item_to_json(&item)).unwrap(), item);
        assert_eq!(
            serde_json::to_value(AttributeValue::N(Number::parse("1.50").unwrap())).unwrap(),
            serde_json::json!({"N": "1.5"})
        );
    }

    #[test]
    fn rejects_malformed_values_with_clear_errors() {
        assert!(error_text(r#"{"a":{}}"#).contains("empty"));
        assert!(error_text(r#"{"a":{"S":"x","N":"1"}}"#).contains("more than one"));
        assert!(error_text(r#"{"a":{"NULL":false}}"#).contains("true"));
        assert!(error_text(r#"{"a":{"X":1}}"#).contains("unknown attribute value type"));
        assert!(error_text(r#"{"a":{"N":"NaN"}}"#).contains("cannot be converted"));
        assert!(error_text(r#"{"a":{"N":1}}"#).contains("expected a string"));
        assert!(error_text(r#"{"a":{"B":"!!"}}"#).contains("base64"));
        assert!(error_text(r#"{"a":{"S":"x"},"a":{"S":"y"}}"#).contains("duplicate"));
        assert!(parse(r#"{"a":{"S":"x"}} x"#).is_err());
        assert!(parse(r#"[]"#).is_err());
    }

    fn nested_lists(levels: usize) -> String {
        let mut text = String::from(r#"{"a":"#);
        text.push_str(&r#"{"L":["#.repeat(levels));
        text.push_str(&"]}".repeat(levels));
        text.push('}');
        text
    }

    #[test]
    fn bounds_nesting_depth() {
        assert!(parse(&nested_lists(32)).is_ok());
        assert!(error_text(&nested_lists(33)).contains("Nesting Levels"));
        // Far deeper than any stack could take if we recursed without a bound.
        assert!(parse(&nested_lists(100_000)).is_err());
        let deep: serde_json::Value = serde_json::from_str(&nested_lists(40)).unwrap();
        assert!(item_from_json(&deep).is_err());
    }
}
