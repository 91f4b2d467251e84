//! Checking what an archive holds for one partition.

use std::fmt;

use super::ArchiveError;
use super::chunk::{ChunkError, decode_chunk, successor};
use super::layout::WalChunkName;
use super::store::{Archive, list_wal};
use crate::wal::Lsn;

/// What [`verify_partition`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Chunks listed.
    pub chunks: usize,
    /// End of the run of chunks that decode and follow each other without gap or overlap,
    /// starting at the first chunk; [`Lsn::ZERO`] if the first chunk is already bad or there is
    /// none.
    pub last_verified_lsn: Lsn,
    /// Every problem, in LSN order. Empty means the archive is sound.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when no problem was found.
    #[must_use]
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing wrong with a partition's archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// An object does not decode as a chunk.
    Corrupt {
        /// The object.
        object: String,
        /// What is wrong with it.
        error: ChunkError,
    },
    /// A chunk decodes, but holds other LSNs than its name says.
    NameMismatch {
        /// The object.
        object: String,
        /// LSNs the chunk holds.
        holds: (Lsn, Lsn),
    },
    /// LSNs between two consecutive chunks are in no chunk.
    Gap {
        /// The chunk before the gap.
        before: String,
        /// The chunk after the gap.
        after: String,
        /// First missing LSN.
        missing_from: Lsn,
        /// Last missing LSN.
        missing_to: Lsn,
    },
    /// Two consecutive chunks share LSNs.
    Overlap {
        /// The earlier chunk.
        before: String,
        /// The later chunk.
        after: String,
    },
    /// The first chunk does not start at LSN 1.
    MissingStart {
        /// The first chunk.
        first: String,
    },
    /// An object in the partition's `wal/` directory that is not a chunk name.
    ForeignObject {
        /// The object.
        object: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Corrupt { object, error } => write!(f, "{object}: corrupt: {error}"),
            Problem::NameMismatch { object, holds } => {
                write!(f, "{object}: holds LSNs {}..={}", holds.0, holds.1)
            }
            Problem::Gap {
                before,
                after,
                missing_from,
                missing_to,
            } => write!(
                f,
                "gap: LSNs {missing_from}..={missing_to} missing between {before} and {after}"
            ),
            Problem::Overlap { before, after } => write!(f, "overlap: {before} and {after}"),
            Problem::MissingStart { first } => {
                write!(f, "first chunk {first} does not start at LSN 1")
            }
            Problem::ForeignObject { object } => write!(f, "{object}: not a WAL chunk name"),
        }
    }
}

/// Downloads and decodes every WAL chunk of a partition and checks that they cover LSNs from 1
/// on without gap or overlap. Problems with objects are reported, not returned as errors; an
/// error means the archive could not be read at all.
pub async fn verify_partition(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
) -> Result<VerifyReport, ArchiveError> {
    let listing = list_wal(archive, table_id, partition_id).await?;
    let mut report = VerifyReport {
        chunks: listing.chunks.len(),
        ..VerifyReport::default()
    };
    report.problems.extend(
        listing
            .foreign
            .into_iter()
            .map(|object| Problem::ForeignObject { object }),
    );
    // The verified run stays open while every chunk so far is sound and contiguous.
    let mut run_open = true;
    let mut previous: Option<&WalChunkName> = None;
    for name in &listing.chunks {
        let sound = check_chunk(archive, name, &mut report.problems).await?;
        let contiguous = match previous {
            None if name.first == Lsn(1) => true,
            None => {
                report
                    .problems
                    .push(Problem::MissingStart { first: name.key() });
                false
            }
            Some(before) => check_neighbours(before, name, &mut report.problems),
        };
        run_open &= sound && contiguous;
        if run_open {
            report.last_verified_lsn = name.last;
        }
        previous = Some(name);
    }
    Ok(report)
}

async fn check_chunk(
    archive: &Archive,
    name: &WalChunkName,
    problems: &mut Vec<Problem>,
) -> Result<bool, ArchiveError> {
    let path = archive.path_of(&name.key())?;
    let bytes = archive.get(&path).await?;
    match decode_chunk(&bytes) {
        Err(error) => {
            problems.push(Problem::Corrupt {
                object: name.key(),
                error,
            });
            Ok(false)
        }
        Ok(chunk) if (chunk.first_lsn(), chunk.last_lsn()) != (name.first, name.last) => {
            problems.push(Problem::NameMismatch {
                object: name.key(),
                holds: (chunk.first_lsn(), chunk.last_lsn()),
            });
            Ok(false)
        }
        Ok(_) => Ok(true),
    }
}

fn check_neighbours(
    before: &WalChunkName,
    after: &WalChunkName,
    problems: &mut Vec<Problem>,
) -> bool {
    let expected = successor(before.last);
    if Some(after.first) == expected {
        return true;
    }
    problems.push(
        if let Some(expected) = expected.filter(|expected| after.first > *expected) {
            Problem::Gap {
                before: before.key(),
                after: after.key(),
                missing_from: expected,
                missing_to: Lsn(after.first.0 - 1),
            }
        } else {
            Problem::Overlap {
                before: before.key(),
                after: after.key(),
            }
        },
    );
    false
}
