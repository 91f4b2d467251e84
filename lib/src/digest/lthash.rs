//! LtHash16: a homomorphic multiset hash of a partition's items.

use std::fmt;

use super::element::{element_xof, element_xofs, push_message};

/// Number of 16-bit lanes in a digest.
pub const LANES: usize = 1024;

/// Size of a digest's byte form: [`LANES`] little-endian `u16`s.
pub const DIGEST_BYTES: usize = LANES * 2;

/// The state digest of a set of items: the lane-wise wrapping sum of every item's element hash.
///
/// Adding and removing elements commute, so a replica keeps the digest current in O(1) per write,
/// and two copies that hold the same items have the same digest whatever order they applied
/// their writes in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StateDigest {
    lanes: Box<[u16; LANES]>,
}

impl Default for StateDigest {
    fn default() -> Self {
        Self::empty()
    }
}

impl StateDigest {
    /// The digest of no items: every lane zero.
    #[must_use]
    pub fn empty() -> Self {
        StateDigest {
            lanes: Box::new([0; LANES]),
        }
    }

    /// The element hash of one item: the blake3 XOF (in `derive_key` mode with ddb's context) of
    /// `len(key) as u32 LE || key || item`, read as [`LANES`] little-endian `u16` lanes.
    #[must_use]
    pub fn of_item(key: &[u8], item: &[u8]) -> Self {
        let mut bytes = [0u8; DIGEST_BYTES];
        element_xof(key, item, &mut bytes);
        Self::from_bytes(&bytes)
    }

    /// Adds one item to the set the digest describes.
    pub fn insert_item(&mut self, key: &[u8], item: &[u8]) {
        let mut bytes = [0u8; DIGEST_BYTES];
        element_xof(key, item, &mut bytes);
        self.add_element(&bytes);
    }

    /// Removes one item (which must have been inserted) from the set the digest describes.
    pub fn remove_item(&mut self, key: &[u8], item: &[u8]) {
        let mut bytes = [0u8; DIGEST_BYTES];
        element_xof(key, item, &mut bytes);
        self.subtract_element(&bytes);
    }

    /// Batches many inserts and removals: their element hashes are computed several items
    /// side by side (see `element.rs`), which is several times faster per item than one at a
    /// time. The digest reflects every queued change once [`DigestUpdates::current`] is called
    /// or the batch is dropped.
    pub fn updates(&mut self) -> DigestUpdates<'_> {
        DigestUpdates {
            digest: self,
            bytes: Vec::new(),
            queued: Vec::new(),
        }
    }

    fn add_element(&mut self, element: &[u8; DIGEST_BYTES]) {
        for (lane, pair) in self.lanes.iter_mut().zip(element.chunks_exact(2)) {
            *lane = lane.wrapping_add(u16::from_le_bytes([pair[0], pair[1]]));
        }
    }

    fn subtract_element(&mut self, element: &[u8; DIGEST_BYTES]) {
        for (lane, pair) in self.lanes.iter_mut().zip(element.chunks_exact(2)) {
            *lane = lane.wrapping_sub(u16::from_le_bytes([pair[0], pair[1]]));
        }
    }

    /// Adds every element of `other` (the union of two disjoint sets).
    pub fn add(&mut self, other: &StateDigest) {
        for (lane, o) in self.lanes.iter_mut().zip(other.lanes.iter()) {
            *lane = lane.wrapping_add(*o);
        }
    }

    /// Removes every element of `other` (a subset of this set).
    pub fn subtract(&mut self, other: &StateDigest) {
        for (lane, o) in self.lanes.iter_mut().zip(other.lanes.iter()) {
            *lane = lane.wrapping_sub(*o);
        }
    }

    /// The digest's lanes.
    #[must_use]
    pub fn lanes(&self) -> &[u16; LANES] {
        &self.lanes
    }

    /// The byte form stored on disk and sent between processes: lanes as little-endian `u16`s.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DIGEST_BYTES);
        for lane in self.lanes.iter() {
            out.extend_from_slice(&lane.to_le_bytes());
        }
        out
    }

    /// Reads the byte form written by [`StateDigest::to_bytes`].
    #[must_use]
    pub fn from_bytes(bytes: &[u8; DIGEST_BYTES]) -> Self {
        let mut lanes = Box::new([0u16; LANES]);
        for (lane, pair) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([pair[0], pair[1]]);
        }
        StateDigest { lanes }
    }

    /// Reads a byte form of unknown length; `None` unless it is exactly [`DIGEST_BYTES`] long.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: &[u8; DIGEST_BYTES] = bytes.try_into().ok()?;
        Some(Self::from_bytes(array))
    }

    /// A short, stable name for the digest for people to compare by eye: the first 8 bytes of the
    /// blake3 hash of its byte form, in hex. Equal digests have equal fingerprints.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let hash = blake3::hash(&self.to_bytes());
        hash.as_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A name for the digest for machines to compare it by without moving its 2 KiB: the
    /// blake3 hash of its byte form, in hex (64 digits). Equal digests have equal identities;
    /// different digests have different ones but for a blake3 collision.
    #[must_use]
    pub fn identity(&self) -> String {
        blake3::hash(&self.to_bytes()).to_hex().to_string()
    }

    /// True when no item has been added (or everything added was removed again).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lanes.iter().all(|lane| *lane == 0)
    }
}

impl fmt::Debug for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateDigest({})", self.fingerprint())
    }
}

impl fmt::Display for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

/// Inserts and removals queued against a [`StateDigest`], hashed in batches (see
/// [`StateDigest::updates`]). Dropping it applies whatever is still queued.
pub struct DigestUpdates<'d> {
    digest: &'d mut StateDigest,
    /// The queued messages, back to back.
    bytes: Vec<u8>,
    /// Per queued message: where it ends in `bytes`, and whether it is removed.
    queued: Vec<(usize, bool)>,
}

/// How many items are hashed together: enough to fill the widest SIMD kernel several times.
const BATCH_ITEMS: usize = 64;
/// Queued bytes that flush a batch early, so a batch of large items stays small in memory.
const BATCH_BYTES: usize = 256 * 1024;

impl DigestUpdates<'_> {
    /// Queues adding one item.
    pub fn insert_item(&mut self, key: &[u8], item: &[u8]) {
        self.queue(key, item, false);
    }

    /// Queues removing one item (which must be in the set once the batch is applied).
    pub fn remove_item(&mut self, key: &[u8], item: &[u8]) {
        self.queue(key, item, true);
    }

    /// The digest with every queued change applied.
    pub fn current(&mut self) -> &StateDigest {
        self.flush();
        self.digest
    }

    fn queue(&mut self, key: &[u8], item: &[u8], remove: bool) {
        push_message(&mut self.bytes, key, item);
        self.queued.push((self.bytes.len(), remove));
        if self.queued.len() >= BATCH_ITEMS || self.bytes.len() >= BATCH_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let mut start = 0;
        let messages: Vec<&[u8]> = self
            .queued
            .iter()
            .map(|(end, _)| {
                let message = &self.bytes[start..*end];
                start = *end;
                message
            })
            .collect();
        let digest = &mut *self.digest;
        let queued = &self.queued;
        element_xofs(&messages, |index, element| {
            if queued[index].1 {
                digest.subtract_element(element);
            } else {
                digest.add_element(element);
            }
        });
        self.bytes.clear();
        self.queued.clear();
    }
}

impl Drop for DigestUpdates<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_then_remove_returns_to_empty() {
        let mut digest = StateDigest::empty();
        digest.insert_item(b"k1", b"v1");
        digest.insert_item(b"k2", b"v2");
        assert!(!digest.is_empty());
        digest.remove_item(b"k1", b"v1");
        digest.remove_item(b"k2", b"v2");
        assert!(digest.is_empty());
        assert_eq!(digest, StateDigest::empty());
    }

    #[test]
    fn order_of_inserts_does_not_matter() {
        let mut a = StateDigest::empty();
        a.insert_item(b"x", b"1");
        a.insert_item(b"y", b"2");
        let mut b = StateDigest::empty();
        b.insert_item(b"y", b"2");
        b.insert_item(b"x", b"1");
        assert_eq!(a, b);
    }

    #[test]
    fn key_and_item_boundary_is_unambiguous() {
        // Without the key length prefix these two would hash the same bytes.
        assert_ne!(
            StateDigest::of_item(b"ab", b"c"),
            StateDigest::of_item(b"a", b"bc")
        );
    }

    #[test]
    fn byte_form_round_trips() {
        let digest = StateDigest::of_item(b"key", b"item");
        let bytes = digest.to_bytes();
        assert_eq!(bytes.len(), DIGEST_BYTES);
        assert_eq!(StateDigest::from_slice(&bytes), Some(digest));
        assert_eq!(StateDigest::from_slice(&bytes[1..]), None);
    }

    #[test]
    fn batched_updates_equal_one_at_a_time() {
        let items: Vec<(Vec<u8>, Vec<u8>)> = (0..300u32)
            .map(|i| {
                let key = format!("t#{i:05}").into_bytes();
                let item = vec![(i % 251) as u8; (i as usize * 37) % 5000];
                (key, item)
            })
            .collect();
        let mut one_by_one = StateDigest::empty();
        let mut batched = StateDigest::empty();
        {
            let mut updates = batched.updates();
            for (key, item) in &items {
                one_by_one.insert_item(key, item);
                updates.insert_item(key, item);
            }
            for (key, item) in items.iter().step_by(3) {
                one_by_one.remove_item(key, item);
                updates.remove_item(key, item);
            }
            assert_eq!(updates.current(), &one_by_one);
            updates.insert_item(b"late", b"queued");
        }
        one_by_one.insert_item(b"late", b"queued");
        assert_eq!(
            batched, one_by_one,
            "dropping the batch applies what is queued"
        );
    }

    #[test]
    fn add_and_subtract_are_inverse() {
        let mut a = StateDigest::of_item(b"a", b"1");
        let b = StateDigest::of_item(b"b", b"2");
        let before = a.clone();
        a.add(&b);
        assert_ne!(a, before);
        a.subtract(&b);
        assert_eq!(a, before);
    }
}
