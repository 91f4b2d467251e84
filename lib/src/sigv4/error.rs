//! [`AuthError`]: why a request failed SigV4 verification, as DynamoDB reports it; and
//! [`SignError`]: why a client could not sign a request.
//!
//! No variant holds a secret key, a derived key or the signature the server computed, so no
//! `Display` or `Debug` output can leak them.

/// A request that failed authentication. `Display` is the DynamoDB error message; [`code`]
/// and [`http_status`] give the rest of DynamoDB's error response.
///
/// [`code`]: AuthError::code
/// [`http_status`]: AuthError::http_status
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request has no `Authorization` header.
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,
    /// The `Authorization` header or `X-Amz-Date` is malformed or incomplete; the message
    /// says which part.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not among the configured credentials.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature does not match the request.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,
    /// `X-Amz-Date` is older than `now - max_skew`.
    #[error(
        "Signature expired: {signed_at} is now earlier than {earliest} ({now} - {max_skew_minutes} min.)"
    )]
    SignatureExpired {
        /// The request's `X-Amz-Date`.
        signed_at: String,
        /// The oldest acceptable timestamp.
        earliest: String,
        /// The server's time.
        now: String,
        /// The allowed skew in whole minutes.
        max_skew_minutes: u64,
    },
    /// `X-Amz-Date` is later than `now + max_skew`.
    #[error(
        "Signature not yet current: {signed_at} is still later than {latest} ({now} + {max_skew_minutes} min.)"
    )]
    SignatureNotYetCurrent {
        /// The request's `X-Amz-Date`.
        signed_at: String,
        /// The latest acceptable timestamp.
        latest: String,
        /// The server's time.
        now: String,
        /// The allowed skew in whole minutes.
        max_skew_minutes: u64,
    },
    /// The credential scope's date differs from the date part of `X-Amz-Date`.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{amz_date_day}', from '{amz_date}'."
    )]
    ScopeDateMismatch {
        /// The date in the credential scope.
        scope_date: String,
        /// The first eight characters of `X-Amz-Date`.
        amz_date_day: String,
        /// `X-Amz-Date`.
        amz_date: String,
    },
    /// The credential scope names another region.
    #[error("Credential should be scoped to a valid region, not '{0}'.")]
    WrongRegion(String),
    /// The credential scope names another service.
    #[error("Credential should be scoped to correct service: '{expected}'.")]
    WrongService {
        /// The service this server is.
        expected: String,
    },
    /// `host` is not among the signed headers.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,
    /// `x-amz-content-sha256` is neither `UNSIGNED-PAYLOAD` nor the SHA-256 of the body.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch,
}

impl AuthError {
    /// DynamoDB's short error code, the part of `__type` after `#`
    /// (`com.amazon.coral.service#<code>`), which SDKs surface as the error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::SignatureMismatch
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::ScopeDateMismatch { .. }
            | AuthError::WrongRegion(_)
            | AuthError::WrongService { .. }
            | AuthError::HostNotSigned
            | AuthError::PayloadHashMismatch => "InvalidSignatureException",
        }
    }

    /// DynamoDB's full `__type` value for this error.
    #[must_use]
    pub fn dynamodb_type(&self) -> String {
        format!("com.amazon.coral.service#{}", self.code())
    }

    /// The HTTP status DynamoDB answers with: 400 for every authentication failure.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        400
    }
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The request has no `Host` header; SigV4 requires it to be signed.
    #[error("the request has no Host header; SigV4 requires one")]
    MissingHost,
    /// The request already carries a header the signer adds.
    #[error("the request already has a {0} header; sign an unsigned request")]
    AlreadySigned(&'static str),
}
