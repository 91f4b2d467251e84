//! [`Verifier`]: the server side of SigV4.

use std::collections::HashMap;
use std::time::Duration;

use super::authorization::parse_authorization;
use super::canonical::{UNSIGNED_PAYLOAD, canonical_request, sha256_hex, string_to_sign};
use super::credential::Credential;
use super::error::AuthError;
use super::hex;
use super::request::RequestParts;
use super::signing_key::SigningKeyCache;
use super::time::{format_amz_date, parse_amz_date};

/// Who sent a request that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The access key id the request was signed with.
    pub access_key_id: String,
    /// The request's `X-Amz-Date`, as Unix seconds.
    pub signed_at_unix_secs: i64,
}

/// Checks SigV4 signatures on requests to one service in one region, against a fixed set of
/// credentials. Shareable between threads; `Debug` shows access key ids, never secrets.
#[derive(Debug)]
pub struct Verifier {
    credentials: HashMap<String, Credential>,
    region: String,
    service: String,
    max_skew: Duration,
    keys: SigningKeyCache,
}

impl Verifier {
    /// The clock skew AWS allows between a request's `X-Amz-Date` and the server's time.
    pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

    /// A verifier accepting requests signed with any of `credentials` (a repeated access key id
    /// keeps its last secret) for `service` (`"dynamodb"`) in `region`, dated within `max_skew`
    /// of the server's time.
    #[must_use]
    pub fn new(
        credentials: Vec<Credential>,
        region: impl Into<String>,
        service: impl Into<String>,
        max_skew: Duration,
    ) -> Self {
        // Within the skew window a credential is used with at most two dates (around
        // midnight); three per credential leaves room without letting the cache grow.
        let cache_capacity = (credentials.len() * 3).max(8);
        Self {
            credentials: credentials
                .into_iter()
                .map(|credential| (credential.access_key_id.clone(), credential))
                .collect(),
            region: region.into(),
            service: service.into(),
            max_skew,
            keys: SigningKeyCache::new(cache_capacity),
        }
    }

    /// Verifies `request` at server time `now_unix_secs`. The checks run in this order and the
    /// first failure is returned:
    ///
    /// 1. an `Authorization` header is present ([`AuthError::MissingAuthenticationToken`]),
    ///    once, and well formed ([`AuthError::IncompleteSignature`]);
    /// 2. `X-Amz-Date` is present, once, in `YYYYMMDDTHHMMSSZ` form (`IncompleteSignature`);
    /// 3. it is within `max_skew` of `now` ([`AuthError::SignatureExpired`],
    ///    [`AuthError::SignatureNotYetCurrent`]);
    /// 4. the credential scope has `X-Amz-Date`'s day, this region and this service, and
    ///    `host` is signed ([`AuthError::ScopeDateMismatch`], [`AuthError::WrongRegion`],
    ///    [`AuthError::WrongService`], [`AuthError::HostNotSigned`]);
    /// 5. the access key id is known ([`AuthError::UnrecognizedClient`]);
    /// 6. `x-amz-content-sha256`, if sent, is `UNSIGNED-PAYLOAD` or the body's hash
    ///    ([`AuthError::PayloadHashMismatch`]);
    /// 7. the signature matches, compared in constant time ([`AuthError::SignatureMismatch`]).
    pub fn verify(
        &self,
        request: &RequestParts<'_>,
        now_unix_secs: i64,
    ) -> Result<VerifiedIdentity, AuthError> {
        let authorization = single_header(request, "authorization")?
            .ok_or(AuthError::MissingAuthenticationToken)?;
        let parsed = parse_authorization(authorization)?;

        let amz_date = single_header(request, "x-amz-date")?.ok_or_else(|| {
            AuthError::IncompleteSignature(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .to_owned(),
            )
        })?;
        let amz_date = amz_date.trim();
        let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
            AuthError::IncompleteSignature(format!(
                "X-Amz-Date must be in ISO-8601 'basic format' (YYYYMMDD'T'HHMMSS'Z'). Got '{}'.",
                amz_date.chars().take(32).collect::<String>()
            ))
        })?;
        self.check_skew(signed_at, now_unix_secs)?;

        let amz_date_day = &amz_date[..8];
        if parsed.scope.date != amz_date_day {
            return Err(AuthError::ScopeDateMismatch {
                scope_date: parsed.scope.date.chars().take(32).collect(),
                amz_date_day: amz_date_day.to_owned(),
                amz_date: amz_date.to_owned(),
            });
        }
        if parsed.scope.region != self.region {
            return Err(AuthError::WrongRegion(
                parsed.scope.region.chars().take(64).collect(),
            ));
        }
        if parsed.scope.service != self.service {
            return Err(AuthError::WrongService {
                expected: self.service.clone(),
            });
        }
        if !parsed.signed_headers.iter().any(|name| name == "host") {
            return Err(AuthError::HostNotSigned);
        }

        let credential = self
            .credentials
            .get(parsed.access_key_id)
            .ok_or(AuthError::UnrecognizedClient)?;

        let payload_hash = match single_header(request, "x-amz-content-sha256")
            .map_err(|_| AuthError::PayloadHashMismatch)?
        {
            Some(declared) if declared.trim() == UNSIGNED_PAYLOAD => UNSIGNED_PAYLOAD.to_owned(),
            Some(declared) => {
                let declared = declared.trim();
                if !declared.eq_ignore_ascii_case(&sha256_hex(request.body)) {
                    return Err(AuthError::PayloadHashMismatch);
                }
                declared.to_owned()
            }
            None => sha256_hex(request.body),
        };

        let provided = hex::decode_32(parsed.signature).ok_or(AuthError::SignatureMismatch)?;
        let canonical = canonical_request(request, &parsed.signed_headers, &payload_hash);
        let to_sign = string_to_sign(amz_date, &parsed.scope, &canonical);
        let key = self.keys.get_or_derive(credential, &parsed.scope);
        if !key.verify(&to_sign, &provided) {
            return Err(AuthError::SignatureMismatch);
        }
        Ok(VerifiedIdentity {
            access_key_id: credential.access_key_id.clone(),
            signed_at_unix_secs: signed_at,
        })
    }

    fn check_skew(&self, signed_at: i64, now: i64) -> Result<(), AuthError> {
        let skew = i64::try_from(self.max_skew.as_secs()).unwrap_or(i64::MAX);
        let max_skew_minutes = self.max_skew.as_secs() / 60;
        let earliest = now.saturating_sub(skew);
        let latest = now.saturating_add(skew);
        if signed_at < earliest {
            return Err(AuthError::SignatureExpired {
                signed_at: format_amz_date(signed_at),
                earliest: format_amz_date(earliest),
                now: format_amz_date(now),
                max_skew_minutes,
            });
        }
        if signed_at > latest {
            return Err(AuthError::SignatureNotYetCurrent {
                signed_at: format_amz_date(signed_at),
                latest: format_amz_date(latest),
                now: format_amz_date(now),
                max_skew_minutes,
            });
        }
        Ok(())
    }
}

/// The value of a header that may appear at most once.
fn single_header<'a>(
    request: &RequestParts<'a>,
    name: &'a str,
) -> Result<Option<&'a str>, AuthError> {
    let mut values = request.header_values(name);
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::IncompleteSignature(format!(
            "The '{name}' header must appear only once."
        )));
    }
    Ok(first)
}
