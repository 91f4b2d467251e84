//! An in-memory replica store for tests and simulations.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::apply::{checkpoint_cutoff, plan_apply, plan_install};
use super::{
    AppliedState, Direction, ItemIter, KeyRange, ReplicaError, ReplicaSnapshot, ReplicaStore,
};
use crate::digest::{Checkpoint, CheckpointPolicy};
use crate::wal::{Entry, Lsn};

type Items = Arc<BTreeMap<Vec<u8>, Vec<u8>>>;

struct State {
    /// Shared with snapshots; copied on the first write after a snapshot is taken.
    items: Items,
    applied: AppliedState,
    checkpoints: BTreeMap<Lsn, Checkpoint>,
}

/// A [`ReplicaStore`] that keeps everything in memory: nothing survives the process, and
/// [`ReplicaStore::persist`] only reports the applied LSN.
pub struct MemoryReplicaStore {
    policy: CheckpointPolicy,
    state: Mutex<State>,
}

impl MemoryReplicaStore {
    /// An empty store.
    #[must_use]
    pub fn new(policy: CheckpointPolicy) -> Self {
        MemoryReplicaStore {
            policy,
            state: Mutex::new(State {
                items: Arc::new(BTreeMap::new()),
                applied: AppliedState::default(),
                checkpoints: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock can only come from a bug in this file; the state it
        // guards is replaced only after a plan is fully computed, so it is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ReplicaStore for MemoryReplicaStore {
    fn install_items(
        &self,
        items: &[(Vec<u8>, Vec<u8>)],
        applied_lsn: Option<Lsn>,
    ) -> Result<(), ReplicaError> {
        let mut state = self.lock();
        let plan = plan_install(items, applied_lsn, &state.applied, |key| {
            Ok(state.items.get(key).cloned())
        })?;
        let target = Arc::make_mut(&mut state.items);
        for (key, value) in plan.mutations {
            if let Some(item) = value {
                target.insert(key, item);
            }
        }
        state.applied = plan.state;
        Ok(())
    }

    fn apply_batch(&self, entries: &[Entry]) -> Result<(), ReplicaError> {
        let mut state = self.lock();
        let plan = plan_apply(entries, &state.applied, &self.policy, |key| {
            Ok(state.items.get(key).cloned())
        })?;
        let items = Arc::make_mut(&mut state.items);
        for (key, value) in &plan.mutations {
            match value {
                Some(item) => items.insert(key.clone(), item.clone()),
                None => items.remove(key),
            };
        }
        if let Some(cutoff) = checkpoint_cutoff(&plan, &self.policy) {
            for checkpoint in &plan.checkpoints {
                state.checkpoints.insert(checkpoint.lsn, checkpoint.clone());
            }
            state.checkpoints = state.checkpoints.split_off(&cutoff);
        }
        state.applied = plan.state;
        Ok(())
    }

    fn applied_state(&self) -> AppliedState {
        self.lock().applied.clone()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReplicaError> {
        Ok(self.lock().items.get(key).cloned())
    }

    fn snapshot(&self) -> Result<Box<dyn ReplicaSnapshot + '_>, ReplicaError> {
        let state = self.lock();
        Ok(Box::new(MemorySnapshot {
            items: Arc::clone(&state.items),
            applied: state.applied.clone(),
        }))
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, ReplicaError> {
        Ok(self.lock().checkpoints.values().cloned().collect())
    }

    fn persist(&self) -> Result<Lsn, ReplicaError> {
        Ok(self.lock().applied.applied_lsn)
    }
}

struct MemorySnapshot {
    items: Items,
    applied: AppliedState,
}

impl ReplicaSnapshot for MemorySnapshot {
    fn applied_state(&self) -> &AppliedState {
        &self.applied
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReplicaError> {
        Ok(self.items.get(key).cloned())
    }

    fn scan(&self, range: &KeyRange, direction: Direction) -> ItemIter<'_> {
        if range.is_empty() {
            return Box::new(std::iter::empty());
        }
        let iter = self
            .items
            .range((range.start.clone(), range.end.clone()))
            .map(|(k, v)| Ok((k.clone(), v.clone())));
        match direction {
            Direction::Forward => Box::new(iter),
            Direction::Backward => Box::new(iter.rev()),
        }
    }
}
