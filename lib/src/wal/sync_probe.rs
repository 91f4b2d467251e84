//! The disk's own sync rate for writes like the WAL's: a record written over zeros that were
//! written and synced first (as segments are preallocated), then `fdatasync`, so no sync carries
//! a file-size change. The baseline the WAL's group commit (`cargo bench --bench wal_append`)
//! and a node's write throughput (`ddbctl bench --sync-baseline`) are read against.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A probe file, removed when dropped.
pub struct SyncProbe {
    path: PathBuf,
    file: File,
    /// Where the next record goes.
    offset: u64,
    /// Zeros written and synced up to here.
    zeroed: u64,
}

impl SyncProbe {
    /// Creates the probe file at `path`, which must not exist.
    ///
    /// # Errors
    /// The file exists or cannot be created.
    pub fn create(path: &Path) -> std::io::Result<SyncProbe> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(SyncProbe {
            path: path.to_path_buf(),
            file,
            offset: 0,
            zeroed: 0,
        })
    }

    /// Writes and syncs zeros for the next `records` records of `record_bytes` (untimed work);
    /// nothing when they are zeroed already.
    ///
    /// # Errors
    /// A write or sync fails, or the size overflows.
    pub fn prepare(&mut self, records: u64, record_bytes: usize) -> std::io::Result<()> {
        let needed = records
            .checked_mul(record_bytes as u64)
            .and_then(|bytes| bytes.checked_add(self.offset))
            .ok_or_else(|| std::io::Error::other("sync probe size overflows"))?;
        if self.zeroed >= needed {
            return Ok(());
        }
        let zeros = vec![0u8; 1 << 20];
        while self.zeroed < needed {
            self.file.write_all_at(&zeros, self.zeroed)?;
            self.zeroed += zeros.len() as u64;
        }
        self.file.sync_all()
    }

    /// Writes `record` over the prepared zeros and `fdatasync`s it.
    ///
    /// # Errors
    /// The write or the sync fails.
    pub fn write_and_sync(&mut self, record: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(record, self.offset)?;
        self.offset += record.len() as u64;
        self.file.sync_data()
    }

    /// Prepares `max_syncs` records of `record_bytes`, then writes and syncs them one at a time
    /// until `time` has passed or all are done; the syncs made and the time they took.
    ///
    /// # Errors
    /// A write or sync fails.
    pub fn measure(
        &mut self,
        record_bytes: usize,
        time: Duration,
        max_syncs: u64,
    ) -> std::io::Result<(u64, Duration)> {
        self.prepare(max_syncs, record_bytes)?;
        let record = vec![0x5Au8; record_bytes];
        let started = Instant::now();
        let mut syncs = 0;
        while syncs < max_syncs && started.elapsed() < time {
            self.write_and_sync(&record)?;
            syncs += 1;
        }
        Ok((syncs, started.elapsed()))
    }
}

impl Drop for SyncProbe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_probe_stops_at_its_count_writes_over_zeros_and_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe");
        let mut probe = SyncProbe::create(&path).unwrap();
        assert!(
            SyncProbe::create(&path).is_err(),
            "an existing file is not reused"
        );
        // A time no disk needs for 50 syncs: the count is what stops it.
        let (syncs, _) = probe.measure(200, Duration::from_secs(600), 50).unwrap();
        assert_eq!(syncs, 50);
        let written = std::fs::read(&path).unwrap();
        assert_eq!(&written[..50 * 200], &[0x5A; 50 * 200][..]);
        assert!(
            written[50 * 200..].iter().all(|b| *b == 0),
            "the rest stays zero"
        );
        drop(probe);
        assert!(!path.exists(), "probe file left behind");
    }

    #[test]
    fn a_probe_stops_at_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut probe = SyncProbe::create(&dir.path().join("probe")).unwrap();
        let (syncs, _) = probe.measure(200, Duration::ZERO, 50).unwrap();
        assert_eq!(syncs, 0, "no time left for a single sync");
    }
}
