//! DynamoDB's error shapes: `{"__type": "...#Code", "message": "..."}` with an HTTP status.

use std::fmt;

use crate::item::Item;

/// The error codes ddb answers with, named as DynamoDB names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Bad input: a malformed parameter, a limit exceeded, an invalid expression.
    ValidationException,
    /// The request body is not valid JSON or not the expected shape.
    SerializationException,
    /// `X-Amz-Target` names no operation ddb knows.
    UnknownOperationException,
    /// The table does not exist (or is not active).
    ResourceNotFoundException,
    /// The table already exists, or is being created or deleted.
    ResourceInUseException,
    /// A `ConditionExpression` evaluated to false.
    ConditionalCheckFailedException,
    /// The request exceeded the provisioned (or partition) throughput.
    ProvisionedThroughputExceededException,
    /// A control-plane request was throttled.
    ThrottlingException,
    /// Too many tables, or another account-level limit.
    LimitExceededException,
    /// No `Authorization` header (or no signature at all).
    MissingAuthenticationTokenException,
    /// The access key id is unknown.
    UnrecognizedClientException,
    /// The signature does not match, or the request is too old.
    InvalidSignatureException,
    /// The `Authorization` header is malformed.
    IncompleteSignatureException,
    /// The node failed; the request may or may not have taken effect only if it says so.
    InternalServerError,
    /// The node cannot serve right now (shutting down, partition unavailable); retry.
    ServiceUnavailable,
}

impl ErrorCode {
    /// Every code, for parsing names back.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::ValidationException,
        ErrorCode::SerializationException,
        ErrorCode::UnknownOperationException,
        ErrorCode::ResourceNotFoundException,
        ErrorCode::ResourceInUseException,
        ErrorCode::ConditionalCheckFailedException,
        ErrorCode::ProvisionedThroughputExceededException,
        ErrorCode::ThrottlingException,
        ErrorCode::LimitExceededException,
        ErrorCode::MissingAuthenticationTokenException,
        ErrorCode::UnrecognizedClientException,
        ErrorCode::InvalidSignatureException,
        ErrorCode::IncompleteSignatureException,
        ErrorCode::InternalServerError,
        ErrorCode::ServiceUnavailable,
    ];

    /// The code named `name` (the short code, as [`ErrorCode::as_str`] gives it).
    #[must_use]
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == name)
    }

    /// The short code (`__type` after the `#`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationException => "ValidationException",
            ErrorCode::SerializationException => "SerializationException",
            ErrorCode::UnknownOperationException => "UnknownOperationException",
            ErrorCode::ResourceNotFoundException => "ResourceNotFoundException",
            ErrorCode::ResourceInUseException => "ResourceInUseException",
            ErrorCode::ConditionalCheckFailedException => "ConditionalCheckFailedException",
            ErrorCode::ProvisionedThroughputExceededException => {
                "ProvisionedThroughputExceededException"
            }
            ErrorCode::ThrottlingException => "ThrottlingException",
            ErrorCode::LimitExceededException => "LimitExceededException",
            ErrorCode::MissingAuthenticationTokenException => "MissingAuthenticationTokenException",
            ErrorCode::UnrecognizedClientException => "UnrecognizedClientException",
            ErrorCode::InvalidSignatureException => "InvalidSignatureException",
            ErrorCode::IncompleteSignatureException => "IncompleteSignatureException",
            ErrorCode::InternalServerError => "InternalServerError",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The namespace DynamoDB puts before the `#` in `__type`.
    fn namespace(self) -> &'static str {
        match self {
            ErrorCode::ValidationException => "com.amazon.coral.validate",
            ErrorCode::SerializationException
            | ErrorCode::UnknownOperationException
            | ErrorCode::MissingAuthenticationTokenException
            | ErrorCode::UnrecognizedClientException
            | ErrorCode::InvalidSignatureException
            | ErrorCode::IncompleteSignatureException
            | ErrorCode::ServiceUnavailable => "com.amazon.coral.service",
            _ => "com.amazonaws.dynamodb.v20120810",
        }
    }

    /// The full `__type` value, e.g. `com.amazon.coral.validate#ValidationException`.
    #[must_use]
    pub fn type_name(self) -> String {
        format!("{}#{}", self.namespace(), self.as_str())
    }

    /// The HTTP status DynamoDB answers this error with.
    #[must_use]
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InternalServerError => 500,
            ErrorCode::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// True for errors that count against availability (the server's fault), as the canary
    /// and the customer-facing alarms count them.
    #[must_use]
    pub fn is_server_fault(self) -> bool {
        self.http_status() >= 500
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered to a DynamoDB client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// What kind of error.
    pub code: ErrorCode,
    /// The human-readable message (DynamoDB's wording where it has one).
    pub message: String,
    /// The item as it was, for a failed condition with
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`.
    pub item: Option<Item>,
    /// Set when this node does not lead the partition (or the metadata group) a request
    /// needs: the node that does, if known. The router forwards the request there; clients
    /// only ever see the `ServiceUnavailable` it carries when no leader is known.
    pub redirect: Option<Option<u32>>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            item: None,
            redirect: None,
        }
    }

    /// This node does not lead what the request needs; `leader` does, if known.
    pub fn not_leader(leader: Option<u32>) -> Self {
        ApiError {
            redirect: Some(leader),
            ..Self::new(
                ErrorCode::ServiceUnavailable,
                "The partition is changing leaders; retry",
            )
        }
    }

    /// A `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationException, message)
    }

    /// A `SerializationException`.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::SerializationException, message)
    }

    /// `ResourceNotFoundException` for a table that does not exist.
    pub fn table_not_found(table: &str) -> Self {
        Self::new(
            ErrorCode::ResourceNotFoundException,
            format!("Requested resource not found: Table: {table} not found"),
        )
    }

    /// The generic "requested resource not found" of data-plane calls on a missing table.
    pub fn resource_not_found() -> Self {
        Self::new(
            ErrorCode::ResourceNotFoundException,
            "Requested resource not found",
        )
    }

    /// `ConditionalCheckFailedException`.
    pub fn condition_failed() -> Self {
        Self::new(
            ErrorCode::ConditionalCheckFailedException,
            "The conditional request failed",
        )
    }

    /// `InternalServerError` with a message safe to show a client.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalServerError, message)
    }

    /// Rebuilds an error from [`ApiError::to_json`]'s form (a response forwarded from another
    /// node); anything unrecognisable becomes an internal error.
    #[must_use]
    pub fn from_json(body: &serde_json::Value) -> ApiError {
        let code = body
            .get("__type")
            .and_then(serde_json::Value::as_str)
            .map(|t| t.rsplit('#').next().unwrap_or(t))
            .and_then(ErrorCode::from_name)
            .unwrap_or(ErrorCode::InternalServerError);
        let message = body
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("error from another node");
        let mut error = ApiError::new(code, message);
        error.item = body
            .get("Item")
            .and_then(|item| crate::item::item_from_json(item).ok());
        error
    }

    /// The JSON body DynamoDB sends for this error.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "__type": self.code.type_name(),
            "message": self.message,
        });
        if let Some(item) = &self.item {
            body["Item"] = crate::item::item_to_json(item);
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_follow_dynamodb_namespaces() {
        assert_eq!(
            ErrorCode::ValidationException.type_name(),
            "com.amazon.coral.validate#ValidationException"
        );
        assert_eq!(
            ErrorCode::ResourceNotFoundException.type_name(),
            "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
        );
        assert_eq!(
            ErrorCode::UnrecognizedClientException.type_name(),
            "com.amazon.coral.service#UnrecognizedClientException"
        );
    }

    #[test]
    fn only_server_faults_are_5xx() {
        assert_eq!(ErrorCode::InternalServerError.http_status(), 500);
        assert!(ErrorCode::ServiceUnavailable.is_server_fault());
        assert!(!ErrorCode::ConditionalCheckFailedException.is_server_fault());
        assert_eq!(
            ErrorCode::ProvisionedThroughputExceededException.http_status(),
            400
        );
    }

    #[test]
    fn body_has_type_and_message() {
        let body = ApiError::condition_failed().to_json();
        assert_eq!(
            body["__type"],
            "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
        );
        assert_eq!(body["message"], "The conditional request failed");
    }
}
