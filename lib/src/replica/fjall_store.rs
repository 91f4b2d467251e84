//! The on-disk replica store, on fjall.
//!
//! One fjall database per partition replica, with two keyspaces: `items` (encoded key →
//! canonical item) and `meta` (applied LSN, digest, checkpoints, settings). Every apply is one
//! cross-keyspace fjall batch, so the items, `applied_lsn` and the digest never disagree on disk.
//! fjall's journal is not synced per batch: the WAL is the source of truth, and
//! [`ReplicaStore::persist`] syncs when the caller needs a durable point (before deleting WAL).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, Snapshot};

use super::apply::{DIGEST_POINTS_KEPT, checkpoint_cutoff, plan_apply, plan_install, plan_replace};
use super::{
    AppliedState, Direction, ItemIter, KeyRange, ReplicaError, ReplicaSnapshot, ReplicaStore,
};
use crate::digest::{Checkpoint, CheckpointPolicy, StateDigest};
use crate::wal::{Entry, Lsn};

const META_FORMAT: &[u8] = b"format";
const META_APPLIED_LSN: &[u8] = b"applied_lsn";
const META_DIGEST: &[u8] = b"digest";
const META_CHECKPOINT_INTERVAL: &[u8] = b"checkpoint_interval";
const CHECKPOINT_PREFIX: &[u8] = b"checkpoint/";

/// Version of this store's key layout, recorded in `meta`.
const FORMAT_VERSION: u64 = 1;

/// A [`ReplicaStore`] on a fjall database in its own directory.
pub struct FjallReplicaStore {
    path: PathBuf,
    db: Database,
    items: Keyspace,
    meta: Keyspace,
    policy: CheckpointPolicy,
    /// The applied state; holding the lock serialises applies.
    applied: Mutex<AppliedState>,
    /// Recent digest points between checkpoints, oldest first (in memory only).
    points: Mutex<std::collections::VecDeque<Checkpoint>>,
}

impl FjallReplicaStore {
    /// Opens the store in `dir`, creating it if it does not exist. A store keeps the checkpoint
    /// interval it was created with; opening it with another is an error.
    pub fn open(dir: &Path, policy: CheckpointPolicy) -> Result<Self, ReplicaError> {
        let BareStore { db, items, meta } = BareStore::open(dir)?;
        match meta.get(META_CHECKPOINT_INTERVAL)? {
            Some(stored) => {
                let stored = decode_u64(&stored, "checkpoint interval")?;
                if stored != policy.interval {
                    return Err(ReplicaError::CheckpointIntervalMismatch {
                        stored,
                        requested: policy.interval,
                    });
                }
            }
            None => {
                let mut batch = db.batch();
                batch.insert(&meta, META_FORMAT, FORMAT_VERSION.to_le_bytes().to_vec());
                batch.insert(
                    &meta,
                    META_CHECKPOINT_INTERVAL,
                    policy.interval.to_le_bytes().to_vec(),
                );
                batch.commit()?;
                db.persist(PersistMode::SyncAll)?;
            }
        }
        let version = match meta.get(META_FORMAT)? {
            Some(bytes) => decode_u64(&bytes, "format version")?,
            None => return Err(ReplicaError::CorruptMetadata("no format version".into())),
        };
        if version != FORMAT_VERSION {
            return Err(ReplicaError::CorruptMetadata(format!(
                "store format version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        let applied = read_applied_state(&db.snapshot(), &meta)?;
        Ok(FjallReplicaStore {
            path: dir.to_path_buf(),
            db,
            items,
            meta,
            policy,
            applied: Mutex::new(applied),
            points: Mutex::new(std::collections::VecDeque::new()),
        })
    }

    /// Opens a store that must already exist, with the checkpoint interval it was created with:
    /// for tools that inspect a replica and must never create one by mistake.
    pub fn open_existing(dir: &Path) -> Result<Self, ReplicaError> {
        // fjall writes this marker when it creates a database.
        if !dir.join("version").is_file() {
            return Err(ReplicaError::NotAStore(dir.to_path_buf()));
        }
        let interval = {
            let db = open_database(dir)?;
            if !db.keyspace_exists("meta") {
                return Err(ReplicaError::NotAStore(dir.to_path_buf()));
            }
            let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
            match meta.get(META_CHECKPOINT_INTERVAL)? {
                Some(bytes) => decode_u64(&bytes, "checkpoint interval")?,
                None => return Err(ReplicaError::NotAStore(dir.to_path_buf())),
            }
        };
        Self::open(
            dir,
            CheckpointPolicy {
                interval,
                ..CheckpointPolicy::default()
            },
        )
    }

    /// The checkpoint policy the store applies with.
    #[must_use]
    pub fn checkpoint_policy(&self) -> CheckpointPolicy {
        self.policy
    }

    /// The directory the store lives in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The digests this store noted in memory every 16 LSNs between its checkpoints, over
    /// about its last 2048 applied LSNs, oldest first; none right after opening.
    #[must_use]
    pub fn recent_points(&self) -> Vec<Checkpoint> {
        self.points_lock().iter().cloned().collect()
    }

    /// Repair: replaces everything this store holds with `items`, a good copy's snapshot at
    /// `applied_lsn`, in one batch. The digest is recomputed from the items; checkpoints and
    /// digest points, which described this copy before, are dropped. The caller replays the
    /// log after `applied_lsn` and must keep applies away meanwhile.
    pub fn replace_all(
        &self,
        items: &[(Vec<u8>, Vec<u8>)],
        applied_lsn: Lsn,
    ) -> Result<(), ReplicaError> {
        let mut applied = self.lock();
        let existing = self.items.iter().map(|guard| Ok(guard.key()?.to_vec()));
        let plan = plan_replace(items, existing, applied_lsn)?;
        let old_checkpoints: Vec<_> = self
            .meta
            .prefix(CHECKPOINT_PREFIX)
            .map(|guard| guard.key().map(|key| key.to_vec()))
            .collect::<Result<_, _>>()?;
        let mut batch = self.db.batch();
        for key in old_checkpoints {
            batch.remove(&self.meta, key);
        }
        self.points_lock().clear();
        self.write_plan_in(batch, &mut applied, plan)?;
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    fn points_lock(&self) -> MutexGuard<'_, std::collections::VecDeque<Checkpoint>> {
        self.points
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, AppliedState> {
        // The guarded state is replaced only after a batch has committed, so a panic elsewhere
        // while holding the lock cannot leave it inconsistent with the database.
        self.applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Block cache per partition replica. A node holds many partitions; fjall's default (32 MiB
/// each) would let an idle node with a few tables grow by hundreds of MiB.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;
/// fjall journal bytes per replica before memtables are flushed (fjall's minimum, 64 MiB; its
/// default is 512 MiB). The WAL, not fjall's journal, is the source of truth.
const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Memtable sizes. fjall replays unflushed memtables from its journal when a store opens, so
/// these bound both a replica's write-buffer memory and how long a node takes to start after a
/// crash (fjall's default is 64 MiB per keyspace). `meta` rewrites the 2 KiB digest on every
/// apply, so its memtable fills with versions of a few keys and can stay small.
const ITEMS_MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;
const META_MEMTABLE_BYTES: u64 = 2 * 1024 * 1024;

/// Data block size of `items` (fjall's default is 4 KiB). A full scan — the scrubber's deep
/// pass, a rebuild, a Scan call — reads 1 KB items 1.3x faster from 16 KiB blocks (fewer
/// block reads, checksums and cache entries per item; docs/benchmarks.md), while a point read
/// still finds its block through the index and fjall's block cache.
const ITEMS_BLOCK_BYTES: u32 = 16 * 1024;

/// The fjall database and keyspaces of a replica store, opened with exactly the store's
/// settings but none of its bookkeeping: what the apply benchmark compares the store against.
#[doc(hidden)]
pub struct BareStore {
    /// The database.
    pub db: Database,
    /// Encoded key → canonical item.
    pub items: Keyspace,
    /// Applied LSN, digest, checkpoints, settings.
    pub meta: Keyspace,
}

impl BareStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, ReplicaError> {
        let db = open_database(dir)?;
        let items = db.keyspace("items", || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(ITEMS_MEMTABLE_BYTES)
                .data_block_size_policy(fjall::config::BlockSizePolicy::all(ITEMS_BLOCK_BYTES))
        })?;
        let meta = db.keyspace("meta", || {
            KeyspaceCreateOptions::default().max_memtable_size(META_MEMTABLE_BYTES)
        })?;
        Ok(BareStore { db, items, meta })
    }
}

fn open_database(dir: &Path) -> Result<Database, ReplicaError> {
    Ok(Database::builder(dir)
        .cache_size(CACHE_BYTES)
        // One background worker (flush and compaction) per replica: partitions on a node
        // share its cores, and a replica's write rate is bounded by its WAL.
        .worker_threads(1)
        .max_journaling_size(MAX_JOURNAL_BYTES)
        .open()?)
}

fn read_applied_state(snapshot: &Snapshot, meta: &Keyspace) -> Result<AppliedState, ReplicaError> {
    let applied_lsn = match snapshot.get(meta, META_APPLIED_LSN)? {
        Some(bytes) => Lsn(decode_u64(&bytes, "applied LSN")?),
        None => Lsn::ZERO,
    };
    let digest = match snapshot.get(meta, META_DIGEST)? {
        Some(bytes) => StateDigest::from_slice(&bytes).ok_or_else(|| {
            ReplicaError::CorruptMetadata(format!("digest is {} bytes", bytes.len()))
        })?,
        None => StateDigest::empty(),
    };
    Ok(AppliedState {
        applied_lsn,
        digest,
    })
}

fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, ReplicaError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| ReplicaError::CorruptMetadata(format!("{what} is {} bytes", bytes.len())))?;
    Ok(u64::from_le_bytes(array))
}

fn checkpoint_key(lsn: Lsn) -> Vec<u8> {
    [CHECKPOINT_PREFIX, &lsn.0.to_be_bytes()].concat()
}

impl FjallReplicaStore {
    /// Fault injection, for tests of the scrubber (a node exposes it only when started with
    /// `DDB_FAULT_INJECTION=1`): replaces the first item with `item` outside the log, keeping
    /// the incremental digest true to the items. This copy now differs from its peers — checks
    /// 1 and 2 must name it — while its items still add up (check 3 passes). Returns the key, or
    /// `None` for an empty store.
    pub fn inject_divergence(&self, item: &[u8]) -> Result<Option<Vec<u8>>, ReplicaError> {
        let mut applied = self.lock();
        let Some(first) = self.items.iter().next() else {
            return Ok(None);
        };
        let (key, old) = first.into_inner()?;
        let mut digest = applied.digest.clone();
        digest.remove_item(&key, &old);
        digest.insert_item(&key, item);
        let mut batch = self.db.batch();
        batch.insert(&self.items, key.to_vec(), item.to_vec());
        batch.insert(&self.meta, META_DIGEST, digest.to_bytes());
        batch.commit()?;
        applied.digest = digest;
        Ok(Some(key.to_vec()))
    }

    /// Fault injection (see [`FjallReplicaStore::inject_divergence`]): flips a bit of the
    /// first item at rest without touching the digest, as bit rot would. Check 3 must name
    /// this copy. Returns the key, or `None` for an empty store.
    pub fn inject_rot(&self) -> Result<Option<Vec<u8>>, ReplicaError> {
        let _applied = self.lock();
        let Some(first) = self.items.iter().next() else {
            return Ok(None);
        };
        let (key, item) = first.into_inner()?;
        let mut rotten = item.to_vec();
        if let Some(last) = rotten.last_mut() {
            *last ^= 0x01;
        } else {
            rotten.push(0x01);
        }
        self.items.insert(key.to_vec(), rotten)?;
        Ok(Some(key.to_vec()))
    }

    /// Writes a computed plan (mutations, applied LSN, digest, checkpoints) in one batch and
    /// makes its state current.
    fn write_plan(
        &self,
        applied: &mut AppliedState,
        plan: super::apply::ApplyPlan,
    ) -> Result<(), ReplicaError> {
        self.write_plan_in(self.db.batch(), applied, plan)
    }

    /// [`FjallReplicaStore::write_plan`], adding to `batch`.
    fn write_plan_in(
        &self,
        mut batch: fjall::OwnedWriteBatch,
        applied: &mut AppliedState,
        plan: super::apply::ApplyPlan,
    ) -> Result<(), ReplicaError> {
        for (key, value) in &plan.mutations {
            match value {
                Some(item) => batch.insert(&self.items, key.as_slice(), item.as_slice()),
                None => batch.remove(&self.items, key.as_slice()),
            }
        }
        batch.insert(
            &self.meta,
            META_APPLIED_LSN,
            plan.state.applied_lsn.0.to_le_bytes().to_vec(),
        );
        batch.insert(&self.meta, META_DIGEST, plan.state.digest.to_bytes());
        for checkpoint in &plan.checkpoints {
            batch.insert(
                &self.meta,
                checkpoint_key(checkpoint.lsn),
                checkpoint.digest.to_bytes(),
            );
        }
        if let Some(cutoff) = checkpoint_cutoff(&plan, &self.policy) {
            for old in self
                .meta
                .range(checkpoint_key(Lsn::ZERO)..checkpoint_key(cutoff))
            {
                batch.remove(&self.meta, old.key()?);
            }
        }
        batch.commit()?;
        *applied = plan.state;
        if !plan.points.is_empty() {
            let mut points = self.points_lock();
            points.extend(plan.points);
            while points.len() > DIGEST_POINTS_KEPT {
                points.pop_front();
            }
        }
        Ok(())
    }
}

impl ReplicaStore for FjallReplicaStore {
    fn install_items(
        &self,
        items: &[(Vec<u8>, Vec<u8>)],
        applied_lsn: Option<Lsn>,
    ) -> Result<(), ReplicaError> {
        let mut applied = self.lock();
        let plan = plan_install(items, applied_lsn, &applied, |key| {
            Ok(self.items.get(key)?.map(|v| v.to_vec()))
        })?;
        self.write_plan(&mut applied, plan)
    }

    fn apply_batch(&self, entries: &[Entry]) -> Result<(), ReplicaError> {
        let mut applied = self.lock();
        let plan = plan_apply(entries, &applied, &self.policy, |key| {
            Ok(self.items.get(key)?.map(|v| v.to_vec()))
        })?;
        self.write_plan(&mut applied, plan)
    }

    fn applied_state(&self) -> AppliedState {
        self.lock().clone()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReplicaError> {
        Ok(self.items.get(key)?.map(|v| v.to_vec()))
    }

    fn snapshot(&self) -> Result<Box<dyn ReplicaSnapshot + '_>, ReplicaError> {
        let snapshot = self.db.snapshot();
        let applied = read_applied_state(&snapshot, &self.meta)?;
        Ok(Box::new(FjallSnapshot {
            snapshot,
            items: &self.items,
            applied,
        }))
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, ReplicaError> {
        let mut out = Vec::new();
        for guard in self.meta.prefix(CHECKPOINT_PREFIX) {
            let (key, value) = guard.into_inner()?;
            let lsn_bytes = key.get(CHECKPOINT_PREFIX.len()..).unwrap_or_default();
            let lsn: [u8; 8] = lsn_bytes.try_into().map_err(|_| {
                ReplicaError::CorruptMetadata("checkpoint key without an 8-byte LSN".to_string())
            })?;
            let digest = StateDigest::from_slice(&value).ok_or_else(|| {
                ReplicaError::CorruptMetadata(format!("checkpoint digest is {} bytes", value.len()))
            })?;
            out.push(Checkpoint {
                lsn: Lsn(u64::from_be_bytes(lsn)),
                digest,
            });
        }
        Ok(out)
    }

    fn persist(&self) -> Result<Lsn, ReplicaError> {
        // Read the LSN first: everything applied up to it is in the journal being synced.
        let lsn = self.lock().applied_lsn;
        self.db.persist(PersistMode::SyncAll)?;
        Ok(lsn)
    }
}

struct FjallSnapshot<'a> {
    snapshot: Snapshot,
    items: &'a Keyspace,
    applied: AppliedState,
}

impl ReplicaSnapshot for FjallSnapshot<'_> {
    fn applied_state(&self) -> &AppliedState {
        &self.applied
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReplicaError> {
        Ok(self.snapshot.get(self.items, key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, range: &KeyRange, direction: Direction) -> ItemIter<'_> {
        if range.is_empty() {
            return Box::new(std::iter::empty());
        }
        let iter = self
            .snapshot
            .range(self.items, (range.start.clone(), range.end.clone()));
        let to_pair = |guard: fjall::Guard| -> Result<(Vec<u8>, Vec<u8>), ReplicaError> {
            let (key, value) = guard.into_inner()?;
            Ok((key.to_vec(), value.to_vec()))
        };
        match direction {
            Direction::Forward => Box::new(iter.map(to_pair)),
            Direction::Backward => Box::new(iter.rev().map(to_pair)),
        }
    }

    fn for_each_item(&self, each: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), ReplicaError> {
        for guard in self.snapshot.iter(self.items) {
            let (key, item) = guard.into_inner()?;
            each(&key, &item);
        }
        Ok(())
    }
}
