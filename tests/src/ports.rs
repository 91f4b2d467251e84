//! Loopback ports for tests that start a local cluster (`ddbctl local up`, `ddbctl drill`).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// How far a local cluster's peer ports sit above its API ports (as in ddbctl's layout).
pub const PEER_PORT_OFFSET: u16 = 100;
/// How far its archivers' metrics ports sit above its API ports.
pub const ARCHIVER_PORT_OFFSET: u16 = 200;
/// How far its scrubber's port sits above its first API port.
pub const SCRUBBER_PORT_OFFSET: u16 = 300;
/// How far its canaries' ports (one per AZ) sit above its first API port.
pub const CANARY_PORT_OFFSET: u16 = 400;

/// True if `127.0.0.1:port` can be bound right now (nothing listens on it and no connection
/// uses it as its local port).
fn port_is_free(port: u16) -> bool {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok()
}

/// True if no server listens on `127.0.0.1:port`: a connection to it is refused. Unlike
/// [`port_is_free`], a port some other process's outgoing connection happens to use as its
/// ephemeral local port still counts, which is what "the server was stopped" means.
pub fn nothing_listens_on(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(1),
    )
    .is_err()
}

/// Every API, peer, archiver, scrubber and canary port of a local cluster of `nodes` nodes
/// from `base`.
pub fn cluster_ports(base: u16, nodes: u16) -> impl Iterator<Item = u16> {
    let azs = nodes.min(3);
    (base..base + nodes)
        .chain(base + PEER_PORT_OFFSET..base + PEER_PORT_OFFSET + nodes)
        .chain(base + ARCHIVER_PORT_OFFSET..base + ARCHIVER_PORT_OFFSET + nodes)
        .chain(std::iter::once(base + SCRUBBER_PORT_OFFSET))
        .chain(base + CANARY_PORT_OFFSET..base + CANARY_PORT_OFFSET + azs)
}

/// A base port whose API and peer ports for `nodes` nodes are all free right now (starting
/// from a port the kernel hands out, so parallel test runs rarely collide).
///
/// # Panics
///
/// If no such range turns up in 100 tries.
pub fn free_cluster_base_port(nodes: u16) -> u16 {
    for _ in 0..100 {
        let Ok(base) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
        else {
            continue;
        };
        if base.checked_add(SCRUBBER_PORT_OFFSET + 1).is_some()
            && cluster_ports(base, nodes).all(port_is_free)
        {
            return base;
        }
    }
    panic!("found no free range of ports for {nodes} nodes");
}
