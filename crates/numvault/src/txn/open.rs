//! Building an engine: creating a store, or loading one through recovery
//! (FORMAT.md §7.4, §7.5, §10.2).

use std::io;
use std::path::Path;

use super::{Engine, OpenOptions};
use crate::format::{is_log_name, DATA_DIR, LOCK, MANIFEST, MANIFEST_TMP};
use crate::io::vfs::LockGuard;
use crate::log::writer::LogWriter;
use crate::model::error::{Error, IoContext, Result};
use crate::model::state::State;
use crate::recovery::{
    collect_stray_files, interrupted_creation, load_manifest, replay_log, Mode, Replayed,
};
use crate::util::now_ns;

/// A read-only engine just loaded, and whether its log had a bad tail (a
/// writer running, or one that crashed).
pub(crate) struct ReaderLoad {
    pub engine: Engine,
    pub tail_dirty: bool,
}

impl Engine {
    /// Open the store in `dir` for writing, under `guard` (the writer lock):
    /// create it if allowed, else recover it.
    pub(crate) fn open_writer(dir: &Path, opts: &OpenOptions, guard: LockGuard) -> Result<Engine> {
        let mut e = Engine::new(dir, opts, false);
        e.lock = Some(guard);
        // A shared writer's open is its first turn (ended below).
        e.turns = 1;
        if !e.vfs.exists(&dir.join(MANIFEST)) {
            e.create_if_allowed(opts.create)?;
            return Ok(e);
        }
        let (state, created) = load_manifest(e.vfs.as_ref(), dir)?;
        e.state = state;
        e.created_ns = created;
        let replayed = e.replay(Mode::Writer)?;
        e.garbage = replayed.garbage;
        e.pending_history = replayed.commits;
        if opts.truncate {
            let names: Vec<String> = e.state.arrays.keys().cloned().collect();
            for n in names {
                if let Some(a) = e.state.arrays.remove(&n) {
                    e.garbage.push(a.file_id);
                }
            }
        }
        if replayed.records > 0 || replayed.dropped_tail || opts.truncate {
            e.checkpoint()?;
        }
        collect_stray_files(e.vfs.as_ref(), dir, &e.state)?;
        // Everything in the MANIFEST, and any replayed log (checkpointed
        // above), is durable now.
        e.synced_seq = e.state.seq;
        // A shared writer takes the lock again for each commit.
        e.end_turn();
        Ok(e)
    }

    /// No MANIFEST: create the store, unless the directory holds something
    /// else (a corrupt store is never opened as an empty one).
    fn create_if_allowed(&mut self, create: bool) -> Result<()> {
        let dir = self.dir.clone();
        let entries = self.vfs.list_dir(&dir).ctx(&dir)?;
        let ours = |n: &String| n == DATA_DIR || is_log_name(n);
        // A crash inside `initialize` leaves an empty data directory and
        // a generation-0 log without records: nothing was ever committed,
        // so the store is created anew.
        let unfinished = interrupted_creation(self.vfs.as_ref(), &dir, &entries);
        if entries.iter().any(ours) && !unfinished {
            return Err(Error::corrupt(
                dir.join(MANIFEST),
                "MANIFEST is missing but the directory holds a log or data files",
            ));
        }
        let foreign = entries.iter().any(|n| n != LOCK && n != MANIFEST_TMP);
        if (foreign && !unfinished) || !create {
            return Err(Error::NotAStore { path: dir });
        }
        self.initialize()
    }

    /// Create a new, empty store: `data/`, the generation-0 log, then the
    /// MANIFEST (its rename is the store's creation).
    fn initialize(&mut self) -> Result<()> {
        let data_dir = self.dir.join(DATA_DIR);
        self.vfs.create_dir_all(&data_dir).ctx(&data_dir)?;
        self.state = State {
            gen: 0,
            seq: 0,
            chain: [0; 32],
            next_file_id: 1,
            arrays: Default::default(),
        };
        self.created_ns = now_ns();
        let log = LogWriter::create(self.vfs.as_ref(), &self.dir, 0).map_err(|f| self.absorb(f))?;
        self.write_manifest()?;
        self.log = Some(log);
        Ok(())
    }

    /// Replay the live log onto the state loaded from the MANIFEST.
    pub(super) fn replay(&mut self, mode: Mode) -> Result<Replayed> {
        let r = replay_log(
            self.vfs.as_ref(),
            &self.dir,
            &mut self.state,
            &mut self.files,
            mode,
        )?;
        self.log = Some(LogWriter::resume(
            r.file.clone(),
            r.path.clone(),
            r.end,
            r.alloc,
        ));
        let gen = self.state.gen;
        for id in &r.payload_files {
            self.payload_gen.insert(*id, gen);
        }
        Ok(r)
    }

    /// Load the store in `dir` read-only. A checkpoint may swap the MANIFEST
    /// and delete the log between our reads: retry on a log that vanished.
    pub(crate) fn load_reader(dir: &Path, opts: &OpenOptions) -> Result<ReaderLoad> {
        let mut last_err = None;
        for _ in 0..16 {
            let mut e = Engine::new(dir, opts, true);
            let (state, created) = load_manifest(e.vfs.as_ref(), dir)?;
            e.state = state;
            e.created_ns = created;
            match e.replay(Mode::Reader) {
                Ok(r) => {
                    return Ok(ReaderLoad {
                        engine: e,
                        tail_dirty: r.dropped_tail,
                    })
                }
                Err(Error::Io { source, path }) if source.kind() == io::ErrorKind::NotFound => {
                    last_err = Some(Error::Io { source, path });
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_err.unwrap_or(Error::NotAStore {
            path: dir.to_path_buf(),
        }))
    }

    /// Options to reload this handle's store read-only.
    pub(crate) fn reopen_opts(&self) -> OpenOptions {
        OpenOptions {
            read_only: true,
            create: false,
            truncate: false,
            sync: super::SyncPolicy::Never,
            lock_timeout: None,
            shared: false,
            checkpoint_log_bytes: self.checkpoint_log_bytes,
            vfs: self.vfs.clone(),
        }
    }
}
