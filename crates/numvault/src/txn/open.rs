//! Building an engine: creating a store, or loading one through recovery
//! (FORMAT.md §7.4, §7.5, §10.2).

use std::io;
use std::path::Path;

use super::plan::Intent;
use super::{Engine, OpenOptions};
use crate::format::{is_log_name, DATA_DIR, LOCK, MANIFEST, MANIFEST_TMP};
use crate::io::vfs::{LockGuard, OpenMode};
use crate::log::writer::LogWriter;
use crate::model::error::{Error, IoContext, Result};
use crate::model::state::State;
use crate::recovery::{
    collect_stray_files, interrupted_creation, load_manifest, replay_log, Mode, Replayed,
};
use crate::txn::turns::{read_note, write_note};
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
            e.measure_manifest();
            e.open_note_file();
            e.write_open_note();
            e.end_turn();
            return Ok(e);
        }
        let (state, created) = load_manifest(e.vfs.as_ref(), dir)?;
        let manifest_seq = state.seq;
        e.state = state;
        e.created_ns = created;
        let note = read_note(e.vfs.as_ref(), &dir.join(LOCK));
        let same_boot = note.boot.is_some() && note.boot == e.vfs.boot_id();
        let replayed = e.replay(Mode::Writer, same_boot)?;
        // Syncs of this boot covered no record past this (unknown: all),
        // and did cover every record up to `synced`.
        let noted = note.syncing.filter(|_| same_boot);
        let noted_synced = note.synced.filter(|_| same_boot);
        e.garbage = replayed.found.garbage.clone();
        e.pending_history = replayed.found.commits.clone();
        // A recovery that checked and redid payloads (after a reboot), cut
        // a bad tail or emptied the store folds the log into a new
        // MANIFEST; a log left by a clean close in this boot is reused.
        // Before anything can declare records durable (a checkpoint here,
        // or later). Also after a full recovery: the checks may have found
        // the bytes in the page cache of this very boot (a boot that was
        // not noted), not on disk.
        e.note_durable(manifest_seq, noted, noted_synced, &replayed);
        if e.state.seq > e.synced_seq {
            // Reused log: the records past what is known durable (and their
            // files and `data/` entries) are this handle's to sync.
            e.inherit_unsynced();
        }
        e.measure_manifest();
        // Every op read from disk was checked as it was applied.
        debug_assert_eq!(e.state.check_invariants(), Ok(()));
        // Stale checksums after a crash (a writable session that did not
        // end, rows in files not yet refreshed): the checkpoint recomputes
        // them (FORMAT.md §11).
        let fold = !same_boot || replayed.dropped_tail || e.sums_stale();
        e.open_note_file();
        if fold || (replayed.found.records > 0 && e.log_len() > e.checkpoint_log_bytes) {
            e.checkpoint()?;
            e.synced_seq = e.state.seq;
            e.fresh.clear();
        }
        let folded = e.log_len() == crate::format::LOG_HEADER_BYTES;
        collect_stray_files(e.vfs.as_ref(), dir, &e.state, folded)?;
        // Only now may the next opener in this boot skip the checks.
        e.write_open_note();
        if opts.truncate {
            e.drop_every_array()?;
        }
        // A shared writer takes the lock again for each commit.
        e.end_turn();
        Ok(e)
    }

    /// `OpenOptions::truncate`: one commit that drops every array (atomic:
    /// a crash leaves the old store or an empty one), durable at once
    /// unless the policy is `Never`. The dropped files are garbage, deleted
    /// by a later checkpoint like any superseded file (FORMAT.md §7.1).
    fn drop_every_array(&mut self) -> Result<()> {
        let names: Vec<String> = self.state.arrays.keys().cloned().collect();
        if names.is_empty() {
            return Ok(());
        }
        let intents: Vec<Intent<'_>> = names.iter().map(|name| Intent::Drop { name }).collect();
        self.commit(&intents)?;
        if self.sync != super::SyncPolicy::Never {
            self.sync_all()?;
        }
        Ok(())
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
            next_file_id: 1,
            ..State::default()
        };
        self.created_ns = now_ns();
        let log = LogWriter::create(self.vfs.as_ref(), &self.dir, 0, self.state.format)
            .map_err(|f| self.absorb(f))?;
        self.write_manifest()?;
        self.log = Some(log);
        Ok(())
    }

    /// After an open that reuses the log: what is known durable (the
    /// MANIFEST, what the last records declare, and what the last close
    /// noted in `LOCK` in this boot: `known`), and which files
    /// are fresh (created by in-file Puts not declared durable, so no
    /// durable state or record refers to them: a later commit may release
    /// them, FORMAT.md §7.1 step 7).
    fn note_durable(
        &mut self,
        manifest_seq: u64,
        noted: Option<u64>,
        noted_synced: Option<u64>,
        r: &Replayed,
    ) {
        self.last_declared = manifest_seq
            .max(r.found.declared_synced)
            .min(self.state.seq);
        self.synced_seq = self
            .last_declared
            .max(noted_synced.unwrap_or(0))
            .min(self.state.seq);
        self.last_checked_seq = r.found.last_checked_seq;
        // Unknown: every record may have been synced.
        self.maybe_synced = noted.map_or(self.state.seq, |n| n.max(self.synced_seq));
        // Bytes earlier handles wrote for records not declared durable may
        // still be unsynced: this handle syncs them before it declares
        // anything durable. Inline payloads' copies in the files, whatever
        // their record, are synced only by a checkpoint (the log carries
        // them until then): this handle's checkpoint syncs them.
        for &(seq, id) in &r.found.written {
            if seq > self.synced_seq {
                self.files.dirty.insert(id);
            }
        }
        for &id in &r.found.written_inline {
            self.files.mark_written(id, true);
        }
        if self.sync == super::SyncPolicy::Always || self.is_shared() {
            return;
        }
        let live = self.live_files();
        for &(seq, id) in &r.found.in_file_puts {
            if seq > self.maybe_synced && live.contains(&id) {
                self.fresh.insert(id);
            }
        }
    }

    /// Keep `LOCK` open for the notes of an exclusive writer.
    fn open_note_file(&mut self) {
        if !self.is_shared() {
            let path = self.dir.join(LOCK);
            self.note_file = self.vfs.open(&path, OpenMode::Create).ok();
        }
    }

    /// The note of a finished open: this boot, and what syncs covered.
    fn write_open_note(&mut self) {
        let syncing = (!self.is_shared()).then_some(self.maybe_synced);
        let synced = (!self.is_shared()).then_some(self.synced_seq);
        let note = crate::format::LockNote {
            boot: self.vfs.boot_id(),
            syncing,
            synced,
            ..Default::default()
        };
        write_note(self.vfs.as_ref(), &self.dir.join(LOCK), note);
    }

    /// True if `LOCK` says the live log was last recovered or written in
    /// the running boot (FORMAT.md §1, §7.4).
    pub(crate) fn log_in_this_boot(&self) -> bool {
        let note = read_note(self.vfs.as_ref(), &self.dir.join(LOCK));
        note.boot.is_some() && note.boot == self.vfs.boot_id()
    }

    /// Replay the live log onto the state loaded from the MANIFEST.
    pub(super) fn replay(&mut self, mode: Mode, same_boot: bool) -> Result<Replayed> {
        let r = replay_log(
            self.vfs.as_ref(),
            &self.dir,
            &mut self.state,
            &mut self.files,
            mode,
            same_boot,
        )?;
        self.log = Some(LogWriter::resume(
            r.file.clone(),
            r.path.clone(),
            r.end,
            r.alloc,
        ));
        let gen = self.state.gen;
        for id in &r.found.payload_files {
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
            let same_boot = e.log_in_this_boot();
            match e.replay(Mode::Reader, same_boot) {
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
            max_open_files: self.max_open_files,
            max_manifest_bytes: self.max_manifest_bytes,
            vfs: self.vfs.clone(),
            upgrade: false,
            version: None,
            keep_last: None,
            keep_for: None,
        }
    }
}
