//! The write-ahead log: the source of truth of every replica.
//!
//! An [`Entry`] carries a dense, per-partition [`Lsn`], the [`Ballot`] under which it was
//! proposed, a timestamp and an [`Operation`]. Entries are framed into segment files under
//! `<data>/wal/<partition>/`; see `docs/formats.md` for the byte layout.
//!
//! - [`Wal`] appends durably with group commit, reads, truncates and retires segments.
//! - [`read_entries`] reads a directory without the writer (another process's live log).
//! - [`inspect`] reports what every segment holds, for `ddbctl wal inspect`.
//!
//! Recovery on [`Wal::open`] cuts a torn tail of the last segment, keeps the zeros the writer
//! preallocates after its last record, and refuses any other damage with
//! [`WalError::Corruption`].

mod entry;
mod error;
pub mod frame;
mod index;
mod inspect;
mod log;
mod options;
mod reader;
mod recovery;
pub mod segment;
pub mod sync_probe;

pub use entry::{Ballot, Entry, EntryDecodeError, Lsn, Operation};
pub use error::WalError;
pub use inspect::{SegmentInspection, SegmentVerdict, WalInspection, inspect};
pub use log::Wal;
pub use options::{AppendTicket, WalOptions, WalStats};
pub use reader::{ResumePoint, WalEntries, read_entries, resume_entries};
pub use recovery::{RecoveryReport, TornTailCut};
