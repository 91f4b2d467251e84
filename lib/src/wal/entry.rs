//! Log entries and their byte form (the body of one WAL record).

use std::fmt;

/// A log sequence number: dense and per partition. The first entry of a partition has LSN 1;
/// LSN 0 means "nothing" (an empty log, a replica that has applied nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The LSN before the first entry: nothing written, nothing applied.
    pub const ZERO: Lsn = Lsn(0);

    /// The LSN right after this one.
    #[must_use]
    pub fn next(self) -> Lsn {
        Lsn(self.0 + 1)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Paxos ballot: ordered by round, then by the proposing node's id, so that two nodes never
/// propose under equal ballots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ballot {
    /// Monotonic round number; a new leader picks a round above every one it has seen.
    pub round: u64,
    /// Id of the node that proposed under this ballot.
    pub node: u32,
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

/// What an entry does to a partition's state when applied.
///
/// Keys are order-preserving encoded keys ([`crate::item`]); items are canonical item encodings.
/// Conditions and update expressions are evaluated by the leader before logging, so applying an
/// operation is deterministic and needs nothing but the operation itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Store `item` under `key`, replacing any previous item.
    Put {
        /// Encoded item key.
        key: Vec<u8>,
        /// Canonical encoding of the whole item.
        item: Vec<u8>,
    },
    /// Remove the item under `key`, if any.
    Delete {
        /// Encoded item key.
        key: Vec<u8>,
    },
    /// Changes nothing; a new leader commits one to learn the end of the log.
    Noop,
    /// A replication-group or configuration change. Its body is defined by the replication
    /// layer; applying it leaves the item state untouched.
    Config(Vec<u8>),
}

impl Operation {
    const TAG_PUT: u8 = 1;
    const TAG_DELETE: u8 = 2;
    const TAG_NOOP: u8 = 3;
    const TAG_CONFIG: u8 = 4;
}

/// One write-ahead log entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    /// Position in the partition's log.
    pub lsn: Lsn,
    /// Ballot of the leader that proposed the entry. Copies of the entry on other replicas keep
    /// it, so `(lsn, ballot)` names one entry everywhere (see `docs/replication.md`).
    pub ballot: Ballot,
    /// Wall-clock time at the leader when the entry was proposed, in milliseconds since the
    /// Unix epoch. Used for point-in-time restore, never for ordering.
    pub timestamp_ms: u64,
    /// What the entry does.
    pub op: Operation,
}

/// Why bytes could not be decoded as an [`Entry`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryDecodeError {
    /// The body ended before the entry did.
    #[error("entry body truncated: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// Offset in the body where more bytes were needed.
        offset: usize,
        /// How many more bytes were needed.
        needed: usize,
    },
    /// The operation tag is not one this version knows.
    #[error("unknown operation tag {0}")]
    UnknownOperation(u8),
    /// Bytes were left over after the entry.
    #[error("{0} trailing bytes after the entry")]
    TrailingBytes(usize),
}

/// Size of the fixed part of an entry body: LSN, ballot round, ballot node, timestamp, tag.
const FIXED_LEN: usize = 8 + 8 + 4 + 8 + 1;

impl Entry {
    /// Appends the entry's body (see `docs/formats.md`, "WAL entry body") to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&self.lsn.0.to_le_bytes());
        out.extend_from_slice(&self.ballot.round.to_le_bytes());
        out.extend_from_slice(&self.ballot.node.to_le_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        match &self.op {
            Operation::Put { key, item } => {
                out.push(Operation::TAG_PUT);
                put_bytes(out, key);
                put_bytes(out, item);
            }
            Operation::Delete { key } => {
                out.push(Operation::TAG_DELETE);
                put_bytes(out, key);
            }
            Operation::Noop => out.push(Operation::TAG_NOOP),
            Operation::Config(body) => {
                out.push(Operation::TAG_CONFIG);
                put_bytes(out, body);
            }
        }
    }

    /// The entry's body as a new vector.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Length in bytes of the entry's body.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        FIXED_LEN
            + match &self.op {
                Operation::Put { key, item } => 8 + key.len() + item.len(),
                Operation::Delete { key } => 4 + key.len(),
                Operation::Noop => 0,
                Operation::Config(body) => 4 + body.len(),
            }
    }

    /// Decodes an entry body produced by [`Entry::encode`]; the whole slice must be one entry.
    pub fn decode(body: &[u8]) -> Result<Entry, EntryDecodeError> {
        let mut r = Reader { body, offset: 0 };
        let lsn = Lsn(r.u64()?);
        let round = r.u64()?;
        let node = r.u32()?;
        let timestamp_ms = r.u64()?;
        let op = match r.u8()? {
            Operation::TAG_PUT => {
                let key = r.bytes()?;
                let item = r.bytes()?;
                Operation::Put { key, item }
            }
            Operation::TAG_DELETE => Operation::Delete { key: r.bytes()? },
            Operation::TAG_NOOP => Operation::Noop,
            Operation::TAG_CONFIG => Operation::Config(r.bytes()?),
            tag => return Err(EntryDecodeError::UnknownOperation(tag)),
        };
        if r.offset != body.len() {
            return Err(EntryDecodeError::TrailingBytes(body.len() - r.offset));
        }
        Ok(Entry {
            lsn,
            ballot: Ballot { round, node },
            timestamp_ms,
            op,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys and items are bounded far below 4 GiB by DynamoDB's limits (400 KB per item), which
    // callers validate before an operation is built.
    #[allow(clippy::expect_used)]
    let len = u32::try_from(bytes.len()).expect("invariant: operation fields are under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    body: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EntryDecodeError> {
        let rest = &self.body[self.offset..];
        if rest.len() < n {
            return Err(EntryDecodeError::Truncated {
                offset: self.offset,
                needed: n - rest.len(),
            });
        }
        self.offset += n;
        Ok(&rest[..n])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EntryDecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, EntryDecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, EntryDecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, EntryDecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, EntryDecodeError> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(op: Operation) -> Entry {
        Entry {
            lsn: Lsn(42),
            ballot: Ballot { round: 7, node: 3 },
            timestamp_ms: 1_790_000_000_000,
            op,
        }
    }

    #[test]
    fn every_operation_round_trips() {
        for op in [
            Operation::Put {
                key: b"k".to_vec(),
                item: vec![1, 2, 3],
            },
            Operation::Delete { key: vec![] },
            Operation::Noop,
            Operation::Config(b"members".to_vec()),
        ] {
            let entry = sample(op);
            let body = entry.encode();
            assert_eq!(body.len(), entry.encoded_len());
            assert_eq!(Entry::decode(&body), Ok(entry));
        }
    }

    #[test]
    fn golden_body_is_stable() {
        let body = sample(Operation::Delete {
            key: b"ab".to_vec(),
        })
        .encode();
        let expected: Vec<u8> = [
            &42u64.to_le_bytes()[..],
            &7u64.to_le_bytes(),
            &3u32.to_le_bytes(),
            &1_790_000_000_000u64.to_le_bytes(),
            &[2],
            &2u32.to_le_bytes(),
            b"ab",
        ]
        .concat();
        assert_eq!(body, expected);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let body = sample(Operation::Put {
            key: b"key".to_vec(),
            item: b"item".to_vec(),
        })
        .encode();
        for cut in 0..body.len() {
            assert!(matches!(
                Entry::decode(&body[..cut]),
                Err(EntryDecodeError::Truncated { .. })
            ));
        }
        let mut long = body.clone();
        long.push(0);
        assert_eq!(
            Entry::decode(&long),
            Err(EntryDecodeError::TrailingBytes(1))
        );
        let mut bad_tag = body;
        bad_tag[FIXED_LEN - 1] = 99;
        assert_eq!(
            Entry::decode(&bad_tag),
            Err(EntryDecodeError::UnknownOperation(99))
        );
    }
}
