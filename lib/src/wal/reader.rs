//! Sequential reading of entries across segments, for the writer's `read_from` and for other
//! processes (the archiver) through [`read_entries`].

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::frame::{self, FRAME_HEADER_LEN, FrameHeader, FrameRead, HEADER_LEN};
use super::index::SeekPoint;
use super::segment::{self, segment_file_name};
use super::{Entry, Lsn, WalError};

/// Iterates the entries of a WAL directory in LSN order, crossing segment boundaries.
///
/// Created by [`crate::wal::Wal::read_from`] (bounded by the durable LSN at the call; any bad
/// record below that bound is an error) or by [`read_entries`] (unbounded; a torn record at the
/// end of the newest segment ends the iteration). After yielding an error it yields nothing more.
#[derive(Debug)]
pub struct WalEntries {
    dir: PathBuf,
    /// Entries below this are read and checked but not yielded.
    from: Lsn,
    /// The LSN the next record must carry.
    next_lsn: Lsn,
    /// `Some(durable LSN)` when every entry up to it is known to be durable.
    limit: Option<Lsn>,
    /// Entries above this are not read at all (see [`WalEntries::stop_after`]).
    stop_after: Option<Lsn>,
    current: Option<OpenSegment>,
    /// Where the next record would be read, kept when the iteration ends.
    resume: Option<ResumePoint>,
    done: bool,
}

/// Where a tail reader stopped: the segment, the offset of the next record and its LSN.
/// [`resume_entries`] continues from it without re-reading the segment from its start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumePoint {
    segment: PathBuf,
    offset: u64,
    next_lsn: Lsn,
}

impl ResumePoint {
    /// A point of the writer's index, in `dir`.
    pub(crate) fn at(dir: &Path, point: SeekPoint) -> ResumePoint {
        ResumePoint {
            segment: dir.join(segment_file_name(point.segment_first)),
            offset: point.offset,
            next_lsn: point.lsn,
        }
    }

    /// The LSN the next record read from here must carry.
    #[must_use]
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }
}

/// Continues a tail read ([`read_entries`]) where an earlier one stopped. If the segment is
/// gone (deleted below a watermark), the caller starts over with [`read_entries`].
pub fn resume_entries(dir: &Path, point: &ResumePoint) -> Result<WalEntries, WalError> {
    let mut entries = WalEntries {
        dir: dir.to_path_buf(),
        from: point.next_lsn,
        next_lsn: point.next_lsn,
        limit: None,
        stop_after: None,
        current: None,
        resume: None,
        done: false,
    };
    entries.current = Some(entries.open_segment(&point.segment, false, point.offset)?);
    Ok(entries)
}

#[derive(Debug)]
struct OpenSegment {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
}

enum Step {
    Entry(Entry, u64),
    CleanEnd,
    Bad { offset: u64, reason: String },
}

/// Reads the entries of the WAL in `dir` from LSN `from` onward, without taking the writer's
/// lock: for another process (the archiver) reading a live node's log.
///
/// Every record is checksummed and LSNs must be dense. A short or damaged record at the end of
/// the newest segment (a write in progress, or a torn tail), or the zero bytes the writer
/// preallocates ahead of its write position, simply ends the iteration; the same
/// in an older segment is [`WalError::Corruption`]. Records that a live writer has written but
/// not yet synced may be returned: callers that need committed entries only must bound the
/// iteration by a commit LSN learned elsewhere. An empty or missing directory yields nothing; a
/// `from` below the oldest retained segment is [`WalError::BelowRetained`].
pub fn read_entries(dir: &Path, from: Lsn) -> Result<WalEntries, WalError> {
    let segments = segment::list_segments(dir)?;
    let Some(oldest) = segments.first() else {
        return Ok(WalEntries::empty(dir, from));
    };
    if from < oldest.first_lsn {
        return Err(WalError::BelowRetained {
            requested: from,
            first: oldest.first_lsn,
        });
    }
    let start = segments
        .iter()
        .rev()
        .find(|s| s.first_lsn <= from)
        .unwrap_or(oldest);
    WalEntries::starting_at(dir, SeekPoint::segment_start(start.first_lsn), from, None)
}

impl WalEntries {
    pub(crate) fn empty(dir: &Path, from: Lsn) -> WalEntries {
        WalEntries {
            dir: dir.to_path_buf(),
            from,
            next_lsn: from,
            limit: None,
            stop_after: None,
            current: None,
            resume: None,
            done: true,
        }
    }

    /// Starts reading at `start` (a record boundary at or before `from`: a segment's start, or a
    /// point of the writer's index), yielding from `from`. The segment's header is checked
    /// either way.
    pub(crate) fn starting_at(
        dir: &Path,
        start: SeekPoint,
        from: Lsn,
        limit: Option<Lsn>,
    ) -> Result<WalEntries, WalError> {
        let mut entries = WalEntries {
            dir: dir.to_path_buf(),
            from,
            next_lsn: start.segment_first,
            limit,
            stop_after: None,
            current: None,
            resume: None,
            done: false,
        };
        let path = dir.join(segment_file_name(start.segment_first));
        entries.current = Some(entries.open_segment(&path, true, start.offset)?);
        entries.next_lsn = start.lsn;
        Ok(entries)
    }

    /// Ends the iteration after the entry at `lsn` without reading further records (a tail
    /// reader bounded by a commit LSN: the record after it may still change).
    #[must_use]
    pub fn stop_after(mut self, lsn: Lsn) -> Self {
        self.stop_after = Some(lsn);
        self
    }

    /// Where reading on with [`resume_entries`] continues right after the last entry yielded:
    /// at any time while the iteration runs (a caller may stop early), or where it ended.
    /// `None` for an empty log and after an error.
    #[must_use]
    pub fn resume_point(&self) -> Option<ResumePoint> {
        if self.done {
            return self.resume.clone();
        }
        self.current.as_ref().map(|current| ResumePoint {
            segment: current.path.clone(),
            offset: current.offset,
            next_lsn: self.next_lsn,
        })
    }

    /// Opens a segment, checks its header if asked (it must start at `next_lsn`), and positions
    /// it at `offset`, a record boundary (`HEADER_LEN` for its first record).
    fn open_segment(
        &self,
        path: &Path,
        check_header: bool,
        offset: u64,
    ) -> Result<OpenSegment, WalError> {
        let mut file = File::open(path).map_err(WalError::io("open segment", path))?;
        if check_header {
            // Unbuffered: a reader that then seeks far into the segment reads no more.
            let mut header = [0u8; HEADER_LEN];
            let got = fill(&mut file, &mut header).map_err(WalError::io("read segment", path))?;
            let corrupt = |reason: String| WalError::Corruption {
                segment: path.to_path_buf(),
                offset: 0,
                reason,
            };
            let first = frame::decode_header(&header[..got]).map_err(corrupt)?;
            if first != self.next_lsn {
                return Err(corrupt(format!(
                    "segment starts at LSN {first}, expected {}",
                    self.next_lsn
                )));
            }
        }
        if !check_header || offset > HEADER_LEN as u64 {
            file.seek(SeekFrom::Start(offset))
                .map_err(WalError::io("seek segment", path))?;
        }
        Ok(OpenSegment {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(256 * 1024, file),
            offset,
        })
    }

    fn next_inner(&mut self) -> Result<Option<Entry>, WalError> {
        loop {
            if self.limit.is_some_and(|limit| self.next_lsn > limit)
                || self.stop_after.is_some_and(|last| self.next_lsn > last)
            {
                return Ok(None);
            }
            let Some(current) = self.current.as_mut() else {
                return Ok(None);
            };
            let step = read_record(current)?;
            // The segment that would hold the next LSN. It is the current one when the current
            // segment holds no record yet (a new log, or a crash right after rotation): then
            // there is no successor, and reopening it would loop forever.
            let successor = self.dir.join(segment_file_name(self.next_lsn));
            let has_successor = successor != current.path && successor.exists();
            match step {
                Step::Entry(entry, len) => {
                    if entry.lsn != self.next_lsn {
                        return Err(WalError::Corruption {
                            segment: current.path.clone(),
                            offset: current.offset,
                            reason: format!(
                                "record has LSN {} where {} was expected",
                                entry.lsn, self.next_lsn
                            ),
                        });
                    }
                    current.offset += len;
                    self.next_lsn = self.next_lsn.next();
                    if entry.lsn >= self.from {
                        return Ok(Some(entry));
                    }
                }
                Step::CleanEnd if has_successor => {
                    if self.limit.is_none() && file_len(&successor)? < HEADER_LEN as u64 {
                        // The writer is creating this segment; its header is not complete yet.
                        return Ok(None);
                    }
                    self.current = Some(self.open_segment(&successor, true, HEADER_LEN as u64)?);
                }
                Step::CleanEnd if self.limit.is_some() => {
                    return Err(WalError::Corruption {
                        segment: current.path.clone(),
                        offset: current.offset,
                        reason: format!("log ends before durable LSN {}", self.next_lsn),
                    });
                }
                Step::CleanEnd => return Ok(None),
                Step::Bad { offset, reason } => {
                    let path = current.path.clone();
                    if self.limit.is_none() && !has_successor {
                        // A torn tail or a record being written: the end, for a tail reader.
                        return Ok(None);
                    }
                    if self.limit.is_none() {
                        // A successor exists, so this segment was complete (and cut to its last
                        // record) before it was created: read once more in case we raced with a
                        // write, or read the preallocated zeros the writer has since cut off.
                        let mut reopened = self.open_segment(&path, false, offset)?;
                        if let Step::Entry(..) | Step::CleanEnd = read_record(&mut reopened)? {
                            let reopened = self.open_segment(&path, false, offset)?;
                            self.current = Some(reopened);
                            continue;
                        }
                    }
                    return Err(WalError::Corruption {
                        segment: path,
                        offset,
                        reason,
                    });
                }
            }
        }
    }
}

impl Iterator for WalEntries {
    type Item = Result<Entry, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_inner().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
            if let (None, Some(current)) = (&item, self.current.take()) {
                self.resume = Some(ResumePoint {
                    segment: current.path,
                    offset: current.offset,
                    next_lsn: self.next_lsn,
                });
            }
        }
        item
    }
}

/// Reads the record at the segment's current offset (without advancing `offset`).
fn read_record(segment: &mut OpenSegment) -> Result<Step, WalError> {
    let io = WalError::io("read segment", &segment.path);
    let offset = segment.offset;
    let mut head = [0u8; FRAME_HEADER_LEN];
    let got = fill(&mut segment.reader, &mut head).map_err(io)?;
    if got == 0 {
        return Ok(Step::CleanEnd);
    }
    let bad = |reason: String| Ok(Step::Bad { offset, reason });
    if got < FRAME_HEADER_LEN {
        return bad("file ends inside a record header".to_string());
    }
    let header = FrameHeader::parse(head);
    if !header.plausible() {
        return bad(format!("implausible record length {}", header.body_len));
    }
    let mut body = vec![0u8; header.body_len];
    let got = fill(&mut segment.reader, &mut body)
        .map_err(WalError::io("read segment", &segment.path))?;
    if got < body.len() {
        return bad("file ends inside a record".to_string());
    }
    match frame::check_body(header, &body) {
        FrameRead::Good { entry, len } => Ok(Step::Entry(entry, len as u64)),
        FrameRead::Undecodable(e) => bad(format!("record does not decode: {e}")),
        FrameRead::BadChecksum(reason) => bad(reason),
        FrameRead::Short => bad("file ends inside a record".to_string()),
    }
}

fn file_len(path: &Path) -> Result<u64, WalError> {
    Ok(std::fs::metadata(path)
        .map_err(WalError::io("stat segment", path))?
        .len())
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
