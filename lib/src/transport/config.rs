//! The transport's configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::error::TransportError;

/// The shortest cluster secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// How a node's transport listens, whom it talks to and with which limits.
///
/// [`TransportConfig::new`] fills in the defaults; change fields before
/// [`Transport::start`](super::Transport::start), which validates them.
#[derive(Clone)]
pub struct TransportConfig {
    /// This node's id. Unique within the cluster.
    pub node_id: u64,
    /// Where to accept connections from peers. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// The secret every node of the cluster shares; at least [`MIN_SECRET_BYTES`] bytes.
    /// Never printed by `Debug`.
    pub cluster_secret: Vec<u8>,
    /// The other nodes: id to address. Must not contain `node_id`.
    pub peers: BTreeMap<u64, SocketAddr>,
    /// The largest frame body accepted or sent, in bytes (payload plus 8 for calls).
    pub max_frame_bytes: usize,
    /// Messages queued per peer before further sends to it are dropped.
    pub queue_capacity: usize,
    /// Incoming messages buffered for the [`Inbox`](super::Inbox) before readers stop reading
    /// their sockets (TCP backpressure).
    pub inbox_capacity: usize,
    /// Limit on connecting plus handshaking, in both directions.
    pub connect_timeout: Duration,
    /// First wait before reconnecting to a peer after a failure.
    pub reconnect_backoff_min: Duration,
    /// The longest wait between reconnection attempts; the wait doubles up to this.
    pub reconnect_backoff_max: Duration,
}

impl TransportConfig {
    /// Default `max_frame_bytes`: 64 MiB.
    pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 << 20;
    /// Default `queue_capacity`.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
    /// Default `inbox_capacity`.
    pub const DEFAULT_INBOX_CAPACITY: usize = 4096;

    /// A configuration with no peers and default limits.
    pub fn new(node_id: u64, listen: SocketAddr, cluster_secret: impl Into<Vec<u8>>) -> Self {
        TransportConfig {
            node_id,
            listen,
            cluster_secret: cluster_secret.into(),
            peers: BTreeMap::new(),
            max_frame_bytes: Self::DEFAULT_MAX_FRAME_BYTES,
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            inbox_capacity: Self::DEFAULT_INBOX_CAPACITY,
            connect_timeout: Duration::from_secs(3),
            reconnect_backoff_min: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(5),
        }
    }

    /// Checks every field; the error names the first one that is wrong.
    pub fn validate(&self) -> Result<(), TransportError> {
        if self.cluster_secret.len() < MIN_SECRET_BYTES {
            return Err(TransportError::config(format!(
                "cluster_secret is {} bytes; at least {MIN_SECRET_BYTES} are required",
                self.cluster_secret.len()
            )));
        }
        if self.peers.contains_key(&self.node_id) {
            return Err(TransportError::config(format!(
                "peers contains this node's own id {}",
                self.node_id
            )));
        }
        if self.max_frame_bytes < super::frame::CALL_ID_BYTES
            || self.max_frame_bytes > u32::MAX as usize
        {
            return Err(TransportError::config(format!(
                "max_frame_bytes must be between {} and {}, not {}",
                super::frame::CALL_ID_BYTES,
                u32::MAX,
                self.max_frame_bytes
            )));
        }
        if self.queue_capacity == 0 || self.inbox_capacity == 0 {
            return Err(TransportError::config(
                "queue_capacity and inbox_capacity must be at least 1",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(TransportError::config("connect_timeout must be positive"));
        }
        if self.reconnect_backoff_min.is_zero()
            || self.reconnect_backoff_min > self.reconnect_backoff_max
        {
            return Err(TransportError::config(
                "reconnect_backoff_min must be positive and at most reconnect_backoff_max",
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportConfig")
            .field("node_id", &self.node_id)
            .field("listen", &self.listen)
            .field("cluster_secret", &"<redacted>")
            .field("peers", &self.peers)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("queue_capacity", &self.queue_capacity)
            .field("inbox_capacity", &self.inbox_capacity)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_backoff_min", &self.reconnect_backoff_min)
            .field("reconnect_backoff_max", &self.reconnect_backoff_max)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn config() -> TransportConfig {
        TransportConfig::new(1, "127.0.0.1:0".parse().unwrap(), *b"0123456789abcdef")
    }

    #[test]
    fn defaults_are_valid() {
        config().validate().unwrap();
    }

    #[test]
    fn a_short_secret_is_a_config_error() {
        let mut c = config();
        c.cluster_secret = b"too short".to_vec();
        let err = c.validate().unwrap_err();
        assert!(matches!(err, TransportError::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains("cluster_secret"), "{err}");
    }

    #[test]
    fn own_id_among_peers_is_a_config_error() {
        let mut c = config();
        c.peers.insert(1, "127.0.0.1:1".parse().unwrap());
        assert!(c.validate().is_err());
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let printed = format!("{:?}", config());
        assert!(!printed.contains("0123456789abcdef"), "{printed}");
        assert!(!printed.contains("48, 49, 50"), "{printed}");
    }
}
