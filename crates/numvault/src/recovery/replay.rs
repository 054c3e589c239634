//! Replaying the log after the checkpoint (FORMAT.md §7.4).
//!
//! Phases: read the log (capped) and check its header; walk its records
//! ([`LogWalker`]), checking each op's data and applying it; apply the
//! damaged-tail rule where the walk ends; if records were accepted without
//! the data of a file a later record released, and the log ends before that
//! release, start again with the log cut before the first of them; finally
//! cut a bad tail (writer).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::header_err;
use super::payload::{check_payload, payload_region, session_sums_present, Presence};
use crate::data::FileTable;
use crate::format::history::CommitInfo;
use crate::format::record::decode_log_header;
use crate::format::{log_name, LOG_HEADER_BYTES, MAX_LOG_FILE_BYTES};
use crate::io::vfs::{OpenMode, VFile, Vfs};
use crate::log::read_capped;
use crate::log::walker::{durable_record_after, releases_after, LogEnd, LogWalker, Walked};
use crate::model::error::{Error, IoContext, Result};
use crate::model::op::{Op, Payload};
use crate::model::state::State;

/// Who replays: the writer redoes inline payloads, checks the checksums of
/// writable sessions' ends and cuts a bad tail; a reader only reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Writer,
    Reader,
}

/// What replaying the log found.
pub(crate) struct Replayed {
    /// The live log, open (read-write for the writer).
    pub file: Arc<dyn VFile>,
    pub path: PathBuf,
    /// Offset just past the last valid record.
    pub end: u64,
    /// Bytes of the file (records and preallocated zeros) after the replay.
    pub alloc: u64,
    /// Bytes after `end` were dropped: a torn tail, or records dropped
    /// because their unsynced data did not survive.
    pub dropped_tail: bool,
    /// What the records said.
    pub found: Findings,
}

/// What the accepted records of a replay said, besides the state.
#[derive(Default)]
pub(crate) struct Findings {
    pub records: u64,
    /// Data files the replayed records made unreferenced.
    pub garbage: Vec<u64>,
    /// Summaries of the replayed records (writer), for HISTORY.
    pub commits: Vec<CommitInfo>,
    /// Data files the replayed records wrote payloads into.
    pub payload_files: HashSet<u64>,
    /// (seq, file id) of every replayed write into a data file whose bytes
    /// are only there (in-file payloads, writable sessions' ends): durable
    /// only once that seq is.
    pub written: Vec<(u64, u64)>,
    /// Data files inline payloads of the replayed records were written
    /// into: the log carries those bytes until a checkpoint folds it.
    pub written_inline: HashSet<u64>,
    /// The highest `synced_seq` a replayed record declares: every record up
    /// to it is durable.
    pub declared_synced: u64,
    /// (seq, file id) of the replayed Puts whose rows are in their file and
    /// were not synced before the record (`synced = 0`). A Put whose rows
    /// were synced first (`synced = 1`, `Sync::Always`) is never a fresh
    /// file: a power loss may keep its record and lose a later Release, and
    /// recovery then requires its rows (FORMAT.md §7.1 step 7, §7.4).
    pub in_file_puts: Vec<(u64, u64)>,
    /// The last replayed record holding an op whose data recovery checks
    /// against the files (`Op::checked_at_recovery`).
    pub last_checked_seq: u64,
}

/// Replay the log of `state.gen` in `dir` onto `state` (loaded from the
/// MANIFEST). `same_boot`: the log was last written or recovered in the
/// running boot, so every write that returned is readable and the checks
/// and redo of payloads (which only a power loss could fail) are skipped
/// (FORMAT.md §7.4). On error `state` is unspecified.
pub(crate) fn replay_log(
    vfs: &dyn Vfs,
    dir: &Path,
    state: &mut State,
    files: &mut FileTable,
    mode: Mode,
    same_boot: bool,
) -> Result<Replayed> {
    let path = dir.join(log_name(state.gen));
    let open_mode = match mode {
        Mode::Writer => OpenMode::ReadWrite,
        Mode::Reader => OpenMode::Read,
    };
    let file = vfs.open(&path, open_mode).ctx(&path)?;
    let bytes = read_capped(file.as_ref(), &path, MAX_LOG_FILE_BYTES)?;
    check_header(&bytes, &path, state.gen, state.format)?;
    let initial = state.clone();
    let mut limit = bytes.len();
    let pass = loop {
        let mut pass = Pass::new(&bytes, limit, &path, mode);
        pass.checks = !same_boot;
        pass.run(state, files)?;
        match pass.unbacked.values().min() {
            None => break pass,
            Some(&cut) => {
                // cut < every accepted end so far: each pass shortens.
                debug_assert!((cut as usize) < limit);
                limit = cut as usize;
                *state = initial.clone();
            }
        }
    };
    let (end, found) = (pass.end, pass.found);
    // Zeros after the last record are preallocation (Sync::Always), not
    // damage; anything else there is a torn or lost tail.
    let dropped_tail = bytes[end as usize..].iter().any(|b| *b != 0);
    if mode == Mode::Writer && dropped_tail {
        file.set_len(end).ctx(&path)?;
        file.sync_data().ctx(&path)?;
    }
    Ok(Replayed {
        file,
        path,
        end,
        alloc: if dropped_tail {
            end
        } else {
            bytes.len() as u64
        },
        dropped_tail,
        found,
    })
}

fn check_header(bytes: &[u8], path: &Path, gen: u64, format: u32) -> Result<()> {
    if bytes.len() < LOG_HEADER_BYTES as usize {
        return Err(Error::corrupt(path, "log header is truncated"));
    }
    let (version, found) = decode_log_header(bytes).map_err(|e| header_err(path, e))?;
    if version != format {
        return Err(Error::corrupt(
            path,
            format!("log format version {version} does not match the MANIFEST's {format}"),
        ));
    }
    if found != gen {
        return Err(Error::corrupt(
            path,
            format!("log generation {found} does not match MANIFEST generation {gen}"),
        ));
    }
    Ok(())
}

/// One pass over the log, up to `limit`.
struct Pass<'a> {
    /// The whole log: the damaged-tail rule looks past `limit`.
    bytes: &'a [u8],
    limit: usize,
    path: &'a Path,
    mode: Mode,
    /// Released file -> offset of the record that released it, in the
    /// valid records from the first missing payload on (a record may
    /// release a file its own earlier ops wrote to).
    releases: Option<HashMap<u64, u64>>,
    /// Released files the state still refers to -> offset of the first
    /// record accepted without their data.
    unbacked: HashMap<u64, u64>,
    end: u64,
    /// Check (and, for the writer, redo) payloads; off in the same boot.
    checks: bool,
    found: Findings,
}

/// Whether a record was applied, or ends the log because data it needs
/// did not survive.
enum Outcome {
    Accepted,
    Lost,
}

impl<'a> Pass<'a> {
    fn new(bytes: &'a [u8], limit: usize, path: &'a Path, mode: Mode) -> Self {
        Pass {
            bytes,
            limit,
            path,
            mode,
            releases: None,
            unbacked: HashMap::new(),
            end: LOG_HEADER_BYTES,
            checks: true,
            found: Findings::default(),
        }
    }

    fn run(&mut self, state: &mut State, files: &mut FileTable) -> Result<()> {
        let mut walker = LogWalker::new(
            &self.bytes[..self.limit],
            LOG_HEADER_BYTES,
            state.seq,
            state.chain,
        );
        for w in walker.by_ref() {
            match self.replay_record(&w, state, files)? {
                Outcome::Accepted => {
                    self.end = w.end();
                    self.found.records += 1;
                }
                Outcome::Lost => return Ok(()),
            }
        }
        let at = walker.pos();
        debug_assert_eq!(at, self.end);
        self.check_end(walker.end(), at, state.seq + 1)
    }

    /// Apply the damaged-tail rule where the walk stopped: damage that a
    /// later valid record declares durable is corruption; otherwise the log
    /// ends here.
    fn check_end(&self, end: &LogEnd, at: u64, expected: u64) -> Result<()> {
        match end {
            LogEnd::Clean => Ok(()),
            LogEnd::ChainBroken { .. } => Err(Error::corrupt(self.path, end.describe())),
            LogEnd::Incomplete(_) | LogEnd::Damaged(_) => {
                match durable_record_after(self.bytes, at, expected) {
                    Some(later) => Err(Error::corrupt(
                        self.path,
                        format!(
                            "record {expected} at offset {at} is damaged, but the valid record at offset {later} says it was already durable"
                        ),
                    )),
                    None => Ok(()),
                }
            }
        }
    }

    fn replay_record(
        &mut self,
        w: &Walked,
        state: &mut State,
        files: &mut FileTable,
    ) -> Result<Outcome> {
        // A failed apply aborts the open, so single-op records can be
        // applied in place; multi-op records keep the state before them in
        // case a later op's data is lost.
        let before = (w.rec.ops.len() > 1).then(|| state.clone());
        let mut garbage = Vec::new();
        for op in &w.rec.ops {
            if !self.data_ok(op, w, state, files)? {
                let fid = match op {
                    Op::SetSums { name, .. } => state.arrays.get(name).map_or(0, |a| a.file_id),
                    _ => payload_region(state, op).map_or(0, |r| r.0),
                };
                self.lost(files.path(fid), w)?;
                if let Some(b) = before {
                    *state = b;
                }
                return Ok(Outcome::Lost);
            }
            if let Some((fid, _, _)) = payload_region(state, op) {
                self.found.payload_files.insert(fid);
            }
            if let Some(fid) = super::payload::file_written(state, op) {
                if matches!(op.payload(), Some((_, Payload::Inline(_), _))) {
                    self.found.written_inline.insert(fid);
                } else {
                    self.found.written.push((w.rec.seq, fid));
                }
            }
            if let Op::Put {
                file_id,
                payload: crate::model::op::Payload::InFile { synced: false, .. },
                ..
            } = op
            {
                self.found.in_file_puts.push((w.rec.seq, *file_id));
            }
            let freed = state.apply(op, w.rec.time_ns).map_err(|d| {
                Error::corrupt(
                    self.path,
                    format!("record {} at offset {}: {d}", w.rec.seq, w.offset),
                )
            })?;
            garbage.extend(freed);
            if let Op::Release { file_id, .. } = op {
                self.unbacked.remove(file_id);
            }
        }
        if self.mode == Mode::Writer {
            // history: summarized at the checkpoint that folds it.
            self.found
                .commits
                .push(CommitInfo::of_record(&w.rec, w.hash));
        }
        state.seq = w.rec.seq;
        state.chain = w.hash;
        self.found.declared_synced = self.found.declared_synced.max(w.rec.synced_seq);
        if w.rec.ops.iter().any(Op::checked_at_recovery) {
            self.found.last_checked_seq = w.rec.seq;
        }
        self.found.garbage.extend(garbage);
        Ok(Outcome::Accepted)
    }

    /// Whether the data `op` needs is there: present, or missing because a
    /// later record released its file (then the file is noted unbacked).
    fn data_ok(
        &mut self,
        op: &Op,
        w: &Walked,
        state: &State,
        files: &mut FileTable,
    ) -> Result<bool> {
        if !self.checks {
            return Ok(true);
        }
        let writer = self.mode == Mode::Writer;
        if check_payload(files, state, op, writer)? == Presence::Missing {
            let fid = payload_region(state, op).map_or(0, |r| r.0);
            let (bytes, limit) = (self.bytes, self.limit);
            let released_at = self
                .releases
                .get_or_insert_with(|| {
                    releases_after(&bytes[..limit], w.offset, state.seq, state.chain)
                })
                .get(&fid)
                .copied();
            if released_at.is_some_and(|at| at >= w.offset) {
                self.unbacked.entry(fid).or_insert(w.offset);
                return Ok(true);
            }
            return Ok(false);
        }
        if writer {
            let vouched = || durable_record_after(self.bytes, w.offset, w.rec.seq).is_some();
            return Ok(session_sums_present(files, state, op, vouched)? == Presence::Present);
        }
        Ok(true)
    }

    /// Unsynced data that did not survive ends the log before its record,
    /// unless a later record says the record was already durable: then its
    /// data had been synced too, and is damaged.
    fn lost(&self, data: PathBuf, w: &Walked) -> Result<()> {
        let Some(at) = durable_record_after(self.bytes, w.offset, w.rec.seq) else {
            return Ok(());
        };
        Err(Error::corrupt(
            data,
            format!(
                "data of record {} (log offset {}) is damaged, but the record at log offset {at} says it was durable",
                w.rec.seq, w.offset
            ),
        ))
    }
}

/// A reader catching up within one generation: apply the valid records of
/// the log `file` from offset `from` on (their payloads are not checked),
/// stopping silently at the first incomplete or invalid one (it may be a
/// write in progress). Returns the offset past the last record applied.
pub(crate) fn apply_new_records(
    file: &dyn VFile,
    path: &Path,
    from: u64,
    state: &mut State,
) -> Result<u64> {
    let len = file.len().ctx(path)?;
    if len <= from {
        return Ok(from);
    }
    let bytes = crate::log::read_range_capped(file, path, from, len, MAX_LOG_FILE_BYTES)?;
    let mut walker = LogWalker::new(&bytes, 0, state.seq, state.chain);
    for w in walker.by_ref() {
        let mut next = state.clone();
        for op in &w.rec.ops {
            next.apply(op, w.rec.time_ns)
                .map_err(|d| Error::corrupt(path, d))?;
        }
        next.seq = w.rec.seq;
        next.chain = w.hash;
        *state = next;
    }
    if let LogEnd::ChainBroken { .. } = walker.end() {
        return Err(Error::corrupt(path, "record breaks the hash chain"));
    }
    Ok(from + walker.pos())
}
