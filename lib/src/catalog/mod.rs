//! The node's catalog: which tables exist, their schemas and their partitions.
//!
//! Persisted as `<data>/catalog.json`, replaced atomically (write a temporary file, fsync,
//! rename, fsync the directory), so a crash leaves either the old or the new catalog.
//! With replication the catalog moves into the replicated metadata group; the types stay.

mod table;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

pub use table::{
    Billing, KeyAttribute, KeySchema, PartitionDef, PendingSplit, ScalarType, SplitRecord,
    TableDef, TableStatus, initial_partition_count, split_hash_space,
};

/// Why the catalog could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Reading or writing the catalog file failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The catalog file is not valid.
    #[error("catalog {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A table with this name exists already.
    #[error("table {0} already exists")]
    TableExists(String),
    /// No table has this name.
    #[error("table {0} not found")]
    TableNotFound(String),
    /// A split that cannot be made as asked.
    #[error("cannot split: {0}")]
    InvalidSplit(String),
}

/// The catalog's persisted content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct CatalogState {
    /// Format version of this file.
    version: u32,
    next_table_id: u64,
    next_partition_id: u64,
    tables: BTreeMap<String, TableDef>,
}

const CATALOG_VERSION: u32 = 1;
const CATALOG_FILE: &str = "catalog.json";

/// The set of tables on a node. Reads are cheap clones of `Arc<TableDef>`; changes are
/// persisted before they become visible.
pub struct Catalog {
    /// Where the catalog persists; `None` for a scratch copy that only lives in memory.
    path: Option<PathBuf>,
    state: RwLock<(CatalogState, BTreeMap<String, Arc<TableDef>>)>,
}

impl Catalog {
    /// Opens the catalog in `data_dir`, creating an empty one if there is none.
    pub fn open(data_dir: &Path) -> Result<Self, CatalogError> {
        let path = data_dir.join(CATALOG_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                let state: CatalogState =
                    serde_json::from_slice(&bytes).map_err(|e| CatalogError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if state.version != CATALOG_VERSION {
                    return Err(CatalogError::Corrupt {
                        path,
                        reason: format!("unknown catalog version {}", state.version),
                    });
                }
                state
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CatalogState::empty(),
            Err(source) => {
                return Err(CatalogError::Io {
                    op: "reading",
                    path,
                    source,
                });
            }
        };
        let shared = shared_tables(&state);
        Ok(Catalog {
            path: Some(path),
            state: RwLock::new((state, shared)),
        })
    }

    /// An in-memory catalog holding `encoded` (an [`Catalog::encode`] form; `None` for an empty
    /// catalog). Changes to it are not persisted: the metadata group's leader edits a scratch
    /// copy and replicates its encoding.
    pub fn scratch(encoded: Option<&[u8]>) -> Result<Catalog, CatalogError> {
        let state = match encoded {
            Some(bytes) => decode_state(bytes)?,
            None => CatalogState::empty(),
        };
        let shared = shared_tables(&state);
        Ok(Catalog {
            path: None,
            state: RwLock::new((state, shared)),
        })
    }

    /// The whole catalog as bytes (the JSON of `catalog.json`).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&self.read().0).unwrap_or_default()
    }

    /// Replaces the whole catalog with `encoded`, persisted.
    pub fn install(&self, encoded: &[u8]) -> Result<(), CatalogError> {
        let next = decode_state(encoded)?;
        let mut guard = self.write();
        if guard.0 == next {
            return Ok(());
        }
        self.commit(&mut guard, next)
    }

    /// The table named `name`, if it exists.
    pub fn table(&self, name: &str) -> Option<Arc<TableDef>> {
        self.read().1.get(name).cloned()
    }

    /// Every table, by name.
    pub fn tables(&self) -> Vec<Arc<TableDef>> {
        self.read().1.values().cloned().collect()
    }

    /// Adds a table built by `build` from a fresh table id and fresh partition ids (it is
    /// given the id allocator), persisting the catalog before returning it.
    pub fn create_table(
        &self,
        name: &str,
        build: impl FnOnce(u64, &mut dyn FnMut() -> u64) -> TableDef,
    ) -> Result<Arc<TableDef>, CatalogError> {
        let mut guard = self.write();
        if guard.0.tables.contains_key(name) {
            return Err(CatalogError::TableExists(name.to_string()));
        }
        let mut next = guard.0.clone();
        let table_id = next.next_table_id;
        next.next_table_id += 1;
        let mut next_partition = next.next_partition_id;
        let table = build(table_id, &mut || {
            let id = next_partition;
            next_partition += 1;
            id
        });
        next.next_partition_id = next_partition;
        next.tables.insert(name.to_string(), table);
        self.commit(&mut guard, next)?;
        visible(&guard, name)
    }

    /// Replaces the definition of table `name` with what `change` makes of it, persisted.
    pub fn update_table(
        &self,
        name: &str,
        change: impl FnOnce(&mut TableDef),
    ) -> Result<Arc<TableDef>, CatalogError> {
        let mut guard = self.write();
        let mut next = guard.0.clone();
        let table = next
            .tables
            .get_mut(name)
            .ok_or_else(|| CatalogError::TableNotFound(name.to_string()))?;
        change(table);
        self.commit(&mut guard, next)?;
        visible(&guard, name)
    }

    /// Begins splitting partition `parent` of table `name` at hash `boundary`: allocates the
    /// two children's ids and records the split as pending. Fails if another split is pending,
    /// the table has no such partition, or the boundary is not inside it.
    pub fn begin_split(
        &self,
        name: &str,
        parent: u64,
        boundary: u64,
    ) -> Result<PendingSplit, CatalogError> {
        let mut guard = self.write();
        let mut next = guard.0.clone();
        let first_id = next.next_partition_id;
        let table = next
            .tables
            .get_mut(name)
            .ok_or_else(|| CatalogError::TableNotFound(name.to_string()))?;
        let invalid = |reason: String| CatalogError::InvalidSplit(reason);
        if let Some(pending) = &table.pending_split {
            return Err(invalid(format!(
                "partition {} of {name} is being split already",
                pending.parent.id
            )));
        }
        let parent = *table
            .partitions
            .iter()
            .find(|def| def.id == parent)
            .ok_or_else(|| invalid(format!("table {name} has no partition {parent}")))?;
        if boundary <= parent.hash_start || boundary > parent.hash_end {
            return Err(invalid(format!(
                "boundary {boundary:016x} is not inside partition {} ({:016x}..={:016x})",
                parent.id, parent.hash_start, parent.hash_end
            )));
        }
        let pending = PendingSplit {
            parent,
            lower: PartitionDef {
                id: first_id,
                hash_start: parent.hash_start,
                hash_end: boundary - 1,
            },
            upper: PartitionDef {
                id: first_id + 1,
                hash_start: boundary,
                hash_end: parent.hash_end,
            },
        };
        table.pending_split = Some(pending);
        next.next_partition_id = first_id + 2;
        self.commit(&mut guard, next)?;
        Ok(pending)
    }

    /// Finishes the pending split of table `name`: the children replace the parent in the
    /// partition list and `record` joins the table's lineage.
    /// Fails unless it is still the pending split of the table (one that was abandoned
    /// meanwhile must not switch).
    pub fn finish_split(
        &self,
        name: &str,
        record: SplitRecord,
    ) -> Result<Arc<TableDef>, CatalogError> {
        let pending = PendingSplit {
            parent: record.parent,
            lower: record.lower,
            upper: record.upper,
        };
        let current = self
            .table(name)
            .ok_or_else(|| CatalogError::TableNotFound(name.to_string()))?;
        if current.pending_split != Some(pending) {
            return Err(CatalogError::InvalidSplit(format!(
                "the split of partition {} of {name} is no longer pending (it was abandoned)",
                record.parent.id
            )));
        }
        self.update_table(name, |table| {
            table.partitions.retain(|def| def.id != record.parent.id);
            table.partitions.push(record.lower);
            table.partitions.push(record.upper);
            table.partitions.sort_by_key(|def| def.hash_start);
            table.pending_split = None;
            table.splits.push(record);
        })
    }

    /// Forgets `pending` if it is still table `name`'s pending split (the parent keeps its
    /// range); answers whether it was.
    pub fn abort_split(&self, name: &str, pending: &PendingSplit) -> Result<bool, CatalogError> {
        let current = self
            .table(name)
            .ok_or_else(|| CatalogError::TableNotFound(name.to_string()))?;
        if current.pending_split.as_ref() != Some(pending) {
            return Ok(false);
        }
        self.update_table(name, |table| table.pending_split = None)?;
        Ok(true)
    }

    /// Removes table `name`, persisted, and returns its last definition.
    pub fn remove_table(&self, name: &str) -> Result<Arc<TableDef>, CatalogError> {
        let mut guard = self.write();
        let mut next = guard.0.clone();
        let removed = next
            .tables
            .remove(name)
            .ok_or_else(|| CatalogError::TableNotFound(name.to_string()))?;
        self.commit(&mut guard, next)?;
        Ok(Arc::new(removed))
    }

    /// Persists `next`, then makes it the visible state.
    fn commit(
        &self,
        guard: &mut (CatalogState, BTreeMap<String, Arc<TableDef>>),
        next: CatalogState,
    ) -> Result<(), CatalogError> {
        self.persist(&next)?;
        guard.1 = shared_tables(&next);
        guard.0 = next;
        Ok(())
    }

    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, (CatalogState, BTreeMap<String, Arc<TableDef>>)> {
        // Writers replace the state only after persisting it whole; a panic cannot leave it
        // half-changed, so a poisoned lock still guards a consistent value.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, (CatalogState, BTreeMap<String, Arc<TableDef>>)> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn persist(&self, state: &CatalogState) -> Result<(), CatalogError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| CatalogError::Io { op, path, source }
        };
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| CatalogError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
        file.write_all(&bytes).map_err(io("writing", &tmp))?;
        file.sync_all().map_err(io("syncing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("renaming", &tmp))?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("syncing", dir))?;
        }
        Ok(())
    }
}

impl CatalogState {
    fn empty() -> CatalogState {
        CatalogState {
            version: CATALOG_VERSION,
            next_table_id: 1,
            next_partition_id: 1,
            tables: BTreeMap::new(),
        }
    }
}

fn decode_state(bytes: &[u8]) -> Result<CatalogState, CatalogError> {
    let state: CatalogState = serde_json::from_slice(bytes).map_err(|e| CatalogError::Corrupt {
        path: PathBuf::from("<replicated catalog>"),
        reason: e.to_string(),
    })?;
    if state.version != CATALOG_VERSION {
        return Err(CatalogError::Corrupt {
            path: PathBuf::from("<replicated catalog>"),
            reason: format!("unknown catalog version {}", state.version),
        });
    }
    Ok(state)
}

/// Table `name` of the visible state.
fn visible(
    state: &(CatalogState, BTreeMap<String, Arc<TableDef>>),
    name: &str,
) -> Result<Arc<TableDef>, CatalogError> {
    state
        .1
        .get(name)
        .cloned()
        .ok_or_else(|| CatalogError::TableNotFound(name.to_string()))
}

fn shared_tables(state: &CatalogState) -> BTreeMap<String, Arc<TableDef>> {
    state
        .tables
        .iter()
        .map(|(name, table)| (name.clone(), Arc::new(table.clone())))
        .collect()
}
