//! The transport's error types.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// What a caller of the transport can be told.
///
/// Callers branch on [`TransportError::CallTimeout`] and [`TransportError::RemoteFailure`]
/// (retry or give up), and treat [`TransportError::QueueFull`] and
/// [`TransportError::UnknownPeer`] as a lost message (the replication layer retransmits).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The configuration is unusable; nothing was started.
    #[error("invalid transport configuration: {reason}")]
    InvalidConfig {
        /// What is wrong, in one line.
        reason: String,
    },
    /// The listening socket could not be bound.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The destination is not in the peer set; the message was dropped and counted.
    #[error("node {peer} is not a known peer")]
    UnknownPeer {
        /// The destination node id.
        peer: u64,
    },
    /// The destination's send queue is full; the message was dropped and counted.
    #[error("send queue to node {peer} is full; message dropped")]
    QueueFull {
        /// The destination node id.
        peer: u64,
    },
    /// The payload does not fit in one frame; nothing was queued.
    #[error("payload of {bytes} bytes exceeds the frame limit of {max} bytes")]
    PayloadTooLarge {
        /// The payload's length (plus the call header for requests and replies).
        bytes: usize,
        /// The configured `max_frame_bytes`.
        max: usize,
    },
    /// No reply arrived within the call's timeout.
    #[error("call to node {peer} timed out after {timeout:?} (connected: {connected})")]
    CallTimeout {
        /// The node called.
        peer: u64,
        /// The timeout the caller gave.
        timeout: Duration,
        /// Whether the outbound connection to that node was up when the call gave up.
        connected: bool,
    },
    /// The remote node received the request but did not answer it (its handler dropped the
    /// [`Responder`](super::Responder)).
    #[error("node {peer} failed the call: {reason}")]
    RemoteFailure {
        /// The node called.
        peer: u64,
        /// The reason the remote node sent.
        reason: String,
    },
    /// The transport was shut down while the operation was pending.
    #[error("transport is shut down")]
    Shutdown,
}

impl TransportError {
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        TransportError::InvalidConfig {
            reason: reason.into(),
        }
    }
}

/// Why a frame was refused. Any of these closes the connection that carried it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length field exceeds `max_frame_bytes`.
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    TooLarge {
        /// The length the frame claimed.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The MAC does not match: the frame was altered, injected, replayed or reordered.
    #[error("frame {seq} failed authentication")]
    BadMac {
        /// The sequence number the receiver expected.
        seq: u64,
    },
    /// The kind byte names no frame kind.
    #[error("unknown frame kind {kind}")]
    UnknownKind {
        /// The byte received.
        kind: u8,
    },
    /// The frame authenticated but its body is malformed (a call frame without its call id, a
    /// failure reason that is not UTF-8).
    #[error("malformed {kind} frame: {reason}")]
    Malformed {
        /// The frame kind's name.
        kind: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl FrameError {
    /// Whether this failure is a failed authentication (counted as an auth failure) rather than
    /// a protocol violation.
    pub(crate) fn is_auth_failure(&self) -> bool {
        matches!(self, FrameError::BadMac { .. })
    }
}

/// Why a handshake failed. The connection is closed without a word to the other side.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    #[error("handshake I/O: {0}")]
    Io(#[from] io::Error),
    #[error("handshake timed out")]
    TimedOut,
    #[error("bad magic bytes in hello")]
    BadMagic,
    #[error("unsupported protocol version {got}")]
    UnsupportedVersion { got: u16 },
    #[error("dialer claims this node's own id {id}")]
    ClaimsOwnId { id: u64 },
    #[error("expected node {expected}, the other side is node {got}")]
    WrongPeer { expected: u64, got: u64 },
    #[error("the other side's proof of the cluster secret is wrong")]
    BadProof,
}

impl HandshakeError {
    /// Whether the other side failed to prove the cluster secret or tried to pass as us.
    pub(crate) fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            HandshakeError::BadProof | HandshakeError::ClaimsOwnId { .. }
        )
    }

    /// Whether the other side spoke something other than this protocol.
    pub(crate) fn is_protocol_error(&self) -> bool {
        matches!(
            self,
            HandshakeError::BadMagic
                | HandshakeError::UnsupportedVersion { .. }
                | HandshakeError::WrongPeer { .. }
        )
    }
}
