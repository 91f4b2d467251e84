//! Request ids: 52 characters of `[A-Z0-9]`, unique per node, like DynamoDB's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Hands out request ids: the blake3 hash of (node id, start time, counter), base32.
pub struct RequestIds {
    node_id: u32,
    started_nanos: u128,
    counter: AtomicU64,
}

impl RequestIds {
    /// Ids for node `node_id`.
    pub fn new(node_id: u32) -> Self {
        RequestIds {
            node_id,
            started_nanos: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            counter: AtomicU64::new(0),
        }
    }

    /// The next id.
    pub fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.node_id.to_le_bytes());
        hasher.update(&self.started_nanos.to_le_bytes());
        hasher.update(&n.to_le_bytes());
        let mut bytes = [0u8; 52];
        hasher.finalize_xof().fill(&mut bytes);
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_52_uppercase_alphanumerics_and_distinct() {
        let ids = RequestIds::new(1);
        let a = ids.next();
        let b = ids.next();
        assert_eq!(a.len(), 52);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_ne!(a, b);
    }
}
