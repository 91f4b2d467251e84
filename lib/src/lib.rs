//! ddb's storage library: the pieces every ddb process shares.
//!
//! - [`admission`]: capacity admission: routers' buckets, global admission control, partition
//!   and node buckets with burst credit.
//! - [`item`]: DynamoDB attribute values, their validation, DynamoDB JSON, the canonical item
//!   encoding and the order-preserving key encoding.
//! - [`wal`]: the write-ahead log: log entries, segment files, group commit and recovery.
//! - [`digest`]: the LtHash16 state digest and its checkpoints.
//! - [`archive`]: archive URLs, object names, the WAL chunk format, create-only uploads.
//! - [`replica`]: the replica store that applies committed entries (fjall and in-memory).
//! - [`replication`]: the sans-IO Multi-Paxos core of a partition's replication group.
//! - [`cluster`]: replication messages, read indexes and forwarded requests between nodes.
//! - [`transport`]: authenticated, batched, reconnecting links between ddb processes.
//! - [`expr`]: DynamoDB expressions: parsing and evaluation against items.
//! - [`sigv4`]: AWS Signature Version 4 verification and signing.
//! - [`protocol`]: DynamoDB's JSON protocol: operations, requests, error shapes.
//! - [`catalog`]: the tables a node holds, their key schemas and partitions.
//! - [`node`]: a storage node's partitions and the DynamoDB operations it serves.
//! - [`config`]: node configuration (TOML plus environment overrides).
//! - [`server`]: the node's HTTP face (DynamoDB JSON 1.0, `/healthz`, `/metrics`).
//! - [`client`]: a small synchronous DynamoDB JSON 1.0 client (SigV4, keep-alive, http only).
//!
//! The library holds no global state and starts no threads of its own except where a type says
//! so in its documentation; configuration arrives as values.

pub mod admission;
pub mod archive;
pub mod catalog;
#[cfg(feature = "network")]
pub mod client;
pub mod cluster;
pub mod config;
pub mod digest;
pub mod expr;
pub mod item;
pub mod node;
pub mod protocol;
pub mod replica;
pub mod replication;
pub mod scrub;
#[cfg(feature = "network")]
pub mod server;
pub mod service;
pub mod sigv4;
pub mod transport;
pub mod wal;
