//! Making commits durable: `sync_all`, the group-commit thread, and the
//! logging of a finished writable session's checksums (FORMAT.md §7.2,
//! §11).

use std::time::{Duration, Instant};

use super::{Engine, Shared};
use crate::model::error::{Error, Result};
use crate::model::op::Op;

/// Summaries of durable records kept in memory between checkpoints before
/// they are appended to HISTORY (bounds the memory of long sessions).
const HISTORY_BATCH: usize = 16_384;

impl Engine {
    /// Before a sync: note in `LOCK` that syncs in this boot may now have
    /// covered every record so far (an exclusive writer's; FORMAT.md §1).
    /// The next opener in this boot takes the records after the noted seq,
    /// and the files only they refer to, as not durable.
    pub(crate) fn note_syncing(&mut self) {
        if self.state.seq <= self.maybe_synced && self.maybe_synced > 0 {
            return;
        }
        self.maybe_synced = self.state.seq;
        self.put_sync_note();
    }

    /// Note in `LOCK` (an exclusive writer's) what syncs may have covered
    /// and what they did cover (FORMAT.md §1.1).
    pub(crate) fn put_sync_note(&self) {
        if let Some(f) = &self.note_file {
            let note = crate::format::LockNote {
                boot: self.vfs.boot_id(),
                syncing: Some(self.maybe_synced),
                synced: Some(self.synced_seq),
                ..Default::default()
            };
            crate::txn::turns::put_note(f.as_ref(), note);
        }
    }

    /// Take over records another handle wrote and did not declare durable:
    /// they, the files they wrote and their `data/` entries are synced by
    /// this handle's next sync, before it declares anything durable.
    pub(crate) fn inherit_unsynced(&mut self) {
        if let Some(log) = self.log.as_mut() {
            log.dirty = true;
        }
        self.files.dir_dirty = true;
        self.inherited = true;
    }

    /// Sync data files (and `data/`), then the log; then every record
    /// written so far is durable. A failure poisons the engine.
    pub(crate) fn sync_all(&mut self) -> Result<()> {
        if !self.read_only && self.poisoned.is_none() {
            self.settle_sums()?;
        }
        if let Some(p) = &self.poisoned {
            self.dirty_since = None;
            return Err(Error::Poisoned { path: p.clone() });
        }
        if self.read_only {
            return Ok(());
        }
        self.note_syncing();
        if let Err(e) = self.files.sync_dirty() {
            let dir = self.files.data_dir.clone();
            self.poison(&dir);
            return Err(Error::io(dir, e));
        }
        self.sync_log_and_declare()?;
        self.dirty_since = None;
        // history: bound the memory of summaries between checkpoints (their
        // records are durable now); the checkpoint fdatasyncs them.
        // A shared writer appends to HISTORY only in its turns (another
        // writer may be appending).
        if self.pending_history.len() >= HISTORY_BATCH && !self.is_shared() {
            let _ = self.write_history(false);
        }
        Ok(())
    }

    /// fdatasync the log (the data it needs is synced): every record so far
    /// is durable, and the next record declares it.
    pub(crate) fn sync_log_and_declare(&mut self) -> Result<()> {
        if let Some(log) = self.log.as_mut() {
            if let Err(f) = log.sync() {
                return Err(self.absorb(f));
            }
        }
        self.synced_seq = self.state.seq;
        self.fresh.clear();
        self.inherited = false;
        Ok(())
    }

    /// Log the checksums of a finished writable session (see
    /// [`super::PendingSums`]), waiting for them if needed.
    pub(crate) fn settle_sums(&mut self) -> Result<()> {
        let Some(p) = self.pending_sums.take() else {
            return Ok(());
        };
        let Ok(sums) = p.job.join() else {
            // The helper panicked: the checksums stay suspended and the next
            // checkpoint computes them from the file.
            return Ok(());
        };
        let fits = self
            .state
            .arrays
            .get(&p.name)
            .is_some_and(|a| a.file_id == p.file_id && sums.covered <= a.phys_bytes());
        if fits {
            self.commit_ops(vec![Op::SetSums { name: p.name, sums }], false)?;
        }
        Ok(())
    }
}

/// The group-commit thread: sync within `max_delay` of the first unsynced
/// commit, until the engine is closed.
pub(crate) fn group_commit_loop(shared: &Shared, max_delay: Duration) {
    let mut g = shared.lock_raw();
    loop {
        if g.stop_flusher || g.closed {
            return;
        }
        match g.dirty_since {
            None => {
                g = shared.cv.wait(g).unwrap_or_else(|p| p.into_inner());
            }
            Some(t) => {
                let due = t + max_delay;
                let now = Instant::now();
                if now >= due {
                    // A failure poisons the handle (the next mutation reports
                    // it) and clears `dirty_since`, so this loop cannot spin.
                    let _ = g.sync_all();
                } else {
                    g = shared
                        .cv
                        .wait_timeout(g, due - now)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
            }
        }
    }
}
