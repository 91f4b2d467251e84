//! The authenticated frame codec used after the handshake.
//!
//! ```text
//! u32 LE body length | u8 kind | body | 16-byte MAC
//! ```
//!
//! The MAC is BLAKE3 keyed with the connection's session key over
//! `direction u8 | sequence u64 LE | kind u8 | body length u32 LE | body`, truncated to 16 bytes.
//! The sequence number is not sent: each side counts frames from 0 in each direction, so a
//! replayed, dropped, reordered or injected frame fails its MAC. See `docs/transport.md`.

use bytes::{Buf, Bytes, BytesMut};

use super::error::FrameError;
use super::handshake::SessionKey;

/// Bytes before the body: length and kind.
pub const HEADER_BYTES: usize = 5;
/// Bytes of the truncated MAC after the body.
pub const MAC_BYTES: usize = 16;
/// Bytes of the call id that starts the body of request, reply and failure frames.
pub const CALL_ID_BYTES: usize = 8;

const KIND_MESSAGE: u8 = 1;
const KIND_REQUEST: u8 = 2;
const KIND_REPLY: u8 = 3;
const KIND_FAILURE: u8 = 4;

/// Which way a frame travels on its connection; part of the MAC input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Direction {
    DialerToAcceptor = 1,
    #[cfg_attr(not(test), allow(dead_code))]
    AcceptorToDialer = 2,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A one-way message.
    Message(Bytes),
    /// A request the receiver must answer with a reply or failure carrying the same call id.
    Request { call_id: u64, payload: Bytes },
    /// The answer to a request.
    Reply { call_id: u64, payload: Bytes },
    /// The receiver of a request could not answer it.
    Failure { call_id: u64, reason: String },
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Message(_) => KIND_MESSAGE,
            Frame::Request { .. } => KIND_REQUEST,
            Frame::Reply { .. } => KIND_REPLY,
            Frame::Failure { .. } => KIND_FAILURE,
        }
    }

    /// The body as an optional call id followed by the payload bytes.
    fn body(&self) -> (Option<[u8; CALL_ID_BYTES]>, &[u8]) {
        match self {
            Frame::Message(payload) => (None, payload),
            Frame::Request { call_id, payload } | Frame::Reply { call_id, payload } => {
                (Some(call_id.to_le_bytes()), payload)
            }
            Frame::Failure { call_id, reason } => (Some(call_id.to_le_bytes()), reason.as_bytes()),
        }
    }

    /// The body length the frame will carry.
    pub(crate) fn body_len(&self) -> usize {
        let (call_id, payload) = self.body();
        call_id.map_or(0, |id| id.len()) + payload.len()
    }
}

fn mac(
    key: &SessionKey,
    direction: Direction,
    seq: u64,
    kind: u8,
    body: &[&[u8]],
) -> [u8; MAC_BYTES] {
    let body_len: usize = body.iter().map(|part| part.len()).sum();
    let mut hasher = blake3::Hasher::new_keyed(&key.0);
    hasher.update(&[direction as u8]);
    hasher.update(&seq.to_le_bytes());
    hasher.update(&[kind]);
    // Lengths are checked against max_frame_bytes (a u32) before a frame is built or opened.
    hasher.update(&(body_len as u32).to_le_bytes());
    for part in body {
        hasher.update(part);
    }
    let mut out = [0u8; MAC_BYTES];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..MAC_BYTES]);
    out
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Encodes frames for one direction of one connection, numbering them from 0.
pub(crate) struct FrameSealer {
    key: SessionKey,
    direction: Direction,
    next_seq: u64,
}

impl FrameSealer {
    pub(crate) fn new(key: SessionKey, direction: Direction) -> Self {
        FrameSealer {
            key,
            direction,
            next_seq: 0,
        }
    }

    /// Appends `frame` to `out` and returns the bytes appended. The caller has checked
    /// [`Frame::body_len`] against the frame limit.
    pub(crate) fn seal(&mut self, frame: &Frame, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let (call_id, payload) = frame.body();
        let call_id: &[u8] = match &call_id {
            Some(id) => id,
            None => &[],
        };
        let kind = frame.kind();
        let body_len = call_id.len() + payload.len();
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        out.push(kind);
        out.extend_from_slice(call_id);
        out.extend_from_slice(payload);
        let tag = mac(
            &self.key,
            self.direction,
            self.next_seq,
            kind,
            &[call_id, payload],
        );
        out.extend_from_slice(&tag);
        self.next_seq = self.next_seq.wrapping_add(1);
        out.len() - start
    }
}

/// Decodes and authenticates frames of one direction of one connection.
pub(crate) struct FrameOpener {
    key: SessionKey,
    direction: Direction,
    next_seq: u64,
    max_frame_bytes: usize,
}

impl FrameOpener {
    pub(crate) fn new(key: SessionKey, direction: Direction, max_frame_bytes: usize) -> Self {
        FrameOpener {
            key,
            direction,
            next_seq: 0,
            max_frame_bytes,
        }
    }

    /// Takes one whole frame off the front of `buf`. Returns `Ok(None)` when `buf` does not yet
    /// hold a whole frame (after reserving room for it), and the frame's wire size with it.
    /// Any error is final: the connection must be closed.
    pub(crate) fn open(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<(Frame, usize)>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let body_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if body_len > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                len: body_len,
                max: self.max_frame_bytes,
            });
        }
        let total = HEADER_BYTES + body_len + MAC_BYTES;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut wire = buf.split_to(total).freeze();
        let kind = wire[4];
        let expected = mac(
            &self.key,
            self.direction,
            self.next_seq,
            kind,
            &[&wire[HEADER_BYTES..HEADER_BYTES + body_len]],
        );
        if !equal_in_constant_time(&expected, &wire[HEADER_BYTES + body_len..]) {
            return Err(FrameError::BadMac { seq: self.next_seq });
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        wire.advance(HEADER_BYTES);
        wire.truncate(body_len);
        Ok(Some((parse_body(kind, wire)?, total)))
    }
}

fn parse_body(kind: u8, mut body: Bytes) -> Result<Frame, FrameError> {
    let name = match kind {
        KIND_MESSAGE => return Ok(Frame::Message(body)),
        KIND_REQUEST => "request",
        KIND_REPLY => "reply",
        KIND_FAILURE => "failure",
        _ => return Err(FrameError::UnknownKind { kind }),
    };
    if body.len() < CALL_ID_BYTES {
        return Err(FrameError::Malformed {
            kind: name,
            reason: "body shorter than its call id",
        });
    }
    let call_id = body.get_u64_le();
    Ok(match kind {
        KIND_REQUEST => Frame::Request {
            call_id,
            payload: body,
        },
        KIND_REPLY => Frame::Reply {
            call_id,
            payload: body,
        },
        _ => Frame::Failure {
            call_id,
            reason: String::from_utf8(body.to_vec()).map_err(|_| FrameError::Malformed {
                kind: name,
                reason: "reason is not UTF-8",
            })?,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn pair() -> (FrameSealer, FrameOpener) {
        let key = SessionKey([7; 32]);
        (
            FrameSealer::new(key.clone(), Direction::DialerToAcceptor),
            FrameOpener::new(key, Direction::DialerToAcceptor, MAX),
        )
    }

    fn sealed(sealer: &mut FrameSealer, frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        let n = sealer.seal(frame, &mut out);
        assert_eq!(n, out.len());
        out
    }

    fn open_all(opener: &mut FrameOpener, wire: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let mut buf = BytesMut::from(wire);
        let mut frames = Vec::new();
        while let Some((frame, _)) = opener.open(&mut buf)? {
            frames.push(frame);
        }
        assert!(buf.is_empty(), "{} bytes left over", buf.len());
        Ok(frames)
    }

    fn all_kinds() -> Vec<Frame> {
        vec![
            Frame::Message(Bytes::from_static(b"hello")),
            Frame::Message(Bytes::new()),
            Frame::Request {
                call_id: 42,
                payload: Bytes::from_static(b"get x"),
            },
            Frame::Reply {
                call_id: 42,
                payload: Bytes::from_static(b"x=1"),
            },
            Frame::Failure {
                call_id: u64::MAX,
                reason: "dropped".to_owned(),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips_in_order() {
        let (mut sealer, mut opener) = pair();
        let frames = all_kinds();
        let wire: Vec<u8> = frames.iter().flat_map(|f| sealed(&mut sealer, f)).collect();
        assert_eq!(open_all(&mut opener, &wire).unwrap(), frames);
    }

    #[test]
    fn frames_split_at_every_byte_boundary_still_decode() {
        let (mut sealer, mut opener) = pair();
        let frame = Frame::Request {
            call_id: 9,
            payload: Bytes::from_static(b"split me"),
        };
        let wire = sealed(&mut sealer, &frame);
        let mut buf = BytesMut::new();
        for (i, byte) in wire.iter().enumerate() {
            assert_eq!(
                opener.open(&mut buf).unwrap(),
                None,
                "complete after {i} bytes"
            );
            buf.extend_from_slice(&[*byte]);
        }
        assert_eq!(opener.open(&mut buf).unwrap(), Some((frame, wire.len())));
    }

    #[test]
    fn a_flipped_bit_anywhere_after_the_length_is_rejected() {
        let frame = Frame::Message(Bytes::from_static(b"payload"));
        let clean = sealed(&mut pair().0, &frame);
        // Kind, payload and MAC bytes; the length field is covered by the next tests.
        for i in 4..clean.len() {
            for bit in 0..8 {
                let mut wire = clean.clone();
                wire[i] ^= 1 << bit;
                let (_, mut opener) = pair();
                let err = open_all(&mut opener, &wire).unwrap_err();
                assert_eq!(err, FrameError::BadMac { seq: 0 }, "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn a_changed_length_is_rejected() {
        let frame = Frame::Message(Bytes::from_static(b"payload"));
        let mut wire = sealed(&mut pair().0, &frame);
        wire[0] -= 1;
        let (_, mut opener) = pair();
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(
            opener.open(&mut buf).unwrap_err(),
            FrameError::BadMac { seq: 0 }
        );
    }

    #[test]
    fn a_replayed_frame_is_rejected() {
        let (mut sealer, mut opener) = pair();
        let first = sealed(&mut sealer, &Frame::Message(Bytes::from_static(b"a")));
        let mut wire = first.clone();
        wire.extend_from_slice(&first);
        let mut buf = BytesMut::from(&wire[..]);
        assert!(opener.open(&mut buf).unwrap().is_some());
        assert_eq!(
            opener.open(&mut buf).unwrap_err(),
            FrameError::BadMac { seq: 1 }
        );
    }

    #[test]
    fn reordered_frames_are_rejected() {
        let (mut sealer, mut opener) = pair();
        let first = sealed(&mut sealer, &Frame::Message(Bytes::from_static(b"a")));
        let second = sealed(&mut sealer, &Frame::Message(Bytes::from_static(b"b")));
        let mut wire = second;
        wire.extend_from_slice(&first);
        assert_eq!(
            open_all(&mut opener, &wire).unwrap_err(),
            FrameError::BadMac { seq: 0 }
        );
    }

    #[test]
    fn a_frame_for_the_other_direction_or_session_is_rejected() {
        let key = SessionKey([7; 32]);
        let frame = Frame::Message(Bytes::from_static(b"a"));
        let mut backwards = FrameSealer::new(key.clone(), Direction::AcceptorToDialer);
        let wire = sealed(&mut backwards, &frame);
        let mut opener = FrameOpener::new(key, Direction::DialerToAcceptor, MAX);
        assert!(open_all(&mut opener, &wire).is_err());

        let mut other_session = FrameSealer::new(SessionKey([8; 32]), Direction::DialerToAcceptor);
        let wire = sealed(&mut other_session, &frame);
        assert!(open_all(&mut pair().1, &wire).is_err());
    }

    #[test]
    fn an_oversized_length_is_rejected_before_the_body_arrives() {
        let (_, mut opener) = pair();
        let mut buf = BytesMut::from(&((MAX as u32) + 1).to_le_bytes()[..]);
        assert_eq!(
            opener.open(&mut buf).unwrap_err(),
            FrameError::TooLarge {
                len: MAX + 1,
                max: MAX
            }
        );
        let mut buf = BytesMut::from(&u32::MAX.to_le_bytes()[..]);
        assert!(matches!(
            opener.open(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_frame_of_exactly_the_limit_is_accepted() {
        let (mut sealer, mut opener) = pair();
        let frame = Frame::Message(Bytes::from(vec![0xab; MAX]));
        let wire = sealed(&mut sealer, &frame);
        assert_eq!(open_all(&mut opener, &wire).unwrap(), vec![frame]);
    }

    #[test]
    fn authenticated_but_malformed_bodies_are_protocol_errors() {
        let key = SessionKey([7; 32]);
        // A request frame whose body is too short for its call id, sealed with the right key.
        let mut wire = Vec::new();
        wire.extend_from_slice(&3u32.to_le_bytes());
        wire.push(KIND_REQUEST);
        wire.extend_from_slice(b"abc");
        let tag = mac(
            &key,
            Direction::DialerToAcceptor,
            0,
            KIND_REQUEST,
            &[b"abc"],
        );
        wire.extend_from_slice(&tag);
        assert!(matches!(
            open_all(&mut pair().1, &wire),
            Err(FrameError::Malformed { .. })
        ));

        let mut wire = Vec::new();
        wire.extend_from_slice(&0u32.to_le_bytes());
        wire.push(77);
        let tag = mac(&key, Direction::DialerToAcceptor, 0, 77, &[]);
        wire.extend_from_slice(&tag);
        assert_eq!(
            open_all(&mut pair().1, &wire).unwrap_err(),
            FrameError::UnknownKind { kind: 77 }
        );
    }
}
