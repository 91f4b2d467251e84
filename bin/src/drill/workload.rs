//! The drill's clients: threads that write unique values and read them back strongly
//! consistently, each against a random node, recording every operation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ddb::client::{Client, ClientConfig, ClientError};
use ddb::sigv4::Credential;
use serde_json::{Value, json};

use super::history::{Actor, Op, OpAction, OpOutcome, key_name};
use crate::bench::workload::SplitMix64;

/// The table the drill writes.
pub const TABLE: &str = "drill";
/// How long one call may take before its outcome counts as unknown.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Percentage of operations that are writes.
const WRITE_PERCENT: u64 = 70;
/// Pause after an error, so a client does not spin on a node that is down.
const ERROR_PAUSE: Duration = Duration::from_millis(20);

/// What a client needs to reach the cluster.
#[derive(Clone)]
pub struct Target {
    /// Every node's endpoint, `http://host:port`.
    pub endpoints: Vec<String>,
    pub credential: Credential,
    pub region: String,
}

impl Target {
    /// A client for node `index`.
    pub fn client(&self, index: usize) -> Result<Client, ClientError> {
        Client::new(ClientConfig {
            endpoint: self.endpoints[index].clone(),
            credential: self.credential.clone(),
            session_token: None,
            region: self.region.clone(),
            timeout: CALL_TIMEOUT,
        })
    }
}

/// What one client thread did.
#[derive(Default)]
pub struct ClientRun {
    pub ops: Vec<Op>,
    /// Errors by kind ([`ClientError::label`]).
    pub errors: BTreeMap<String, u64>,
}

/// Runs client number `id` until `stop` is set: ~70% PutItem of `c<id>-<seq>` to a random
/// key, ~30% strongly consistent GetItem. On an error that is not the service's answer it moves
/// to another node. Times are measured from `epoch`.
pub fn run_client(
    id: u32,
    target: &Target,
    keys: u32,
    seed: u64,
    epoch: Instant,
    stop: &AtomicBool,
) -> ClientRun {
    let mut random = SplitMix64(seed);
    let nodes = target.endpoints.len() as u64;
    let mut node = random.below(nodes) as usize;
    let mut run = ClientRun::default();
    let mut client = match target.client(node) {
        Ok(client) => client,
        Err(e) => {
            *run.errors.entry(e.label().to_string()).or_default() += 1;
            return run;
        }
    };
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = random.below(u64::from(keys)) as u32;
        let write = random.below(100) < WRITE_PERCENT;
        let (action, result) = if write {
            sequence += 1;
            let value = format!("c{id}-{sequence}");
            let invoked = since(epoch);
            let result = put(&client, key, &value);
            (OpAction::Write(value), (invoked, since(epoch), result))
        } else {
            let invoked = since(epoch);
            let result = get(&client, key);
            let seen = result.as_ref().ok().cloned().flatten();
            (
                OpAction::Read(seen),
                (invoked, since(epoch), result.map(|_| ())),
            )
        };
        let (invoked_us, completed_us, result) = result;
        let outcome = match &result {
            Ok(()) => OpOutcome::Ok,
            Err(error) => {
                *run.errors.entry(error.label().to_string()).or_default() += 1;
                outcome_of(error)
            }
        };
        run.ops.push(Op {
            by: Actor::Client(id),
            key,
            action,
            invoked_us,
            completed_us,
            outcome,
        });
        if let Err(error) = result {
            if moves_on(&error) && nodes > 1 {
                // Another node, chosen at random among the others.
                node = (node + 1 + random.below(nodes - 1) as usize) % nodes as usize;
                if let Ok(other) = target.client(node) {
                    client = other;
                }
            }
            std::thread::sleep(ERROR_PAUSE);
        }
    }
    run
}

/// Only a validation error proves an operation was not applied; every other error leaves its
/// effect unknown.
pub fn outcome_of(error: &ClientError) -> OpOutcome {
    match error.service_code() {
        Some("ValidationException") => OpOutcome::Failed,
        _ => OpOutcome::Unknown,
    }
}

/// True when the node itself is the trouble (unreachable, too slow, failing): try another.
fn moves_on(error: &ClientError) -> bool {
    match error {
        ClientError::Service { status, .. } => *status >= 500,
        _ => true,
    }
}

/// PutItem `k<key>` with `v = value`.
pub fn put(client: &Client, key: u32, value: &str) -> Result<(), ClientError> {
    client
        .call(
            "PutItem",
            &json!({
                "TableName": TABLE,
                "Item": {"k": {"S": key_name(key)}, "v": {"S": value}},
            }),
        )
        .map(|_| ())
}

/// Strongly consistent GetItem of `k<key>`: its `v`, or `None` if there is no item.
pub fn get(client: &Client, key: u32) -> Result<Option<String>, ClientError> {
    let answer = client.call(
        "GetItem",
        &json!({
            "TableName": TABLE,
            "Key": {"k": {"S": key_name(key)}},
            "ConsistentRead": true,
        }),
    )?;
    match answer.get("Item") {
        None => Ok(None),
        Some(item) => item
            .pointer("/v/S")
            .and_then(Value::as_str)
            .map(|v| Some(v.to_string()))
            .ok_or_else(|| ClientError::Protocol(format!("item without a string v: {item}"))),
    }
}

/// Microseconds since `epoch`.
pub fn since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}
