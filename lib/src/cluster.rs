//! A node among nodes: replication messages, read indexes and forwarded requests between
//! `ddbd` processes, over [`crate::transport`].
//!
//! Payloads on the transport start with a kind byte:
//!
//! | kind | direction | body |
//! |---|---|---|
//! | 1 group message | one-way | group id (u64 LE), then [`Message::encode`] |
//! | 2 read index | call | group id (u64 LE); reply: LSN (u64 LE) |
//! | 3 forward | call | the router's catalog LSN (u64 LE), forwards so far including this one (u8), operation name length (u16 LE), name, JSON request body; reply: JSON response |
//! | 4 catalog | call | the caller's catalog LSN (u64 LE); reply: the metadata group's applied LSN (u64 LE), then the catalog if that LSN is newer (absent otherwise or when empty) |
//! | 5 snapshot page | call | group id (u64 LE), max bytes (u32 LE), then the key to start after (absent: from the first); reply: applied LSN (u64 LE), more (u8), item count (u32 LE), then per item key length (u32 LE), key, value length (u32 LE), value |
//! | 6 promote | call | group id (u64 LE), node (u32 LE); reply: empty |
//! | 7 removed | one-way | group id (u64 LE), then the group's committed membership (`Membership::encode`) |
//! | 8 metadata lookup | call | a table name; reply: the catalog's metadata LSN (u64 LE), then 1 if the table exists else 0 |
//! | 9 admission grant | call | the router's node id (u32 LE), then its asks as JSON (`[RouterAsk]`); reply: the grants as JSON (`[{rate, burst}]`, one per ask) |
//!
//! A reply starts with a status byte: 0 for success (followed by the body above), 1 for a
//! DynamoDB error (followed by its JSON, [`ApiError::to_json`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::node::{GroupNetwork, Node, SnapshotPage};
use crate::protocol::{ApiError, ErrorCode};
use crate::replication::{Membership, Message, NodeId};
use crate::transport::{Inbox, Incoming, Transport, TransportError};
use crate::wal::Lsn;

const KIND_GROUP_MESSAGE: u8 = 1;
const KIND_READ_INDEX: u8 = 2;
const KIND_FORWARD: u8 = 3;
const KIND_CATALOG: u8 = 4;
const KIND_SNAPSHOT_PAGE: u8 = 5;
const KIND_PROMOTE: u8 = 6;
const KIND_REMOVED: u8 = 7;
const KIND_METADATA_LOOKUP: u8 = 8;
const KIND_GAC_GRANT: u8 = 9;

const REPLY_OK: u8 = 0;
const REPLY_ERROR: u8 = 1;

/// How long a read-index call may take.
const READ_INDEX_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a forwarded request may take (it may wait for an election and a commit).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);

/// [`GroupNetwork`] over the transport. Its blocking calls must run outside the async runtime
/// (on blocking threads), as the node's request handlers do.
pub struct ClusterNetwork {
    transport: Transport,
    runtime: tokio::runtime::Handle,
    /// Nodes holding a metadata replica (lookups go round-robin to those other than this one).
    metadata_members: std::sync::Mutex<Vec<NodeId>>,
    lookups: Arc<LookupCounters>,
}

/// Routers' metadata lookups, counted where they are sent.
#[derive(Default)]
struct LookupCounters {
    sent: std::sync::atomic::AtomicU64,
    answered: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

impl ClusterNetwork {
    /// A network over `transport`, whose calls are driven on `runtime`.
    pub fn new(transport: Transport, runtime: tokio::runtime::Handle) -> ClusterNetwork {
        ClusterNetwork {
            transport,
            runtime,
            metadata_members: std::sync::Mutex::new(Vec::new()),
            lookups: Arc::new(LookupCounters::default()),
        }
    }

    /// The transport underneath (for its statistics).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    fn call(&self, to: NodeId, payload: Vec<u8>, timeout: Duration) -> Result<Bytes, ApiError> {
        let unreachable = || {
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                "Another node of the cluster cannot be reached; retry",
            )
        };
        if !self.transport.is_connected(u64::from(to)) {
            // Nothing was sent: failing at once lets the caller find the new leader.
            return Err(unreachable());
        }
        let reply = self
            .runtime
            .block_on(
                self.transport
                    .call(u64::from(to), Bytes::from(payload), timeout),
            )
            .map_err(|e| {
                tracing::debug!(to, error = %e, "call to a peer failed");
                match e {
                    // The peer may have acted on it: the outcome is unknown.
                    TransportError::CallTimeout {
                        connected: true, ..
                    }
                    | TransportError::RemoteFailure { .. } => ApiError::internal(
                        "Another node of the cluster did not answer in time; the outcome is unknown",
                    ),
                    _ => unreachable(),
                }
            })?;
        match reply.split_first() {
            Some((&REPLY_OK, body)) => Ok(Bytes::copy_from_slice(body)),
            Some((&REPLY_ERROR, body)) => {
                let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                Err(ApiError::from_json(&json))
            }
            _ => Err(ApiError::internal("malformed reply from another node")),
        }
    }
}

impl GroupNetwork for ClusterNetwork {
    fn send(&self, group_id: u64, to: NodeId, message: Message) {
        let encoded = message.encode();
        let mut payload = Vec::with_capacity(9 + encoded.len());
        payload.push(KIND_GROUP_MESSAGE);
        payload.extend_from_slice(&group_id.to_le_bytes());
        payload.extend_from_slice(&encoded);
        // Loss is fine: the replication core retransmits.
        let _ = self.transport.send(u64::from(to), Bytes::from(payload));
    }

    fn read_index(&self, leader: NodeId, group_id: u64) -> Result<Lsn, ApiError> {
        let mut payload = vec![KIND_READ_INDEX];
        payload.extend_from_slice(&group_id.to_le_bytes());
        let body = self.call(leader, payload, READ_INDEX_TIMEOUT)?;
        let bytes: [u8; 8] = body
            .as_ref()
            .try_into()
            .map_err(|_| ApiError::internal("malformed read index from another node"))?;
        Ok(Lsn(u64::from_le_bytes(bytes)))
    }

    fn forward(
        &self,
        to: NodeId,
        operation: &str,
        body: &Value,
        catalog_lsn: Lsn,
        hops: u8,
    ) -> Result<Value, ApiError> {
        let name = operation.as_bytes();
        let json = serde_json::to_vec(body).unwrap_or_default();
        let mut payload = Vec::with_capacity(11 + name.len() + json.len());
        payload.push(KIND_FORWARD);
        payload.extend_from_slice(&catalog_lsn.0.to_le_bytes());
        payload.push(hops);
        payload.extend_from_slice(&u16::try_from(name.len()).unwrap_or(0).to_le_bytes());
        payload.extend_from_slice(name);
        payload.extend_from_slice(&json);
        let reply = self.call(to, payload, FORWARD_TIMEOUT)?;
        serde_json::from_slice(&reply)
            .map_err(|_| ApiError::internal("malformed response from another node"))
    }

    fn fetch_snapshot_page(
        &self,
        from: NodeId,
        group_id: u64,
        after: Option<&[u8]>,
        max_bytes: u32,
    ) -> Result<SnapshotPage, ApiError> {
        let mut payload = vec![KIND_SNAPSHOT_PAGE];
        payload.extend_from_slice(&group_id.to_le_bytes());
        payload.extend_from_slice(&max_bytes.to_le_bytes());
        if let Some(after) = after {
            payload.extend_from_slice(after);
        }
        let reply = self.call(from, payload, FORWARD_TIMEOUT)?;
        decode_page(&reply).ok_or_else(|| ApiError::internal("malformed snapshot page"))
    }

    fn request_promotion(
        &self,
        leader: NodeId,
        group_id: u64,
        node: NodeId,
    ) -> Result<(), ApiError> {
        let mut payload = vec![KIND_PROMOTE];
        payload.extend_from_slice(&group_id.to_le_bytes());
        payload.extend_from_slice(&node.to_le_bytes());
        self.call(leader, payload, READ_INDEX_TIMEOUT).map(|_| ())
    }

    fn gac_grant(
        &self,
        to: NodeId,
        router: NodeId,
        asks: &[crate::admission::RouterAsk],
    ) -> Result<Vec<crate::admission::Grant>, ApiError> {
        let mut payload = vec![KIND_GAC_GRANT];
        payload.extend_from_slice(&router.to_le_bytes());
        payload.extend_from_slice(&serde_json::to_vec(asks).unwrap_or_default());
        let reply = self.call(to, payload, READ_INDEX_TIMEOUT)?;
        serde_json::from_slice(&reply)
            .map_err(|e| ApiError::internal(format!("malformed admission grant: {e}")))
    }

    fn is_reachable(&self, id: NodeId) -> bool {
        self.transport.is_connected(u64::from(id))
    }

    fn set_metadata_members(&self, members: Vec<NodeId>) {
        let me = NodeId::try_from(self.transport.node_id()).unwrap_or(0);
        *self
            .metadata_members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            members.into_iter().filter(|id| *id != me).collect();
    }

    fn query_metadata(&self, table: &str) {
        use std::sync::atomic::Ordering;
        let target = {
            let members = self
                .metadata_members
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if members.is_empty() {
                return;
            }
            let turn = self.lookups.sent.fetch_add(1, Ordering::Relaxed);
            members[usize::try_from(turn).unwrap_or(0) % members.len()]
        };
        let payload = Bytes::from([&[KIND_METADATA_LOOKUP][..], table.as_bytes()].concat());
        let call = self
            .transport
            .call(u64::from(target), payload, READ_INDEX_TIMEOUT);
        let lookups = Arc::clone(&self.lookups);
        self.runtime.spawn(async move {
            match call.await {
                Ok(_) => lookups.answered.fetch_add(1, Ordering::Relaxed),
                Err(_) => lookups.failed.fetch_add(1, Ordering::Relaxed),
            };
        });
    }

    fn routing_counters(&self) -> Vec<(&'static str, &'static str, u64)> {
        use std::sync::atomic::Ordering;
        vec![
            (
                "ddb_router_metadata_lookups_sent_total",
                "Metadata lookups this router sent (one per routed request, cache hit or miss).",
                self.lookups.sent.load(Ordering::Relaxed),
            ),
            (
                "ddb_router_metadata_lookups_answered_total",
                "Metadata lookups the metadata group answered.",
                self.lookups.answered.load(Ordering::Relaxed),
            ),
            (
                "ddb_router_metadata_lookups_failed_total",
                "Metadata lookups that failed or timed out.",
                self.lookups.failed.load(Ordering::Relaxed),
            ),
        ]
    }

    fn send_removed(&self, to: NodeId, group_id: u64, membership: &Membership) {
        let mut payload = vec![KIND_REMOVED];
        payload.extend_from_slice(&group_id.to_le_bytes());
        payload.extend_from_slice(&membership.encode());
        let _ = self.transport.send(u64::from(to), Bytes::from(payload));
    }

    fn fetch_catalog(
        &self,
        from: NodeId,
        newer_than: Lsn,
    ) -> Result<(Lsn, Option<Vec<u8>>), ApiError> {
        let mut payload = vec![KIND_CATALOG];
        payload.extend_from_slice(&newer_than.0.to_le_bytes());
        let reply = self.call(from, payload, READ_INDEX_TIMEOUT)?;
        let (lsn, catalog) = reply
            .split_first_chunk::<8>()
            .ok_or_else(|| ApiError::internal("malformed catalog from another node"))?;
        let catalog = (!catalog.is_empty()).then(|| catalog.to_vec());
        Ok((Lsn(u64::from_le_bytes(*lsn)), catalog))
    }
}

/// Serves what other nodes send this one: replication messages are delivered in arrival order
/// on one thread; read-index and forwarded requests run on the runtime's blocking threads.
pub fn serve_peers(
    node: Arc<Node>,
    inbox: Inbox,
    runtime: tokio::runtime::Handle,
) -> std::io::Result<()> {
    let mut receiver = inbox.into_receiver();
    std::thread::Builder::new()
        .name("ddb-peers".to_string())
        .spawn(move || {
            while let Some(incoming) = receiver.blocking_recv() {
                match incoming {
                    Incoming::Message { from, payload } => deliver(&node, from, &payload),
                    Incoming::Request {
                        from: _,
                        payload,
                        reply,
                    } => {
                        let node = Arc::clone(&node);
                        runtime.spawn_blocking(move || {
                            let answer = answer_request(&node, &payload);
                            let _ = reply.reply(Bytes::from(answer));
                        });
                    }
                }
            }
        })
        .map(|_| ())
}

fn deliver(node: &Node, from: u64, payload: &[u8]) {
    if let Some((&KIND_REMOVED, rest)) = payload.split_first() {
        if let Some((group, body)) = rest.split_first_chunk::<8>()
            && let Ok(membership) = Membership::decode(body)
        {
            node.removed_from(u64::from_le_bytes(*group), &membership);
        }
        return;
    }
    let Some((&KIND_GROUP_MESSAGE, rest)) = payload.split_first() else {
        tracing::debug!(from, "unexpected one-way payload from a peer");
        return;
    };
    let Some((group, body)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let (Ok(from), Ok(message)) = (NodeId::try_from(from), Message::decode(body)) else {
        tracing::warn!(from, "undecodable replication message from a peer");
        return;
    };
    node.deliver(u64::from_le_bytes(*group), from, message);
}

fn answer_request(node: &Node, payload: &[u8]) -> Vec<u8> {
    let result: Result<Vec<u8>, ApiError> = match payload.split_first() {
        Some((&KIND_READ_INDEX, rest)) => match rest.first_chunk::<8>() {
            Some(group) => node
                .read_index(u64::from_le_bytes(*group))
                .map(|lsn| lsn.0.to_le_bytes().to_vec()),
            None => Err(ApiError::internal("malformed read index request")),
        },
        Some((&KIND_FORWARD, rest)) => forwarded(node, rest),
        Some((&KIND_SNAPSHOT_PAGE, rest)) => match rest.split_first_chunk::<8>() {
            Some((group, rest)) => match rest.split_first_chunk::<4>() {
                Some((max_bytes, after)) => node
                    .snapshot_page(
                        u64::from_le_bytes(*group),
                        (!after.is_empty()).then_some(after),
                        u32::from_le_bytes(*max_bytes),
                    )
                    .map(|page| encode_page(&page)),
                None => Err(ApiError::internal("malformed snapshot request")),
            },
            None => Err(ApiError::internal("malformed snapshot request")),
        },
        Some((&KIND_PROMOTE, rest)) => match rest.split_first_chunk::<8>() {
            Some((group, rest)) => match rest.first_chunk::<4>() {
                Some(id) => node
                    .promote(u64::from_le_bytes(*group), u32::from_le_bytes(*id))
                    .map(|()| Vec::new()),
                None => Err(ApiError::internal("malformed promote request")),
            },
            None => Err(ApiError::internal("malformed promote request")),
        },
        Some((&KIND_GAC_GRANT, rest)) => match rest.split_first_chunk::<4>() {
            Some((router, asks)) => {
                serde_json::from_slice::<Vec<crate::admission::RouterAsk>>(asks)
                    .map_err(|e| ApiError::internal(format!("malformed admission request: {e}")))
                    .and_then(|asks| node.gac_grant(u32::from_le_bytes(*router), &asks))
                    .map(|rates| serde_json::to_vec(&rates).unwrap_or_default())
            }
            None => Err(ApiError::internal("malformed admission request")),
        },
        Some((&KIND_METADATA_LOOKUP, table)) => node
            .lookup_table(table)
            .map(|(lsn, exists)| [&lsn.0.to_le_bytes()[..], &[u8::from(exists)]].concat()),
        Some((&KIND_CATALOG, rest)) => node
            .local_catalog(Lsn(rest
                .first_chunk::<8>()
                .map_or(0, |lsn| u64::from_le_bytes(*lsn))))
            .map(|(lsn, catalog)| {
                [&lsn.0.to_le_bytes()[..], &catalog.unwrap_or_default()].concat()
            }),
        _ => Err(ApiError::internal("unknown request kind from a peer")),
    };
    match result {
        Ok(body) => [&[REPLY_OK][..], &body].concat(),
        Err(error) => {
            let json = serde_json::to_vec(&error.to_json()).unwrap_or_default();
            [&[REPLY_ERROR][..], &json].concat()
        }
    }
}

fn forwarded(node: &Node, rest: &[u8]) -> Result<Vec<u8>, ApiError> {
    let (catalog_lsn, rest) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| ApiError::internal("malformed forwarded request"))?;
    let catalog_lsn = Lsn(u64::from_le_bytes(*catalog_lsn));
    let (&hops, rest) = rest
        .split_first()
        .ok_or_else(|| ApiError::internal("malformed forwarded request"))?;
    let (length, rest) = rest
        .split_first_chunk::<2>()
        .ok_or_else(|| ApiError::internal("malformed forwarded request"))?;
    let length = usize::from(u16::from_le_bytes(*length));
    if rest.len() < length {
        return Err(ApiError::internal("malformed forwarded request"));
    }
    let (name, json) = rest.split_at(length);
    let operation = std::str::from_utf8(name)
        .map_err(|_| ApiError::internal("malformed forwarded operation name"))?;
    let body: Value = serde_json::from_slice(json)
        .map_err(|e| ApiError::serialization(format!("Request body is not valid JSON: {e}")))?;
    let response = node.handle_forwarded(operation, &body, catalog_lsn, hops)?;
    Ok(serde_json::to_vec(&response).unwrap_or_default())
}

fn encode_page(page: &SnapshotPage) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        13 + page
            .items
            .iter()
            .map(|(key, value)| 8 + key.len() + value.len())
            .sum::<usize>(),
    );
    out.extend_from_slice(&page.applied_lsn.0.to_le_bytes());
    out.push(u8::from(page.more));
    out.extend_from_slice(&u32::try_from(page.items.len()).unwrap_or(0).to_le_bytes());
    for (key, value) in &page.items {
        for bytes in [key, value] {
            out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(0).to_le_bytes());
            out.extend_from_slice(bytes);
        }
    }
    out
}

fn decode_page(bytes: &[u8]) -> Option<SnapshotPage> {
    let (lsn, rest) = bytes.split_first_chunk::<8>()?;
    let (&more, rest) = rest.split_first()?;
    let (count, mut rest) = rest.split_first_chunk::<4>()?;
    let count = u32::from_le_bytes(*count) as usize;
    let mut items = Vec::with_capacity(count.min(rest.len() / 8));
    let take = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        let (length, tail) = rest.split_first_chunk::<4>()?;
        let length = u32::from_le_bytes(*length) as usize;
        if tail.len() < length {
            return None;
        }
        let (value, tail) = tail.split_at(length);
        *rest = tail;
        Some(value.to_vec())
    };
    for _ in 0..count {
        let key = take(&mut rest)?;
        let value = take(&mut rest)?;
        items.push((key, value));
    }
    rest.is_empty().then_some(SnapshotPage {
        applied_lsn: Lsn(u64::from_le_bytes(*lsn)),
        items,
        more: more != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_pages_round_trip_and_truncation_is_rejected() {
        let page = SnapshotPage {
            applied_lsn: Lsn(42),
            items: vec![(b"a".to_vec(), b"1".to_vec()), (b"bb".to_vec(), Vec::new())],
            more: true,
        };
        let bytes = encode_page(&page);
        assert_eq!(decode_page(&bytes), Some(page));
        for cut in 0..bytes.len() {
            assert_eq!(decode_page(&bytes[..cut]), None, "cut at {cut}");
        }
    }
}
