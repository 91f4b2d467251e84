//! [`Signer`]: the client side of SigV4, for ddb's CLI and load generator.

use std::fmt;

use super::canonical::{
    ALGORITHM, canonical_request, sha256_hex, signed_headers_line, string_to_sign,
};
use super::credential::Credential;
use super::error::SignError;
use super::request::RequestParts;
use super::scope::CredentialScope;
use super::signing_key::SigningKeyCache;
use super::time::format_amz_date;

/// Headers some proxies and clients change in transit; like the AWS SDKs, the signer leaves
/// them out of the signature.
const UNSIGNED_HEADERS: [&str; 4] = ["authorization", "expect", "user-agent", "x-amzn-trace-id"];

/// Signs requests for one service in one region with one credential. Keeps a small cache of
/// signing keys, so signing many requests costs one HMAC of the key chain per day.
pub struct Signer {
    credential: Credential,
    region: String,
    service: String,
    session_token: Option<String>,
    content_sha256_header: bool,
    keys: SigningKeyCache,
}

/// The headers a signed request must carry in addition to its own.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    pub authorization: String,
    /// `X-Amz-Date`, `YYYYMMDDTHHMMSSZ`.
    pub x_amz_date: String,
    /// `x-amz-content-sha256`, when the signer was asked to send it.
    pub x_amz_content_sha256: Option<String>,
    /// `X-Amz-Security-Token`, when the signer has a session token.
    pub x_amz_security_token: Option<String>,
}

impl SignatureHeaders {
    /// The headers as `(name, value)` pairs, ready to add to the request.
    #[must_use]
    pub fn to_pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![
            ("Authorization", self.authorization.as_str()),
            ("X-Amz-Date", self.x_amz_date.as_str()),
        ];
        if let Some(hash) = &self.x_amz_content_sha256 {
            pairs.push(("x-amz-content-sha256", hash.as_str()));
        }
        if let Some(token) = &self.x_amz_security_token {
            pairs.push(("X-Amz-Security-Token", token.as_str()));
        }
        pairs
    }
}

impl fmt::Debug for SignatureHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureHeaders")
            .field("authorization", &self.authorization)
            .field("x_amz_date", &self.x_amz_date)
            .field("x_amz_content_sha256", &self.x_amz_content_sha256)
            .field(
                "x_amz_security_token",
                &self.x_amz_security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Signer {
    /// A signer for `service` in `region` with `credential`, sending no session token and no
    /// `x-amz-content-sha256` header.
    #[must_use]
    pub fn new(
        credential: Credential,
        region: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        Self {
            credential,
            region: region.into(),
            service: service.into(),
            session_token: None,
            content_sha256_header: false,
            keys: SigningKeyCache::new(4),
        }
    }

    /// Also sends (and signs) `X-Amz-Security-Token: token`, for temporary credentials.
    #[must_use]
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// Also sends (and signs) `x-amz-content-sha256` with the body's hash.
    #[must_use]
    pub fn with_content_sha256_header(mut self, send: bool) -> Self {
        self.content_sha256_header = send;
        self
    }

    /// Signs `request` as of `now_unix_secs`. Every header of the request is signed except
    /// `Authorization`, `Expect`, `User-Agent` and `X-Amzn-Trace-Id`; the request must have a
    /// `Host` header and none of the headers the signer adds.
    pub fn sign(
        &self,
        request: &RequestParts<'_>,
        now_unix_secs: i64,
    ) -> Result<SignatureHeaders, SignError> {
        if !request.has_header("host") {
            return Err(SignError::MissingHost);
        }
        for (name, display) in [
            ("authorization", "Authorization"),
            ("x-amz-date", "X-Amz-Date"),
            ("x-amz-content-sha256", "x-amz-content-sha256"),
            ("x-amz-security-token", "X-Amz-Security-Token"),
        ] {
            if request.has_header(name) {
                return Err(SignError::AlreadySigned(display));
            }
        }

        let x_amz_date = format_amz_date(now_unix_secs);
        let payload_hash = sha256_hex(request.body);
        let x_amz_content_sha256 = self.content_sha256_header.then(|| payload_hash.clone());
        let x_amz_security_token = self.session_token.clone();

        // The request as it will be sent: its own headers plus the ones added here.
        let mut headers: Vec<(&str, &str)> = request.headers.to_vec();
        headers.push(("x-amz-date", &x_amz_date));
        if let Some(hash) = &x_amz_content_sha256 {
            headers.push(("x-amz-content-sha256", hash));
        }
        if let Some(token) = &x_amz_security_token {
            headers.push(("x-amz-security-token", token));
        }
        let mut signed_headers: Vec<String> = headers
            .iter()
            .map(|(name, _)| name.to_ascii_lowercase())
            .filter(|name| !UNSIGNED_HEADERS.contains(&name.as_str()))
            .collect();
        signed_headers.sort_unstable();
        signed_headers.dedup();

        let full_request = RequestParts {
            headers: &headers,
            ..*request
        };
        let scope = CredentialScope {
            date: x_amz_date[..8].to_owned(),
            region: self.region.clone(),
            service: self.service.clone(),
        };
        let canonical = canonical_request(&full_request, &signed_headers, &payload_hash);
        let signature = self
            .keys
            .get_or_derive(&self.credential, &scope)
            .sign_hex(&string_to_sign(&x_amz_date, &scope, &canonical));
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            self.credential.access_key_id,
            signed_headers_line(&signed_headers)
        );
        Ok(SignatureHeaders {
            authorization,
            x_amz_date,
            x_amz_content_sha256,
            x_amz_security_token,
        })
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("credential", &self.credential)
            .field("region", &self.region)
            .field("service", &self.service)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("content_sha256_header", &self.content_sha256_header)
            .finish_non_exhaustive()
    }
}
