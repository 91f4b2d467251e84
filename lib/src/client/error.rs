//! [`ClientError`]: why a DynamoDB call did not return a result.

/// Why [`Client::call`](super::Client::call) failed. The cases are the ones a caller branches
/// on: the service said no (`Service`), the network failed (`Transport`), the call took too
/// long (`Timeout`), or the answer could not be understood (`Protocol`).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with a DynamoDB error body. `code` is the short code (the part of
    /// `__type` after `#`, e.g. `ConditionalCheckFailedException`).
    #[error("{code}: {message}")]
    Service {
        /// The short error code, e.g. `ResourceNotFoundException`.
        code: String,
        /// The service's message, empty when it sent none.
        message: String,
        /// The HTTP status of the answer (400 for client errors, 500 for server faults).
        status: u16,
    },
    /// The request could not be sent or the answer not received: connection refused, reset,
    /// unknown host.
    #[error("cannot reach {endpoint}: {detail}")]
    Transport {
        /// The endpoint the client talks to.
        endpoint: String,
        /// What went wrong, in words.
        detail: String,
    },
    /// No complete answer arrived within the client's timeout.
    #[error("no answer from {endpoint} within {timeout_ms} ms")]
    Timeout {
        /// The endpoint the client talks to.
        endpoint: String,
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// The answer was not a valid DynamoDB JSON 1.0 response: a bad checksum, a body that is
    /// not JSON, an error without `__type`, or a configuration the client cannot use.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The service's error code, if the service answered with an error.
    #[must_use]
    pub fn service_code(&self) -> Option<&str> {
        match self {
            ClientError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True for DynamoDB's `ConditionalCheckFailedException`: a condition expression was false.
    #[must_use]
    pub fn is_condition_failed(&self) -> bool {
        self.service_code() == Some("ConditionalCheckFailedException")
    }

    /// A short label for counting errors by kind: the service code, or `Transport`,
    /// `Timeout`, `Protocol`.
    #[must_use]
    pub fn label(&self) -> &str {
        match self {
            ClientError::Service { code, .. } => code,
            ClientError::Transport { .. } => "Transport",
            ClientError::Timeout { .. } => "Timeout",
            ClientError::Protocol(_) => "Protocol",
        }
    }
}
