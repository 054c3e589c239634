//! Full integrity check: MANIFEST, every log record and the hash chain,
//! every data chunk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{read_disk_pair, DiskPair};
use crate::data::check::read_chunk;
use crate::data::DataFile;
use crate::format::manifest::decode_manifest;
use crate::format::record::decode_log_header;
use crate::format::{DATA_DIR, LOCK, LOG_HEADER_BYTES};
use crate::io::vfs::{OpenMode, Vfs};
use crate::log::walker::{LogEnd, LogWalker};
use crate::model::state::ArrayMeta;
use crate::model::sums::CHUNK_BYTES;

/// One problem found by [`Store::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The damaged file.
    pub file: PathBuf,
    /// The array concerned, if any.
    pub array: Option<String>,
    /// The checksum chunk concerned, if any.
    pub chunk: Option<u64>,
    /// Byte range within the file, if known.
    pub range: Option<(u64, u64)>,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(a) = &self.array {
            write!(f, " (array '{a}')")?;
        }
        if let Some(c) = self.chunk {
            write!(f, " chunk {c}")?;
        }
        if let Some((s, e)) = self.range {
            write!(f, " bytes {s}..{e}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What [`Store::verify`] checked and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub arrays: u64,
    pub chunks: u64,
    pub data_bytes: u64,
    pub records: u64,
    /// Bytes appended since the last checksum refresh (checked from the next
    /// checkpoint on; reported, never counted as verified).
    pub unchecksummed_bytes: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Problem {
    pub(crate) fn in_file(file: &Path, detail: impl Into<String>) -> Problem {
        Problem {
            file: file.to_path_buf(),
            array: None,
            chunk: None,
            range: None,
            detail: detail.into(),
        }
    }

    fn with_range(mut self, range: (u64, u64)) -> Problem {
        self.range = Some(range);
        self
    }

    fn of_array(mut self, name: &str) -> Problem {
        self.array = Some(name.to_string());
        self
    }
}

/// One array to check: its name, a snapshot of its metadata, and the path
/// of its data file (opened while it is checked, one at a time, so that
/// verifying any number of arrays holds one file open).
pub(crate) type ArrayToCheck = (String, Arc<ArrayMeta>, PathBuf);

/// Check the MANIFEST and the live log on disk (they may be newer than the
/// handle's state) and, if `arrays` is given, every checksummed chunk of
/// those arrays. `writer`: an incomplete record at the end of the log is a
/// problem (on a reader it may be a write in progress); that and a damaged
/// one are judged on a second look (see [`check_log`]).
pub(crate) fn verify_store(
    vfs: &dyn Vfs,
    dir: &Path,
    writer: bool,
    arrays: Option<Vec<ArrayToCheck>>,
    progress: &mut dyn FnMut(u64, u64),
) -> VerifyReport {
    let mut rep = VerifyReport::default();
    check_log(&mut rep, vfs, dir, writer);
    if let Some(arrays) = arrays {
        rep.arrays = arrays.len() as u64;
        check_data(&mut rep, vfs, dir, arrays, progress);
    }
    rep
}

/// How long `verify()` waits for the writer lock before it looks again at
/// a log that ends in an incomplete or damaged record (an exclusive writer,
/// this handle perhaps, holds the lock until it closes).
const TAIL_WAIT: Duration = Duration::from_secs(1);

/// FORMAT.md §14 steps 1–2. A reported incomplete or damaged record at the
/// end of the log may be one that another writer is writing right now (a
/// writer holds the writer lock while it commits, and others read the log
/// meanwhile; under `Sync::Always` a record is written over preallocated
/// zeros, so a part of it looks damaged): such a log is read once more,
/// under the writer lock if it can be had within [`TAIL_WAIT`] (no record
/// is then being written), else as found by then; only that second reading
/// is judged.
fn check_log(rep: &mut VerifyReport, vfs: &dyn Vfs, dir: &Path, writer: bool) {
    let mut walked = walk_disk_log(vfs, dir, writer);
    if walked.tail_in_doubt {
        let held = vfs.lock_exclusive(&dir.join(LOCK), Some(TAIL_WAIT));
        walked = walk_disk_log(vfs, dir, writer);
        drop(held);
    }
    rep.records += walked.records;
    rep.problems.extend(walked.problems);
}

/// What one reading of the MANIFEST and its log found.
#[derive(Default)]
struct Walked {
    records: u64,
    problems: Vec<Problem>,
    /// The log ends in an incomplete or damaged record, reported as a
    /// problem: perhaps a write in progress.
    tail_in_doubt: bool,
}

/// Read a consistent MANIFEST and live-log pair (a writer's checkpoint can
/// replace the MANIFEST and delete the log it named between two reads, as
/// at open) and walk the log. `writer`: an incomplete record at the end is
/// a problem (on a reader it may be a write in progress).
fn walk_disk_log(vfs: &dyn Vfs, dir: &Path, writer: bool) -> Walked {
    let mut out = Walked::default();
    let DiskPair {
        manifest_path,
        manifest,
        log,
    } = read_disk_pair(vfs, dir);
    let disk_state = match manifest.map(|b| decode_manifest(&b)) {
        Ok(Ok((s, _))) => s,
        Ok(Err(e)) => {
            let e = crate::recovery::header_err(&manifest_path, e);
            out.problems
                .push(Problem::in_file(&manifest_path, e.to_string()));
            return out;
        }
        Err(e) => {
            out.problems
                .push(Problem::in_file(&manifest_path, e.to_string()));
            return out;
        }
    };
    let Some((lpath, log)) = log else {
        return out;
    };
    let bytes = match log {
        Ok(b) => b,
        Err(e) => {
            out.problems.push(Problem::in_file(&lpath, e.to_string()));
            return out;
        }
    };
    if let Err(e) = decode_log_header(&bytes) {
        let e = crate::recovery::header_err(&lpath, e);
        out.problems
            .push(Problem::in_file(&lpath, format!("bad log header: {e}")));
        return out;
    }
    let mut walker = LogWalker::new(&bytes, LOG_HEADER_BYTES, disk_state.seq, disk_state.chain);
    out.records = walker.by_ref().count() as u64;
    let len = bytes.len() as u64;
    let at = walker.pos();
    match walker.into_end() {
        LogEnd::Clean => {}
        LogEnd::Incomplete(_) => {
            if writer {
                out.tail_in_doubt = true;
                let p = Problem::in_file(&lpath, "incomplete record at the end of the log");
                out.problems.push(p.with_range((at, len)));
            }
        }
        LogEnd::Damaged(e) => {
            out.tail_in_doubt = true;
            let p = Problem::in_file(&lpath, e.what.clone());
            out.problems.push(p.with_range((at, len)));
        }
        end @ LogEnd::ChainBroken { offset, len, .. } => {
            let p = Problem::in_file(&lpath, end.describe());
            out.problems.push(p.with_range((offset, offset + len)));
        }
    }
    out
}

/// FORMAT.md §14 step 3: every checksummed chunk of every array.
fn check_data(
    rep: &mut VerifyReport,
    vfs: &dyn Vfs,
    dir: &Path,
    arrays: Vec<ArrayToCheck>,
    progress: &mut dyn FnMut(u64, u64),
) {
    let total: u64 = arrays.iter().map(|(_, a, _)| a.sums.covered).sum();
    let mut done = 0u64;
    let mut buf = vec![0u8; CHUNK_BYTES as usize];
    for (name, a, path) in arrays {
        rep.unchecksummed_bytes += a.phys_bytes().saturating_sub(a.sums.covered);
        let df = match vfs.open(&path, OpenMode::Read) {
            Ok(f) => DataFile::new(path, f),
            Err(e) => {
                let e = crate::model::error::Error::io(&path, e);
                let p = Problem::in_file(&dir.join(DATA_DIR), e.to_string());
                rep.problems.push(p.of_array(&name));
                continue;
            }
        };
        match df.file.len() {
            Ok(len) if len < a.phys_bytes() => {
                let detail = format!("file holds {len} bytes, the array needs {}", a.phys_bytes());
                let p = Problem::in_file(&df.path, detail).of_array(&name);
                rep.problems.push(p.with_range((len, a.phys_bytes())));
            }
            Err(e) => {
                rep.problems
                    .push(Problem::in_file(&df.path, e.to_string()).of_array(&name));
                continue;
            }
            _ => {}
        }
        for c in 0..a.sums.sums.len() {
            let (s, e) = a.sums.range(c);
            rep.chunks += 1;
            let bad = match read_chunk(&df, &a.sums, c, [&mut buf[..(e - s) as usize]]) {
                Ok(true) => None,
                Ok(false) => Some("checksum mismatch".to_string()),
                Err(err) => Some(format!("cannot read: {err}")),
            };
            if let Some(detail) = bad {
                let mut p = Problem::in_file(&df.path, detail).of_array(&name);
                p.chunk = Some(c as u64);
                rep.problems.push(p.with_range((s, e)));
            }
            rep.data_bytes += e - s;
            done += e - s;
            progress(done, total);
        }
    }
}
