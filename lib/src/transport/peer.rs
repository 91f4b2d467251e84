//! The writer task of one peer: it owns the outbound connection, keeps it open, and writes
//! everything queued in one batch per socket write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};

use super::error::HandshakeError;
use super::frame::{Direction, Frame, FrameSealer};
use super::handshake::{self, SessionKey};
use super::shared::Shared;
use super::stats::{PeerCounters, add};

/// A batch stops taking more frames from the queue once it holds this many bytes, so one
/// write's buffer stays bounded (a single frame may still be up to `max_frame_bytes`).
const BATCH_SOFT_LIMIT_BYTES: usize = 1 << 20;

/// Why a connection's pump returned.
enum ConnectionEnd {
    /// The peer was removed or the transport shut down.
    QueueClosed,
    /// `set_peer` gave the peer a new address: reconnect there at once.
    AddressChanged,
    /// The connection failed or the peer closed it.
    Lost,
}

/// Runs until the peer is removed or the transport shuts down (the task is aborted, or its
/// queue and address channel close).
pub(crate) async fn run_writer(
    shared: Arc<Shared>,
    peer_id: u64,
    mut addr: watch::Receiver<SocketAddr>,
    mut queue: mpsc::Receiver<Frame>,
    counters: Arc<PeerCounters>,
) {
    let limits = shared.limits.clone();
    let mut rng = fastrand::Rng::new();
    let mut backoff = limits.reconnect_backoff_min;
    loop {
        let target = *addr.borrow_and_update();
        let wait = match connect(&shared, peer_id, target).await {
            Ok((stream, key)) => {
                add(&counters.connections, 1);
                counters.connected.store(true, Ordering::Relaxed);
                tracing::debug!(peer = peer_id, %target, "transport connected");
                backoff = limits.reconnect_backoff_min;
                let end = pump(stream, key, &mut queue, &mut addr, &counters, &shared).await;
                counters.connected.store(false, Ordering::Relaxed);
                match end {
                    ConnectionEnd::QueueClosed => return,
                    ConnectionEnd::AddressChanged => continue,
                    // A peer that accepts and then drops us at once must not make us spin.
                    ConnectionEnd::Lost => limits.reconnect_backoff_min,
                }
            }
            Err(e) => {
                add(&counters.connect_failures, 1);
                shared.count_failure(e.is_auth_failure(), e.is_protocol_error());
                tracing::debug!(peer = peer_id, %target, error = %e, "transport connect failed");
                let wait = backoff;
                backoff = (backoff * 2).min(limits.reconnect_backoff_max);
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(jittered(wait, &mut rng)) => {}
            changed = addr.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// A wait between half of `wait` and all of it, so peers that lost each other together do not
/// retry in lockstep.
fn jittered(wait: Duration, rng: &mut fastrand::Rng) -> Duration {
    let half = wait / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(rng.u64(0..=nanos))
}

async fn connect(
    shared: &Shared,
    peer_id: u64,
    target: SocketAddr,
) -> Result<(TcpStream, SessionKey), HandshakeError> {
    let attempt = async {
        let mut stream = TcpStream::connect(target).await?;
        // Frames are batched here; Nagle would only add latency.
        stream.set_nodelay(true)?;
        let nonce = handshake::fresh_nonce()?;
        let key = handshake::dial(
            &mut stream,
            &shared.cluster_key,
            shared.node_id,
            peer_id,
            nonce,
        )
        .await?;
        Ok((stream, key))
    };
    tokio::time::timeout(shared.limits.connect_timeout, attempt)
        .await
        .unwrap_or(Err(HandshakeError::TimedOut))
}

/// Writes queued frames until the connection ends. The acceptor never sends on this
/// connection, so reading only watches for it closing.
async fn pump(
    stream: TcpStream,
    key: SessionKey,
    queue: &mut mpsc::Receiver<Frame>,
    addr: &mut watch::Receiver<SocketAddr>,
    counters: &PeerCounters,
    shared: &Shared,
) -> ConnectionEnd {
    let (mut reader, mut writer) = stream.into_split();
    let mut sealer = FrameSealer::new(key, Direction::DialerToAcceptor);
    let mut batch = Vec::new();
    let mut probe = [0u8; 1];
    loop {
        tokio::select! {
            first = queue.recv() => {
                let Some(first) = first else {
                    return ConnectionEnd::QueueClosed;
                };
                batch.clear();
                let mut frames = 0u64;
                let mut next = Some(first);
                while let Some(frame) = next {
                    sealer.seal(&frame, &mut batch);
                    frames += 1;
                    next = if batch.len() < BATCH_SOFT_LIMIT_BYTES {
                        queue.try_recv().ok()
                    } else {
                        None
                    };
                }
                if let Err(e) = write_batch(&mut writer, &batch).await {
                    add(&counters.messages_dropped, frames);
                    tracing::debug!(error = %e, frames, "transport write failed");
                    return ConnectionEnd::Lost;
                }
                add(&counters.messages_sent, frames);
                add(&counters.bytes_sent, batch.len() as u64);
                add(&counters.batches_written, 1);
                if batch.capacity() > 4 * BATCH_SOFT_LIMIT_BYTES {
                    // One huge frame should not pin its buffer for the connection's life.
                    batch = Vec::new();
                }
            }
            read = reader.read(&mut probe) => {
                if matches!(read, Ok(n) if n > 0) {
                    shared.count_failure(false, true);
                    tracing::warn!("transport peer sent data on a send-only connection");
                }
                return ConnectionEnd::Lost;
            }
            changed = addr.changed() => {
                return if changed.is_err() {
                    ConnectionEnd::QueueClosed
                } else {
                    ConnectionEnd::AddressChanged
                };
            }
        }
    }
}

async fn write_batch(writer: &mut OwnedWriteHalf, batch: &[u8]) -> std::io::Result<()> {
    writer.write_all(batch).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_wait() {
        let mut rng = fastrand::Rng::with_seed(7);
        let wait = Duration::from_millis(100);
        for _ in 0..1000 {
            let j = jittered(wait, &mut rng);
            assert!(j >= wait / 2 && j <= wait, "{j:?}");
        }
        assert_eq!(jittered(Duration::ZERO, &mut rng), Duration::ZERO);
    }
}
