//! Messages between the replicas of one group, and their byte form on the transport.

use crate::wal::{Ballot, Entry, Lsn};

use super::log::LogPosition;

/// A message between two replicas of one partition's group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Message {
    /// Phase 1a: a candidate asks for promises under `ballot`.
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// Everything at or below this LSN is committed in the candidate's log.
        commit_lsn: Lsn,
        /// The candidate's last log position.
        last: LogPosition,
    },
    /// Phase 1b: an acceptor promises to accept nothing below `ballot`.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The acceptor's last log position.
        last: LogPosition,
        /// The acceptor's log base: entries at or below it are committed and not sent.
        base: LogPosition,
        /// When `last` is more up to date than the candidate's, the acceptor's entries above the
        /// candidate's commit LSN (and above `base`); otherwise empty.
        entries: Vec<Entry>,
    },
    /// Phase 2a, pipelined: the leader's entries following `prev`. Also the heartbeat (with no
    /// entries) that renews the leader's lease and carries its commit LSN.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The position just before `entries[0]` (or the end of the leader's log when empty),
        /// which the acceptor's log must match.
        prev: LogPosition,
        /// Consecutive entries from `prev.lsn + 1`.
        entries: Vec<Entry>,
        /// The leader's commit LSN.
        commit_lsn: Lsn,
        /// The leader's clock when it sent this, echoed back for its lease.
        sent_at_ms: u64,
    },
    /// Phase 2b: the acceptor's log matches the leader's through `match_lsn`, durably.
    Accepted {
        /// The leader's ballot.
        ballot: Ballot,
        /// Highest LSN through which the acceptor durably holds the leader's log.
        match_lsn: Lsn,
        /// `sent_at_ms` of the newest Accept the acceptor had received from this leader.
        sent_at_ms: u64,
    },
    /// The acceptor's log does not match at `prev` of an Accept; the leader should back up.
    Mismatch {
        /// The leader's ballot.
        ballot: Ballot,
        /// The leader may resume from `hint_lsn + 1`.
        hint_lsn: Lsn,
    },
    /// A Prepare or Accept was refused: the acceptor promised `promised`, or a leader's lease
    /// still holds.
    Reject {
        /// The ballot of the refused request.
        ballot: Ballot,
        /// The acceptor's promised ballot.
        promised: Ballot,
    },
}

impl Message {
    /// The ballot the message was sent under (or, for answers, in reply to).
    pub fn ballot(&self) -> Ballot {
        match self {
            Message::Prepare { ballot, .. }
            | Message::Promise { ballot, .. }
            | Message::Accept { ballot, .. }
            | Message::Accepted { ballot, .. }
            | Message::Mismatch { ballot, .. }
            | Message::Reject { ballot, .. } => *ballot,
        }
    }
}

/// Why bytes could not be decoded as a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageDecodeError {
    /// The bytes ended early.
    #[error("replication message truncated")]
    Truncated,
    /// The message kind is not one this build knows.
    #[error("unknown replication message kind {0}")]
    UnknownKind(u8),
    /// Bytes were left over after the message.
    #[error("{0} trailing bytes after a replication message")]
    TrailingBytes(usize),
    /// An entry inside the message did not decode.
    #[error("bad entry in a replication message: {0}")]
    Entry(#[from] crate::wal::EntryDecodeError),
}

const KIND_PREPARE: u8 = 1;
const KIND_PROMISE: u8 = 2;
const KIND_ACCEPT: u8 = 3;
const KIND_ACCEPTED: u8 = 4;
const KIND_MISMATCH: u8 = 5;
const KIND_REJECT: u8 = 6;

impl Message {
    /// The message's byte form: a kind byte, then its fields in order, integers little-endian,
    /// ballots as round (u64) and node (u32), positions as ballot then LSN, entry lists as a
    /// count (u32) followed by each entry's body length (u32) and body ([`Entry::encode`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            Message::Prepare {
                ballot,
                commit_lsn,
                last,
            } => {
                out.push(KIND_PREPARE);
                put_ballot(&mut out, *ballot);
                put_u64(&mut out, commit_lsn.0);
                put_position(&mut out, *last);
            }
            Message::Promise {
                ballot,
                last,
                base,
                entries,
            } => {
                out.push(KIND_PROMISE);
                put_ballot(&mut out, *ballot);
                put_position(&mut out, *last);
                put_position(&mut out, *base);
                put_entries(&mut out, entries);
            }
            Message::Accept {
                ballot,
                prev,
                entries,
                commit_lsn,
                sent_at_ms,
            } => {
                out.push(KIND_ACCEPT);
                put_ballot(&mut out, *ballot);
                put_position(&mut out, *prev);
                put_u64(&mut out, commit_lsn.0);
                put_u64(&mut out, *sent_at_ms);
                put_entries(&mut out, entries);
            }
            Message::Accepted {
                ballot,
                match_lsn,
                sent_at_ms,
            } => {
                out.push(KIND_ACCEPTED);
                put_ballot(&mut out, *ballot);
                put_u64(&mut out, match_lsn.0);
                put_u64(&mut out, *sent_at_ms);
            }
            Message::Mismatch { ballot, hint_lsn } => {
                out.push(KIND_MISMATCH);
                put_ballot(&mut out, *ballot);
                put_u64(&mut out, hint_lsn.0);
            }
            Message::Reject { ballot, promised } => {
                out.push(KIND_REJECT);
                put_ballot(&mut out, *ballot);
                put_ballot(&mut out, *promised);
            }
        }
        out
    }

    /// Decodes [`Message::encode`]'s form.
    pub fn decode(bytes: &[u8]) -> Result<Message, MessageDecodeError> {
        let mut reader = Reader { rest: bytes };
        let kind = reader.u8()?;
        let message = match kind {
            KIND_PREPARE => Message::Prepare {
                ballot: reader.ballot()?,
                commit_lsn: Lsn(reader.u64()?),
                last: reader.position()?,
            },
            KIND_PROMISE => Message::Promise {
                ballot: reader.ballot()?,
                last: reader.position()?,
                base: reader.position()?,
                entries: reader.entries()?,
            },
            KIND_ACCEPT => Message::Accept {
                ballot: reader.ballot()?,
                prev: reader.position()?,
                commit_lsn: Lsn(reader.u64()?),
                sent_at_ms: reader.u64()?,
                entries: reader.entries()?,
            },
            KIND_ACCEPTED => Message::Accepted {
                ballot: reader.ballot()?,
                match_lsn: Lsn(reader.u64()?),
                sent_at_ms: reader.u64()?,
            },
            KIND_MISMATCH => Message::Mismatch {
                ballot: reader.ballot()?,
                hint_lsn: Lsn(reader.u64()?),
            },
            KIND_REJECT => Message::Reject {
                ballot: reader.ballot()?,
                promised: reader.ballot()?,
            },
            other => return Err(MessageDecodeError::UnknownKind(other)),
        };
        if !reader.rest.is_empty() {
            return Err(MessageDecodeError::TrailingBytes(reader.rest.len()));
        }
        Ok(message)
    }
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_ballot(out: &mut Vec<u8>, ballot: Ballot) {
    put_u64(out, ballot.round);
    out.extend_from_slice(&ballot.node.to_le_bytes());
}

fn put_position(out: &mut Vec<u8>, position: LogPosition) {
    put_ballot(out, position.ballot);
    put_u64(out, position.lsn.0);
}

fn put_entries(out: &mut Vec<u8>, entries: &[Entry]) {
    let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for entry in entries {
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        entry.encode_into(out);
        let length = u32::try_from(out.len() - length_at - 4).unwrap_or(u32::MAX);
        out[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], MessageDecodeError> {
        if self.rest.len() < count {
            return Err(MessageDecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(count);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, MessageDecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, MessageDecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self) -> Result<u64, MessageDecodeError> {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(bytes))
    }

    fn ballot(&mut self) -> Result<Ballot, MessageDecodeError> {
        Ok(Ballot {
            round: self.u64()?,
            node: self.u32()?,
        })
    }

    fn position(&mut self) -> Result<LogPosition, MessageDecodeError> {
        Ok(LogPosition {
            ballot: self.ballot()?,
            lsn: Lsn(self.u64()?),
        })
    }

    fn entries(&mut self) -> Result<Vec<Entry>, MessageDecodeError> {
        let count = self.u32()? as usize;
        // Each entry takes at least its 4-byte length, so a lying count fails before allocating.
        if count > self.rest.len() / 4 {
            return Err(MessageDecodeError::Truncated);
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let length = self.u32()? as usize;
            entries.push(Entry::decode(self.take(length)?)?);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::Operation;

    fn ballot(round: u64, node: u32) -> Ballot {
        Ballot { round, node }
    }

    fn position(round: u64, lsn: u64) -> LogPosition {
        LogPosition {
            ballot: ballot(round, 2),
            lsn: Lsn(lsn),
        }
    }

    fn samples() -> Vec<Message> {
        let entries = vec![
            Entry {
                lsn: Lsn(5),
                ballot: ballot(3, 1),
                timestamp_ms: 1_700_000_000_000,
                op: Operation::Put {
                    key: b"k".to_vec(),
                    item: b"item".to_vec(),
                },
            },
            Entry {
                lsn: Lsn(6),
                ballot: ballot(3, 1),
                timestamp_ms: 1_700_000_000_001,
                op: Operation::Delete { key: b"k".to_vec() },
            },
        ];
        vec![
            Message::Prepare {
                ballot: ballot(4, 2),
                commit_lsn: Lsn(3),
                last: position(3, 6),
            },
            Message::Promise {
                ballot: ballot(4, 2),
                last: position(3, 6),
                base: position(1, 2),
                entries: entries.clone(),
            },
            Message::Accept {
                ballot: ballot(4, 2),
                prev: position(3, 4),
                entries,
                commit_lsn: Lsn(4),
                sent_at_ms: 99,
            },
            Message::Accepted {
                ballot: ballot(4, 2),
                match_lsn: Lsn(6),
                sent_at_ms: 99,
            },
            Message::Mismatch {
                ballot: ballot(4, 2),
                hint_lsn: Lsn(2),
            },
            Message::Reject {
                ballot: ballot(4, 2),
                promised: ballot(5, 3),
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for message in samples() {
            assert_eq!(Message::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        for message in samples() {
            let bytes = message.encode();
            for cut in 0..bytes.len() {
                assert!(
                    Message::decode(&bytes[..cut]).is_err(),
                    "{message:?} cut at {cut} decoded"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(
                Message::decode(&longer),
                Err(MessageDecodeError::TrailingBytes(1))
            );
        }
        assert_eq!(
            Message::decode(&[42]),
            Err(MessageDecodeError::UnknownKind(42))
        );
    }
}
