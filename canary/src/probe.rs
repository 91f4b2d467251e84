//! One probe round against one endpoint: the fixed mix of calls a customer makes, each one
//! attempt with a timeout, each answer checked.
//!
//! A round writes a fresh item (a key never used before, a random value), reads it back
//! strongly consistently (must be exactly what was written), eventually consistently (what was
//! written, or nothing yet: a replica may lag, but may never invent), queries it (strongly
//! consistent, exactly one item, the value written) and deletes it. When the write fails the
//! reads still go out — they measure whether the endpoint answers, as a customer's would — and
//! accept the item or its absence (a write that timed out may have happened).

use std::time::{Duration, Instant};

use ddb::client::{Client, ClientError};
use serde_json::{Value, json};

/// How one call ended, as the canary counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Answered, and the answer was right.
    Ok,
    /// A 4xx that is the caller's (validation, a failed condition, a missing table): not held
    /// against availability.
    ClientError,
    /// Throttled: counted on its own, not against availability.
    Throttled,
    /// A 5xx.
    ServerError,
    /// No answer within the timeout.
    Timeout,
    /// The connection failed (refused, reset, unreachable).
    Connection,
    /// An answer that could not be understood (bad checksum, not JSON).
    BadAnswer,
    /// A successful answer holding the wrong data.
    WrongData,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::ClientError,
        Outcome::Throttled,
        Outcome::ServerError,
        Outcome::Timeout,
        Outcome::Connection,
        Outcome::BadAnswer,
        Outcome::WrongData,
    ];

    /// The `outcome` label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::Throttled => "throttled",
            Outcome::ServerError => "server_error",
            Outcome::Timeout => "timeout",
            Outcome::Connection => "connection",
            Outcome::BadAnswer => "bad_answer",
            Outcome::WrongData => "wrong_data",
        }
    }

    /// What the outcome does to availability: `Some(true)` counts against it, `Some(false)`
    /// for it, `None` not at all (client errors and throttling).
    #[must_use]
    pub fn against_availability(self) -> Option<bool> {
        match self {
            Outcome::Ok => Some(false),
            Outcome::ClientError | Outcome::Throttled => None,
            Outcome::ServerError
            | Outcome::Timeout
            | Outcome::Connection
            | Outcome::BadAnswer
            | Outcome::WrongData => Some(true),
        }
    }

    /// The outcome of a call that failed with `error`.
    #[must_use]
    pub fn of_error(error: &ClientError) -> Self {
        match error {
            ClientError::Service { code, status, .. } => {
                if matches!(
                    code.as_str(),
                    "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                ) {
                    Outcome::Throttled
                } else if *status >= 500 {
                    Outcome::ServerError
                } else {
                    Outcome::ClientError
                }
            }
            ClientError::Timeout { .. } => Outcome::Timeout,
            ClientError::Transport { .. } => Outcome::Connection,
            ClientError::Protocol(_) => Outcome::BadAnswer,
        }
    }
}

/// One call of a round.
#[derive(Clone, Debug)]
pub struct Call {
    /// The operation label: `PutItem`, `GetItem` (strongly consistent), `GetItemEventual`,
    /// `Query`, `DeleteItem`.
    pub op: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
    /// Why it failed, when it did.
    pub detail: Option<String>,
}

/// The probe of one endpoint.
pub struct Probe {
    client: Client,
    table: String,
    /// Makes this process's keys unique among canaries and restarts.
    tag: String,
    sequence: u64,
    /// Set when a call said the table does not exist.
    pub table_missing: bool,
}

impl Probe {
    /// A probe through `client` of `table`; `az` goes into its keys.
    #[must_use]
    pub fn new(client: Client, table: &str, az: &str) -> Self {
        Probe {
            client,
            table: table.to_string(),
            tag: format!("{az}-{:08x}", random_u32()),
            sequence: 0,
            table_missing: false,
        }
    }

    /// The endpoint probed.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        self.client.endpoint()
    }

    /// The client the probe calls through.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// One round of the mix.
    pub fn round(&mut self) -> Vec<Call> {
        self.sequence += 1;
        let key = json!({ "k": { "S": format!("probe-{}-{}", self.tag, self.sequence) } });
        let value = format!("{}-{:08x}", self.sequence, random_u32());
        let mut calls = Vec::with_capacity(5);
        let mut item = key.clone();
        item["v"] = json!({ "S": value });
        let put = self.call(
            "PutItem",
            "PutItem",
            &json!({ "TableName": self.table, "Item": item }),
            |_| true,
        );
        // A write that failed may still have happened (a timeout after the commit): the reads
        // then accept the item or its absence, and still measure whether the endpoint answers.
        let written = put.outcome == Outcome::Ok;
        calls.push(put);
        let holds = |answer: &Value| answer["Item"]["v"]["S"] == value.as_str();
        let absent = |answer: &Value| answer.get("Item").is_none();
        calls.push(self.call(
            "GetItem",
            "GetItem",
            &json!({ "TableName": self.table, "Key": key, "ConsistentRead": true }),
            |answer| holds(answer) || (!written && absent(answer)),
        ));
        calls.push(self.call(
            "GetItemEventual",
            "GetItem",
            &json!({ "TableName": self.table, "Key": key, "ConsistentRead": false }),
            |answer| absent(answer) || holds(answer),
        ));
        calls.push(self.call(
            "Query",
            "Query",
            &json!({
                "TableName": self.table,
                "KeyConditionExpression": "k = :k",
                "ExpressionAttributeValues": { ":k": key["k"] },
                "ConsistentRead": true,
            }),
            |answer| {
                answer["Items"]
                    .as_array()
                    .is_some_and(|items| match items.as_slice() {
                        [item] => item["v"]["S"] == value.as_str(),
                        [] => !written,
                        _ => false,
                    })
            },
        ));
        calls.push(self.call(
            "DeleteItem",
            "DeleteItem",
            &json!({ "TableName": self.table, "Key": key }),
            |_| true,
        ));
        calls
    }

    /// One attempt at `operation`, labelled `op`, whose answer must satisfy `right`.
    fn call(
        &mut self,
        op: &'static str,
        operation: &str,
        body: &Value,
        right: impl Fn(&Value) -> bool,
    ) -> Call {
        let started = Instant::now();
        let answer = self.client.call(operation, body);
        let elapsed = started.elapsed();
        let (outcome, detail) = match answer {
            Ok(answer) if right(&answer) => (Outcome::Ok, None),
            Ok(answer) => (Outcome::WrongData, Some(format!("{op} read back {answer}"))),
            Err(error) => {
                if error.service_code() == Some("ResourceNotFoundException") {
                    self.table_missing = true;
                }
                (Outcome::of_error(&error), Some(error.to_string()))
            }
        };
        Call {
            op,
            outcome,
            elapsed,
            detail,
        }
    }
}

/// Creates the canary's table through `client` unless it exists — on demand, or provisioned
/// with `capacity_units` read and write units when not 0 — and waits until a write to it
/// succeeds (so a table still settling is not counted against any endpoint).
pub fn ensure_table(
    client: &Client,
    table: &str,
    capacity_units: u64,
    patience: Duration,
) -> Result<(), String> {
    let mut request = json!({
        "TableName": table,
        "AttributeDefinitions": [{ "AttributeName": "k", "AttributeType": "S" }],
        "KeySchema": [{ "AttributeName": "k", "KeyType": "HASH" }],
        "BillingMode": "PAY_PER_REQUEST",
    });
    if capacity_units > 0 {
        request["BillingMode"] = json!("PROVISIONED");
        request["ProvisionedThroughput"] = json!({
            "ReadCapacityUnits": capacity_units,
            "WriteCapacityUnits": capacity_units,
        });
    }
    let create = client.call("CreateTable", &request);
    match create {
        Ok(_) => tracing::info!(
            table,
            endpoint = client.endpoint(),
            "created the canary's table"
        ),
        Err(e) if e.service_code() == Some("ResourceInUseException") => {}
        Err(e) => return Err(format!("creating {table}: {e}")),
    }
    let deadline = Instant::now() + patience;
    let item = json!({ "TableName": table, "Item": { "k": { "S": "canary-ready" } } });
    loop {
        match client.call("PutItem", &item) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("{table} does not take writes: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A random u32 (keys and values only need to be unlikely to repeat).
fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return nanos;
    }
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, status: u16) -> ClientError {
        ClientError::Service {
            code: code.to_string(),
            message: String::new(),
            status,
        }
    }

    #[test]
    fn what_counts_against_availability() {
        let against = |error: ClientError| Outcome::of_error(&error).against_availability();
        assert_eq!(against(service("InternalServerError", 500)), Some(true));
        assert_eq!(against(service("ServiceUnavailable", 503)), Some(true));
        assert_eq!(
            against(ClientError::Timeout {
                endpoint: String::new(),
                timeout_ms: 1
            }),
            Some(true)
        );
        assert_eq!(
            against(ClientError::Transport {
                endpoint: String::new(),
                detail: String::new()
            }),
            Some(true)
        );
        assert_eq!(
            against(service("ConditionalCheckFailedException", 400)),
            None
        );
        assert_eq!(against(service("ValidationException", 400)), None);
        assert_eq!(
            Outcome::of_error(&service("ProvisionedThroughputExceededException", 400)),
            Outcome::Throttled
        );
        assert_eq!(
            Outcome::of_error(&service("ThrottlingException", 400)),
            Outcome::Throttled
        );
        assert_eq!(Outcome::Throttled.against_availability(), None);
        assert_eq!(Outcome::WrongData.against_availability(), Some(true));
        assert_eq!(Outcome::Ok.against_availability(), Some(false));
    }
}
