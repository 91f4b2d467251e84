//! A storage node: its catalog and partitions, and the DynamoDB operations it serves.
//!
//! [`Node::handle`] takes an operation name (the part of `X-Amz-Target` after the dot) and a
//! JSON request body and returns the JSON response or a DynamoDB error. It is synchronous and
//! blocks on WAL fsyncs: the HTTP layer runs it on blocking threads.

mod capacity;
mod describe;
mod items;
mod partition;
mod query;
mod tables;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::catalog::{Catalog, TableDef};
use crate::protocol::{ApiError, ErrorCode};

pub use partition::{Partition, WriteOp, store_dir, wal_dir};

/// Settings a node needs beyond its data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeOptions {
    /// This node's id (ballots, request ids).
    pub node_id: u32,
    /// Region reported in table ARNs.
    pub region: String,
    /// Partitions an on-demand table starts with.
    pub on_demand_partitions: u64,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            node_id: 1,
            region: "us-east-1".to_string(),
            on_demand_partitions: 4,
        }
    }
}

/// A node's tables and their open partitions.
pub struct Node {
    data_dir: PathBuf,
    options: NodeOptions,
    catalog: Catalog,
    partitions: RwLock<HashMap<u64, Arc<Partition>>>,
}

impl Node {
    /// Opens the node's data directory, recovering every partition of every table.
    pub fn open(data_dir: &Path, options: NodeOptions) -> Result<Self, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("creating data directory {}: {e}", data_dir.display()))?;
        let catalog = Catalog::open(data_dir).map_err(|e| e.to_string())?;
        let mut partitions = HashMap::new();
        for table in catalog.tables() {
            for def in &table.partitions {
                let partition = Partition::open(data_dir, *def, options.node_id)?;
                partitions.insert(def.id, Arc::new(partition));
            }
        }
        Ok(Node {
            data_dir: data_dir.to_path_buf(),
            options,
            catalog,
            partitions: RwLock::new(partitions),
        })
    }

    /// The node's data directory.
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The node's options.
    #[must_use]
    pub fn options(&self) -> &NodeOptions {
        &self.options
    }

    /// The catalog.
    #[must_use]
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Runs one DynamoDB operation.
    pub fn handle(&self, operation: &str, body: &Value) -> Result<Value, ApiError> {
        match operation {
            "CreateTable" => self.create_table(body),
            "DescribeTable" => self.describe_table(body),
            "ListTables" => self.list_tables(body),
            "UpdateTable" => self.update_table(body),
            "DeleteTable" => self.delete_table(body),
            "PutItem" => self.put_item(body),
            "GetItem" => self.get_item(body),
            "DeleteItem" => self.delete_item(body),
            "UpdateItem" => self.update_item(body),
            "Query" => self.query(body),
            "Scan" => self.scan(body),
            "BatchGetItem" => self.batch_get_item(body),
            "BatchWriteItem" => self.batch_write_item(body),
            _ => Err(ApiError::new(
                ErrorCode::UnknownOperationException,
                format!("Unknown operation: {operation}"),
            )),
        }
    }

    /// The active table named `name`, or DynamoDB's not-found error.
    fn active_table(&self, name: &str) -> Result<Arc<TableDef>, ApiError> {
        match self.catalog.table(name) {
            Some(table) if table.status == crate::catalog::TableStatus::Active => Ok(table),
            _ => Err(ApiError::resource_not_found()),
        }
    }

    /// The open partition with id `id`.
    fn partition(&self, id: u64) -> Result<Arc<Partition>, ApiError> {
        self.partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::ServiceUnavailable, "Partition is not open"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OPERATIONS;

    #[test]
    fn every_listed_operation_is_served_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path(), NodeOptions::default()).unwrap();
        for operation in OPERATIONS {
            let answer = node.handle(operation, &serde_json::json!({}));
            assert!(
                !matches!(&answer, Err(e) if e.code == ErrorCode::UnknownOperationException),
                "{operation} is listed in protocol::OPERATIONS but not served"
            );
        }
        let unknown = node.handle("TransactWriteItems", &serde_json::json!({}));
        assert!(matches!(unknown, Err(e) if e.code == ErrorCode::UnknownOperationException));
    }
}
