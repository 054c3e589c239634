//! Writers by turns (FORMAT.md §10.1): a shared writer holds the writer
//! lock only while it commits. Taking a turn means taking the lock, then
//! catching up with what other writers committed since this handle last
//! looked (their records applied, a crashed writer's torn tail cut, the
//! data files their records wrote noted as this handle's to sync), so that
//! the commit is checked against, and chained after, the newest state.

use std::io;
use std::path::Path;

use super::Engine;
use crate::format::history::CommitInfo;
use crate::format::{LockNote, LOCK, MANIFEST, MANIFEST_HEADER_BYTES};
use crate::io::vfs::{OpenMode, Vfs};
use crate::log::read_range_capped;
use crate::log::walker::{durable_record_after, LogEnd, LogWalker};
use crate::model::error::{Error, IoContext, Result};
use crate::recovery::{load_manifest, Mode};

/// Write who holds the writer lock, and the boot its log was last
/// recovered or written in, into `LOCK` (best effort: used only to name the
/// holder and to skip checks; FORMAT.md §1).
pub(crate) fn write_note(vfs: &dyn Vfs, lock_path: &Path, note: LockNote) {
    if let Ok(f) = vfs.open(lock_path, OpenMode::Create) {
        put_note(f.as_ref(), note);
    }
}

/// Write the note (with this process's id) into an open `LOCK` (best
/// effort).
pub(crate) fn put_note(f: &dyn crate::io::vfs::VFile, note: LockNote) {
    let note = LockNote {
        pid: Some(std::process::id()),
        ..note
    }
    .encode();
    let _ = f.write_all_at(note.as_bytes(), 0);
    let _ = f.set_len(note.len() as u64);
}

/// What `LOCK` says (empty if unreadable).
pub(crate) fn read_note(vfs: &dyn Vfs, lock_path: &Path) -> LockNote {
    let read = || -> io::Result<Vec<u8>> {
        let f = vfs.open(lock_path, OpenMode::Read)?;
        let n = f.len()?.min(256) as usize;
        let mut b = vec![0u8; n];
        f.read_exact_at(&mut b, 0)?;
        Ok(b)
    };
    read().map(|b| LockNote::decode(&b)).unwrap_or_default()
}

impl Engine {
    /// The writer lock, while held.
    pub(crate) fn lock_guard(&self) -> Option<&crate::io::vfs::LockGuard> {
        self.lock.as_ref()
    }

    /// How long each turn waits for the writer lock.
    pub(crate) fn set_lock_wait(&mut self, wait: Option<std::time::Duration>) {
        self.lock_wait = wait;
    }

    /// True if this engine takes the writer lock per commit.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared
    }

    /// Take a turn: the writer lock (waiting up to the lock wait), then
    /// catch up. Nested turns (a writable session's commits) only count.
    /// Exclusive writers always hold the lock: nothing to do.
    pub(crate) fn take_turn(&mut self) -> Result<()> {
        if !self.shared {
            return Ok(());
        }
        self.turns += 1;
        if self.lock.is_some() {
            // An outer turn (or the open) holds the lock.
            return Ok(());
        }
        let path = self.dir.join(LOCK);
        let guard = match self
            .vfs
            .lock_exclusive_kept(&path, self.lock_wait, &mut self.kept_lock)
        {
            Ok(g) => g,
            Err(e) => {
                self.turns -= 1;
                return Err(self.lock_error(e));
            }
        };
        let note = LockNote {
            boot: self.vfs.boot_id(),
            pid: Some(std::process::id()),
            ..LockNote::default()
        };
        // Through the lock's own descriptor where it is a real file (saves
        // an open and a close per commit), else by path.
        if !crate::io::vfs::write_held_lock(&guard, note.encode().as_bytes()) {
            write_note(self.vfs.as_ref(), &path, note);
        }
        self.lock = Some(guard);
        if let Err(e) = self.catch_up() {
            self.end_turn();
            return Err(e);
        }
        Ok(())
    }

    /// End a turn taken by [`Engine::take_turn`]: the last one releases the
    /// lock. Files created since the last sync are not released early in a
    /// later turn (another writer may have declared them durable).
    pub(crate) fn end_turn(&mut self) {
        if !self.shared || self.turns == 0 {
            return;
        }
        self.turns -= 1;
        if self.turns == 0 {
            self.fresh.clear();
            self.lock = None;
        }
    }

    fn lock_error(&self, e: io::Error) -> Error {
        let path = self.dir.join(LOCK);
        if e.kind() != io::ErrorKind::WouldBlock {
            return Error::io(path, e);
        }
        Error::Locked {
            path: self.dir.clone(),
            holder: read_note(self.vfs.as_ref(), &path).holder(),
        }
    }

    /// Catch up with other writers' commits (the lock is held).
    fn catch_up(&mut self) -> Result<()> {
        if self.manifest_gen()? != self.state.gen {
            return self.reload();
        }
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        let len = log.file.len().ctx(&log.path)?;
        if len <= log.end {
            return Ok(());
        }
        let from = log.end;
        let bytes = read_range_capped(
            log.file.as_ref(),
            &log.path,
            from,
            len,
            crate::format::MAX_LOG_FILE_BYTES,
        )?;
        let mut walker = LogWalker::new(&bytes, 0, self.state.seq, self.state.chain);
        let mut applied = Vec::new();
        for w in walker.by_ref() {
            applied.push(w);
        }
        let end = from + walker.pos();
        let tail = walker.into_end();
        for w in &applied {
            self.apply_caught_up(&w.rec, w.hash)?;
        }
        if !applied.is_empty() {
            self.inherit_unsynced();
        }
        self.cut_foreign_tail(&bytes, from, end, &tail)
    }

    /// Apply a record another writer committed.
    fn apply_caught_up(
        &mut self,
        rec: &crate::format::record::Record,
        hash: [u8; 32],
    ) -> Result<()> {
        let path = self.log_path();
        let mut next = self.state.clone();
        for op in &rec.ops {
            if let Some((fid, _, _)) = crate::recovery::payload_region(&next, op) {
                self.payload_gen.insert(fid, next.gen);
            }
            if let Some(fid) = crate::recovery::file_written(&next, op) {
                // Its data is ours to sync before we declare it durable.
                self.files.dirty.insert(fid);
            }
            let freed = next
                .apply(op, rec.time_ns)
                .map_err(|d| Error::corrupt(&path, format!("record {}: {d}", rec.seq)))?;
            self.garbage.extend(freed);
        }
        self.note_dead_versions(&rec.ops);
        next.seq = rec.seq;
        next.chain = hash;
        let touched = super::commit::touched_names(&rec.ops);
        let before = self.entries_len(&touched);
        self.state = next;
        self.manifest_bytes =
            self.manifest_bytes - before.min(self.manifest_bytes) + self.entries_len(&touched);
        self.pending_history.push(CommitInfo::of_record(rec, hash));
        Ok(())
    }

    /// After the records others wrote: zeros are preallocated space; a torn
    /// or damaged record is the tail of a writer that crashed mid-commit
    /// (nobody else writes while we hold the lock), cut off as recovery
    /// would, unless a later record declares it durable (corruption).
    fn cut_foreign_tail(&mut self, bytes: &[u8], from: u64, end: u64, tail: &LogEnd) -> Result<()> {
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        let rest = &bytes[(end - from) as usize..];
        log.end = end;
        log.alloc = log.alloc.max(from + bytes.len() as u64);
        match tail {
            LogEnd::Clean => Ok(()),
            LogEnd::ChainBroken { .. } => Err(Error::corrupt(&log.path, tail.describe())),
            LogEnd::Incomplete(_) | LogEnd::Damaged(_) => {
                let expected = self.state.seq + 1;
                if let Some(at) = durable_record_after(bytes, end - from, expected) {
                    return Err(Error::corrupt(
                        &log.path,
                        format!(
                            "record {expected} at offset {end} is damaged, but the valid record at offset {} says it was already durable",
                            from + at
                        ),
                    ));
                }
                debug_assert!(rest.iter().any(|b| *b != 0));
                log.file.set_len(end).ctx(&log.path)?;
                log.file.sync_data().ctx(&log.path)?;
                log.alloc = end;
                Ok(())
            }
        }
    }

    /// The generation the MANIFEST on disk names (its first body field),
    /// read without decoding the rest: the MANIFEST is only ever replaced
    /// whole, by rename.
    fn manifest_gen(&self) -> Result<u64> {
        let path = self.dir.join(MANIFEST);
        let f = self.vfs.open(&path, OpenMode::Read).ctx(&path)?;
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, MANIFEST_HEADER_BYTES as u64)
            .ctx(&path)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Another writer checkpointed: load its MANIFEST and replay the new
    /// log (as recovery does: a crashed writer may have left a tail).
    fn reload(&mut self) -> Result<()> {
        let (state, created) = load_manifest(self.vfs.as_ref(), &self.dir)?;
        let folded = state.seq;
        self.state = state;
        self.created_ns = created;
        let same_boot = self.log_in_this_boot();
        let replayed = self.replay(Mode::Writer, same_boot)?;
        self.measure_manifest();
        // Summaries of records the other writer's checkpoint folded are in
        // HISTORY already.
        self.pending_history.retain(|c| c.seq > folded);
        self.pending_history.extend(replayed.found.commits);
        self.garbage.extend(replayed.found.garbage);
        self.history = None;
        let live = self.live_files();
        for (_, id) in replayed.found.written {
            if live.contains(&id) {
                self.files.dirty.insert(id);
            }
        }
        for id in replayed.found.written_inline {
            if live.contains(&id) {
                self.files.mark_written(id, true);
            }
        }
        if replayed.found.records > 0 {
            self.inherit_unsynced();
        }
        Ok(())
    }
}
