//! Properties of the item encodings: canonical round trip and determinism, key order equal to
//! DynamoDB's sort-key order, decoders that never panic, DynamoDB JSON round trip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;

use ddb::item::{
    AttributeValue, Item, Number, canonicalize_item, decode_item, decode_key, encode_item,
    encode_key, item_from_json_str, item_to_json, partition_prefix, prefix_successor,
    validate_item,
};
use proptest::prelude::*;

/// A number kept with the parts it was generated from, so tests can compare numbers without
/// trusting `Number`'s own ordering.
#[derive(Debug, Clone)]
struct GeneratedNumber {
    negative: bool,
    /// Significant digits, first non-zero; empty for zero.
    digits: String,
    /// Value is ±0.digits × 10^exponent.
    exponent: i32,
}

impl GeneratedNumber {
    fn text(&self) -> String {
        if self.digits.is_empty() {
            return "0".into();
        }
        let sign = if self.negative { "-" } else { "" };
        format!("{sign}0.{}e{}", self.digits, self.exponent)
    }

    fn number(&self) -> Number {
        Number::parse(&self.text()).unwrap()
    }

    /// The value times 10^170 as a decimal integer without leading zeros: an exact, independent
    /// representation to compare with.
    fn scaled_integer(&self) -> String {
        let trailing = usize::try_from(self.exponent + 170).unwrap() - self.digits.len();
        let text = format!("{}{}", self.digits, "0".repeat(trailing));
        text.trim_start_matches('0').to_owned()
    }

    /// Reference numeric order: by sign, then by the length and digits of the scaled integer.
    fn reference_cmp(&self, other: &GeneratedNumber) -> Ordering {
        let signum = |g: &GeneratedNumber| {
            let zero = g.scaled_integer().is_empty();
            if zero {
                0
            } else if g.negative {
                -1
            } else {
                1
            }
        };
        let (a, b) = (self.scaled_integer(), other.scaled_integer());
        let magnitude = a.len().cmp(&b.len()).then_with(|| a.cmp(&b));
        match signum(self).cmp(&signum(other)) {
            Ordering::Equal if signum(self) < 0 => magnitude.reverse(),
            Ordering::Equal => magnitude,
            unequal => unequal,
        }
    }
}

fn generated_number() -> impl Strategy<Value = GeneratedNumber> {
    let edge_digits = prop_oneof![
        Just("1".to_owned()),
        Just("9".repeat(38)),
        "[1-9][0-9]{0,37}",
        "[1-9]{1,3}",
    ];
    let exponent = prop_oneof![Just(-129), Just(126), Just(1), -129..=126_i32, -3..=3_i32];
    prop_oneof![
        1 => Just(GeneratedNumber { negative: false, digits: String::new(), exponent: 0 }),
        12 => (any::<bool>(), edge_digits, exponent).prop_map(|(negative, digits, exponent)| {
            GeneratedNumber { negative, digits, exponent }
        }),
    ]
}

fn number() -> impl Strategy<Value = Number> {
    generated_number().prop_map(|g| g.number())
}

fn leaf() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        ".{0,6}".prop_map(AttributeValue::S),
        number().prop_map(AttributeValue::N),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(AttributeValue::B),
        prop::collection::btree_set(".{0,4}", 1..4)
            .prop_map(|set| AttributeValue::Ss(set.into_iter().collect())),
        prop::collection::btree_set(number(), 1..4)
            .prop_map(|set| AttributeValue::Ns(set.into_iter().collect())),
        prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..4), 1..4)
            .prop_map(|set| AttributeValue::Bs(set.into_iter().collect())),
        Just(AttributeValue::Null),
        any::<bool>().prop_map(AttributeValue::Bool),
    ]
}

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
            prop::collection::btree_map(".{0,4}", inner, 0..4).prop_map(AttributeValue::M),
        ]
    })
}

fn item() -> impl Strategy<Value = Item> {
    prop::collection::btree_map("[a-z]{1,3}|.{1,4}", attribute_value(), 0..5)
}

/// Respells an item the way a client might: sets reversed with a repeated element, numbers
/// written with extra leading and trailing zeros and a shifted exponent.
fn respell(value: &AttributeValue) -> AttributeValue {
    let respell_number = |n: &Number| {
        if n.is_zero() {
            return Number::parse("-000.000e7").unwrap();
        }
        let sign = if n.is_negative() { "-" } else { "+" };
        let exponent = i32::from(n.exponent()) - i32::try_from(n.digits().len()).unwrap() - 2;
        Number::parse(&format!("{sign}00{}00E{exponent}", n.digits())).unwrap()
    };
    fn shuffled<T: Clone>(set: &[T], map: impl Fn(&T) -> T) -> Vec<T> {
        let mut out: Vec<T> = set.iter().rev().map(&map).collect();
        out.extend(set.first().map(map));
        out
    }
    match value {
        AttributeValue::N(n) => AttributeValue::N(respell_number(n)),
        AttributeValue::Ss(set) => AttributeValue::Ss(shuffled(set, Clone::clone)),
        AttributeValue::Ns(set) => AttributeValue::Ns(shuffled(set, respell_number)),
        AttributeValue::Bs(set) => AttributeValue::Bs(shuffled(set, Clone::clone)),
        AttributeValue::M(map) => AttributeValue::M(
            map.iter()
                .map(|(name, inner)| (name.clone(), respell(inner)))
                .collect(),
        ),
        AttributeValue::L(list) => AttributeValue::L(list.iter().map(respell).collect()),
        other => other.clone(),
    }
}

/// A sort-key value with a reference order that does not use the code under test.
#[derive(Debug, Clone)]
enum KeyCase {
    S(String),
    N(GeneratedNumber),
    B(Vec<u8>),
}

impl KeyCase {
    fn value(&self) -> AttributeValue {
        match self {
            KeyCase::S(text) => AttributeValue::S(text.clone()),
            KeyCase::N(number) => AttributeValue::N(number.number()),
            KeyCase::B(bytes) => AttributeValue::B(bytes.clone()),
        }
    }
}

/// Two key values of the same type, with DynamoDB's order between them.
fn key_pair() -> impl Strategy<Value = (KeyCase, KeyCase, Ordering)> {
    // Strings and binaries favour NUL and 0xFF bytes and shared prefixes, where escaping bugs hide.
    let text = || "[a\\x00\\x01\u{ff}]{1,5}";
    let bytes = || {
        prop::collection::vec(
            prop_oneof![Just(0_u8), Just(1), Just(0xFF), any::<u8>()],
            1..6,
        )
    };
    prop_oneof![
        (text(), text()).prop_map(|(a, b)| {
            let order = a.as_bytes().cmp(b.as_bytes());
            (KeyCase::S(a), KeyCase::S(b), order)
        }),
        (generated_number(), generated_number()).prop_map(|(a, b)| {
            let order = a.reference_cmp(&b);
            (KeyCase::N(a), KeyCase::N(b), order)
        }),
        (bytes(), bytes()).prop_map(|(a, b)| {
            let order = a.cmp(&b);
            (KeyCase::B(a), KeyCase::B(b), order)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn canonical_round_trip_returns_the_canonical_item(item in item()) {
        let encoded = encode_item(&item);
        let mut expected = item.clone();
        canonicalize_item(&mut expected);
        prop_assert_eq!(decode_item(&encoded).unwrap(), expected);
    }

    #[test]
    fn equal_items_spelt_differently_encode_identically(item in item()) {
        let respelled: Item = item.iter().map(|(name, value)| (name.clone(), respell(value))).collect();
        prop_assert_eq!(encode_item(&respelled), encode_item(&item));
    }

    #[test]
    fn generated_items_are_valid_and_json_round_trips(item in item()) {
        prop_assert!(validate_item(&item).is_ok());
        let text = serde_json::to_string(&item).unwrap();
        prop_assert_eq!(&item_from_json_str(&text).unwrap(), &item);
        prop_assert_eq!(serde_json::to_value(&item).unwrap(), item_to_json(&item));
    }

    #[test]
    fn number_order_and_text_match_the_reference(a in generated_number(), b in generated_number()) {
        prop_assert_eq!(a.number().cmp(&b.number()), a.reference_cmp(&b));
        prop_assert_eq!(a.number() == b.number(), a.reference_cmp(&b) == Ordering::Equal);
        prop_assert_eq!(Number::parse(&a.number().to_string()).unwrap(), a.number());
    }

    #[test]
    fn key_byte_order_equals_sort_key_order(
        (a, b, order) in key_pair(),
        table_id in any::<u64>(),
        partition in key_pair(),
    ) {
        let pk = partition.0.value();
        let key_a = encode_key(table_id, &pk, Some(&a.value())).unwrap();
        let key_b = encode_key(table_id, &pk, Some(&b.value())).unwrap();
        prop_assert_eq!(key_a.cmp(&key_b), order);
        // Both lie in their partition's range, which holds no other partition key's keys.
        let prefix = partition_prefix(table_id, &pk).unwrap();
        let end = prefix_successor(&prefix);
        for key in [&key_a, &key_b] {
            prop_assert!(key.starts_with(&prefix));
            prop_assert!(end.as_ref().is_none_or(|end| key < end));
        }
        let other_pk = partition.1.value();
        if partition.2 != Ordering::Equal {
            let other = encode_key(table_id, &other_pk, Some(&a.value())).unwrap();
            prop_assert!(!other.starts_with(&prefix));
        }
        let decoded = decode_key(&key_a).unwrap();
        prop_assert_eq!(decoded.table_id, table_id);
        prop_assert_eq!(decoded.partition_key, pk);
        prop_assert_eq!(decoded.sort_key, Some(a.value()));
    }

    #[test]
    fn partition_keys_order_like_their_values(
        (a, b, order) in key_pair(),
        table_id in any::<u64>(),
    ) {
        let key_a = encode_key(table_id, &a.value(), None).unwrap();
        let key_b = encode_key(table_id, &b.value(), None).unwrap();
        prop_assert_eq!(key_a.cmp(&key_b), order);
        prop_assert_eq!(decode_key(&key_a).unwrap().sort_key, None);
    }

    #[test]
    fn decoders_never_panic_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_item(&bytes);
        let _ = decode_item(&[&[1_u8][..], &bytes].concat());
        let _ = decode_key(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_corrupted_encodings(
        item in item(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut encoded = encode_item(&item);
        let at = position.index(encoded.len());
        encoded[at] = byte;
        if let Ok(decoded) = decode_item(&encoded) {
            // Whatever still decodes is canonical: it re-encodes to the same bytes.
            prop_assert_eq!(encode_item(&decoded), encoded.clone());
        }
        encoded.truncate(at);
        prop_assert!(decode_item(&encoded).is_err());
    }
}

#[test]
fn key_order_across_number_edges_is_numeric() {
    let ascending = [
        "-9.9999999999999999999999999999999999999e125",
        "-9.99e125",
        "-1e100",
        "-10",
        "-9.5",
        "-1",
        "-0.1",
        "-1e-129",
        "-1e-130",
        "0",
        "1e-130",
        "1.5e-130",
        "1e-129",
        "0.1",
        "1",
        "1.01",
        "9.5",
        "10",
        "1e100",
        "9.99e125",
        "9.9999999999999999999999999999999999999e125",
    ];
    let keys: Vec<Vec<u8>> = ascending
        .iter()
        .map(|text| {
            let sk = AttributeValue::N(Number::parse(text).unwrap());
            encode_key(1, &AttributeValue::S("p".into()), Some(&sk)).unwrap()
        })
        .collect();
    for (pair, texts) in keys.windows(2).zip(ascending.windows(2)) {
        assert!(pair[0] < pair[1], "{} < {}", texts[0], texts[1]);
    }
}
