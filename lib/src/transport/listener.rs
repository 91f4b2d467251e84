//! The listener task and the reader task of each authenticated inbound connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::error::{HandshakeError, TransportError};
use super::frame::{Direction, Frame, FrameOpener};
use super::handshake;
use super::incoming::{Incoming, Responder};
use super::shared::Shared;
use super::stats::{PeerCounters, add};

/// How much a reader asks the socket for at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// Accepts connections until `closing` changes or its sender is dropped, then stops every
/// reader and returns, which closes the listening socket and every inbound connection.
pub(crate) async fn run_listener(
    shared: Arc<Shared>,
    listener: TcpListener,
    inbox: mpsc::Sender<Incoming>,
    mut closing: watch::Receiver<bool>,
) {
    let mut readers = JoinSet::new();
    loop {
        tokio::select! {
            _ = closing.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    readers.spawn(serve_inbound(Arc::clone(&shared), stream, remote, inbox.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "transport accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = readers.join_next(), if !readers.is_empty() => {}
        }
    }
    readers.shutdown().await;
}

/// Keeps the `inbound_connections` gauge right however the reader ends.
struct InboundGauge(Arc<PeerCounters>);

impl Drop for InboundGauge {
    fn drop(&mut self) {
        self.0
            .inbound_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn serve_inbound(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    remote: SocketAddr,
    inbox: mpsc::Sender<Incoming>,
) {
    let handshake = async {
        stream.set_nodelay(true)?;
        let nonce = handshake::fresh_nonce()?;
        handshake::accept(&mut stream, &shared.cluster_key, shared.node_id, nonce).await
    };
    let handshake = tokio::time::timeout(shared.limits.connect_timeout, handshake)
        .await
        .unwrap_or(Err(HandshakeError::TimedOut));
    let (peer_id, key) = match handshake {
        Ok(done) => done,
        Err(e) => {
            shared.count_failure(e.is_auth_failure(), e.is_protocol_error());
            if e.is_auth_failure() {
                tracing::warn!(%remote, error = %e, "transport refused a connection");
            } else {
                tracing::debug!(%remote, error = %e, "transport handshake failed");
            }
            return;
        }
    };
    let counters = shared.counters_for(peer_id);
    add(&counters.inbound_connections, 1);
    let _gauge = InboundGauge(Arc::clone(&counters));

    let mut opener = FrameOpener::new(
        key,
        Direction::DialerToAcceptor,
        shared.limits.max_frame_bytes,
    );
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        loop {
            match opener.open(&mut buf) {
                Ok(Some((frame, wire_bytes))) => {
                    add(&counters.messages_received, 1);
                    add(&counters.bytes_received, wire_bytes as u64);
                    deliver(&shared, peer_id, frame, &inbox).await;
                }
                Ok(None) => break,
                Err(e) => {
                    shared.count_failure(e.is_auth_failure(), !e.is_auth_failure());
                    tracing::warn!(peer = peer_id, %remote, error = %e, "transport closed a connection");
                    return;
                }
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK_BYTES / 4 {
            buf.reserve(READ_CHUNK_BYTES);
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(peer = peer_id, %remote, error = %e, "transport read failed");
                return;
            }
        }
    }
}

/// Hands one authenticated frame to the inbox or to the call waiting for it.
async fn deliver(shared: &Arc<Shared>, from: u64, frame: Frame, inbox: &mpsc::Sender<Incoming>) {
    let incoming = match frame {
        Frame::Message(payload) => Incoming::Message { from, payload },
        Frame::Request { call_id, payload } => Incoming::Request {
            from,
            payload,
            reply: Responder::new(Arc::clone(shared), from, call_id),
        },
        Frame::Reply { call_id, payload } => {
            shared.calls.complete(from, call_id, Ok(payload));
            return;
        }
        Frame::Failure { call_id, reason } => {
            let failure = TransportError::RemoteFailure { peer: from, reason };
            shared.calls.complete(from, call_id, Err(failure));
            return;
        }
    };
    // With the inbox gone the payload is dropped; a request's responder then fails the call.
    let _ = inbox.send(incoming).await;
}
