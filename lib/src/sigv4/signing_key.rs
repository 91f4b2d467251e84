//! The signing key (`kSecret → kDate → kRegion → kService → kSigning`), signatures made with it,
//! and [`SigningKeyCache`], which saves re-deriving a key for every request.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::credential::Credential;
use super::hex;
use super::scope::{CredentialScope, SCOPE_TERMINATOR};

type HmacSha256 = Hmac<Sha256>;

/// A key derived for one secret and one [`CredentialScope`]. `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    /// Derives the key: `HMAC("AWS4" + secret, date)`, then region, service and
    /// `aws4_request` in turn, each step keyed by the previous one.
    #[must_use]
    pub fn derive(secret_access_key: &str, scope: &CredentialScope) -> Self {
        let mut secret = Vec::with_capacity(4 + secret_access_key.len());
        secret.extend_from_slice(b"AWS4");
        secret.extend_from_slice(secret_access_key.as_bytes());
        let date_key = hmac_sha256(&secret, scope.date.as_bytes());
        let region_key = hmac_sha256(&date_key, scope.region.as_bytes());
        let service_key = hmac_sha256(&region_key, scope.service.as_bytes());
        Self(hmac_sha256(&service_key, SCOPE_TERMINATOR.as_bytes()))
    }

    /// The key's bytes, for checking against published test vectors.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The signature of `string_to_sign`, as the lowercase hex that goes into `Signature=`.
    #[must_use]
    pub fn sign_hex(&self, string_to_sign: &str) -> String {
        hex::encode(&hmac_sha256(&self.0, string_to_sign.as_bytes()))
    }

    /// True when `signature` is this key's signature of `string_to_sign`. The comparison takes
    /// the same time wherever the first differing byte is.
    #[must_use]
    pub fn verify(&self, string_to_sign: &str, signature: &[u8; 32]) -> bool {
        let mut mac = new_mac(&self.0);
        mac.update(string_to_sign.as_bytes());
        mac.verify_slice(signature).is_ok()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[allow(
    clippy::expect_used,
    reason = "HMAC is defined for keys of every length; new_from_slice cannot fail"
)]
fn new_mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length")
}

/// A bounded cache of derived signing keys, keyed by access key id and scope, safe to share
/// between threads. A key changes only when the date does, so a busy server derives each
/// credential's key about once a day instead of four HMACs per request.
///
/// When full, the entry with the oldest scope date is dropped first: yesterday's keys stop
/// being useful once the skew window has passed midnight.
pub struct SigningKeyCache {
    capacity: usize,
    entries: Mutex<HashMap<(String, CredentialScope), SigningKey>>,
}

impl SigningKeyCache {
    /// A cache that holds at most `capacity` keys (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The signing key for `credential` in `scope`, derived on a miss.
    pub fn get_or_derive(&self, credential: &Credential, scope: &CredentialScope) -> SigningKey {
        let cache_key = (credential.access_key_id.clone(), scope.clone());
        // A panic elsewhere while holding the lock cannot leave a map of finished keys
        // inconsistent, so a poisoned lock is still usable.
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(key) = entries.get(&cache_key) {
            return key.clone();
        }
        let key = SigningKey::derive(&credential.secret_access_key, scope);
        if entries.len() >= self.capacity {
            let oldest = entries
                .keys()
                .min_by(|a, b| a.1.date.cmp(&b.1.date))
                .cloned();
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(cache_key, key.clone());
        key
    }

    /// How many keys the cache holds now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// True when the cache holds no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(date: &str) -> CredentialScope {
        CredentialScope {
            date: date.to_owned(),
            region: "us-east-1".to_owned(),
            service: "dynamodb".to_owned(),
        }
    }

    #[test]
    fn cache_returns_the_derived_key_and_stays_bounded() {
        let cache = SigningKeyCache::new(2);
        let credential = Credential::new("AKID", "secret");
        for date in ["20260101", "20260102", "20260103", "20260102"] {
            let key = cache.get_or_derive(&credential, &scope(date));
            assert_eq!(key, SigningKey::derive("secret", &scope(date)));
            assert!(cache.len() <= 2);
        }
        // The oldest date went first, so the two newest remain.
        let entries = cache.entries.lock().unwrap();
        let mut dates: Vec<&str> = entries.keys().map(|k| k.1.date.as_str()).collect();
        dates.sort_unstable();
        assert_eq!(dates, ["20260102", "20260103"]);
    }

    #[test]
    fn verify_accepts_only_the_exact_signature() {
        let key = SigningKey::derive("secret", &scope("20260101"));
        let signature = hex::decode_32(&key.sign_hex("text")).unwrap();
        assert!(key.verify("text", &signature));
        assert!(!key.verify("texT", &signature));
        let mut flipped = signature;
        flipped[31] ^= 1;
        assert!(!key.verify("text", &flipped));
    }
}
