//! Replication groups: a sans-IO Multi-Paxos core that one partition's three replicas run.
//!
//! [`ReplicaCore`] is a deterministic state machine. Its inputs are messages from the other
//! replicas, ticks of a clock the host passes in, completions of durable log appends, and
//! proposals; its outputs are [`Action`]s: messages to send, promises and entries to persist,
//! committed entries to apply. The host (`ddbd`'s partition adapter, or the model checker in
//! `lib/tests/replication_model.rs`) does the I/O, so the code that runs in production is the code
//! that is model checked.
//!
//! The protocol, its safety argument and the choices behind it are in `docs/replication.md`:
//! ballots with phase 1 once per leadership, in which the candidate adopts the most up-to-date
//! log of a quorum of acceptors (log replicas included); pipelined phase 2 with log matching on
//! `(LSN, ballot)`; commit when a quorum holds an entry of the leader's own ballot durably; a
//! leader lease for strongly consistent reads, which a new leader waits out because acceptors
//! refuse to promise while it holds; membership changes as log entries, one member at a time.

mod acceptor;
mod action;
mod core;
mod leader;
mod log;
mod membership;
mod message;

pub use action::Action;
pub use core::{
    CampaignError, ProposeError, ReadError, RecoveredState, ReplicaCore, ReplicaStatus, Timing,
};
pub use log::LogPosition;
pub use membership::{Membership, MembershipChangeError, MembershipDecodeError, NodeId, Role};
pub use message::{Message, MessageDecodeError};
pub mod sim;

#[cfg(test)]
mod tests;
