//! Transactions: the engine behind a store handle. Changes are validated
//! against the staged state and planned into log ops ([`plan`]), committed
//! as one hash-chained record ([`commit`]), made durable per the sync
//! policy ([`durability`]), and folded into a new MANIFEST by checkpoints
//! ([`checkpoint`]). [`open`] builds an engine from what recovery found.
//!
//! Invariants of [`Engine`]:
//! - `state` is the state after the last record in the log (`state.seq`,
//!   `state.chain` name it); the log's records after the MANIFEST's seq
//!   lead exactly from the MANIFEST's state to it;
//! - `synced_seq <= state.seq`: records up to it are durable, with all the
//!   data they need;
//! - a poisoned engine writes nothing more (fsync-gate).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::data::FileTable;
use crate::format::history::CommitInfo;
use crate::io::vfs::{LockGuard, VFile, Vfs};
use crate::log::writer::{LogWriter, WriteFailure};
use crate::model::error::{Error, Result};
use crate::model::state::State;
use crate::model::sums::ChunkSums;
use crate::util::lock;

pub(crate) mod batch;
pub(crate) mod checkpoint;
pub(crate) mod commit;
pub(crate) mod durability;
pub(crate) mod open;
pub(crate) mod options;
pub(crate) mod plan;
pub(crate) mod refresh;
pub(crate) mod stage;
pub(crate) mod turns;
pub(crate) mod versions;

pub(crate) use options::{OpenOptions, Sync as SyncPolicy};

/// The checksums of a writable session's bytes, being computed on a helper
/// thread after `finish()` returned (outside `Sync::Always`, FORMAT.md
/// §11). They are logged as the session's end (`SetSums`) before the engine
/// does anything else ([`Engine::settle_sums`]); until then the array's
/// checksums stay suspended, as during the session.
pub(crate) struct PendingSums {
    pub name: String,
    pub file_id: u64,
    pub job: JoinHandle<ChunkSums>,
}

/// The engine of one open store handle.
pub(crate) struct Engine {
    pub dir: PathBuf,
    pub vfs: Arc<dyn Vfs>,
    pub files: FileTable,
    pub state: State,
    pub read_only: bool,
    pub sync: SyncPolicy,
    created_ns: u64,
    checkpoint_log_bytes: u64,
    max_open_files: usize,
    /// Bytes of the MANIFEST's header and array entries for the state
    /// (kept up to date by every commit; the file table and version list
    /// are measured apart, [`Engine::manifest_total`]), and the most a
    /// commit may leave (FORMAT.md §2.1).
    manifest_bytes: u64,
    max_manifest_bytes: u64,
    /// The live log: appended to by a writer; a reader's position in it.
    log: Option<LogWriter>,
    /// Highest seq known to be durable (log fsynced after it).
    synced_seq: u64,
    /// The `synced_seq` the last record in the log declares.
    last_declared: u64,
    /// The last record in the log whose data recovery would check against
    /// the files (see `commit::checked_at_recovery`).
    last_checked_seq: u64,
    /// Time of the first commit not yet synced (group commit).
    pub dirty_since: Option<Instant>,
    /// Files no longer referenced, deleted at the next checkpoint.
    garbage: Vec<u64>,
    poisoned: Option<PathBuf>,
    /// The writer lock: held from open to close, or by a shared writer
    /// during its turns.
    lock: Option<LockGuard>,
    /// A writer by turns' `LOCK` file, kept open between its turns (see
    /// [`crate::io::vfs::Vfs::lock_exclusive_kept`]).
    kept_lock: Option<LockGuard>,
    /// Writes by turns (`OpenOptions::shared`).
    shared: bool,
    /// How long to wait for the lock.
    lock_wait: Option<std::time::Duration>,
    /// Turns taken and not yet ended (a writable session holds one).
    turns: u32,
    /// An exclusive writer's open `LOCK`, for its notes (FORMAT.md §1).
    note_file: Option<Arc<dyn VFile>>,
    /// No sync in this boot covered a record past this seq (noted in
    /// `LOCK` before each sync of an exclusive writer).
    maybe_synced: u64,
    pub closed: bool,
    pub stop_flusher: bool,
    /// history: summaries of records not yet in `HISTORY` (appended at the
    /// next checkpoint, after the records themselves are durable).
    pending_history: Vec<CommitInfo>,
    /// A finished writable session's checksums being computed.
    pub pending_sums: Option<PendingSums>,
    /// history: the open `HISTORY` file, the offset to append at, and
    /// whether entries were written since its last fdatasync.
    history: Option<(Arc<dyn VFile>, u64, bool)>,
    /// Arrays open in an in-place writable session: other mutations of them
    /// are refused and their checksums are not refreshed until it ends.
    pub busy: HashSet<String>,
    /// Data file id -> log generation of the last commit that wrote a
    /// payload (new rows) into it. A writable session checkpoints first if
    /// the current log may hold such a record (see `Store::writable`).
    pub payload_gen: HashMap<u64, u64>,
    /// Data files created by an unsynced Put (payload in the file) since
    /// the last sync: no durable state and no durable record refers to
    /// them, so when a commit makes one unreferenced it is deleted at once
    /// and the record carries a Release op (FORMAT.md §7.1 step 7). Cleared
    /// whenever everything written so far becomes durable.
    pub fresh: HashSet<u64>,
    /// Data not carried inline was written by the commit being planned; under
    /// `Sync::Always` it is synced before the record.
    presync: bool,
    /// Records another handle wrote (an earlier handle in this boot, or
    /// other writers by turns) may not be durable, nor the data files and
    /// `data/` entries they wrote: the next sync covers the log and `data/`
    /// whatever this handle wrote, and under `Sync::Always` the next commit
    /// syncs the dirty files before its record (FORMAT.md §7.4, §10.1).
    inherited: bool,
    /// The version this read-only handle shows (`Store::at`): it does not
    /// follow later commits.
    pub frozen: Option<u64>,
    /// Versions deleted since the last checkpoint: their files go after it.
    dead_versions: Vec<u64>,
    /// Version files the checkpoint in progress wrote.
    versions_written: Vec<u64>,
    /// The next checkpoint writes a MANIFEST even if nothing changed (an
    /// upgrade).
    force_checkpoint: bool,
    /// A version handle's lease (FORMAT.md §15.7).
    pub lease: Option<versions::Lease>,
    /// The retention policy (FORMAT.md §15.8).
    keep_last: Option<usize>,
    keep_for: Option<std::time::Duration>,
    /// The retention policy is being applied (its commits may checkpoint).
    in_retention: bool,
}

/// An engine shared by a store handle, its group-commit thread and its
/// writable sessions.
pub(crate) struct Shared {
    pub engine: Mutex<Engine>,
    pub cv: Condvar,
    pub path: PathBuf,
}

impl Shared {
    /// Lock the engine without settling pending session checksums.
    pub fn lock_raw(&self) -> MutexGuard<'_, Engine> {
        lock(&self.engine)
    }

    /// The engine, locked, with a finished writable session's checksums
    /// logged first (FORMAT.md §11).
    pub fn lock(&self) -> MutexGuard<'_, Engine> {
        let mut g = self.lock_raw();
        if g.pending_sums.is_some() {
            // A failure leaves the checksums suspended (the next checkpoint
            // computes them) or poisons the handle; either is reported by
            // the next mutation.
            let _ = g.settle_sums();
            self.cv.notify_all();
        }
        g
    }
}

impl Engine {
    fn new(dir: &Path, opts: &OpenOptions, read_only: bool) -> Engine {
        let vfs = opts.vfs.clone();
        Engine {
            dir: dir.to_path_buf(),
            files: FileTable::new(vfs.clone(), dir, read_only, opts.max_open_files),
            vfs,
            state: State::default(),
            read_only,
            sync: opts.sync,
            created_ns: 0,
            // Keep the log well under what an opener accepts.
            checkpoint_log_bytes: opts
                .checkpoint_log_bytes
                .min(crate::format::MAX_LOG_FILE_BYTES / 2),
            max_open_files: opts.max_open_files,
            manifest_bytes: 0,
            max_manifest_bytes: opts
                .max_manifest_bytes
                .min(crate::format::MAX_MANIFEST_FILE_BYTES),
            log: None,
            synced_seq: 0,
            last_declared: 0,
            last_checked_seq: 0,
            dirty_since: None,
            garbage: Vec::new(),
            poisoned: None,
            lock: None,
            kept_lock: None,
            shared: opts.shared && !read_only,
            lock_wait: opts.lock_wait(),
            turns: 0,
            note_file: None,
            maybe_synced: 0,
            closed: false,
            stop_flusher: false,
            pending_history: Vec::new(),
            pending_sums: None,
            history: None,
            busy: HashSet::new(),
            payload_gen: HashMap::new(),
            fresh: HashSet::new(),
            presync: false,
            inherited: false,
            frozen: None,
            dead_versions: Vec::new(),
            versions_written: Vec::new(),
            force_checkpoint: false,
            lease: None,
            keep_last: opts.keep_last,
            keep_for: opts.keep_for,
            in_retention: false,
        }
    }

    /// Recompute the MANIFEST size of the whole state (after a load).
    pub(crate) fn measure_manifest(&mut self) {
        self.manifest_bytes = crate::format::manifest::manifest_len(&self.state)
            - crate::format::manifest::versions_section_len(&self.state);
    }

    /// Bytes of the MANIFEST the state would make: the arrays' part kept
    /// up to date by every commit, and the versions' part (O(1)).
    pub(crate) fn manifest_total(&self) -> u64 {
        self.manifest_bytes + crate::format::manifest::versions_section_len(&self.state)
    }

    /// Mutations are allowed: open, writable, not poisoned.
    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.read_only {
            return Err(Error::ReadOnly {
                path: self.dir.clone(),
            });
        }
        if let Some(p) = &self.poisoned {
            return Err(Error::Poisoned { path: p.clone() });
        }
        Ok(())
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed {
                path: self.dir.clone(),
            });
        }
        Ok(())
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Refuse further writes after a failed sync (fsync-gate).
    pub(crate) fn poison(&mut self, path: &Path) {
        self.poisoned = Some(path.to_path_buf());
    }

    /// The error of a failed log write, poisoning the engine if it says so.
    fn absorb(&mut self, f: WriteFailure) -> Error {
        if let Some(p) = f.poisons {
            self.poisoned = Some(p);
        }
        f.error
    }

    /// The live log's path.
    pub(crate) fn log_path(&self) -> PathBuf {
        match &self.log {
            Some(l) => l.path.clone(),
            None => self.dir.join(crate::format::log_name(self.state.gen)),
        }
    }

    /// Bytes of the live log (header and records).
    pub(crate) fn log_len(&self) -> u64 {
        self.log
            .as_ref()
            .map_or(crate::format::LOG_HEADER_BYTES, |l| l.end)
    }

    /// Release the lock and the log: the handle is closed.
    pub(crate) fn shut(&mut self) {
        self.closed = true;
        self.lock = None;
        self.log = None;
    }
}
