//! AWS Signature Version 4: verifying requests on the server and signing them in clients.
//!
//! Both sides work on [`RequestParts`], a borrowed view of method, raw path, raw query,
//! headers and body, so no HTTP library is involved. Time is always a parameter
//! (`now_unix_secs`); nothing here reads a clock.
//!
//! - [`Verifier`]: checks a request's `Authorization` header and returns the
//!   [`VerifiedIdentity`] or an [`AuthError`] that maps to DynamoDB's error code, message and
//!   HTTP status.
//! - [`Signer`]: produces the [`SignatureHeaders`] a client adds to a request.
//! - The building blocks both share, public for tests and debugging: [`canonical_request`],
//!   [`string_to_sign`], [`SigningKey`], [`SigningKeyCache`], [`parse_amz_date`] and
//!   [`format_amz_date`].
//!
//! What is checked and in which order is described in `docs/sigv4.md`.

mod authorization;
mod canonical;
mod credential;
mod error;
mod hex;
mod request;
mod scope;
mod signer;
mod signing_key;
mod time;
mod verifier;

pub use canonical::{
    ALGORITHM, UNSIGNED_PAYLOAD, canonical_query_string, canonical_request, canonical_uri,
    sha256_hex, signed_headers_line, string_to_sign,
};
pub use credential::Credential;
pub use error::{AuthError, SignError};
pub use request::RequestParts;
pub use scope::{CredentialScope, SCOPE_TERMINATOR};
pub use signer::{SignatureHeaders, Signer};
pub use signing_key::{SigningKey, SigningKeyCache};
pub use time::{format_amz_date, parse_amz_date};
pub use verifier::{VerifiedIdentity, Verifier};
