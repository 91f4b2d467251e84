//! A small synchronous DynamoDB JSON 1.0 client, for `ddbctl` and its load generator.
//!
//! [`Client::call`] signs a request with SigV4, posts it to `/` with
//! `X-Amz-Target: DynamoDB_20120810.<Operation>`, checks the `x-amz-crc32` of the answer when
//! the server sends one, and turns DynamoDB's error shape into [`ClientError::Service`]. It
//! never retries: a caller that wants retries decides which errors deserve one.
//!
//! `http://` and `https://` endpoints are supported; TLS uses rustls (on the aws-lc-rs
//! provider) with the webpki root certificates, so DynamoDB itself can be called.
//!
//! ```no_run
//! use std::time::Duration;
//! use ddb::client::{Client, ClientConfig};
//! use ddb::sigv4::Credential;
//!
//! let client = Client::new(ClientConfig {
//!     endpoint: "http://127.0.0.1:8000".into(),
//!     credential: Credential::new("AKID", "SECRET"),
//!     session_token: None,
//!     region: "us-east-1".into(),
//!     timeout: Duration::from_secs(10),
//! })?;
//! let tables = client.call("ListTables", &serde_json::json!({}))?;
//! # Ok::<(), ddb::client::ClientError>(())
//! ```

mod credentials;
mod endpoint;
mod error;
mod resolver;
mod response;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use credentials::{ClientCredentials, CredentialFlags, DEFAULT_REGION, MissingCredentials};
pub use endpoint::Endpoint;
pub use error::ClientError;
pub use response::{error_from_body, verify_crc32};

use crate::sigv4::{Credential, RequestParts, Signer};

/// The `X-Amz-Target` prefix of DynamoDB's current API version.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// The content type of DynamoDB JSON 1.0 requests.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// The largest answer the client reads; DynamoDB's largest (BatchGetItem) is 16 MiB.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// Idle connections kept per host: enough for a handful of threads sharing one client.
const IDLE_CONNECTIONS_PER_HOST: usize = 16;

/// How to reach and sign for a DynamoDB endpoint.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host:port` or `https://host[:port]`.
    pub endpoint: String,
    /// The access key requests are signed with.
    pub credential: Credential,
    /// A session token for temporary credentials, sent as `X-Amz-Security-Token`.
    pub session_token: Option<String>,
    /// The region requests are signed for (ddbd checks it against its own).
    pub region: String,
    /// The longest a whole call (connect, send, receive) may take.
    pub timeout: Duration,
}

/// A DynamoDB client over HTTP/1.1 with keep-alive. Cheap to share between threads (calls
/// take `&self`); each thread having its own client avoids contention on the connection pool.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    endpoint: Endpoint,
    endpoint_text: String,
    signer: Signer,
    timeout: Duration,
}

impl Client {
    /// A client for `config`. Fails only on an endpoint it cannot use (see [`Endpoint::parse`]);
    /// it does not connect until the first call.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let endpoint = Endpoint::parse(&config.endpoint)?;
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::WebPki)
            .unversioned_rustls_crypto_provider(std::sync::Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build();
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_global(Some(config.timeout))
            .max_idle_connections_per_host(IDLE_CONNECTIONS_PER_HOST)
            .max_redirects(0)
            .user_agent(concat!("ddb-client/", env!("CARGO_PKG_VERSION")))
            .build();
        // The library's own connector, with a resolver that does not look the endpoint up
        // (on a new thread) for every call.
        let agent = ureq::Agent::with_parts(
            agent_config,
            ureq::unversioned::transport::DefaultConnector::new(),
            resolver::CachingResolver::default(),
        );
        let mut signer = Signer::new(config.credential, config.region, "dynamodb");
        if let Some(token) = config.session_token {
            signer = signer.with_session_token(token);
        }
        Ok(Client {
            agent,
            endpoint,
            endpoint_text: config.endpoint,
            signer,
            timeout: config.timeout,
        })
    }

    /// The endpoint as configured.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint_text
    }

    /// The endpoint as parsed: where to connect, whether with TLS, the `Host` it signs.
    #[must_use]
    pub fn parsed_endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Calls `operation` (e.g. `PutItem`) with `body` and returns the parsed answer.
    pub fn call(
        &self,
        operation: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ClientError::Protocol(format!("cannot serialise request: {e}")))?;
        let answer = self.call_raw(operation, &bytes)?;
        response::parse_success(&answer)
    }

    /// Calls `operation` with an already serialised JSON `body` and returns the answer's raw
    /// bytes (checksum verified). For callers that send the same shape many times, such as a
    /// load generator, and want to skip building and parsing JSON values.
    pub fn call_raw(&self, operation: &str, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        let target = format!("{TARGET_PREFIX}{operation}");
        let headers = self.headers(&target);
        let signature = self.sign(&headers, body)?;
        let mut request = self.agent.post(&self.endpoint.url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        for (name, value) in signature.to_pairs() {
            request = request.header(name, value);
        }
        let answer = request.send(body).map_err(|e| self.map_error(e))?;
        let status = answer.status().as_u16();
        let crc = answer
            .headers()
            .get("x-amz-crc32")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = answer
            .into_body()
            .into_with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| self.map_error(e))?;
        response::verify_crc32(crc.as_deref(), &bytes)?;
        if (200..300).contains(&status) {
            Ok(bytes)
        } else {
            Err(response::error_from_body(status, &bytes))
        }
    }

    /// Writes to `out` (cleared first) the whole HTTP/1.1 request [`Client::call_raw`] would
    /// send for `operation` and `body`, signed, for a caller that drives its own connections
    /// (the load generator keeps many on one thread). The answer is the caller's to read and
    /// check: [`verify_crc32`], then [`error_from_body`] unless the status is 2xx.
    pub fn encode_request(
        &self,
        operation: &str,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ClientError> {
        use std::io::Write as _;
        let target = format!("{TARGET_PREFIX}{operation}");
        let headers = self.headers(&target);
        let signature = self.sign(&headers, body)?;
        out.clear();
        // Writing to a Vec cannot fail.
        let _ = write!(out, "POST / HTTP/1.1\r\n");
        for (name, value) in headers.into_iter().chain(signature.to_pairs()) {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        let _ = write!(out, "content-length: {}\r\n\r\n", body.len());
        out.extend_from_slice(body);
        Ok(())
    }

    /// The headers every request signs.
    fn headers<'a>(&'a self, target: &'a str) -> [(&'static str, &'a str); 3] {
        [
            ("host", self.endpoint.host_header.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target),
        ]
    }

    fn sign(
        &self,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<crate::sigv4::SignatureHeaders, ClientError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.signer
            .sign(
                &RequestParts {
                    method: "POST",
                    path: "/",
                    query: "",
                    headers,
                    body,
                },
                now,
            )
            .map_err(|e| ClientError::Protocol(format!("cannot sign request: {e}")))
    }

    fn map_error(&self, error: ureq::Error) -> ClientError {
        let timeout = || ClientError::Timeout {
            endpoint: self.endpoint_text.clone(),
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let transport = |detail: String| ClientError::Transport {
            endpoint: self.endpoint_text.clone(),
            detail,
        };
        match error {
            ureq::Error::Timeout(_) => timeout(),
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => timeout(),
            ureq::Error::Io(e) => transport(e.to_string()),
            ureq::Error::HostNotFound => transport("host not found".to_owned()),
            ureq::Error::ConnectionFailed => transport("connection failed".to_owned()),
            other => ClientError::Protocol(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    /// The TLS stack is wired (a crypto provider, root certificates): an https endpoint that
    /// answers in plain HTTP fails the handshake with an error, never a panic.
    #[test]
    fn an_https_endpoint_that_speaks_plain_http_is_an_error() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut hello = [0u8; 512];
                let _ = stream.read(&mut hello);
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            }
        });
        let client = Client::new(ClientConfig {
            endpoint: format!("https://127.0.0.1:{port}"),
            credential: Credential::new("AKID", "SECRET"),
            session_token: None,
            region: DEFAULT_REGION.to_string(),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        let error = client
            .call("ListTables", &serde_json::json!({}))
            .unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::Transport { .. } | ClientError::Protocol(_)
            ),
            "{error:?}"
        );
    }
}
