//! One partition replica on a node: its WAL, its replica store, and its replication group.
//!
//! Every partition runs the replication core ([`crate::replication::ReplicaCore`]), alone as a
//! group of one on a single node, or with the replicas on two other nodes in a cluster. Writes
//! are decided on the leader under the group lock: the current value of the key (the newest
//! logged value above the applied LSN, else the store) is read, the caller's decision
//! (condition, update) is made, and the resulting entry is proposed, all under the lock. The
//! proposal is written to the WAL at once and fsynced after the lock is released, so
//! concurrent writers share the fsync (group commit); a per-partition syncer thread reports
//! durability back to the core. Once a quorum holds the entry durably it commits, is applied
//! to the store in LSN order, and only then is the write acknowledged.

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::catalog::PartitionDef;
use crate::digest::CheckpointPolicy;
use crate::protocol::{ApiError, ErrorCode};
use crate::replica::{FjallReplicaStore, ReplicaSnapshot, ReplicaStore};
use crate::replication::{
    Action, LogPosition, Membership, Message, NodeId, ReadError, RecoveredState, ReplicaCore,
    ReplicaStatus, Timing,
};
use crate::wal::{AppendTicket, Entry, Lsn, Operation, Wal, WalOptions};

use super::archive::ArchiveTracking;
use super::group::{
    Executed, GroupNetwork, GroupState, WriteOutcome, WriteWaiter, membership_path, promise_path,
    read_membership, read_promise, write_membership, write_promise,
};
use super::stages::{Stage, WriteStages};

/// How long a write or a strongly consistent read waits for its group before giving up with a
/// retryable error.
const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// Committed entries kept in the replication core's memory (for peers that fall behind); older
/// ones are read back from the WAL when a peer needs them.
const IN_MEMORY_LOG_ENTRIES: u64 = 20_000;

/// Entries applied per batch while replaying the log into a rebuilt or repaired store.
const REPLAY_BATCH: usize = 512;

/// Most entries read from the WAL for one catch-up message.
const CATCH_UP_BATCH: usize = 256;

/// Items per log entry when a split loads a child.
const LOAD_BATCH: usize = 256;

/// What a write decided to do to its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Store this canonical item encoding.
    Put(Vec<u8>),
    /// Remove the item.
    Delete,
    /// Change nothing (e.g. deleting an item that does not exist); nothing is logged.
    Nothing,
}

/// A partition replica on this node, serving reads and writes.
pub struct Partition {
    def: PartitionDef,
    node_id: NodeId,
    wal: Wal,
    store: FjallReplicaStore,
    promise_path: std::path::PathBuf,
    membership_path: std::path::PathBuf,
    /// The membership the replica was opened with (persisted or placed).
    opened_membership: Membership,
    network: Arc<dyn GroupNetwork>,
    group: Mutex<GroupState>,
    /// Signalled whenever entries are applied or leadership changes.
    changed: Condvar,
    syncer: Mutex<mpsc::Sender<(u64, AppendTicket)>>,
    /// Set while this replica's store is being rebuilt from a peer.
    pub(super) rebuilding: std::sync::atomic::AtomicBool,
    /// The archive watermark, the unarchived log and recent digests.
    archive: ArchiveTracking,
    /// The node's write-stage timings.
    stages: Arc<WriteStages>,
}

/// What a node gives every replica it hosts.
pub struct ReplicaHost {
    /// This node.
    pub node_id: NodeId,
    /// Election and heartbeat timing of the replication groups.
    pub timing: Timing,
    /// How the replica reaches the other members of its group.
    pub network: Arc<dyn GroupNetwork>,
    /// The unarchived log (bytes) past which writes are throttled; `None` when the node does
    /// not archive.
    pub archive_bound: Option<u64>,
    /// The node's write-stage timings.
    pub stages: Arc<WriteStages>,
}

/// Where a partition's WAL lives under the node's data directory.
#[must_use]
pub fn wal_dir(data_dir: &Path, partition_id: u64) -> std::path::PathBuf {
    data_dir.join("wal").join(partition_id.to_string())
}

/// Where a partition's replica store lives under the node's data directory.
#[must_use]
pub fn store_dir(data_dir: &Path, partition_id: u64) -> std::path::PathBuf {
    data_dir.join("replicas").join(partition_id.to_string())
}

impl Partition {
    /// Opens (or creates) the partition's WAL, store and promise under `data_dir` and starts
    /// its replica of the group `membership`: a torn WAL tail is cut, WAL corruption is an
    /// error. Entries above the store's applied LSN are applied once they are known committed;
    /// a group of one knows that at once, and `open` returns after applying them.
    pub fn open(
        data_dir: &Path,
        def: PartitionDef,
        membership: Membership,
        host: &ReplicaHost,
    ) -> Result<Arc<Self>, String> {
        let node_id = host.node_id;
        let archive_bound = host.archive_bound;
        let wal_path = wal_dir(data_dir, def.id);
        let store_path = store_dir(data_dir, def.id);
        for dir in [&wal_path, &store_path] {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let wal = Wal::open(&wal_path, WalOptions::default())
            .map_err(|e| format!("partition {}: opening WAL: {e}", def.id))?;
        let store = FjallReplicaStore::open(&store_path, CheckpointPolicy::default())
            .map_err(|e| format!("partition {}: opening replica store: {e}", def.id))?;
        let archive = ArchiveTracking::open(data_dir, &wal_path, def.id, archive_bound)
            .map_err(|e| format!("partition {}: {e}", def.id))?;
        let promise_path = promise_path(data_dir, def.id);
        let promised = read_promise(&promise_path)?;
        let recovered = recover(&wal, &store, promised, membership.clone())
            .map_err(|e| format!("partition {}: recovering: {e}", def.id))?;
        let seed = def.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(node_id);
        let core = ReplicaCore::new(node_id, host.timing, seed, recovered, now_ms());
        let (sender, receiver) = mpsc::channel();
        let partition = Arc::new(Partition {
            def,
            node_id,
            wal,
            store,
            promise_path,
            membership_path: membership_path(data_dir, def.id),
            opened_membership: membership.clone(),
            network: Arc::clone(&host.network),
            group: Mutex::new(GroupState::new(core)),
            changed: Condvar::new(),
            syncer: Mutex::new(sender),
            rebuilding: std::sync::atomic::AtomicBool::new(false),
            archive,
            stages: Arc::clone(&host.stages),
        });
        partition
            .archive
            .note_applied(|| partition.store.applied_state());
        spawn_syncer(Arc::downgrade(&partition), receiver)?;
        {
            let mut group = partition.lock();
            group.persisted_membership = read_membership(&partition.membership_path)?;
            group.fenced_in_store = partition
                .store
                .get(super::split::FENCE_KEY)
                .map_err(|e| format!("partition {}: reading the split fence: {e}", def.id))?
                .is_some();
            group.rebuild_overlay();
            if membership.len() == 1 && membership.contains(node_id) {
                // Alone in the group: lead at once, committing everything recovered.
                let _ = group.core.campaign(now_ms());
            }
            partition.execute(&mut group);
        }
        if membership.len() == 1 {
            let target = partition.wal.last_lsn().map_err(|e| e.to_string())?;
            partition
                .wait_applied(target)
                .map_err(|e| format!("partition {}: replaying WAL: {}", def.id, e.message))?;
        }
        Ok(partition)
    }

    /// The partition's definition.
    #[must_use]
    pub fn def(&self) -> &PartitionDef {
        &self.def
    }

    /// The replica store (reads, snapshots, digests).
    #[must_use]
    pub fn store(&self) -> &FjallReplicaStore {
        &self.store
    }

    /// The write-ahead log.
    #[must_use]
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// The archive watermark, unarchived log and recent digests of this replica.
    #[must_use]
    pub fn archive(&self) -> &ArchiveTracking {
        &self.archive
    }

    /// Whether a split's fence holds this partition's writes.
    pub fn is_fenced(&self) -> bool {
        self.lock().fenced
    }

    /// Whether this replica leads its group now.
    pub fn is_leader(&self) -> bool {
        self.lock().core.is_leader()
    }

    /// Where this replica stands in its group.
    pub fn status(&self) -> ReplicaStatus {
        self.lock().core.status()
    }

    /// Reads the item under `key` from what this replica has applied.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        self.store.get(key).map_err(|e| self.fail(e.to_string()))
    }

    /// A consistent snapshot for Query and Scan.
    pub fn snapshot(&self) -> Result<Box<dyn ReplicaSnapshot + '_>, ApiError> {
        self.store.snapshot().map_err(|e| self.fail(e.to_string()))
    }

    /// Makes a following read strongly consistent: waits until this replica has applied
    /// everything the group committed before the call (the leader's read index, taken under
    /// its lease, locally or from the leader). Does nothing for eventually consistent reads.
    pub fn read_barrier(&self, consistent: bool) -> Result<(), ApiError> {
        if !consistent {
            return Ok(());
        }
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let answer = {
                let group = self.lock();
                if group.failed.is_some() {
                    return Err(unavailable());
                }
                group.core.read_index(now_ms())
            };
            let index = match answer {
                Ok(index) => index,
                Err(ReadError::NotLeader {
                    leader: Some(leader),
                }) if leader != self.node_id => self.network.read_index(leader, self.def.id)?,
                Err(_) if Instant::now() < deadline => {
                    // No lease yet (new leader) or no leader known: wait for the group.
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(_) => return Err(unavailable()),
            };
            return self.wait_applied(index);
        }
    }

    /// This replica's read index, if it leads with a valid lease (answers peers' barriers).
    pub fn local_read_index(&self) -> Result<Lsn, ApiError> {
        let group = self.lock();
        group
            .core
            .read_index(now_ms())
            .map_err(|error| match error {
                ReadError::NotLeader { leader } => ApiError::not_leader(leader),
                ReadError::LeaseNotHeld | ReadError::NotCaughtUp => unavailable(),
            })
    }

    /// Writes `key`: `decide` sees the key's current canonical item (or `None`) and returns
    /// what to do plus a result for the caller, or an error (a failed condition) that leaves
    /// everything unchanged. Returns once the write is committed and applied here. On a
    /// replica that does not lead, returns [`ApiError::not_leader`] without calling `decide`.
    pub fn write<T>(
        &self,
        key: Vec<u8>,
        decide: impl FnOnce(Option<&[u8]>) -> Result<(WriteOp, T), ApiError>,
    ) -> Result<T, ApiError> {
        self.write_at(key, decide).map(|(result, _)| result)
    }

    /// [`Partition::write`], answering also the LSN the write took (the last applied LSN when
    /// it wrote nothing).
    pub fn write_at<T>(
        &self,
        key: Vec<u8>,
        decide: impl FnOnce(Option<&[u8]>) -> Result<(WriteOp, T), ApiError>,
    ) -> Result<(T, Lsn), ApiError> {
        let started = Instant::now();
        let mut group = self.serving_leader()?;
        let locked_at = Instant::now();
        self.stages.record(Stage::Lock, locked_at - started);
        if group.fenced && key != super::split::FENCE_KEY {
            // Split: the children take over once the catalog switches; the router waits for
            // that as for a leader (docs/admission.md).
            return Err(ApiError::not_leader(None));
        }
        self.archive.admit_write()?;
        let stored;
        let current = match group.overlay.get(&key) {
            Some((_, pending)) => pending.as_deref(),
            None => {
                stored = self.store.get(&key).map_err(|e| {
                    group.fail(e.to_string());
                    unavailable()
                })?;
                stored.as_deref()
            }
        };
        let (op, result) = decide(current)?;
        let op = match op {
            WriteOp::Nothing => return Ok((result, group.core.applied_lsn())),
            WriteOp::Put(item) => Operation::Put { key, item },
            WriteOp::Delete => Operation::Delete { key },
        };
        let lsn = self.propose_and_wait(group, locked_at, vec![op])?;
        Ok((result, lsn))
    }

    /// Writes `changes` in order through this group's own log as ordinary puts (`Some`
    /// item) and deletes (`None`), proposed back to back in batches of [`LOAD_BATCH`] and
    /// waited for once, on its leader (a split's child); returns the LSN it stands at after
    /// them — with no changes, just that, once this replica leads.
    pub fn load_items(&self, changes: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<Lsn, ApiError> {
        let mut group = self.serving_leader()?;
        let locked_at = Instant::now();
        let mut chunks = changes.chunks(LOAD_BATCH).peekable();
        while let Some(chunk) = chunks.next() {
            let ops: Vec<Operation> = chunk
                .iter()
                .map(|(key, item)| match item {
                    Some(item) => Operation::Put {
                        key: key.clone(),
                        item: item.clone(),
                    },
                    None => Operation::Delete { key: key.clone() },
                })
                .collect();
            if chunks.peek().is_none() {
                // The last batch is committed under this leader's ballot only if every one
                // before it is: waiting for it waits for them all.
                return self.propose_and_wait(group, locked_at, ops);
            }
            group
                .core
                .propose(now_ms(), ops)
                .map_err(|_| ApiError::not_leader(group.core.leader()))?;
            self.execute(&mut group);
        }
        Ok(group.core.applied_lsn())
    }

    /// The group lock, if this replica is serving and leads; else the error a writer gets.
    fn serving_leader(&self) -> Result<MutexGuard<'_, GroupState>, ApiError> {
        let group = self.lock();
        if group.failed.is_some() {
            return Err(unavailable());
        }
        if !group.core.is_leader() {
            return Err(ApiError::not_leader(group.core.leader()));
        }
        Ok(group)
    }

    /// Proposes `ops` under the lock `group` holds (since `locked_at`; then released) and waits
    /// until they are applied — or another leader's entries took their LSNs; answers the last
    /// one's LSN.
    fn propose_and_wait(
        &self,
        mut group: MutexGuard<'_, GroupState>,
        locked_at: Instant,
        ops: Vec<Operation>,
    ) -> Result<Lsn, ApiError> {
        let ballot = group.core.promised();
        let lsn = group
            .core
            .propose(now_ms(), ops)
            .map_err(|_| ApiError::not_leader(group.core.leader()))?;
        let waiter = WriteWaiter::for_current_thread();
        group.waiting.insert(lsn, (ballot, Arc::clone(&waiter)));
        self.execute(&mut group);
        drop(group);
        self.stages.record(Stage::Decide, locked_at.elapsed());
        let deferred = DEFERRED.with(|cell| {
            cell.borrow_mut()
                .as_mut()
                .map(|waits| {
                    waits.push(CommitWait {
                        waiter: Arc::clone(&waiter),
                        stages: Arc::clone(&self.stages),
                    });
                })
                .is_some()
        });
        if deferred {
            return Ok(lsn);
        }
        self.wait_outcome(lsn, &waiter)?;
        let (commit, wake) = waiter.commit_and_wake();
        self.stages.record(Stage::Commit, commit);
        self.stages.record(Stage::Wake, wake);
        Ok(lsn)
    }

    /// Time passes for the group (heartbeats, elections); the in-memory log is trimmed.
    pub fn tick(&self) {
        let mut group = self.lock();
        group.core.on_tick(now_ms());
        let committed = group.core.committed_membership();
        let changed = match &group.persisted_membership {
            Some(persisted) => *persisted != committed,
            None => committed != self.opened_membership,
        };
        if changed {
            // Before trimming: the membership at the base must survive a restart.
            match write_membership(&self.membership_path, &committed) {
                Ok(()) => group.persisted_membership = Some(committed),
                Err(reason) => group.fail(reason),
            }
        }
        let held = group.core.last_lsn().0 - group.core.log_base_lsn().0;
        if held > 2 * IN_MEMORY_LOG_ENTRIES && group.failed.is_none() {
            let keep_from = group.core.last_lsn().0 - IN_MEMORY_LOG_ENTRIES;
            group.core.trim_through(Lsn(keep_from));
        }
        self.execute(&mut group);
    }

    /// Reads the replication core's state.
    pub fn with_core<R>(&self, read: impl FnOnce(&ReplicaCore) -> R) -> R {
        read(&self.lock().core)
    }

    /// Records that the store was rebuilt through `lsn` (see [`ReplicaCore::set_applied`]).
    pub fn set_applied(&self, lsn: Lsn) {
        let mut group = self.lock();
        group.core.set_applied(lsn);
        group.rebuild_overlay();
        self.execute(&mut group);
    }

    /// Applies this replica's own log after `after` through `through` to its store, in
    /// batches; the store must stand at `after`.
    pub(super) fn replay_log(&self, after: Lsn, through: Lsn) -> Result<(), ApiError> {
        let mut batch: Vec<Entry> = Vec::with_capacity(REPLAY_BATCH);
        let entries = self
            .wal
            .read_from(after.next())
            .map_err(|e| ApiError::internal(format!("reading the log to replay: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| ApiError::internal(e.to_string()))?;
            if entry.lsn > through {
                break;
            }
            batch.push(entry);
            if batch.len() == REPLAY_BATCH {
                self.store
                    .apply_batch(&batch)
                    .map_err(|e| ApiError::internal(format!("replaying the log: {e}")))?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.store
                .apply_batch(&batch)
                .map_err(|e| ApiError::internal(format!("replaying the log: {e}")))?;
        }
        Ok(())
    }

    /// Repair: replaces this full replica's store with `items`, a good copy's snapshot at
    /// `base`, then replays its own log from `base` to where the store stood, all under the
    /// group lock so no apply runs meanwhile (writes wait for the replay, which covers only
    /// the entries applied since the copy was taken). The log itself is not touched: the
    /// WAL is what the group agreed on. Returns the LSN the store stands at again.
    pub fn repair_store(&self, items: &[(Vec<u8>, Vec<u8>)], base: Lsn) -> Result<Lsn, ApiError> {
        // The copy may be ahead of this replica: let it apply that far first.
        self.wait_applied(base)?;
        let mut group = self.lock();
        if group.failed.is_some() {
            return Err(unavailable());
        }
        let reached = self.store.applied_lsn();
        self.store
            .replace_all(items, base)
            .map_err(|e| ApiError::internal(format!("loading the good copy: {e}")))?;
        if let Err(e) = self.replay_log(base, reached) {
            // The store stands between the copy and where it was: a reopen replays the rest.
            group.fail(format!("replaying the log after a repair: {}", e.message));
            self.changed.notify_all();
            wake_decided(&mut group);
            return Err(e);
        }
        self.archive.forget_points();
        self.archive.note_applied(|| self.store.applied_state());
        Ok(reached)
    }

    /// Starts bringing node `id` up to date as a learner (leader only).
    pub fn add_learner(&self, id: NodeId) -> bool {
        let mut group = self.lock();
        let added = group.core.add_learner(id);
        self.execute(&mut group);
        added
    }

    /// Proposes `next` as the group's membership (leader only; one change at a time).
    pub fn propose_membership(&self, next: &Membership) -> Result<Lsn, ApiError> {
        let mut group = self.lock();
        let proposed = group
            .core
            .propose(now_ms(), vec![Operation::Config(next.encode())]);
        let result = proposed.map_err(|e| match e {
            crate::replication::ProposeError::NotLeader { leader } => ApiError::not_leader(leader),
            other => ApiError::validation(other.to_string()),
        });
        self.execute(&mut group);
        result
    }

    /// A replication message from node `from` arrived.
    pub fn deliver(&self, from: NodeId, message: Message) {
        let mut group = self.lock();
        group.core.on_message(now_ms(), from, message);
        self.execute(&mut group);
    }

    /// Waits until this replica has applied through `lsn`.
    fn wait_applied(&self, lsn: Lsn) -> Result<(), ApiError> {
        let deadline = Instant::now() + WAIT_LIMIT;
        let mut group = self.lock();
        loop {
            if group.failed.is_some() {
                return Err(unavailable());
            }
            if self.store.applied_lsn() >= lsn {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(unavailable());
            }
            group = self
                .changed
                .wait_timeout(group, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for the outcome of this node's proposal at `lsn`, woken by whoever decides it.
    fn wait_outcome(&self, lsn: Lsn, waiter: &WriteWaiter) -> Result<(), ApiError> {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            match waiter.outcome() {
                WriteOutcome::Applied => return Ok(()),
                WriteOutcome::Replaced => {
                    return Err(ApiError::not_leader(self.lock().core.leader()));
                }
                WriteOutcome::Failed => return Err(outcome_unknown()),
                WriteOutcome::Pending => {}
            }
            let now = Instant::now();
            if now >= deadline {
                let mut group = self.lock();
                // Decided while the lock was being taken: the answer is known after all.
                if waiter.outcome() != WriteOutcome::Pending {
                    continue;
                }
                group.waiting.remove(&lsn);
                // The write may still commit later: the outcome is unknown to us.
                return Err(outcome_unknown());
            }
            // Unparked once the outcome is set; the timeout only bounds a missed wake-up.
            std::thread::park_timeout((deadline - now).min(OUTCOME_RECHECK));
        }
    }

    /// Runs the core's pending actions: promises persisted, appends submitted to the WAL (the
    /// syncer waits for them), committed entries applied, messages sent.
    fn execute(&self, group: &mut GroupState) {
        let mut executed = Executed::default();
        loop {
            let actions = group.core.drain_actions();
            if actions.is_empty() || group.failed.is_some() {
                break;
            }
            self.run_actions(group, actions, &mut executed);
        }
        for (to, message) in executed.outgoing {
            self.network.send(self.def.id, to, message);
        }
        if !executed.submitted.is_empty() {
            let syncer = self
                .syncer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for submitted in executed.submitted {
                // The syncer lives as long as the partition; a send can only fail during drop.
                let _ = syncer.send(submitted);
            }
        }
        if executed.applied || group.failed.is_some() {
            self.changed.notify_all();
        }
        wake_decided(group);
    }

    fn run_actions(&self, group: &mut GroupState, actions: Vec<Action>, executed: &mut Executed) {
        for action in actions {
            if group.failed.is_some() {
                break;
            }
            match action {
                Action::Send { to, message } => executed.outgoing.push((to, message)),
                Action::PersistPromise { ballot } => {
                    if let Err(reason) = write_promise(&self.promise_path, ballot) {
                        group.fail(reason);
                    }
                }
                Action::Append {
                    id,
                    truncate_after,
                    entries,
                } => {
                    if let Some(lsn) = truncate_after {
                        if let Err(e) = self.wal.truncate_after(lsn) {
                            group.fail(format!("truncating the WAL after {lsn}: {e}"));
                            continue;
                        }
                        self.archive.note_truncated(lsn);
                        group.rebuild_overlay();
                    } else {
                        for entry in &entries {
                            group.note_logged(entry);
                        }
                    }
                    self.archive.note_appended(&entries);
                    match self.wal.submit_batch(entries) {
                        Ok(Some(ticket)) => executed.submitted.push((id, ticket)),
                        Ok(None) => {}
                        Err(e) => group.fail(format!("WAL append failed: {e}")),
                    }
                }
                Action::Apply { entries } => {
                    if let Err(e) = self.store.apply_batch(&entries) {
                        group.fail(format!("apply failed: {e}"));
                        continue;
                    }
                    for entry in &entries {
                        group.note_applied(entry);
                    }
                    self.archive.note_applied(|| self.store.applied_state());
                    executed.applied = true;
                }
                Action::LeaderChanged { leader, ballot } => {
                    tracing::info!(partition = self.def.id, ?leader, %ballot, "leader changed");
                    executed.applied = true;
                }
                Action::CatchUp { peer, from_lsn } => self.catch_up(group, peer, from_lsn),
            }
        }
    }

    /// Sends `peer` committed entries from `from_lsn` that the core no longer holds in memory,
    /// read back from the WAL (they are below the core's base, so durable and committed).
    fn catch_up(&self, group: &mut GroupState, peer: NodeId, from_lsn: Lsn) {
        let Some(prev_lsn) = from_lsn.0.checked_sub(1).filter(|lsn| *lsn > 0) else {
            return;
        };
        let read = self.wal.read_from(Lsn(prev_lsn)).and_then(|entries| {
            entries
                .take(CATCH_UP_BATCH + 1)
                .collect::<Result<Vec<Entry>, _>>()
        });
        match read {
            Ok(mut entries) if entries.len() > 1 => {
                let rest = entries.split_off(1);
                group
                    .core
                    .send_stored_entries(now_ms(), peer, &entries[0], rest);
            }
            Ok(_) => {}
            Err(e) => {
                // Below the retained WAL: the peer needs a rebuild from a snapshot.
                tracing::warn!(partition = self.def.id, peer, %from_lsn, error = %e, "cannot catch a replica up from the WAL");
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        // The group state is changed only in short sections; a poisoned lock still guards a
        // usable state (and a failed partition refuses service anyway).
        self.group
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops the partition after an I/O failure: only a reopen (recovery from the WAL) can
    /// tell what is durable.
    fn fail(&self, reason: String) -> ApiError {
        let mut group = self.lock();
        group.fail(reason);
        self.changed.notify_all();
        wake_decided(&mut group);
        ApiError::new(
            ErrorCode::InternalServerError,
            "Internal server error: the partition failed and must recover",
        )
    }
}

/// Builds the core's recovered state from the WAL and the store: everything up to the store's
/// applied LSN is committed; the durable entries above it are the in-memory log.
fn recover(
    wal: &Wal,
    store: &FjallReplicaStore,
    promised: crate::wal::Ballot,
    membership: Membership,
) -> Result<RecoveredState, String> {
    let applied = store.applied_lsn();
    let first = wal.first_lsn().map_err(|e| e.to_string())?;
    let read_start = if applied.0 == 0 { first } else { applied };
    let mut base = LogPosition::default();
    let mut entries = Vec::new();
    for entry in wal.read_from(read_start).map_err(|e| e.to_string())? {
        let entry: Entry = entry.map_err(|e| e.to_string())?;
        if entry.lsn <= applied {
            base = LogPosition {
                ballot: entry.ballot,
                lsn: entry.lsn,
            };
        } else {
            entries.push(entry);
        }
    }
    if base.lsn != applied {
        return Err(format!(
            "the store applied LSN {applied} but the WAL does not hold it"
        ));
    }
    Ok(RecoveredState {
        promised,
        base,
        base_membership: membership,
        entries,
        applied_lsn: applied,
    })
}

thread_local! {
    /// Commit waits deferred by [`with_deferred_commits`] on this thread.
    static DEFERRED: std::cell::RefCell<Option<Vec<CommitWait>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (a request's handling) with every commit wait of a write it proposes on this
/// thread deferred: `propose` returns as soon as the write is proposed, and the waits come back
/// with `f`'s result. The caller must await every [`CommitWait`] (see [`await_commits`]) before
/// it answers: only then is a write acknowledged. Lets an async worker serve a local write
/// without a blocking thread parked on its commit.
pub fn with_deferred_commits<T>(f: impl FnOnce() -> T) -> (T, Vec<CommitWait>) {
    /// Ends the deferral however `f` ends, so no later write on this thread is deferred.
    struct Deferral;
    impl Drop for Deferral {
        fn drop(&mut self) {
            DEFERRED.with(|cell| cell.borrow_mut().take());
        }
    }
    DEFERRED.with(|cell| *cell.borrow_mut() = Some(Vec::new()));
    let deferral = Deferral;
    let out = f();
    let waits = DEFERRED
        .with(|cell| cell.borrow_mut().take())
        .unwrap_or_default();
    drop(deferral);
    (out, waits)
}

/// Whether this thread defers its commit waits now.
#[cfg(test)]
pub(super) fn deferring() -> bool {
    DEFERRED.with(|cell| cell.borrow().is_some())
}

/// Waits until every write behind `waits` is applied, at most [`WAIT_LIMIT`] in all: the
/// outcome [`Partition::write`] waits for, with the same errors.
///
/// # Errors
/// "not leader" if another leader's entries took a write's LSN; an outcome-unknown
/// `InternalServerError` if the group failed or did not answer in time.
pub async fn await_commits(waits: Vec<CommitWait>) -> Result<(), ApiError> {
    let all = async {
        for wait in waits {
            wait.await?;
        }
        Ok(())
    };
    tokio::time::timeout(WAIT_LIMIT, all)
        .await
        .unwrap_or_else(|_| Err(outcome_unknown()))
}

/// A proposed write's commit, as a future that completes once its outcome is known.
pub struct CommitWait {
    waiter: Arc<WriteWaiter>,
    stages: Arc<WriteStages>,
}

impl CommitWait {
    fn outcome(&self) -> Option<Result<(), ApiError>> {
        let outcome = match self.waiter.outcome() {
            WriteOutcome::Applied => Ok(()),
            WriteOutcome::Replaced => Err(ApiError::not_leader(None)),
            WriteOutcome::Failed => Err(outcome_unknown()),
            WriteOutcome::Pending => return None,
        };
        let (commit, wake) = self.waiter.commit_and_wake();
        self.stages.record(Stage::Commit, commit);
        self.stages.record(Stage::Wake, wake);
        Some(outcome)
    }
}

impl std::future::Future for CommitWait {
    type Output = Result<(), ApiError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if let Some(outcome) = self.outcome() {
            return std::task::Poll::Ready(outcome);
        }
        *self
            .waiter
            .waker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cx.waker().clone());
        // Decided between the first look and the waker being stored: nobody will wake us.
        match self.outcome() {
            Some(outcome) => std::task::Poll::Ready(outcome),
            None => std::task::Poll::Pending,
        }
    }
}

/// Starts the thread that waits for a partition's WAL appends to become durable, in order,
/// and reports them to the core.
fn spawn_syncer(
    partition: Weak<Partition>,
    receiver: mpsc::Receiver<(u64, AppendTicket)>,
) -> Result<(), String> {
    std::thread::Builder::new()
        .name("ddb-syncer".to_string())
        .spawn(move || {
            while let Ok((mut id, mut ticket)) = receiver.recv() {
                let Some(partition) = partition.upgrade() else {
                    return;
                };
                // Every append handed over by now is waited for at once: the WAL makes them
                // durable in order, so the last one being durable covers the others, and the
                // core then commits and applies them together — one store batch, one digest
                // write and one wake-up round instead of one per append.
                while let Ok((next_id, next_ticket)) = receiver.try_recv() {
                    (id, ticket) = (next_id, next_ticket);
                }
                let started = Instant::now();
                let durable = partition.wal.wait(ticket);
                let flushed = Instant::now();
                let mut group = partition.lock();
                let locked = Instant::now();
                match durable {
                    Ok(_) => group.core.on_append_durable(now_ms(), id),
                    Err(e) => group.fail(format!("WAL sync failed: {e}")),
                }
                partition.execute(&mut group);
                drop(group);
                let stages = &partition.stages;
                stages.record(Stage::Flush, flushed - started);
                stages.record(Stage::SyncerLock, locked - flushed);
                stages.record(Stage::Apply, locked.elapsed());
            }
        })
        .map(|_| ())
        .map_err(|e| format!("starting a syncer thread: {e}"))
}

/// Wakes the writers whose outcome was decided. They read it without the group lock, so
/// waking them while it is held costs them no wait.
fn wake_decided(group: &mut GroupState) {
    for waiter in group.to_wake.drain(..) {
        waiter.wake();
    }
}

/// How often a waiting writer looks at its outcome even if nobody woke it.
const OUTCOME_RECHECK: Duration = Duration::from_millis(100);

/// What a writer answers when its write's fate is unknown (the partition failed, or the group
/// did not decide in time).
fn outcome_unknown() -> ApiError {
    ApiError::new(
        ErrorCode::InternalServerError,
        "The write's outcome is unknown (the partition's group did not answer in time); read before retrying",
    )
}

/// What clients see while a partition cannot serve; the reason was logged and is never sent
/// to clients.
fn unavailable() -> ApiError {
    ApiError::new(
        ErrorCode::ServiceUnavailable,
        "The partition is unavailable; retry later",
    )
}

pub(super) use crate::service::now_ms;
