//! The node's internal HTTP API, for the daemons that run beside it on the same host (the
//! archiver now, the scrubber later): under `/internal/`, authenticated by a token the node
//! keeps in its data directory (`internal.token`, mode 0600). Whoever can read the node's data
//! directory, and so its WAL, may use the API; nobody else can.
//!
//! | route | answer |
//! |---|---|
//! | `GET /internal/archive/partitions` | `{"node_id", "partitions": [ArchivePartition]}` |
//! | `GET /internal/archive/digest?partition=P&at_most=L` | `{"lsn", "digest"}` (base64), or `{"lsn": null}` |
//! | `POST /internal/archive/watermark` `{"partition_id", "lsn"}` | `{"watermark"}` |
//! | `GET /internal/catalog` | the catalog's JSON encoding |
//! | `GET /internal/partitions/P/snapshot` | a snapshot stream (below) |
//! | `GET /internal/scrub/replicas` | `[ScrubReplica]`: every replica's digest identities |
//! | `POST /internal/partitions/P/fault?kind=diverge\|rot` | tests only (`DDB_FAULT_INJECTION=1`): the key changed, hex |
//! | `GET /internal/partitions/P/key-hashes?after=HEX&limit=N` | `[[key hex, item hash hex]]`, in key order |
//! | `POST /internal/partitions/P/full-scan[?bytes_per_sec=N]` | `{"applied_lsn", "incremental", "full", "items", "bytes", "matches"}` |
//! | `POST /internal/fault/errors?rate=F` | tests only (`DDB_FAULT_INJECTION=1`): fail the fraction F of DynamoDB API requests with InternalServerError (0 stops) |
//! | `POST /internal/partitions/P/repair?from=N` | `RepairReport`: this node's replica rebuilt from node N's |
//!
//! A snapshot stream is: the magic `DDBSNAPS`, a u32 version (1), the LSN (u64), the time it
//! was taken (u64, ms since the epoch) and the state digest at that LSN; then per item a u32
//! key length, the key, a u32 item length and the item (canonical encoding), in key order;
//! then the end marker `u32::MAX` and the item count (u64). All integers little-endian. A
//! stream without its end marker was cut short and must be discarded.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::ServerState;
use crate::digest::{DIGEST_BYTES, StateDigest};
use crate::node::ArchivePartition;
use crate::replica::{Direction, KeyRange, ReplicaStore as _};
use crate::wal::Lsn;

/// The header that carries the internal token.
pub const INTERNAL_TOKEN_HEADER: &str = "x-ddb-internal-token";

/// The token file under a node's data directory.
const TOKEN_FILE: &str = "internal.token";

/// First bytes of a snapshot stream.
pub const SNAPSHOT_STREAM_MAGIC: [u8; 8] = *b"DDBSNAPS";
const SNAPSHOT_STREAM_VERSION: u32 = 1;
const END_MARKER: u32 = u32::MAX;
/// Bytes gathered before a piece of a snapshot stream is sent.
const STREAM_PIECE_BYTES: usize = 256 * 1024;

/// Reads the node's internal token, creating it (mode 0600) on the node's first start.
pub fn load_or_create_token(data_dir: &Path) -> std::io::Result<String> {
    match read_internal_token(data_dir) {
        Ok(token) => return Ok(token),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let token = crate::config::random_text(40, crate::config::SECRET_ALPHABET)?;
    let path = data_dir.join(TOKEN_FILE);
    let temporary = data_dir.join(format!("{TOKEN_FILE}.tmp"));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        std::io::Write::write_all(&mut file, token.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, &path)?;
    Ok(token)
}

/// The internal-API token every node of a cluster accepts besides its own: derived from the
/// cluster secret, for the daemons that talk to every node (the scrubber). Whoever knows the
/// secret can already join the replication transport, so it grants nothing more.
#[must_use]
pub fn cluster_internal_token(cluster_secret: &str) -> String {
    let key = blake3::derive_key("ddb 2026 internal API token", cluster_secret.as_bytes());
    blake3::keyed_hash(&key, b"internal").to_hex().to_string()
}

/// Reads the internal token of the node whose data directory is `data_dir` (for the daemons
/// beside it).
pub fn read_internal_token(data_dir: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(data_dir.join(TOKEN_FILE))?
        .trim()
        .to_string())
}

/// The answer of `GET /internal/archive/partitions`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArchivePartitions {
    /// The node answering.
    pub node_id: u32,
    /// Every replica it holds.
    pub partitions: Vec<ArchivePartition>,
}

/// The answer of `GET /internal/archive/digest`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestPoint {
    /// The LSN of the digest, `None` if none is known at or below the one asked for.
    pub lsn: Option<u64>,
    /// The state digest (base64 of its bytes).
    pub digest: Option<String>,
}

impl DigestPoint {
    /// The LSN and digest, if one was found and decodes.
    #[must_use]
    pub fn decode(&self) -> Option<(Lsn, StateDigest)> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.digest.as_ref()?)
            .ok()?;
        Some((Lsn(self.lsn?), StateDigest::from_slice(&bytes)?))
    }
}

/// The body of `POST /internal/archive/watermark`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WatermarkReport {
    /// The partition.
    pub partition_id: u64,
    /// The archive holds every entry of it through this LSN.
    pub lsn: u64,
}

/// `partition` and `at_most` from the query string of a digest request.
fn digest_query(uri: &Uri) -> Option<(u64, u64)> {
    let (mut partition, mut at_most) = (None, None);
    for pair in uri.query()?.split('&') {
        match pair.split_once('=') {
            Some(("partition", value)) => partition = value.parse().ok(),
            Some(("at_most", value)) => at_most = value.parse().ok(),
            _ => {}
        }
    }
    partition.zip(at_most)
}

/// Route layer on every `/internal/` route: refuses a request without a token this node
/// accepts, before its handler runs.
pub(super) async fn require_token(
    State(state): State<Arc<ServerState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match authorized(&state, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => *refused,
    }
}

fn authorized(state: &ServerState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let presented = headers
        .get(INTERNAL_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok());
    let good = presented.is_some_and(|presented| {
        // Constant time: compare hashes (blake3's equality is constant-time), not strings.
        let presented = blake3::hash(presented.as_bytes());
        state
            .internal_tokens
            .iter()
            .any(|expected| blake3::hash(expected.as_bytes()) == presented)
    });
    if good {
        Ok(())
    } else {
        Err(Box::new(text(
            StatusCode::FORBIDDEN,
            "the internal API needs the token in the node's data directory\n".to_string(),
        )))
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

fn api_error(error: &crate::protocol::ApiError) -> Response {
    let status = if error.code == crate::protocol::ErrorCode::ResourceNotFoundException {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    };
    text(status, format!("{}\n", error.message))
}

/// Runs blocking node work off the async threads and answers with its JSON, or its error.
async fn answer<T: Serialize + Send + 'static>(
    work: impl FnOnce() -> Result<T, crate::protocol::ApiError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => json(&value),
        Ok(Err(error)) => api_error(&error),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

pub(super) async fn partitions(State(state): State<Arc<ServerState>>) -> Response {
    let node = Arc::clone(&state.node);
    answer(move || {
        Ok(ArchivePartitions {
            node_id: node.options().node_id,
            partitions: node.archive_partitions(),
        })
    })
    .await
}

pub(super) async fn digest(State(state): State<Arc<ServerState>>, uri: Uri) -> Response {
    let Some((partition, at_most)) = digest_query(&uri) else {
        return text(
            StatusCode::BAD_REQUEST,
            "digest needs ?partition=P&at_most=LSN\n".into(),
        );
    };
    let node = Arc::clone(&state.node);
    answer(move || {
        let point = node.archive_digest(partition, Lsn(at_most))?;
        Ok(DigestPoint {
            lsn: point.as_ref().map(|(lsn, _)| lsn.0),
            digest: point.map(|(_, digest)| {
                base64::engine::general_purpose::STANDARD.encode(digest.to_bytes())
            }),
        })
    })
    .await
}

pub(super) async fn watermark(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    let report: WatermarkReport = match serde_json::from_slice(&body) {
        Ok(report) => report,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("watermark report: {e}\n")),
    };
    let node = Arc::clone(&state.node);
    answer(move || {
        let lsn = node.advance_archive_watermark(report.partition_id, Lsn(report.lsn))?;
        Ok(serde_json::json!({ "watermark": lsn.0 }))
    })
    .await
}

pub(super) async fn scrub_replicas(State(state): State<Arc<ServerState>>) -> Response {
    let node = Arc::clone(&state.node);
    answer(move || node.scrub_replicas()).await
}

/// The value of `name=value` in the request's query, if present.
fn query_value<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

pub(super) async fn full_scan(
    State(state): State<Arc<ServerState>>,
    uri: Uri,
    axum::extract::Path(partition_id): axum::extract::Path<u64>,
) -> Response {
    let rate = query_value(&uri, "bytes_per_sec").and_then(|rate| rate.parse().ok());
    let node = Arc::clone(&state.node);
    answer(move || {
        let report = node.full_scan(partition_id, rate)?;
        Ok(serde_json::json!({
            "applied_lsn": report.applied_lsn.0,
            "incremental": report.incremental.identity(),
            "full": report.full.identity(),
            "items": report.items,
            "bytes": report.bytes,
            "matches": report.matches(),
        }))
    })
    .await
}

pub(super) async fn fault(
    State(state): State<Arc<ServerState>>,
    uri: Uri,
    axum::extract::Path(partition_id): axum::extract::Path<u64>,
) -> Response {
    let kind = query_value(&uri, "kind").unwrap_or("").to_string();
    let node = Arc::clone(&state.node);
    answer(move || {
        let key = node.inject_fault(partition_id, &kind)?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        Ok(serde_json::json!({ "key": hex }))
    })
    .await
}

pub(super) async fn inject_errors(State(state): State<Arc<ServerState>>, uri: Uri) -> Response {
    if !state.node.options().fault_injection {
        return api_error(&crate::protocol::ApiError::validation(
            "fault injection is off (start the node with DDB_FAULT_INJECTION=1)",
        ));
    }
    let rate = query_value(&uri, "rate").and_then(|rate| rate.parse::<f64>().ok());
    let Some(rate) = rate.filter(|rate| (0.0..=1.0).contains(rate)) else {
        return api_error(&crate::protocol::ApiError::validation(
            "rate must be a fraction from 0 to 1",
        ));
    };
    let ppm = (rate * 1_000_000.0).round() as u64;
    state
        .injected_errors_ppm
        .store(ppm, std::sync::atomic::Ordering::Relaxed);
    tracing::warn!(rate, "injecting errors into DynamoDB API requests");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "rate": rate }).to_string(),
    )
        .into_response()
}

pub(super) async fn repair(
    State(state): State<Arc<ServerState>>,
    uri: Uri,
    axum::extract::Path(partition_id): axum::extract::Path<u64>,
) -> Response {
    let source: Option<u32> = query_value(&uri, "from").and_then(|id| id.parse().ok());
    let node = Arc::clone(&state.node);
    answer(move || {
        let source = source.ok_or_else(|| {
            crate::protocol::ApiError::validation("repair needs ?from=<node id of a good copy>")
        })?;
        node.repair_replica(partition_id, source)
    })
    .await
}

pub(super) async fn key_hashes(
    State(state): State<Arc<ServerState>>,
    uri: Uri,
    axum::extract::Path(partition_id): axum::extract::Path<u64>,
) -> Response {
    let (mut after, mut limit) = (None, 1000usize);
    for pair in uri.query().unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("after", value)) => after = crate::scrub::unhex(value),
            Some(("limit", value)) => limit = value.parse().unwrap_or(limit).min(10_000),
            _ => {}
        }
    }
    let node = Arc::clone(&state.node);
    answer(move || {
        let page = node.key_hashes(partition_id, after, limit)?;
        let page: Vec<(String, String)> = page
            .iter()
            .map(|(key, hash)| (crate::scrub::hex(key), crate::scrub::hex(hash)))
            .collect();
        Ok(page)
    })
    .await
}

pub(super) async fn catalog(State(state): State<Arc<ServerState>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        state.node.catalog().encode(),
    )
        .into_response()
}

pub(super) async fn snapshot(
    State(state): State<Arc<ServerState>>,
    axum::extract::Path(partition_id): axum::extract::Path<u64>,
) -> Response {
    let partition = match state.node.local_partition(partition_id) {
        Ok(partition) => partition,
        Err(error) => return api_error(&error),
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let outcome = stream_snapshot(&partition, |piece| {
            sender
                .blocking_send(Ok(piece))
                .map_err(|_| "the reader went away".to_string())
        });
        if let Err(reason) = outcome {
            tracing::warn!(partition = partition_id, %reason, "snapshot stream failed");
            let _ = sender.blocking_send(Err(std::io::Error::other(reason)));
        }
    });
    let pieces = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|piece| (piece, receiver))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(pieces),
    )
        .into_response()
}

/// Writes a snapshot stream of `partition`'s store, in pieces of about
/// [`STREAM_PIECE_BYTES`], to `send`.
fn stream_snapshot(
    partition: &crate::node::Partition,
    mut send: impl FnMut(Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let snapshot = partition.store().snapshot().map_err(|e| e.to_string())?;
    let state = snapshot.applied_state().clone();
    let mut piece = Vec::with_capacity(STREAM_PIECE_BYTES + 64 * 1024);
    piece.extend_from_slice(&SNAPSHOT_STREAM_MAGIC);
    piece.extend_from_slice(&SNAPSHOT_STREAM_VERSION.to_le_bytes());
    piece.extend_from_slice(&state.applied_lsn.0.to_le_bytes());
    piece.extend_from_slice(&crate::service::now_ms().to_le_bytes());
    piece.extend_from_slice(&state.digest.to_bytes());
    let mut count: u64 = 0;
    for item in snapshot.scan(&KeyRange::all(), Direction::Forward) {
        let (key, item) = item.map_err(|e| e.to_string())?;
        for part in [&key, &item] {
            let len = u32::try_from(part.len()).map_err(|_| "an item too large".to_string())?;
            piece.extend_from_slice(&len.to_le_bytes());
            piece.extend_from_slice(part);
        }
        count += 1;
        if piece.len() >= STREAM_PIECE_BYTES {
            send(std::mem::take(&mut piece))?;
        }
    }
    piece.extend_from_slice(&END_MARKER.to_le_bytes());
    piece.extend_from_slice(&count.to_le_bytes());
    send(piece)
}

/// The head of a snapshot stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotStreamHead {
    /// The LSN the snapshot reflects.
    pub lsn: Lsn,
    /// When it was taken (ms since the epoch); every entry in it is older.
    pub taken_at_ms: u64,
    /// The node's state digest at `lsn`.
    pub digest: StateDigest,
}

/// Reads a snapshot stream: the head, then every item passed to `item` in order. Fails on a
/// stream cut short or malformed.
pub fn read_snapshot_stream(
    mut reader: impl Read,
    mut item: impl FnMut(&[u8], &[u8]) -> Result<(), String>,
) -> Result<(SnapshotStreamHead, u64), String> {
    let mut head = [0u8; 8 + 4 + 8 + 8 + DIGEST_BYTES];
    reader
        .read_exact(&mut head)
        .map_err(|e| format!("snapshot stream head: {e}"))?;
    if head[..8] != SNAPSHOT_STREAM_MAGIC {
        return Err("not a snapshot stream".into());
    }
    let number = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&head[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if version != SNAPSHOT_STREAM_VERSION {
        return Err(format!("snapshot stream version {version} is unknown"));
    }
    let mut digest = [0u8; DIGEST_BYTES];
    digest.copy_from_slice(&head[28..]);
    let head = SnapshotStreamHead {
        lsn: Lsn(number(12)),
        taken_at_ms: number(20),
        digest: StateDigest::from_bytes(&digest),
    };
    let mut count = 0u64;
    let mut key = Vec::new();
    let mut value = Vec::new();
    loop {
        let len = read_u32(&mut reader)?;
        if len == END_MARKER {
            let mut expected = [0u8; 8];
            reader
                .read_exact(&mut expected)
                .map_err(|e| format!("snapshot stream end: {e}"))?;
            let expected = u64::from_le_bytes(expected);
            if expected != count {
                return Err(format!(
                    "snapshot stream says {expected} items, carried {count}"
                ));
            }
            return Ok((head, count));
        }
        read_part(&mut reader, len, &mut key)?;
        let len = read_u32(&mut reader)?;
        read_part(&mut reader, len, &mut value)?;
        item(&key, &value)?;
        count += 1;
    }
}

fn read_u32(reader: &mut impl Read) -> Result<u32, String> {
    let mut bytes = [0u8; 4];
    reader
        .read_exact(&mut bytes)
        .map_err(|e| format!("snapshot stream cut short: {e}"))?;
    Ok(u32::from_le_bytes(bytes))
}

fn read_part(reader: &mut impl Read, len: u32, into: &mut Vec<u8>) -> Result<(), String> {
    // An item is at most 400 KB; a longer length is a corrupt stream, not an allocation.
    if len > 1024 * 1024 {
        return Err(format!("snapshot stream carries a {len}-byte part"));
    }
    into.resize(len as usize, 0);
    reader
        .read_exact(into)
        .map_err(|e| format!("snapshot stream cut short: {e}"))
}
