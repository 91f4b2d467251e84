//! The requests each workload sends, serialised straight into a reused buffer.
//!
//! Item `i` of the key space has partition key `p{i / 10}` and sort key `i % 10`, so a Query
//! of one partition key reads up to ten items.

use std::io::Write;
use std::sync::Arc;

use crate::cli::Workload;

/// Items per partition key.
pub const ITEMS_PER_PARTITION: u64 = 10;

/// One request: the operation and its JSON body.
pub struct Request<'a> {
    pub operation: &'static str,
    pub body: &'a [u8],
    /// True for GetItem: an empty answer means the item is missing.
    pub expects_item: bool,
}

/// Builds request bodies for one worker thread.
pub struct RequestBuilder {
    workload: Workload,
    items: u64,
    table_json: String,
    payload: String,
    buffer: Vec<u8>,
    random: SplitMix64,
    zipf: Option<Arc<ZipfKeys>>,
}

/// Keys drawn from a Zipf distribution over the key space (`--zipf`).
pub struct ZipfKeys {
    /// `cdf[r]`: the probability of picking a rank at most `r`.
    cdf: Vec<f64>,
    /// The item each rank stands for: a fixed shuffle, so hot items spread over partitions.
    items: Vec<u64>,
}

impl ZipfKeys {
    /// Most items a Zipf key space holds (its table is built in memory).
    pub const MAX_ITEMS: u64 = 10_000_000;

    /// The distribution over `items` items (at most [`ZipfKeys::MAX_ITEMS`]) with exponent `s`.
    pub fn new(items: u64, s: f64) -> Self {
        let items = items.clamp(1, Self::MAX_ITEMS);
        let mut cdf = Vec::with_capacity(items as usize);
        let mut total = 0.0;
        for rank in 1..=items {
            total += 1.0 / (rank as f64).powf(s);
            cdf.push(total);
        }
        for value in &mut cdf {
            *value /= total;
        }
        // Fisher–Yates with a fixed seed: every thread and run agrees on the hot items.
        let mut shuffle: Vec<u64> = (0..items).collect();
        let mut random = SplitMix64(0x5EED_2026);
        for i in (1..shuffle.len()).rev() {
            let j = random.below(i as u64 + 1) as usize;
            shuffle.swap(i, j);
        }
        ZipfKeys {
            cdf,
            items: shuffle,
        }
    }

    /// The item for a uniform draw `bits`.
    fn pick(&self, bits: u64) -> u64 {
        let u = (bits >> 11) as f64 / (1u64 << 53) as f64;
        let rank = self
            .cdf
            .partition_point(|c| *c < u)
            .min(self.items.len() - 1);
        self.items[rank]
    }
}

impl RequestBuilder {
    /// A builder for `workload` over `items` keys in `table`, writing `item_bytes` of payload,
    /// with a random stream seeded by `seed`.
    pub fn new(workload: Workload, table: &str, items: u64, item_bytes: u64, seed: u64) -> Self {
        // A JSON string literal, quotes included; table names need no escaping but stay safe.
        let table_json = serde_json::Value::from(table).to_string();
        RequestBuilder {
            workload,
            items: items.max(1),
            table_json,
            payload: payload(item_bytes),
            buffer: Vec::with_capacity(256 + item_bytes as usize),
            random: SplitMix64(seed),
            zipf: None,
        }
    }

    /// Draws keys from `zipf` instead of uniformly.
    pub fn with_zipf(mut self, zipf: Option<Arc<ZipfKeys>>) -> Self {
        self.zipf = zipf;
        self
    }

    /// The next request of the workload.
    pub fn next_request(&mut self) -> Request<'_> {
        let item = match &self.zipf {
            Some(zipf) => zipf.pick(self.random.next()),
            None => self.random.below(self.items),
        };
        let kind = match self.workload {
            Workload::Mix if self.random.next() & 1 == 0 => Workload::Put,
            Workload::Mix => Workload::GetEventual,
            other => other,
        };
        self.buffer.clear();
        // Writing into a Vec cannot fail.
        let _ = match kind {
            Workload::Put => put_body(&mut self.buffer, &self.table_json, item, &self.payload),
            Workload::GetStrong => get_body(&mut self.buffer, &self.table_json, item, true),
            Workload::GetEventual | Workload::Mix => {
                get_body(&mut self.buffer, &self.table_json, item, false)
            }
            Workload::Query => query_body(&mut self.buffer, &self.table_json, item),
        };
        let (operation, expects_item) = match kind {
            Workload::Put => ("PutItem", false),
            Workload::Query => ("Query", false),
            _ => ("GetItem", true),
        };
        Request {
            operation,
            body: &self.buffer,
            expects_item,
        }
    }
}

/// The PutItem body writing item `item`.
pub fn put_body(
    out: &mut Vec<u8>,
    table_json: &str,
    item: u64,
    payload: &str,
) -> std::io::Result<()> {
    write!(
        out,
        r#"{{"TableName":{table_json},"Item":{{"pk":{{"S":"p{}"}},"sk":{{"N":"{}"}},"v":{{"S":"{payload}"}}}}}}"#,
        item / ITEMS_PER_PARTITION,
        item % ITEMS_PER_PARTITION
    )
}

/// The PutRequest entry of BatchWriteItem for item `item`, as a JSON value.
pub fn put_request_entry(item: u64, payload: &str) -> serde_json::Value {
    serde_json::json!({"PutRequest": {"Item": {
        "pk": {"S": format!("p{}", item / ITEMS_PER_PARTITION)},
        "sk": {"N": (item % ITEMS_PER_PARTITION).to_string()},
        "v": {"S": payload},
    }}})
}

fn get_body(
    out: &mut Vec<u8>,
    table_json: &str,
    item: u64,
    consistent: bool,
) -> std::io::Result<()> {
    write!(
        out,
        r#"{{"TableName":{table_json},"Key":{{"pk":{{"S":"p{}"}},"sk":{{"N":"{}"}}}},"ConsistentRead":{consistent}}}"#,
        item / ITEMS_PER_PARTITION,
        item % ITEMS_PER_PARTITION
    )
}

fn query_body(out: &mut Vec<u8>, table_json: &str, item: u64) -> std::io::Result<()> {
    write!(
        out,
        r#"{{"TableName":{table_json},"KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{{":p":{{"S":"p{}"}}}}}}"#,
        item / ITEMS_PER_PARTITION
    )
}

/// `item_bytes` of printable payload (a repeating alphabet, so it needs no JSON escaping).
pub fn payload(item_bytes: u64) -> String {
    (0..item_bytes)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

/// A small, fast pseudo-random stream (SplitMix64); quality is ample for picking keys.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (bound > 0), with negligible bias for bounds far below 2^64.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod zipf_tests {
    use super::*;

    #[test]
    fn zipf_keys_favour_a_few_items_and_stay_in_the_key_space() {
        let zipf = ZipfKeys::new(1000, 1.2);
        let mut random = SplitMix64(7);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[zipf.pick(random.next()) as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: u32 = counts[..10].iter().sum();
        // Exponent 1.2 over 1,000 items: the top ten take about half of all picks.
        assert!(top > 40_000 && top < 70_000, "{top}");
        // The same shuffle in every instance: the hottest item is the same.
        let again = ZipfKeys::new(1000, 1.2);
        assert_eq!(zipf.items[0], again.items[0]);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn parse(builder: &mut RequestBuilder) -> (&'static str, Value) {
        let request = builder.next_request();
        (
            request.operation,
            serde_json::from_slice(request.body).unwrap(),
        )
    }

    #[test]
    fn bodies_are_valid_dynamodb_requests() {
        let mut put = RequestBuilder::new(Workload::Put, "t\"x", 1, 3, 7);
        assert_eq!(
            parse(&mut put),
            (
                "PutItem",
                json!({"TableName": "t\"x", "Item": {
                "pk": {"S": "p0"}, "sk": {"N": "0"}, "v": {"S": "abc"}}})
            )
        );
        let mut get = RequestBuilder::new(Workload::GetStrong, "t", 1, 3, 7);
        assert_eq!(parse(&mut get).1["ConsistentRead"], json!(true));
        let mut query = RequestBuilder::new(Workload::Query, "t", 1, 3, 7);
        let (operation, body) = parse(&mut query);
        assert_eq!(operation, "Query");
        assert_eq!(body["ExpressionAttributeValues"][":p"], json!({"S": "p0"}));
        let preload = put_request_entry(0, "abc");
        assert_eq!(preload["PutRequest"]["Item"], {
            let (_, body) = parse(&mut put);
            body["Item"].clone()
        });
    }

    #[test]
    fn mix_sends_both_puts_and_gets_and_keys_stay_in_range() {
        let mut mix = RequestBuilder::new(Workload::Mix, "t", 25, 0, 1);
        let mut puts = 0;
        for _ in 0..1000 {
            let (operation, body) = parse(&mut mix);
            if operation == "PutItem" {
                puts += 1;
            }
            let key = if operation == "PutItem" {
                &body["Item"]
            } else {
                &body["Key"]
            };
            let pk: u64 = key["pk"]["S"].as_str().unwrap()[1..].parse().unwrap();
            let sk: u64 = key["sk"]["N"].as_str().unwrap().parse().unwrap();
            assert!(pk * ITEMS_PER_PARTITION + sk < 25);
        }
        assert!((400..600).contains(&puts), "{puts} puts of 1000");
    }
}
