//! The host side of a partition's replication group: executes the core's actions against the
//! partition's WAL, replica store and the network, and keeps what the write path needs to see.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::protocol::ApiError;
use crate::replication::{Membership, Message, NodeId, ReplicaCore};
use crate::wal::{AppendTicket, Ballot, Entry, Lsn, Operation};

/// How a node's partitions reach their peers. The node wires it to the transport; a single
/// node uses [`NoNetwork`].
pub trait GroupNetwork: Send + Sync {
    /// Sends a replication message of group `group_id` to node `to` (best effort).
    fn send(&self, group_id: u64, to: NodeId, message: Message);
    /// Asks `leader` for group `group_id`'s read index (blocking, bounded).
    fn read_index(&self, leader: NodeId, group_id: u64) -> Result<Lsn, ApiError>;
    /// Runs a DynamoDB request on node `to` once its catalog is at least as new as
    /// `catalog_lsn`; `hops` counts the forwards including this one, which bounds how far it
    /// goes on (blocking, bounded).
    fn forward(
        &self,
        to: NodeId,
        operation: &str,
        body: &Value,
        catalog_lsn: Lsn,
        hops: u8,
    ) -> Result<Value, ApiError>;
    /// Fetches the replicated catalog (the metadata group's applied LSN and, if that is newer
    /// than `newer_than`, the catalog item) from node `from`, a replica of the metadata group
    /// (blocking, bounded).
    fn fetch_catalog(
        &self,
        from: NodeId,
        newer_than: Lsn,
    ) -> Result<(Lsn, Option<Vec<u8>>), ApiError>;
    /// Fetches a page of group `group_id`'s items from node `from`, a full replica: the items
    /// after `after` (from the start when `None`), up to about `max_bytes` (blocking, bounded).
    fn fetch_snapshot_page(
        &self,
        from: NodeId,
        group_id: u64,
        after: Option<&[u8]>,
        max_bytes: u32,
    ) -> Result<SnapshotPage, ApiError>;
    /// Whether node `id` is connected now (a candidate spare for healing must be).
    fn is_reachable(&self, _id: NodeId) -> bool {
        false
    }
    /// Asks the metadata group, without waiting, what it holds for `table`: every routed
    /// request does, whether the router's catalog had the table or not, so the metadata group
    /// sees load proportional to traffic and never a burst when caches go cold.
    fn query_metadata(&self, _table: &str) {}
    /// Where metadata lookups go: the metadata group's current members.
    fn set_metadata_members(&self, _members: Vec<NodeId>) {}
    /// Counters of the network side of routing, as `(metric name, help, value)`.
    fn routing_counters(&self) -> Vec<(&'static str, &'static str, u64)> {
        Vec::new()
    }
    /// Tells node `to`, which acts as a replica of group `group_id` but is not a member of its
    /// committed `membership`, that it was removed (best effort).
    fn send_removed(&self, to: NodeId, group_id: u64, membership: &Membership);
    /// Asks node `to`, which should lead the metadata group, for `router`'s admission rates
    /// (global admission control; blocking, bounded).
    fn gac_grant(
        &self,
        _to: NodeId,
        _router: NodeId,
        _asks: &[crate::admission::RouterAsk],
    ) -> Result<Vec<crate::admission::Grant>, ApiError> {
        Err(no_peers())
    }
    /// Asks `leader` to make `node`, a rebuilt log replica of group `group_id`, a full member.
    fn request_promotion(
        &self,
        leader: NodeId,
        group_id: u64,
        node: NodeId,
    ) -> Result<(), ApiError>;
}

/// A page of a replica's items, read from one snapshot of its store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotPage {
    /// The LSN the snapshot reflects.
    pub applied_lsn: Lsn,
    /// Items in key order.
    pub items: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether items follow the last one.
    pub more: bool,
}

/// The network of a node that has no peers.
pub struct NoNetwork;

impl GroupNetwork for NoNetwork {
    fn send(&self, _group_id: u64, _to: NodeId, _message: Message) {}

    fn read_index(&self, leader: NodeId, _group_id: u64) -> Result<Lsn, ApiError> {
        Err(ApiError::not_leader(Some(leader)))
    }

    fn forward(
        &self,
        _to: NodeId,
        _operation: &str,
        _body: &Value,
        _catalog_lsn: Lsn,
        _hops: u8,
    ) -> Result<Value, ApiError> {
        Err(no_peers())
    }

    fn fetch_catalog(
        &self,
        _from: NodeId,
        _newer_than: Lsn,
    ) -> Result<(Lsn, Option<Vec<u8>>), ApiError> {
        Err(no_peers())
    }

    fn fetch_snapshot_page(
        &self,
        _from: NodeId,
        _group_id: u64,
        _after: Option<&[u8]>,
        _max_bytes: u32,
    ) -> Result<SnapshotPage, ApiError> {
        Err(no_peers())
    }

    fn request_promotion(
        &self,
        _leader: NodeId,
        _group_id: u64,
        _node: NodeId,
    ) -> Result<(), ApiError> {
        Err(no_peers())
    }

    fn send_removed(&self, _to: NodeId, _group_id: u64, _membership: &Membership) {}
}

fn no_peers() -> ApiError {
    ApiError::new(
        crate::protocol::ErrorCode::ServiceUnavailable,
        "This node has no peers",
    )
}

/// Everything about the group that changes under the partition's group lock.
pub(super) struct GroupState {
    pub(super) core: ReplicaCore,
    /// Newest logged value per key above the applied LSN: what the next decision must see.
    pub(super) overlay: HashMap<Vec<u8>, (Lsn, Option<Vec<u8>>)>,
    /// Writers waiting for their LSN, with the ballot they proposed under.
    pub(super) waiting: HashMap<Lsn, (Ballot, Arc<WriteWaiter>)>,
    /// Writers whose outcome was just decided, to be woken once the lock is released.
    pub(super) to_wake: Vec<Arc<WriteWaiter>>,
    /// Why the partition stopped, if it did.
    pub(super) failed: Option<String>,
    /// A split's fence is in the applied state or the log: writes are refused (the fence
    /// itself excepted) until the children take over.
    pub(super) fenced: bool,
    /// The fence is in the applied state (what a truncation of the log cannot take back).
    pub(super) fenced_in_store: bool,
    /// The committed membership last persisted.
    pub(super) persisted_membership: Option<Membership>,
}

/// What executing actions left for the caller to do outside the group lock.
#[derive(Default)]
pub(super) struct Executed {
    /// Appends handed to the WAL, to be waited for and reported durable.
    pub(super) submitted: Vec<(u64, AppendTicket)>,
    /// Messages to send.
    pub(super) outgoing: Vec<(NodeId, Message)>,
    /// Entries were applied.
    pub(super) applied: bool,
}

impl GroupState {
    pub(super) fn new(core: ReplicaCore) -> GroupState {
        GroupState {
            core,
            overlay: HashMap::new(),
            waiting: HashMap::new(),
            to_wake: Vec::new(),
            failed: None,
            fenced: false,
            fenced_in_store: false,
            persisted_membership: None,
        }
    }

    /// Records a failure that stops the partition; the first reason wins.
    pub(super) fn fail(&mut self, reason: String) {
        if self.failed.is_none() {
            tracing::error!(%reason, "partition stops serving");
            self.failed = Some(reason);
        }
        for (_, (_, waiter)) in self.waiting.drain() {
            waiter.decide(WriteOutcome::Failed);
            self.to_wake.push(waiter);
        }
    }

    /// Rebuilds the overlay from the log above the applied LSN (after a truncation).
    pub(super) fn rebuild_overlay(&mut self) {
        self.overlay.clear();
        self.fenced = self.fenced_in_store;
        let from = self.core.applied_lsn().next();
        for entry in self.core.entries_from(from, usize::MAX) {
            self.note_logged(&entry);
        }
    }

    pub(super) fn note_logged(&mut self, entry: &Entry) {
        match &entry.op {
            Operation::Put { key, .. } if key == super::split::FENCE_KEY => self.fenced = true,
            Operation::Delete { key } if key == super::split::FENCE_KEY => self.fenced = false,
            _ => {}
        }
        match &entry.op {
            Operation::Put { key, item } => {
                self.overlay
                    .insert(key.clone(), (entry.lsn, Some(item.clone())));
            }
            Operation::Delete { key } => {
                self.overlay.insert(key.clone(), (entry.lsn, None));
            }
            Operation::Noop | Operation::Config(_) => {}
        }
    }

    pub(super) fn note_applied(&mut self, entry: &Entry) {
        match &entry.op {
            Operation::Put { key, .. } if key == super::split::FENCE_KEY => {
                self.fenced_in_store = true;
            }
            Operation::Delete { key } if key == super::split::FENCE_KEY => {
                self.fenced_in_store = false;
            }
            _ => {}
        }
        let key = match &entry.op {
            Operation::Put { key, .. } | Operation::Delete { key } => Some(key),
            Operation::Noop | Operation::Config(_) => None,
        };
        if let Some(key) = key
            && self
                .overlay
                .get(key)
                .is_some_and(|(lsn, _)| *lsn == entry.lsn)
        {
            self.overlay.remove(key);
        }
        if let Some((ballot, waiter)) = self.waiting.remove(&entry.lsn) {
            waiter.decide(if entry.ballot == ballot {
                WriteOutcome::Applied
            } else {
                WriteOutcome::Replaced
            });
            self.to_wake.push(waiter);
        }
    }
}

/// What became of a write a writer waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriteOutcome {
    /// Not decided yet.
    Pending = 0,
    /// The writer's own entry was applied at its LSN.
    Applied = 1,
    /// Another leader's entry took the LSN: the write did not happen.
    Replaced = 2,
    /// The partition failed before the outcome was known.
    Failed = 3,
}

/// One writer waiting for its entry. The outcome is set under the group lock and read without
/// it, and only the writer whose entry was decided is woken: with one condition variable for
/// all of a partition's writers, every applied batch woke every waiting writer, most of them
/// to sleep again — on two cores, a third of a write's context switches.
pub(super) struct WriteWaiter {
    outcome: std::sync::atomic::AtomicU8,
    thread: std::thread::Thread,
    /// The waker of an async writer awaiting the outcome ([`super::partition::CommitWait`]).
    pub(super) waker: std::sync::Mutex<Option<std::task::Waker>>,
    /// When the write was proposed.
    proposed: std::time::Instant,
    /// Nanoseconds from the proposal to the outcome being decided (for the write stages).
    decided_after_ns: std::sync::atomic::AtomicU64,
}

impl WriteWaiter {
    /// A waiter for the calling thread.
    pub(super) fn for_current_thread() -> Arc<WriteWaiter> {
        Arc::new(WriteWaiter {
            outcome: std::sync::atomic::AtomicU8::new(WriteOutcome::Pending as u8),
            thread: std::thread::current(),
            waker: std::sync::Mutex::new(None),
            proposed: std::time::Instant::now(),
            decided_after_ns: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn decide(&self, outcome: WriteOutcome) {
        let after = u64::try_from(self.proposed.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.decided_after_ns
            .store(after, std::sync::atomic::Ordering::Relaxed);
        self.outcome
            .store(outcome as u8, std::sync::atomic::Ordering::Release);
    }

    /// The outcome so far.
    pub(super) fn outcome(&self) -> WriteOutcome {
        match self.outcome.load(std::sync::atomic::Ordering::Acquire) {
            1 => WriteOutcome::Applied,
            2 => WriteOutcome::Replaced,
            3 => WriteOutcome::Failed,
            _ => WriteOutcome::Pending,
        }
    }

    /// How long the outcome took to be decided after the proposal, and how long the writer
    /// then took to see it: the commit and wake stages of a write. Call once the outcome is
    /// known.
    pub(super) fn commit_and_wake(&self) -> (std::time::Duration, std::time::Duration) {
        let commit = std::time::Duration::from_nanos(
            self.decided_after_ns
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        (commit, self.proposed.elapsed().saturating_sub(commit))
    }

    /// Wakes the writer, a parked thread or an awaiting task (call once its outcome is set,
    /// outside the group lock).
    pub(super) fn wake(&self) {
        self.thread.unpark();
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Where a partition's promised ballot is kept.
pub(super) fn promise_path(data_dir: &Path, group_id: u64) -> PathBuf {
    data_dir.join("promises").join(group_id.to_string())
}

/// Reads a persisted promise: 8 bytes round and 4 bytes node, little-endian, then a crc32c of
/// those 12 bytes. A missing file is the zero ballot.
pub(super) fn read_promise(path: &Path) -> Result<Ballot, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let ok =
                bytes.len() == 16 && crc32c::crc32c(&bytes[..12]).to_le_bytes() == bytes[12..16];
            if !ok {
                return Err(format!("{} is damaged", path.display()));
            }
            let mut round = [0; 8];
            round.copy_from_slice(&bytes[..8]);
            let mut node = [0; 4];
            node.copy_from_slice(&bytes[8..12]);
            Ok(Ballot {
                round: u64::from_le_bytes(round),
                node: u32::from_le_bytes(node),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ballot::default()),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Persists a promise durably.
pub(super) fn write_promise(path: &Path, ballot: Ballot) -> Result<(), String> {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&ballot.round.to_le_bytes());
    bytes.extend_from_slice(&ballot.node.to_le_bytes());
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    write_atomically(path, &bytes)
        .map_err(|e| format!("persisting promise to {}: {e}", path.display()))
}

/// Where a group's committed membership is kept (written when it differs from placement).
pub(super) fn membership_path(data_dir: &Path, group_id: u64) -> PathBuf {
    data_dir.join("members").join(group_id.to_string())
}

/// Reads a persisted membership ([`Membership::encode`]); `None` when there is none.
pub(super) fn read_membership(path: &Path) -> Result<Option<Membership>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Membership::decode(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is damaged: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Persists a group's committed membership durably.
pub(super) fn write_membership(path: &Path, membership: &Membership) -> Result<(), String> {
    write_atomically(path, &membership.encode())
        .map_err(|e| format!("persisting membership to {}: {e}", path.display()))
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new content: write a
/// temporary file, fsync, rename, fsync the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberships_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = membership_path(dir.path(), 3);
        assert_eq!(read_membership(&path), Ok(None));
        let membership = Membership::new([(1, crate::replication::Role::Full)]);
        write_membership(&path, &membership).unwrap();
        assert_eq!(read_membership(&path), Ok(Some(membership)));
    }

    #[test]
    fn promises_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = promise_path(dir.path(), 7);
        assert_eq!(read_promise(&path), Ok(Ballot::default()));
        let ballot = Ballot { round: 9, node: 3 };
        write_promise(&path, ballot).unwrap();
        assert_eq!(read_promise(&path), Ok(ballot));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(read_promise(&path).is_err());
    }
}
