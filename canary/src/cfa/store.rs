//! Where the engine's history and silences persist: `alarm-history.jsonl` (append-only, one
//! [`HistoryEntry`] per line) and `silences.json` (rewritten whole, atomically, on each change).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{HistoryEntry, Silence};

/// The history file's name inside the state directory.
pub const HISTORY_FILE: &str = "alarm-history.jsonl";
/// The silences file's name inside the state directory.
pub const SILENCES_FILE: &str = "silences.json";
/// How many history entries are kept in memory (and survive a restart).
pub const HISTORY_IN_MEMORY: usize = 10_000;

/// The contents of `silences.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SilencesFile {
    /// The id the next silence gets; never reused, even after its silence expires.
    pub(crate) next_id: u64,
    /// The silences not yet expired when the file was written.
    pub(crate) silences: Vec<Silence>,
}

/// The state directory.
#[derive(Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Creates the directory if needed.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cfa: creating state directory {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The newest [`HISTORY_IN_MEMORY`] entries, oldest first. A line that does not parse (a write
    /// torn by a crash) is skipped with a warning. When the file holds more than twice what is
    /// kept, it is rewritten with only the kept entries so it does not grow without bound.
    pub(crate) fn load_history(&self) -> anyhow::Result<VecDeque<HistoryEntry>> {
        let path = self.dir.join(HISTORY_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VecDeque::new()),
            Err(e) => return Err(e).with_context(|| format!("cfa: opening {}", path.display())),
        };
        let mut entries = VecDeque::new();
        let mut lines_read = 0_usize;
        for (number, line) in BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("cfa: reading {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            lines_read += 1;
            match serde_json::from_str::<HistoryEntry>(&line) {
                Ok(entry) => {
                    if entries.len() == HISTORY_IN_MEMORY {
                        entries.pop_front();
                    }
                    entries.push_back(entry);
                }
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    line = number + 1,
                    error = %e,
                    "cfa: skipping an unreadable alarm history line"
                ),
            }
        }
        if lines_read > 2 * HISTORY_IN_MEMORY {
            let mut text = String::new();
            for entry in &entries {
                text.push_str(&serde_json::to_string(entry)?);
                text.push('\n');
            }
            self.replace_file(HISTORY_FILE, text.as_bytes())?;
        }
        Ok(entries)
    }

    /// Appends `entries` to the history file and flushes them to the OS.
    pub(crate) fn append_history(&self, entries: &[HistoryEntry]) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for entry in entries {
            text.push_str(&serde_json::to_string(entry)?);
            text.push('\n');
        }
        let path = self.dir.join(HISTORY_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cfa: opening {}", path.display()))?;
        // One write per evaluation, so a crash tears at most the last line.
        file.write_all(text.as_bytes())
            .and_then(|()| file.flush())
            .with_context(|| format!("cfa: appending to {}", path.display()))
    }

    /// The silences file, or an empty one if there is none. A file that does not parse is an
    /// error: dropping silences silently would page people who asked not to be.
    pub(crate) fn load_silences(&self) -> anyhow::Result<SilencesFile> {
        let path = self.dir.join(SILENCES_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("cfa: parsing {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SilencesFile::default()),
            Err(e) => Err(e).with_context(|| format!("cfa: reading {}", path.display())),
        }
    }

    /// Replaces the silences file.
    pub(crate) fn save_silences(&self, silences: &SilencesFile) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(silences)?;
        self.replace_file(SILENCES_FILE, &bytes)
    }

    /// Writes `name` through a temporary file and a rename, so readers and crashes see the old
    /// contents or the new, never half.
    fn replace_file(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        let temporary = self.dir.join(format!("{name}.tmp"));
        let mut file = File::create(&temporary)
            .with_context(|| format!("cfa: creating {}", temporary.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cfa: writing {}", temporary.display()))?;
        fs::rename(&temporary, &path).with_context(|| {
            format!(
                "cfa: renaming {} to {}",
                temporary.display(),
                path.display()
            )
        })
    }
}
