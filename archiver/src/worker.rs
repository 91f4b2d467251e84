//! One partition's archiving: on the replica that leads, read the committed log from the WAL
//! files, cut it into chunks by size and age, seal each with the node's state digest at its
//! last entry, upload create-only with retries, and report the watermark; on the others, follow
//! the archive's tail so the node's watermark stays current for when it leads.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ddb::archive::{
    Archive, ArchiveError, Uploaded, WalChunkName, encode_chunk, layout, upload_chunk,
};
use ddb::node::ArchivePartition;
use ddb::wal::{Entry, Lsn, ResumePoint, read_entries, resume_entries};
use tokio::sync::{Semaphore, watch};

use crate::config::ArchiverConfig;
use crate::metrics::Metrics;
use crate::node_client::NodeClient;

/// A chunk never holds more than this many bytes of entries, so a backlog is cut into pieces
/// even where the node knows few digests (it then waits for one).
const CHUNK_HARD_LIMIT_BYTES: u64 = 256 * 1024 * 1024;

/// What every partition worker shares.
pub struct Shared {
    /// The configuration.
    pub config: ArchiverConfig,
    /// The archive.
    pub archive: Archive,
    /// The node beside the archiver.
    pub node: NodeClient,
    /// The numbers `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Limits how many partitions upload at once.
    pub uploads: Semaphore,
}

/// Runs partition `first.partition_id`'s archiving until its status channel says it is gone
/// (`None`) or `stop` turns true.
pub async fn run_partition(
    shared: Arc<Shared>,
    mut status: watch::Receiver<Option<ArchivePartition>>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(first) = status.borrow().clone() else {
        return;
    };
    let mut worker = Worker::new(shared, &first);
    loop {
        let current = status.borrow_and_update().clone();
        let Some(current) = current else {
            return;
        };
        worker.step(&current, &status, &stop).await;
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    table_id: u64,
    partition_id: u64,
    wal_dir: PathBuf,
    /// Highest LSN the archive holds contiguously, once known.
    tail: Option<Lsn>,
    /// The newest chunk name seen, where incremental listings start.
    newest_listed: Option<WalChunkName>,
    /// Committed entries read and not yet archived, dense after `tail`.
    pending: VecDeque<Entry>,
    pending_bytes: u64,
    /// Where the WAL read stopped.
    resume: Option<ResumePoint>,
    /// When the archive's tail was last listed (followers).
    last_refresh: Option<Instant>,
    /// Archiving of this partition stopped for good (split brain).
    stopped: bool,
    /// The last error logged, so a failure repeating every poll is logged once.
    last_error: Option<String>,
    /// No digest point lay inside the pending entries: read past the usual budget until one
    /// does.
    grow: bool,
    /// After a failed listing: when to try again, and the wait after that.
    list_retry: Option<(Instant, std::time::Duration)>,
    /// The newest snapshot in the archive (LSN, time taken), once looked up.
    snapshot: Option<Option<(Lsn, u64)>>,
    /// A snapshot being taken, or retention being applied, in the background.
    background: Option<tokio::task::JoinHandle<Background>>,
    /// No snapshot attempt before this (after a failure).
    snapshot_not_before: Option<Instant>,
    /// When this worker started (the age of a partition with no snapshot yet).
    started_ms: u64,
}

/// What a background task of a worker ended with.
enum Background {
    Snapshot(Result<crate::snapshots::Taken, String>),
    Retention(Result<u64, String>),
}

impl Worker {
    fn new(shared: Arc<Shared>, status: &ArchivePartition) -> Self {
        Worker {
            shared,
            table_id: status.table_id,
            partition_id: status.partition_id,
            wal_dir: status.wal_dir.clone(),
            tail: None,
            newest_listed: None,
            pending: VecDeque::new(),
            pending_bytes: 0,
            resume: None,
            last_refresh: None,
            stopped: false,
            last_error: None,
            grow: false,
            list_retry: None,
            snapshot: None,
            background: None,
            snapshot_not_before: None,
            started_ms: now_ms(),
        }
    }

    fn uploads_here(status: &ArchivePartition) -> bool {
        status.leader && status.full_replica
    }

    async fn step(
        &mut self,
        status: &ArchivePartition,
        updates: &watch::Receiver<Option<ArchivePartition>>,
        stop: &watch::Receiver<bool>,
    ) {
        let leads = Self::uploads_here(status);
        self.shared
            .metrics
            .update(self.table_id, self.partition_id, |m| {
                m.leader = leads && !self.stopped;
                m.committed_lsn = status.applied_lsn;
                m.lag_bytes = status.unarchived_bytes;
            });
        if self.stopped {
            return;
        }
        if !leads {
            // Another archiver uploads; what was read here may be cut differently there.
            self.forget_pending();
            let due = self.last_refresh.is_none_or(|at| {
                at.elapsed() >= ArchiverConfig::ms(self.shared.config.follower_refresh_ms)
            });
            if due {
                self.last_refresh = Some(Instant::now());
                if self.refresh_tail().await {
                    self.report_watermark(status).await;
                }
            }
            self.shared
                .metrics
                .update(self.table_id, self.partition_id, |m| m.lag_seconds = 0.0);
            return;
        }
        if self.tail.is_none() || self.last_refresh.is_none() {
            // Leading (again): another archiver may have uploaded meanwhile.
            self.last_refresh = Some(Instant::now());
            if !self.refresh_tail().await {
                return;
            }
            self.forget_pending();
            self.snapshot = None;
        }
        self.report_watermark(status).await;
        if let Err(reason) = self.read_committed(Lsn(status.applied_lsn)).await {
            self.log_error(reason);
            return;
        }
        self.update_lag();
        while self.chunk_due() {
            match self.cut_and_upload(updates, stop).await {
                Ok(true) => {
                    self.last_error = None;
                    let latest = updates.borrow().clone();
                    if let Some(latest) = latest {
                        self.report_watermark(&latest).await;
                    }
                    self.update_lag();
                }
                Ok(false) => break,
                Err(reason) => {
                    self.log_error(reason);
                    break;
                }
            }
        }
        self.snapshot_and_retention(status).await;
    }

    /// Finishes a background snapshot or retention pass, and starts the next one when due.
    async fn snapshot_and_retention(&mut self, status: &ArchivePartition) {
        if let Some(task) = &self.background {
            if !task.is_finished() {
                return;
            }
            let Some(task) = self.background.take() else {
                return;
            };
            match task.await {
                Ok(Background::Snapshot(Ok(taken))) => {
                    tracing::info!(
                        snapshot = %taken.name.key(),
                        items = taken.items,
                        bytes = taken.bytes,
                        "snapshot archived"
                    );
                    self.shared
                        .metrics
                        .update(self.table_id, self.partition_id, |m| m.snapshots += 1);
                    self.snapshot = Some(Some((taken.name.lsn, taken.taken_at_ms)));
                    self.snapshot_not_before = None;
                    if let Some(window) = self.shared.config.retention() {
                        let shared = Arc::clone(&self.shared);
                        let (table, partition) = (self.table_id, self.partition_id);
                        self.background = Some(tokio::spawn(async move {
                            Background::Retention(
                                crate::snapshots::apply_retention(
                                    &shared.archive,
                                    table,
                                    partition,
                                    window,
                                    now_ms(),
                                )
                                .await,
                            )
                        }));
                    }
                }
                Ok(Background::Snapshot(Err(reason))) => {
                    self.log_error(format!("snapshot: {reason}"));
                    self.snapshot_not_before =
                        Some(Instant::now() + ArchiverConfig::ms(self.shared.config.retry_max_ms));
                }
                Ok(Background::Retention(Ok(deleted))) => {
                    self.shared
                        .metrics
                        .update(self.table_id, self.partition_id, |m| m.deleted += deleted);
                }
                Ok(Background::Retention(Err(reason))) => {
                    self.log_error(format!("retention: {reason}"));
                }
                Err(e) => self.log_error(format!("background task: {e}")),
            }
            return;
        }
        if self
            .snapshot_not_before
            .is_some_and(|at| Instant::now() < at)
        {
            return;
        }
        let newest = match self.snapshot {
            Some(newest) => newest,
            None => match crate::snapshots::newest(
                &self.shared.archive,
                self.table_id,
                self.partition_id,
            )
            .await
            {
                Ok(newest) => {
                    self.snapshot = Some(newest);
                    newest
                }
                Err(reason) => {
                    self.log_error(format!("listing snapshots: {reason}"));
                    return;
                }
            },
        };
        let (last_lsn, last_ms) = newest.unwrap_or((Lsn::ZERO, self.started_ms));
        let config = &self.shared.config;
        let applied = status.applied_lsn;
        let due = applied > last_lsn.0
            && (applied - last_lsn.0 >= config.snapshot_every_entries
                || now_ms().saturating_sub(last_ms) >= config.snapshot_every_ms);
        if !due {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let (table, partition) = (self.table_id, self.partition_id);
        self.background = Some(tokio::spawn(async move {
            Background::Snapshot(
                crate::snapshots::take(&shared.archive, &shared.node, table, partition).await,
            )
        }));
    }

    fn log_error(&mut self, reason: String) {
        if self.last_error.as_ref() != Some(&reason) {
            tracing::warn!(
                table_id = self.table_id,
                partition = self.partition_id,
                %reason,
                "archiving is held up"
            );
            self.last_error = Some(reason);
        }
    }

    fn forget_pending(&mut self) {
        self.grow = false;
        self.pending.clear();
        self.pending_bytes = 0;
        self.resume = None;
    }

    fn update_lag(&self) {
        let lag = self.pending.front().map_or(0.0, |oldest| {
            now_ms().saturating_sub(oldest.timestamp_ms) as f64 / 1000.0
        });
        let archived = self.tail.unwrap_or(Lsn::ZERO).0;
        self.shared
            .metrics
            .update(self.table_id, self.partition_id, |m| {
                m.lag_seconds = lag;
                m.archived_lsn = archived;
            });
    }

    /// Lists the archive's chunks of this partition (only those after the newest seen, when
    /// one was) and advances the known contiguous tail. False if the listing failed.
    async fn refresh_tail(&mut self) -> bool {
        if self.list_retry.is_some_and(|(at, _)| Instant::now() < at) {
            return false;
        }
        let listed = list_chunks_after(
            &self.shared.archive,
            self.table_id,
            self.partition_id,
            self.newest_listed.as_ref(),
        )
        .await;
        let chunks = match listed {
            Ok(chunks) => chunks,
            Err(e) => {
                self.log_error(format!("listing the archive: {e}"));
                let config = &self.shared.config;
                let wait = self
                    .list_retry
                    .map_or(ArchiverConfig::ms(config.retry_initial_ms), |(_, wait)| {
                        (wait * 2).min(ArchiverConfig::ms(config.retry_max_ms))
                    });
                self.list_retry =
                    Some((Instant::now() + wait.mul_f64(0.5 + fastrand::f64()), wait));
                self.shared
                    .metrics
                    .update(self.table_id, self.partition_id, |m| m.retries += 1);
                return false;
            }
        };
        self.list_retry = None;
        let mut tail = self.tail.or_else(|| {
            // Contiguity starts where the oldest chunk does (retention deletes older ones
            // once a snapshot covers them).
            chunks
                .first()
                .map(|chunk| Lsn(chunk.first.0.saturating_sub(1)))
        });
        for chunk in &chunks {
            let Some(current) = tail else { break };
            if chunk.first.0 <= current.0 + 1 {
                tail = Some(current.max(chunk.last));
            }
        }
        if let Some(newest) = chunks.last() {
            self.newest_listed = Some(*newest);
        }
        self.tail = Some(tail.unwrap_or(Lsn::ZERO));
        true
    }

    async fn report_watermark(&mut self, status: &ArchivePartition) {
        let Some(tail) = self.tail.filter(|tail| tail.0 > status.watermark) else {
            return;
        };
        let node = self.shared.node.clone();
        let partition = self.partition_id;
        let reported =
            tokio::task::spawn_blocking(move || node.report_watermark(partition, tail)).await;
        match reported {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.log_error(format!("reporting the watermark: {e}")),
            Err(e) => self.log_error(format!("reporting the watermark: {e}")),
        }
    }

    /// Reads committed entries after what is pending, up to `applied`, until about twice the
    /// chunk target is pending.
    async fn read_committed(&mut self, applied: Lsn) -> Result<(), String> {
        let Some(tail) = self.tail else {
            return Ok(());
        };
        let next = Lsn(tail.0 + self.pending.len() as u64 + 1);
        if next > applied {
            return Ok(());
        }
        let limit = if self.grow {
            CHUNK_HARD_LIMIT_BYTES
        } else {
            2 * self.shared.config.chunk_target_bytes
        };
        let budget = limit.saturating_sub(self.pending_bytes);
        if budget == 0 {
            return Ok(());
        }
        let dir = self.wal_dir.clone();
        let resume = self.resume.take().filter(|point| point.next_lsn() == next);
        let read = tokio::task::spawn_blocking(move || {
            let entries = match &resume {
                Some(point) => resume_entries(&dir, point).or_else(|_| read_entries(&dir, next)),
                None => read_entries(&dir, next),
            }
            .map_err(|e| format!("reading the WAL in {}: {e}", dir.display()))?;
            let mut entries = entries.stop_after(applied);
            let mut read = Vec::new();
            let mut bytes = 0u64;
            for entry in entries.by_ref() {
                let entry =
                    entry.map_err(|e| format!("reading the WAL in {}: {e}", dir.display()))?;
                bytes += entry.encoded_len() as u64;
                read.push(entry);
                if bytes >= budget {
                    break;
                }
            }
            Ok::<_, String>((read, bytes, entries.resume_point()))
        })
        .await
        .map_err(|e| format!("WAL reader: {e}"))??;
        let (entries, bytes, resume) = read;
        if let Some(first) = entries.first()
            && first.lsn != next
        {
            return Err(format!(
                "the WAL yielded LSN {} where {next} was expected",
                first.lsn
            ));
        }
        self.pending.extend(entries);
        self.pending_bytes += bytes;
        self.resume = resume;
        Ok(())
    }

    fn chunk_due(&self) -> bool {
        let Some(oldest) = self.pending.front() else {
            return false;
        };
        self.pending_bytes >= self.shared.config.chunk_target_bytes
            || now_ms().saturating_sub(oldest.timestamp_ms) >= self.shared.config.chunk_max_age_ms
    }

    /// Cuts the pending entries at the newest digest point the node knows among them,
    /// uploads the chunk and advances the tail. `Ok(false)` if no chunk could be cut yet.
    async fn cut_and_upload(
        &mut self,
        updates: &watch::Receiver<Option<ArchivePartition>>,
        stop: &watch::Receiver<bool>,
    ) -> Result<bool, String> {
        let (Some(first), Some(last)) = (self.pending.front(), self.pending.back()) else {
            return Ok(false);
        };
        let (first, last) = (first.lsn, last.lsn);
        let node = self.shared.node.clone();
        let partition = self.partition_id;
        let point = tokio::task::spawn_blocking(move || node.digest_at_or_below(partition, last))
            .await
            .map_err(|e| format!("digest lookup: {e}"))??;
        let Some((end, digest)) = point.filter(|(lsn, _)| *lsn >= first) else {
            self.grow = true;
            if self.pending_bytes >= CHUNK_HARD_LIMIT_BYTES {
                return Err(format!(
                    "no state digest known between LSN {first} and {last}: the chunk cannot be sealed"
                ));
            }
            return Ok(false);
        };
        let count = (end.0 - first.0 + 1) as usize;
        let entries: Vec<Entry> = self.pending.iter().take(count).cloned().collect();
        let encoded = tokio::task::spawn_blocking(move || encode_chunk(&entries, &digest))
            .await
            .map_err(|e| format!("encoding: {e}"))?
            .map_err(|e| format!("encoding a chunk: {e}"))?;
        let name = WalChunkName {
            table_id: self.table_id,
            partition_id: self.partition_id,
            first,
            last: end,
        };
        let bytes = Bytes::from(encoded);
        if !self
            .upload_with_retries(&name, bytes.clone(), updates, stop)
            .await
        {
            return Ok(false);
        }
        let now = now_ms();
        self.shared.metrics.observe_archived(
            self.pending
                .iter()
                .take(count)
                .map(|entry| now.saturating_sub(entry.timestamp_ms) as f64 / 1000.0),
        );
        let chunk_bytes: u64 = self
            .pending
            .drain(..count)
            .map(|entry| entry.encoded_len() as u64)
            .sum();
        self.pending_bytes -= chunk_bytes;
        self.tail = Some(end);
        self.grow = false;
        Ok(true)
    }

    /// Uploads until it succeeds; false if it gave up (leadership lost, stopping, split
    /// brain).
    async fn upload_with_retries(
        &mut self,
        name: &WalChunkName,
        bytes: Bytes,
        updates: &watch::Receiver<Option<ArchivePartition>>,
        stop: &watch::Receiver<bool>,
    ) -> bool {
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        let mut wait = ArchiverConfig::ms(config.retry_initial_ms);
        loop {
            let outcome = {
                let _permit = self.shared.uploads.acquire().await;
                upload_chunk(&self.shared.archive, name, bytes.clone()).await
            };
            match outcome {
                Ok(uploaded) => {
                    let size = bytes.len() as u64;
                    self.shared.metrics.update(
                        self.table_id,
                        self.partition_id,
                        |m| match uploaded {
                            Uploaded::Created => {
                                m.uploads += 1;
                                m.upload_bytes += size;
                            }
                            Uploaded::AlreadyThere => m.already_there += 1,
                        },
                    );
                    tracing::debug!(chunk = %name.key(), ?uploaded, size, "chunk archived");
                    return true;
                }
                Err(ArchiveError::SplitBrain { path }) => {
                    tracing::error!(
                        table_id = self.table_id,
                        partition = self.partition_id,
                        object = %path,
                        "ALARM split brain: the archive holds different entries under this chunk's name; archiving of the partition stopped until an operator looks"
                    );
                    self.stopped = true;
                    self.shared
                        .metrics
                        .update(self.table_id, self.partition_id, |m| {
                            m.split_brain += 1;
                            m.leader = false;
                        });
                    return false;
                }
                Err(e) => {
                    self.shared
                        .metrics
                        .update(self.table_id, self.partition_id, |m| m.retries += 1);
                    self.log_error(format!("uploading {}: {e}", name.key()));
                }
            }
            let jittered = wait.mul_f64(0.5 + fastrand::f64());
            tokio::time::sleep(jittered).await;
            wait = (wait * 2).min(ArchiverConfig::ms(config.retry_max_ms));
            if *stop.borrow() {
                return false;
            }
            let still_leads = updates.borrow().as_ref().is_some_and(Self::uploads_here);
            if !still_leads {
                self.forget_pending();
                return false;
            }
        }
    }
}

/// The partition's chunk names after `after` (all, for `None`), in LSN order.
async fn list_chunks_after(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
    after: Option<&WalChunkName>,
) -> Result<Vec<WalChunkName>, ArchiveError> {
    use futures_util::TryStreamExt as _;
    let dir = layout::wal_dir(table_id, partition_id);
    let prefix = archive.path_of(&dir)?;
    let objects: Vec<object_store::ObjectMeta> = match after {
        Some(after) => {
            let offset = archive.path_of(&after.key())?;
            archive
                .store()
                .list_with_offset(Some(&prefix), &offset)
                .try_collect()
                .await
        }
        None => archive.store().list(Some(&prefix)).try_collect().await,
    }
    .map_err(|source| ArchiveError::ObjectStore {
        operation: "list",
        path: prefix.to_string(),
        source,
    })?;
    let mut names: Vec<WalChunkName> = objects
        .iter()
        .filter_map(|meta| {
            let file = meta.location.filename()?;
            WalChunkName::parse(&format!("{dir}/{file}")).ok()
        })
        .collect();
    names.sort();
    Ok(names)
}

use ddb::service::now_ms;
