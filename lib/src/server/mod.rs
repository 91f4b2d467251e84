//! The HTTP face of a node: DynamoDB JSON 1.0 on `POST /`, `/healthz` and `/metrics`.
//!
//! Every request gets a request id (`x-amzn-RequestId`), is authenticated with SigV4 (unless
//! the node was started with authentication off), dispatched on `X-Amz-Target`, and answered
//! with DynamoDB's JSON and error shapes and an `x-amz-crc32` of the body, which the AWS SDKs
//! check.

mod internal;
mod metrics;
mod request_id;

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

pub use internal::{
    ArchivePartitions, DigestPoint, INTERNAL_TOKEN_HEADER, SnapshotStreamHead, WatermarkReport,
    cluster_internal_token, load_or_create_token, read_internal_token, read_snapshot_stream,
};
pub use metrics::{Metrics, Outcome};
use request_id::RequestIds;

use crate::node::Node;
use crate::protocol::{ApiError, CONTENT_TYPE, ErrorCode, TARGET_PREFIX};
use crate::sigv4::{RequestParts, Verifier};

/// Largest request body accepted (DynamoDB's limit for a batch request).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// What the HTTP layer needs besides the node.
pub struct ServerState {
    node: Arc<Node>,
    verifier: Option<Verifier>,
    metrics: Metrics,
    request_ids: RequestIds,
    /// The tokens the internal API accepts (the node's own, and in a cluster the one derived
    /// from the cluster secret); none refuses every internal request.
    internal_tokens: Vec<String>,
    /// Fault injection (tests of the canary's alarms): the fraction of DynamoDB API requests,
    /// in parts per million, answered with an injected InternalServerError.
    injected_errors_ppm: std::sync::atomic::AtomicU64,
    /// DynamoDB API requests seen while errors are injected (which ones fail is spread evenly).
    injected_seen: std::sync::atomic::AtomicU64,
}

impl ServerState {
    /// State for serving `node`; `verifier` `None` turns authentication off (local
    /// experiments only).
    #[must_use]
    pub fn new(node: Arc<Node>, verifier: Option<Verifier>) -> Arc<Self> {
        ServerState::with_cluster_secret(node, verifier, None)
    }

    /// [`ServerState::new`] for a node of a cluster: its internal API also accepts the token
    /// derived from `cluster_secret` ([`cluster_internal_token`]).
    #[must_use]
    pub fn with_cluster_secret(
        node: Arc<Node>,
        verifier: Option<Verifier>,
        cluster_secret: Option<&str>,
    ) -> Arc<Self> {
        let request_ids = RequestIds::new(node.options().node_id);
        let mut internal_tokens = Vec::new();
        match load_or_create_token(node.data_dir()) {
            Ok(token) => internal_tokens.push(token),
            Err(e) => {
                tracing::error!(error = %e, "no internal token: only the cluster's opens the internal API");
            }
        }
        internal_tokens.extend(cluster_secret.map(cluster_internal_token));
        Arc::new(ServerState {
            node,
            verifier,
            metrics: Metrics::default(),
            request_ids,
            internal_tokens,
            injected_errors_ppm: std::sync::atomic::AtomicU64::new(0),
            injected_seen: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The request counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// True if this request is one of the injected failures: `ppm` of every million requests,
    /// spread evenly (request n fails when n·ppm crosses a multiple of a million).
    fn inject_error(&self) -> bool {
        use std::sync::atomic::Ordering;
        let ppm = self.injected_errors_ppm.load(Ordering::Relaxed);
        if ppm == 0 {
            return false;
        }
        let n = self.injected_seen.fetch_add(1, Ordering::Relaxed);
        (n + 1) * ppm / 1_000_000 > n * ppm / 1_000_000
    }
}

/// The node's HTTP routes.
pub fn router(state: Arc<ServerState>) -> Router {
    // Every internal route is behind the token check, as one layer.
    let internal = Router::new()
        .route("/internal/archive/partitions", get(internal::partitions))
        .route("/internal/archive/digest", get(internal::digest))
        .route("/internal/archive/watermark", post(internal::watermark))
        .route("/internal/catalog", get(internal::catalog))
        .route(
            "/internal/partitions/{partition}/snapshot",
            get(internal::snapshot),
        )
        .route("/internal/scrub/replicas", get(internal::scrub_replicas))
        .route(
            "/internal/partitions/{partition}/full-scan",
            post(internal::full_scan),
        )
        .route(
            "/internal/partitions/{partition}/fault",
            post(internal::fault),
        )
        .route(
            "/internal/partitions/{partition}/repair",
            post(internal::repair),
        )
        .route("/internal/fault/errors", post(internal::inject_errors))
        .route(
            "/internal/partitions/{partition}/key-hashes",
            get(internal::key_hashes),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            internal::require_token,
        ));
    Router::new()
        .route("/", post(dynamodb))
        .route("/healthz", get(healthz))
        .route("/cluster/status", get(cluster_status))
        .route("/admission/status", get(admission_status))
        .route("/metrics", get(metrics_text))
        .merge(internal)
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn cluster_status(
    axum::extract::State(state): axum::extract::State<Arc<ServerState>>,
) -> Response {
    status_document(&state, Node::cluster_status).await
}

async fn admission_status(
    axum::extract::State(state): axum::extract::State<Arc<ServerState>>,
) -> Response {
    status_document(&state, Node::admission_status).await
}

/// Answers a status document the node builds on a blocking thread (it takes locks).
async fn status_document(state: &ServerState, build: fn(&Node) -> Value) -> Response {
    let node = Arc::clone(&state.node);
    match tokio::task::spawn_blocking(move || build(&node)).await {
        Ok(status) => respond(StatusCode::OK, &status, "status"),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            &ApiError::internal(format!("status: {e}")).to_json(),
            "status",
        ),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics_text(State(state): State<Arc<ServerState>>) -> Response {
    let mut text = state.metrics.render();
    state.node.write_stages().render(&mut text);
    use std::fmt::Write as _;
    for (name, help, value) in state.node.routing_counters() {
        let _ = write!(
            text,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        );
    }
    // Groups this node leads that run with a log replica (a lost replica replaced, not yet
    // rebuilt): an operational alarm while it lasts, as the group has one full copy fewer.
    let with_log_replica = state
        .node
        .group_status()
        .iter()
        .filter(|(_, status)| {
            status.state == "leader"
                && status
                    .membership
                    .iter()
                    .any(|(_, role)| role == crate::replication::Role::Log)
        })
        .count();
    let _ = write!(
        text,
        "# HELP ddb_groups_with_log_replica Groups this node leads whose membership holds a log replica.\n# TYPE ddb_groups_with_log_replica gauge\nddb_groups_with_log_replica {with_log_replica}\n"
    );
    metrics::render_admission(&mut text, &state.node.admission_status());
    let archive = state.node.archive_partitions();
    type Value = fn(&crate::node::ArchivePartition) -> u64;
    let families: [(&str, &str, &str, Value); 4] = [
        (
            "ddb_archive_watermark_lsn",
            "gauge",
            "Highest LSN the archive holds contiguously, as reported by the archiver.",
            |p| p.watermark,
        ),
        (
            "ddb_archive_unarchived_bytes",
            "gauge",
            "Log bytes above the archive watermark (an upper estimate).",
            |p| p.unarchived_bytes,
        ),
        (
            "ddb_archive_over_bound",
            "gauge",
            "1 while writes are throttled because the unarchived log passed its bound (an alarm).",
            |p| u64::from(p.over_bound),
        ),
        (
            "ddb_archive_throttled_writes_total",
            "counter",
            "Writes refused with ThrottlingException because the log was not archived.",
            |p| p.throttled_writes,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = write!(text, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for partition in &archive {
            let _ = writeln!(
                text,
                "{name}{{table_id=\"{}\",partition=\"{}\"}} {}",
                partition.table_id,
                partition.partition_id,
                value(partition)
            );
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn dynamodb(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = state.request_ids.next();
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .unwrap_or("")
        .to_string();
    let started = std::time::Instant::now();
    let mut named = None;
    let result = if state.inject_error() {
        Err(ApiError::new(
            ErrorCode::InternalServerError,
            "Internal server error (injected by DDB_FAULT_INJECTION)",
        ))
    } else {
        handle(
            &state, &method, &uri, &headers, body, &operation, &mut named,
        )
        .await
    };
    let elapsed = started.elapsed();
    let table = table_label(&state.node, named.as_deref());
    let (status, body) = match result {
        Ok(value) => (StatusCode::OK, value),
        Err(error) => {
            if error.code.is_server_fault() {
                tracing::warn!(%request_id, operation, code = %error.code, message = %error.message, "request failed");
            } else {
                tracing::debug!(%request_id, operation, code = %error.code, "request rejected");
            }
            let status = StatusCode::from_u16(error.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            state
                .metrics
                .record(&table, &operation, Outcome::from_error(error.code), elapsed);
            return respond(status, &error.to_json(), &request_id);
        }
    };
    state
        .metrics
        .record(&table, &operation, Outcome::Ok, elapsed);
    respond(status, &body, &request_id)
}

/// The `table` label of a request that named `table`: the name if the catalog holds that
/// table, else [`metrics::NO_TABLE`] (so clients cannot create series without bound).
fn table_label(node: &Node, table: Option<&str>) -> String {
    table
        .filter(|name| node.catalog().table(name).is_some())
        .map_or_else(|| metrics::NO_TABLE.to_string(), str::to_owned)
}

async fn handle(
    state: &Arc<ServerState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    operation: &str,
    named: &mut Option<String>,
) -> Result<Value, ApiError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::validation(
            "Request size exceeds the maximum allowed size",
        ));
    }
    if let Some(verifier) = &state.verifier {
        authenticate(verifier, method, uri, headers, &body)?;
    }
    if operation.is_empty() {
        return Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            "Missing or malformed X-Amz-Target header",
        ));
    }
    let json: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::serialization(format!("Request body is not valid JSON: {e}")))?;
    // For the metrics' table label, from the one parse of the body.
    *named = json
        .get("TableName")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if answers_without_blocking(&state.node, operation, &json) {
        // Point reads and catalog reads take microseconds and never wait on a disk sync:
        // answering them on the async worker saves a thread hand-off per request.
        return state.node.handle(operation, json);
    }
    let node = Arc::clone(&state.node);
    let operation = operation.to_string();
    let handed_over = std::time::Instant::now();
    if writes_on_the_worker(&node, &operation) {
        // Decided here, on the async worker (lock, decide and propose take ~0.1 ms); the
        // commit is awaited, not waited for on a parked blocking thread.
        node.write_stages()
            .record(crate::node::Stage::Handoff, handed_over.elapsed());
        let (answer, commits) =
            crate::node::with_deferred_commits(|| node.handle(&operation, json));
        crate::node::await_commits(commits).await?;
        return answer;
    }
    tokio::task::spawn_blocking(move || {
        if is_write(&operation) {
            node.write_stages()
                .record(crate::node::Stage::Handoff, handed_over.elapsed());
        }
        node.handle(&operation, json)
    })
    .await
    .map_err(|e| ApiError::internal(format!("request handler stopped: {e}")))?
}

/// Single-item writes on a node that is not part of a cluster: every such write is decided by
/// this node's own replica, so nothing in its handling waits on the network, and the async
/// worker can serve it and await its commit. In a cluster a write may be forwarded to another
/// node's leader (a blocking call), and BatchWriteItem keeps its blocking thread too.
fn writes_on_the_worker(node: &Node, operation: &str) -> bool {
    !node.is_clustered() && is_write(operation) && operation != "BatchWriteItem"
}

/// Item writes, whose hand-over to a blocking thread counts as a write stage.
fn is_write(operation: &str) -> bool {
    matches!(
        operation,
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem"
    )
}

/// Operations that only read the catalog or one local item. Writes wait for WAL fsyncs, strong
/// reads for the group, requests in a cluster may be forwarded, and Query, Scan and BatchGetItem
/// may read up to megabytes: those run on blocking threads.
fn answers_without_blocking(node: &Node, operation: &str, request: &Value) -> bool {
    match operation {
        "DescribeTable" | "ListTables" => true,
        "GetItem" => {
            !node.is_clustered()
                && request.get("ConsistentRead").and_then(Value::as_bool) != Some(true)
        }
        _ => false,
    }
}

fn authenticate(
    verifier: &Verifier,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let mut pairs = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value = value.to_str().map_err(|_| {
            ApiError::new(
                ErrorCode::IncompleteSignatureException,
                format!("Header {name} is not valid ASCII"),
            )
        })?;
        pairs.push((name.as_str(), value));
    }
    let parts = RequestParts {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    verifier.verify(&parts, now).map(|_| ()).map_err(|e| {
        let code = match e.code() {
            "MissingAuthenticationTokenException" => ErrorCode::MissingAuthenticationTokenException,
            "UnrecognizedClientException" => ErrorCode::UnrecognizedClientException,
            "IncompleteSignatureException" => ErrorCode::IncompleteSignatureException,
            _ => ErrorCode::InvalidSignatureException,
        };
        ApiError::new(code, e.to_string())
    })
}

fn respond(status: StatusCode, body: &Value, request_id: &str) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let crc = crc32fast::hash(&bytes);
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    headers.insert("x-amz-crc32", HeaderValue::from(crc));
    response
}
