//! [`TableArchive`]: a `file://` archive holding a table's history as the archiver would leave
//! it: the metadata group (table 0, partition 0) with the catalog, and the table's partitions
//! with real items, chunks whose footers carry the digests a replica had, and a snapshot.

// A fixture that cannot be built is a failed test: say which step failed and stop.
#![allow(clippy::expect_used)]

use std::path::Path;

use bytes::Bytes;
use ddb::archive::{
    Archive, ArchiveUrl, SnapshotName, SnapshotWriter, WalChunkName, encode_chunk, upload_chunk,
    upload_snapshot,
};
use ddb::catalog::{
    Billing, Catalog, KeyAttribute, KeySchema, PartitionDef, ScalarType, TableDef, TableStatus,
    split_hash_space,
};
use ddb::digest::{CheckpointPolicy, StateDigest};
use ddb::item::{AttributeValue, encode_item, encode_key, item_from_json_str, partition_hash};
use ddb::replica::{Direction, KeyItem, KeyRange, MemoryReplicaStore, ReplicaStore};
use ddb::wal::{Ballot, Entry, Lsn, Operation};

/// The table's name in the archived catalog.
pub const TABLE_NAME: &str = "orders";
/// Its id.
pub const TABLE_ID: u64 = 3;
/// Its two partitions.
pub const PARTITION_IDS: [u64; 2] = [5, 6];
/// When the catalog entry was written; table entries follow, 10 ms apart per partition LSN.
pub const START_MS: u64 = 1_790_000_000_000;
/// Entries per chunk.
const CHUNK_ENTRIES: u64 = 10;

/// One archived partition of the table.
pub struct PartitionHistory {
    /// The partition's id.
    pub id: u64,
    /// Its committed log, LSN 1 first.
    pub entries: Vec<Entry>,
}

impl PartitionHistory {
    /// The state after `lsn`: its digest and its `(key, canonical item)` pairs in key order.
    pub fn state_at(&self, lsn: u64) -> (StateDigest, Vec<KeyItem>) {
        let store = MemoryReplicaStore::new(CheckpointPolicy::default());
        let count = usize::try_from(lsn).unwrap_or(usize::MAX);
        if count > 0 {
            store
                .apply_batch(&self.entries[..count])
                .expect("the history applies");
        }
        let items = store
            .snapshot()
            .expect("a memory snapshot")
            .scan(&KeyRange::all(), Direction::Forward)
            .collect::<Result<Vec<_>, _>>()
            .expect("a memory scan");
        (store.applied_state().digest, items)
    }

    /// The last LSN.
    pub fn last_lsn(&self) -> u64 {
        self.entries.len() as u64
    }
}

/// The archive and what it holds.
pub struct TableArchive {
    /// `file://…` URL of the archive.
    pub url: String,
    /// The table as the catalog defines it.
    pub table: TableDef,
    /// Its partitions' histories.
    pub partitions: Vec<PartitionHistory>,
}

impl TableArchive {
    /// Builds the archive in `root`: table `orders` (`customer` S, `order` N) with 30 puts, a
    /// few overwrites and deletes spread over two partitions, chunks of 10 entries, and a
    /// snapshot at LSN 10 of the first partition.
    pub fn build(root: &Path) -> Self {
        let url = format!("file://{}", root.display());
        let archive = ArchiveUrl::parse(&url)
            .expect("a file:// archive URL")
            .open_archive(|_| None)
            .expect("the archive opens");
        let table = orders_table();
        let customers = customers(&table);
        let mut logs: Vec<Vec<Operation>> = vec![Vec::new(); PARTITION_IDS.len()];
        for order in 0..30u32 {
            let (slot, key, item) = order_item(&table, &customers, order, order * 7);
            logs[slot].push(Operation::Put { key, item });
        }
        for order in [3u32, 11, 17] {
            let (slot, key, item) = order_item(&table, &customers, order, 1000 + order);
            logs[slot].push(Operation::Put { key, item });
        }
        for order in [4u32, 12] {
            let (slot, key, _) = order_item(&table, &customers, order, 0);
            logs[slot].push(Operation::Delete { key });
        }
        let partitions: Vec<PartitionHistory> = PARTITION_IDS
            .iter()
            .zip(logs)
            .map(|(id, ops)| PartitionHistory {
                id: *id,
                entries: entries(ops, START_MS + 1000),
            })
            .collect();

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let catalog = Catalog::scratch(None).expect("an empty catalog");
            catalog
                .create_table(TABLE_NAME, |_, _| table.clone())
                .expect("the table is created");
            let meta = entries(
                vec![Operation::Put {
                    key: ddb::node::CATALOG_KEY.to_vec(),
                    item: catalog.encode(),
                }],
                START_MS,
            );
            upload_entries(&archive, 0, 0, &meta, CHUNK_ENTRIES).await;
            for partition in &partitions {
                upload_entries(
                    &archive,
                    TABLE_ID,
                    partition.id,
                    &partition.entries,
                    CHUNK_ENTRIES,
                )
                .await;
            }
            let first = &partitions[0];
            if first.last_lsn() >= 10 {
                let (digest, items) = first.state_at(10);
                let mut writer = SnapshotWriter::new();
                for (key, item) in &items {
                    writer.push(key, item).expect("items in key order");
                }
                let (bytes, written) = writer
                    .finish(Lsn(10), first.entries[9].timestamp_ms)
                    .expect("the snapshot encodes");
                assert_eq!(written, digest);
                let name = SnapshotName {
                    table_id: TABLE_ID,
                    partition_id: first.id,
                    lsn: Lsn(10),
                };
                upload_snapshot(&archive, &name, Bytes::from(bytes))
                    .await
                    .expect("the snapshot uploads");
            }
        });
        TableArchive {
            url,
            table,
            partitions,
        }
    }
}

fn orders_table() -> TableDef {
    let key = |name: &str, scalar_type| KeyAttribute {
        name: name.to_owned(),
        scalar_type,
    };
    TableDef {
        id: TABLE_ID,
        name: TABLE_NAME.to_owned(),
        key_schema: KeySchema {
            partition_key: key("customer", ScalarType::S),
            sort_key: Some(key("order", ScalarType::N)),
        },
        attribute_definitions: vec![key("customer", ScalarType::S), key("order", ScalarType::N)],
        billing: Billing::PayPerRequest,
        created_at_ms: START_MS,
        partitions: PARTITION_IDS
            .iter()
            .zip(split_hash_space(PARTITION_IDS.len() as u64))
            .map(|(id, (hash_start, hash_end))| PartitionDef {
                id: *id,
                hash_start,
                hash_end,
            })
            .collect(),
        status: TableStatus::Active,
        splits: Vec::new(),
        pending_split: None,
    }
}

/// Four customer names, two in each partition, so both partitions have a history.
fn customers(table: &TableDef) -> Vec<String> {
    let mut per_partition: Vec<Vec<String>> = vec![Vec::new(); table.partitions.len()];
    for n in 0.. {
        let name = format!("customer-{n}");
        let slot = slot_of(table, &AttributeValue::S(name.clone()));
        if per_partition[slot].len() < 2 {
            per_partition[slot].push(name);
        }
        if per_partition.iter().all(|names| names.len() == 2) {
            break;
        }
    }
    let (first, second) = (&per_partition[0], &per_partition[1]);
    vec![
        first[0].clone(),
        second[0].clone(),
        first[1].clone(),
        second[1].clone(),
    ]
}

fn slot_of(table: &TableDef, partition_key: &AttributeValue) -> usize {
    let hash = partition_hash(partition_key).expect("a hashable key");
    table
        .partitions
        .iter()
        .position(|p| (p.hash_start..=p.hash_end).contains(&hash))
        .expect("the partitions cover the hash space")
}

/// Order `order` of customer `order % 4` with total `total`: the index of its partition, its
/// encoded key and its canonical item.
fn order_item(
    table: &TableDef,
    customers: &[String],
    order: u32,
    total: u32,
) -> (usize, Vec<u8>, Vec<u8>) {
    let customer = &customers[order as usize % customers.len()];
    let json = format!(
        r#"{{"customer": {{"S": "{customer}"}}, "order": {{"N": "{order}"}}, "total": {{"N": "{total}"}}, "note": {{"S": "restored from the archive"}}}}"#
    );
    let item = item_from_json_str(&json).expect("a valid item");
    let partition_key = AttributeValue::S(customer.clone());
    let sort_key = item.get("order").expect("the sort key").clone();
    let key = encode_key(TABLE_ID, &partition_key, Some(&sort_key)).expect("a valid key");
    (slot_of(table, &partition_key), key, encode_item(&item))
}

fn entries(ops: Vec<Operation>, start_ms: u64) -> Vec<Entry> {
    ops.into_iter()
        .zip(1u64..)
        .map(|(op, lsn)| Entry {
            lsn: Lsn(lsn),
            ballot: Ballot { round: 1, node: 1 },
            timestamp_ms: start_ms + lsn * 10,
            op,
        })
        .collect()
}

/// Uploads `entries` as chunks of `per_chunk`, each with the digest a replica had at its end.
async fn upload_entries(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
    entries: &[Entry],
    per_chunk: u64,
) {
    let store = MemoryReplicaStore::new(CheckpointPolicy::default());
    for chunk in entries.chunks(usize::try_from(per_chunk).unwrap_or(usize::MAX)) {
        store.apply_batch(chunk).expect("the history applies");
        let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
            continue;
        };
        let name = WalChunkName {
            table_id,
            partition_id,
            first: first.lsn,
            last: last.lsn,
        };
        let bytes = encode_chunk(chunk, &store.applied_state().digest).expect("a chunk");
        upload_chunk(archive, &name, Bytes::from(bytes))
            .await
            .expect("the chunk uploads");
    }
}
