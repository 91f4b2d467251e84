//! The write-ahead log: the source of truth of every replica.
//!
//! An [`Entry`] carries a dense, per-partition [`Lsn`], the [`Ballot`] under which it was
//! proposed, a timestamp and an [`Operation`]. Entries are framed into segment files under
//! `<data>/wal/<partition>/`; see `docs/formats.md` for the byte layout.

mod entry;

pub use entry::{Ballot, Entry, EntryDecodeError, Lsn, Operation};
