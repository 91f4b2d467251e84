//! A tour of ddb's storage core on one partition: DynamoDB items are encoded, appended durably
//! to the write-ahead log with group commit, and applied to a fjall replica store that keeps
//! the state digest. Run it again and it recovers both (replaying WAL the store had not yet
//! applied) and appends more.
//!
//! Usage: `cargo run --release -p ddb --example storage_tour [DATA_DIR] [ENTRIES]`
//! (defaults: `./ddb-data/tour`, 10000). Then inspect the results with ddbctl:
//! `ddbctl wal inspect DATA_DIR/wal/1` and `ddbctl replica verify DATA_DIR/replicas/1`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ddb::digest::CheckpointPolicy;
use ddb::item::{AttributeValue, Item, Number, encode_item, encode_key};
use ddb::replica::{FjallReplicaStore, ReplicaStore, replay_committed};
use ddb::wal::{Ballot, Operation, Wal, WalOptions};

const TABLE_ID: u64 = 1;
const WRITERS: u64 = 16;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().unwrap_or_else(|| "ddb-data/tour".to_string()));
    let entries: u64 = match args.next() {
        Some(n) => n.parse()?,
        None => 10_000,
    };
    let wal_dir = data.join("wal").join("1");
    let store_dir = data.join("replicas").join("1");
    std::fs::create_dir_all(&wal_dir)?;
    std::fs::create_dir_all(&store_dir)?;

    let wal = Arc::new(Wal::open(&wal_dir, WalOptions::default())?);
    let store = FjallReplicaStore::open(&store_dir, CheckpointPolicy::default())?;
    let recovery = wal.recovery_report();
    println!(
        "WAL {}: {} entries recovered (LSN {}..={}){}",
        wal_dir.display(),
        recovery.entries,
        recovery.first_lsn,
        recovery.last_lsn,
        match &recovery.cut {
            Some(cut) => format!(", torn tail of {} bytes cut", cut.bytes),
            None => String::new(),
        }
    );
    // Without replication every durable WAL entry is committed.
    let replay = replay_committed(&store, wal.read_from(wal.first_lsn()?)?, wal.last_lsn()?)?;
    println!(
        "replica {}: at LSN {}, replayed {} entries from the WAL",
        store_dir.display(),
        replay.to,
        replay.applied
    );

    let started = Instant::now();
    let first_new = wal.last_lsn()?.0 + 1;
    std::thread::scope(
        |scope| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let handles: Vec<_> = (0..WRITERS)
                .map(|writer| {
                    let wal = Arc::clone(&wal);
                    scope.spawn(
                        move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                            for n in (writer..entries).step_by(WRITERS as usize) {
                                let (key, item) = sample_item(first_new + n)?;
                                let now_ms = u64::try_from(
                                    SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis(),
                                )?;
                                wal.append_next(
                                    Ballot { round: 1, node: 1 },
                                    now_ms,
                                    Operation::Put { key, item },
                                )?;
                            }
                            Ok(())
                        },
                    )
                })
                .collect();
            for handle in handles {
                handle.join().map_err(|_| "writer thread panicked")??;
            }
            Ok(())
        },
    )
    .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let stats = wal.stats();
    println!(
        "appended {entries} durable entries from {WRITERS} writers in {:.2} s: {:.0} appends/s, {} fdatasyncs ({:.1} appends per sync)",
        elapsed.as_secs_f64(),
        entries as f64 / elapsed.as_secs_f64(),
        stats.syncs,
        stats.appends as f64 / stats.syncs.max(1) as f64,
    );

    let applied = replay_committed(
        &store,
        wal.read_from(store.applied_lsn().next())?,
        wal.last_lsn()?,
    )?;
    let durable = store.persist()?;
    let state = store.applied_state();
    println!(
        "replica applied {} entries, durable at LSN {durable}, digest {}",
        applied.applied, state.digest
    );
    println!();
    println!("next: ddbctl wal inspect {}", wal_dir.display());
    println!("      ddbctl replica verify {}", store_dir.display());
    Ok(())
}

/// A user-profile item keyed by (`user`, `seq`), encoded as the replica stores it.
fn sample_item(n: u64) -> Result<(Vec<u8>, Vec<u8>), Box<dyn std::error::Error + Send + Sync>> {
    let user = AttributeValue::S(format!("user{:04}", n % 1000));
    let seq = AttributeValue::N(Number::from(i64::try_from(n / 1000)?));
    let mut item = Item::new();
    item.insert("user".into(), user.clone());
    item.insert("seq".into(), seq.clone());
    item.insert("score".into(), AttributeValue::N("12.50".parse()?));
    item.insert("active".into(), AttributeValue::Bool(!n.is_multiple_of(3)));
    item.insert(
        "note".into(),
        AttributeValue::S("x".repeat((n % 200) as usize)),
    );
    Ok((encode_key(TABLE_ID, &user, Some(&seq))?, encode_item(&item)))
}
