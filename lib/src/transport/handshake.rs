//! Mutual authentication of a new connection and derivation of its session key.
//!
//! Dialer and acceptor exchange hellos (magic, version, node id, fresh nonce), then each proves
//! knowledge of the cluster secret with a keyed BLAKE3 MAC over the whole transcript and its
//! role. The dialer proves first, so an acceptor never hands a proof to a stranger who has not
//! shown the secret. See `docs/transport.md` for the byte layout.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::HandshakeError;

/// The first four bytes of every hello.
pub const MAGIC: [u8; 4] = *b"DDBT";
/// The only protocol version this code speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// Bytes in a hello: magic, version, node id, nonce.
pub const HELLO_BYTES: usize = 4 + 2 + 8 + NONCE_BYTES;
/// Bytes in a proof.
pub const PROOF_BYTES: usize = 32;
/// Bytes in a handshake nonce.
pub const NONCE_BYTES: usize = 32;

/// `blake3::derive_key` context turning the configured secret into the cluster key.
pub const CLUSTER_KEY_CONTEXT: &str = "ddb transport v1 cluster key";
/// `blake3::derive_key` context turning the cluster key into the handshake proof key.
pub const PROOF_KEY_CONTEXT: &str = "ddb transport v1 handshake proof";
/// `blake3::derive_key` context deriving a connection's session key.
pub const SESSION_KEY_CONTEXT: &str = "ddb transport v1 session key";

/// Which end of a connection a proof speaks for; part of the MAC input so that a proof cannot
/// be reflected back to the side that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Role {
    Dialer = 1,
    Acceptor = 2,
}

/// The key every node of the cluster derives from the shared secret. The raw secret is not kept.
#[derive(Clone)]
pub(crate) struct ClusterKey([u8; 32]);

impl ClusterKey {
    pub(crate) fn derive(secret: &[u8]) -> Self {
        ClusterKey(blake3::derive_key(CLUSTER_KEY_CONTEXT, secret))
    }
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(<redacted>)")
    }
}

/// The per-connection key that authenticates every frame after the handshake.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SessionKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// Everything both proofs and the session key are bound to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transcript {
    pub(crate) dialer_id: u64,
    pub(crate) acceptor_id: u64,
    pub(crate) dialer_nonce: [u8; NONCE_BYTES],
    pub(crate) acceptor_nonce: [u8; NONCE_BYTES],
}

impl Transcript {
    fn bytes(&self) -> [u8; 2 + 8 + 8 + 2 * NONCE_BYTES] {
        let mut out = [0u8; 2 + 8 + 8 + 2 * NONCE_BYTES];
        out[0..2].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        out[2..10].copy_from_slice(&self.dialer_id.to_le_bytes());
        out[10..18].copy_from_slice(&self.acceptor_id.to_le_bytes());
        out[18..50].copy_from_slice(&self.dialer_nonce);
        out[50..82].copy_from_slice(&self.acceptor_nonce);
        out
    }

    /// The proof that `role` knows the cluster key.
    pub(crate) fn proof(&self, cluster: &ClusterKey, role: Role) -> blake3::Hash {
        let proof_key = blake3::derive_key(PROOF_KEY_CONTEXT, &cluster.0);
        let mut hasher = blake3::Hasher::new_keyed(&proof_key);
        hasher.update(&self.bytes());
        hasher.update(&[role as u8]);
        hasher.finalize()
    }

    /// The session key both sides derive once both proofs check.
    pub(crate) fn session_key(&self, cluster: &ClusterKey) -> SessionKey {
        let mut hasher = blake3::Hasher::new_derive_key(SESSION_KEY_CONTEXT);
        hasher.update(&cluster.0);
        hasher.update(&self.bytes());
        SessionKey(*hasher.finalize().as_bytes())
    }
}

/// A fresh handshake nonce from the operating system's random source.
pub(crate) fn fresh_nonce() -> Result<[u8; NONCE_BYTES], HandshakeError> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(format!("random nonce: {e}")))?;
    Ok(nonce)
}

fn encode_hello(node_id: u64, nonce: &[u8; NONCE_BYTES]) -> [u8; HELLO_BYTES] {
    let mut out = [0u8; HELLO_BYTES];
    out[0..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out[6..14].copy_from_slice(&node_id.to_le_bytes());
    out[14..].copy_from_slice(nonce);
    out
}

/// Checks a hello's magic and version; returns the sender's node id and nonce.
fn decode_hello(hello: &[u8; HELLO_BYTES]) -> Result<(u64, [u8; NONCE_BYTES]), HandshakeError> {
    if hello[0..4] != MAGIC {
        return Err(HandshakeError::BadMagic);
    }
    let version = u16::from_le_bytes([hello[4], hello[5]]);
    if version != PROTOCOL_VERSION {
        return Err(HandshakeError::UnsupportedVersion { got: version });
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&hello[6..14]);
    let mut nonce = [0u8; NONCE_BYTES];
    nonce.copy_from_slice(&hello[14..]);
    Ok((u64::from_le_bytes(id), nonce))
}

fn check_proof(
    transcript: &Transcript,
    cluster: &ClusterKey,
    role: Role,
    received: &[u8; PROOF_BYTES],
) -> Result<(), HandshakeError> {
    // `blake3::Hash` compares in constant time.
    if transcript.proof(cluster, role) == blake3::Hash::from_bytes(*received) {
        Ok(())
    } else {
        Err(HandshakeError::BadProof)
    }
}

/// Runs the dialer's side on a fresh connection to `expected_peer`; returns the session key.
pub(crate) async fn dial<S>(
    stream: &mut S,
    cluster: &ClusterKey,
    my_id: u64,
    expected_peer: u64,
    nonce: [u8; NONCE_BYTES],
) -> Result<SessionKey, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(&encode_hello(my_id, &nonce)).await?;
    stream.flush().await?;
    let mut hello = [0u8; HELLO_BYTES];
    stream.read_exact(&mut hello).await?;
    let (acceptor_id, acceptor_nonce) = decode_hello(&hello)?;
    if acceptor_id != expected_peer {
        return Err(HandshakeError::WrongPeer {
            expected: expected_peer,
            got: acceptor_id,
        });
    }
    let transcript = Transcript {
        dialer_id: my_id,
        acceptor_id,
        dialer_nonce: nonce,
        acceptor_nonce,
    };
    stream
        .write_all(transcript.proof(cluster, Role::Dialer).as_bytes())
        .await?;
    stream.flush().await?;
    let mut proof = [0u8; PROOF_BYTES];
    stream.read_exact(&mut proof).await?;
    check_proof(&transcript, cluster, Role::Acceptor, &proof)?;
    Ok(transcript.session_key(cluster))
}

/// Runs the acceptor's side on a fresh inbound connection; returns the dialer's node id and the
/// session key.
pub(crate) async fn accept<S>(
    stream: &mut S,
    cluster: &ClusterKey,
    my_id: u64,
    nonce: [u8; NONCE_BYTES],
) -> Result<(u64, SessionKey), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut hello = [0u8; HELLO_BYTES];
    stream.read_exact(&mut hello).await?;
    let (dialer_id, dialer_nonce) = decode_hello(&hello)?;
    if dialer_id == my_id {
        return Err(HandshakeError::ClaimsOwnId { id: dialer_id });
    }
    stream.write_all(&encode_hello(my_id, &nonce)).await?;
    stream.flush().await?;
    let transcript = Transcript {
        dialer_id,
        acceptor_id: my_id,
        dialer_nonce,
        acceptor_nonce: nonce,
    };
    let mut proof = [0u8; PROOF_BYTES];
    stream.read_exact(&mut proof).await?;
    check_proof(&transcript, cluster, Role::Dialer, &proof)?;
    stream
        .write_all(transcript.proof(cluster, Role::Acceptor).as_bytes())
        .await?;
    stream.flush().await?;
    Ok((dialer_id, transcript.session_key(cluster)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn key(secret: &[u8]) -> ClusterKey {
        ClusterKey::derive(secret)
    }

    async fn run(
        dialer_secret: &[u8],
        dialer_id: u64,
        acceptor_secret: &[u8],
        acceptor_id: u64,
    ) -> (
        Result<SessionKey, HandshakeError>,
        Result<(u64, SessionKey), HandshakeError>,
    ) {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let (dk, ak) = (key(dialer_secret), key(acceptor_secret));
        let dial = async {
            let r = dial(&mut a, &dk, dialer_id, acceptor_id, [1; 32]).await;
            drop(a);
            r
        };
        let accept = async {
            let r = accept(&mut b, &ak, acceptor_id, [2; 32]).await;
            drop(b);
            r
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            tokio::join!(dial, accept)
        })
        .await
        .expect("handshake finished")
    }

    #[tokio::test]
    async fn same_secret_agrees_on_one_session_key() {
        let (d, a) = run(b"0123456789abcdef", 1, b"0123456789abcdef", 2).await;
        let (peer, acceptor_key) = a.unwrap();
        assert_eq!(peer, 1);
        assert_eq!(d.unwrap(), acceptor_key);
    }

    #[tokio::test]
    async fn wrong_secret_is_refused_by_the_acceptor() {
        let (d, a) = run(b"0123456789abcdef", 1, b"fedcba9876543210", 2).await;
        assert!(matches!(a, Err(HandshakeError::BadProof)), "{a:?}");
        assert!(d.is_err());
    }

    #[tokio::test]
    async fn dialer_claiming_the_acceptors_id_is_refused() {
        let (d, a) = run(b"0123456789abcdef", 2, b"0123456789abcdef", 2).await;
        assert!(
            matches!(a, Err(HandshakeError::ClaimsOwnId { id: 2 })),
            "{a:?}"
        );
        assert!(d.is_err());
    }

    #[tokio::test]
    async fn unknown_version_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let mut hello = encode_hello(1, &[1; 32]);
        hello[4] = 9;
        a.write_all(&hello).await.unwrap();
        let r = accept(&mut b, &key(b"0123456789abcdef"), 2, [2; 32]).await;
        assert!(
            matches!(r, Err(HandshakeError::UnsupportedVersion { got: 9 })),
            "{r:?}"
        );
    }

    #[test]
    fn a_proof_does_not_verify_in_the_other_role_or_another_connection() {
        let cluster = key(b"0123456789abcdef");
        let t = Transcript {
            dialer_id: 1,
            acceptor_id: 2,
            dialer_nonce: [1; 32],
            acceptor_nonce: [2; 32],
        };
        let dialer_proof = *t.proof(&cluster, Role::Dialer).as_bytes();
        assert!(check_proof(&t, &cluster, Role::Dialer, &dialer_proof).is_ok());
        // Reflected back at the dialer as if the acceptor had made it.
        assert!(check_proof(&t, &cluster, Role::Acceptor, &dialer_proof).is_err());
        // Replayed on a connection with a different acceptor nonce.
        let other = Transcript {
            acceptor_nonce: [3; 32],
            ..t
        };
        assert!(check_proof(&other, &cluster, Role::Dialer, &dialer_proof).is_err());
        assert_ne!(t.session_key(&cluster), other.session_key(&cluster));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The worked example of `docs/transport.md`, checked against a separate implementation
    /// written from that document; changing any byte here is a protocol change.
    #[test]
    fn golden_vectors_match_the_protocol_document() {
        use crate::transport::frame::{Direction, Frame, FrameSealer};
        use bytes::Bytes;

        let cluster = key(b"0123456789abcdef");
        assert_eq!(
            hex(&cluster.0),
            "a5a7445e4e46c7c92eee8e7d6c3deb07051a3eb1d78498750163bcda9d95f173"
        );
        assert_eq!(
            hex(&encode_hello(1, &[0x11; 32])),
            "44444254010001000000000000001111111111111111111111111111111111111111111111111111111111111111"
        );
        let t = Transcript {
            dialer_id: 1,
            acceptor_id: 2,
            dialer_nonce: [0x11; 32],
            acceptor_nonce: [0x22; 32],
        };
        assert_eq!(
            hex(t.proof(&cluster, Role::Dialer).as_bytes()),
            "093f2b28465aead7d2b96864efd037467cccf9ec3d7a22a973ffa863432f83aa"
        );
        assert_eq!(
            hex(t.proof(&cluster, Role::Acceptor).as_bytes()),
            "5f686fb935075f363e0f4da1d14b1d2d17567e3edd6696e0d05fcc4641cfd327"
        );
        let session = t.session_key(&cluster);
        assert_eq!(
            hex(&session.0),
            "6758cfa13a50fefa856c8a7830cfb6f26cd127a694161c8187b7c65cd7ab6d1a"
        );
        let mut sealer = FrameSealer::new(session, Direction::DialerToAcceptor);
        let mut wire = Vec::new();
        sealer.seal(&Frame::Message(Bytes::from_static(b"hi")), &mut wire);
        assert_eq!(hex(&wire), "02000000016869dcb0137602bcb7ca473c8cd780d9fe01");
        wire.clear();
        let request = Frame::Request {
            call_id: 5,
            payload: Bytes::from_static(b"q"),
        };
        sealer.seal(&request, &mut wire);
        assert_eq!(
            hex(&wire),
            "0900000002050000000000000071b689c8139e245f5a22ccb32fa79955a1"
        );
    }
}
