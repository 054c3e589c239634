//! Checkpoints: fold the log into a new MANIFEST and start a new log
//! generation (FORMAT.md §7.3), and append the folded records' summaries
//! to HISTORY (§5.7).

use super::Engine;
use crate::data::check::{read_chunk, read_crc};
use crate::format::history::{encode_entry, file_header, FILE_HEADER_BYTES};
use crate::format::manifest::{encode_manifest, manifest_len};
use crate::format::{HISTORY, LOG_HEADER_BYTES, MANIFEST, MANIFEST_TMP, MAX_MANIFEST_FILE_BYTES};
use crate::io::vfs::OpenMode;
use crate::log::writer::LogWriter;
use crate::model::error::{Error, IoContext, Result};
use crate::model::sums::{ChunkSums, CHUNK_BYTES};

impl Engine {
    /// Checkpoint: refresh checksums, sync data, write a new log and
    /// MANIFEST generation, then delete the old log and unreferenced files.
    pub(crate) fn checkpoint(&mut self) -> Result<()> {
        if self.poisoned.is_none() {
            self.settle_sums()?;
        }
        self.check_writable()?;
        self.take_turn()?;
        if !self.in_retention {
            self.in_retention = true;
            self.apply_retention();
            self.in_retention = false;
        }
        let res = self.checkpoint_in_turn();
        self.end_turn();
        res
    }

    /// [`Engine::checkpoint`] in a turn already taken.
    pub(super) fn checkpoint_in_turn_pub(&mut self) -> Result<()> {
        self.checkpoint_in_turn()
    }

    fn checkpoint_in_turn(&mut self) -> Result<()> {
        // Nothing since the last checkpoint (e.g. a handle only read from):
        // the MANIFEST already describes this state; skip its fsyncs.
        if self.log_len() == LOG_HEADER_BYTES
            && self.garbage.is_empty()
            && !self.sums_stale()
            && !self.force_checkpoint
        {
            return self.sync_all();
        }
        self.refresh_sums()?;
        // The refreshed checksums change the MANIFEST's size (writing it
        // is O(arrays) anyway).
        self.measure_manifest();
        // The log is about to go: the bytes only it carried must be synced.
        self.files.promote_inline();
        self.sync_all()?;
        // history: the records are durable now; summarize them before the
        // checkpoint deletes the log.
        self.write_history(true)?;
        // Versions taken in the folded log get their files before a
        // MANIFEST lists them (FORMAT.md §15.3).
        self.write_version_files()?;
        let old_gen = self.state.gen;
        let new_gen = old_gen + 1;
        let new_log = LogWriter::create(self.vfs.as_ref(), &self.dir, new_gen, self.state.format)
            .map_err(|f| self.absorb(f))?;
        self.state.gen = new_gen;
        if let Err(e) = self.write_manifest() {
            self.state.gen = old_gen;
            // A poisoning failure may come after the rename (the directory
            // sync): the MANIFEST may then name the new log, so keep it.
            if self.poisoned.is_none() {
                let _ = self.vfs.remove_file(&new_log.path);
            }
            return Err(e);
        }
        let old_log = self.log_path();
        debug_assert_ne!(old_log, new_log.path);
        self.log = Some(new_log);
        // The MANIFEST covers every record: nothing is left to declare.
        self.last_declared = self.state.seq;
        // Failures below leave only unreferenced files, removed at next open.
        let _ = self.vfs.remove_file(&old_log);
        self.after_version_files();
        self.delete_garbage();
        self.vfs.settle_removals();
        Ok(())
    }

    /// Delete the files queued for deletion that no array references.
    fn delete_garbage(&mut self) {
        let garbage = std::mem::take(&mut self.garbage);
        let live = self.live_files();
        for id in garbage {
            if !live.contains(&id) {
                self.files.retire(id);
                let _ = self.vfs.remove_file(&self.files.path(id));
            }
        }
    }

    /// Some array's checksums do not cover all its bytes (appended since
    /// the last refresh), outside writable sessions.
    pub(crate) fn sums_stale(&self) -> bool {
        self.state
            .arrays
            .iter()
            .any(|(n, a)| a.sums.covered < a.phys_bytes() && !self.busy.contains(n))
    }

    /// temp file + fsync + rename + directory fsync. A state whose MANIFEST
    /// would exceed the cap is refused before anything is written.
    pub(super) fn write_manifest(&mut self) -> Result<()> {
        let len = manifest_len(&self.state);
        if len > MAX_MANIFEST_FILE_BYTES {
            // Never write a MANIFEST that could not be read back. Only
            // enormous extent or remap tables get here: compact the arrays.
            return Err(Error::LimitExceeded {
                what: format!(
                    "a checkpoint of {len} bytes (the MANIFEST); compact arrays with many deleted or replaced rows"
                ),
                limit: MAX_MANIFEST_FILE_BYTES,
            });
        }
        let bytes = encode_manifest(&self.state, self.created_ns);
        // What is written must read back as this state.
        debug_assert!(
            crate::format::manifest::decode_manifest(&bytes).is_ok_and(|(st, c)| {
                c == self.created_ns
                    && st.seq == self.state.seq
                    && st.gen == self.state.gen
                    && st.arrays.len() == self.state.arrays.len()
            })
        );
        let dir = self.dir.clone();
        let tmp = dir.join(MANIFEST_TMP);
        let dst = dir.join(MANIFEST);
        if self.vfs.exists(&tmp) {
            self.vfs.remove_file(&tmp).ctx(&tmp)?;
        }
        let f = self.vfs.open(&tmp, OpenMode::CreateNew).ctx(&tmp)?;
        f.write_all_at(&bytes, 0).ctx(&tmp)?;
        if let Err(e) = f.sync_data() {
            self.poison(&tmp);
            return Err(Error::io(&tmp, e));
        }
        self.vfs.rename(&tmp, &dst).ctx(&dst)?;
        if let Err(e) = self.vfs.sync_dir(&dir) {
            self.poison(&dir);
            return Err(Error::io(&dir, e));
        }
        Ok(())
    }

    /// Extend chunk checksums over bytes appended since the last refresh.
    fn refresh_sums(&mut self) -> Result<()> {
        let stale: Vec<String> = self
            .state
            .arrays
            .iter()
            .filter(|(n, a)| a.sums.covered < a.phys_bytes() && !self.busy.contains(*n))
            .map(|(n, _)| n.clone())
            .collect();
        for name in stale {
            let Some(a) = self.state.arrays.get(&name).cloned() else {
                continue;
            };
            let df = self.files.get(a.file_id)?;
            // Damage in the covered part of the last chunk keeps the old
            // sums (verify() reports it) rather than re-blessing it.
            if let Some(sums) = extend_sums(&df, &a.sums, a.phys_bytes())? {
                if let Some(m) = self.state.arrays.get_mut(&name) {
                    std::sync::Arc::make_mut(m).sums = std::sync::Arc::new(sums);
                }
            }
        }
        Ok(())
    }

    /// Append the pending commit summaries to `HISTORY` (FORMAT.md §5.7);
    /// `sync`: also fdatasync it. Only summaries of durable records are
    /// pending when this runs (after `sync_all`). On a write failure they
    /// stay pending and the next attempt overwrites the partial write.
    pub(super) fn write_history(&mut self, sync: bool) -> Result<()> {
        let path = self.dir.join(HISTORY);
        let (file, mut end, mut dirty) = match self.history.take() {
            Some(h) => h,
            None if self.pending_history.is_empty() => return Ok(()),
            None => {
                let f = self.vfs.open(&path, OpenMode::Create).ctx(&path)?;
                let mut len = f.len().ctx(&path)?;
                if len < FILE_HEADER_BYTES {
                    f.write_all_at(&file_header(), 0).ctx(&path)?;
                    len = FILE_HEADER_BYTES;
                }
                (f, len, true)
            }
        };
        if !self.pending_history.is_empty() {
            let bytes: Vec<u8> = self.pending_history.iter().flat_map(encode_entry).collect();
            if let Err(e) = file.write_all_at(&bytes, end) {
                self.history = Some((file, end, dirty));
                return Err(Error::io(&path, e));
            }
            end += bytes.len() as u64;
            dirty = true;
            self.pending_history.clear();
        }
        if sync && dirty {
            if let Err(e) = file.sync_data() {
                self.poison(&path);
                return Err(Error::io(&path, e));
            }
            dirty = false;
        }
        self.history = Some((file, end, dirty));
        Ok(())
    }
}

/// The checksums of a file's bytes `0..end`, extending `old` (which covers
/// a prefix): recomputed from the start of the last (partial) chunk, after
/// checking its covered part. `None` if that part does not match.
pub(super) fn extend_sums(
    df: &crate::data::DataFile,
    old: &ChunkSums,
    end: u64,
) -> Result<Option<ChunkSums>> {
    let first = (old.covered / CHUNK_BYTES) as usize;
    let mut pos = first as u64 * CHUNK_BYTES;
    let mut buf = vec![0u8; CHUNK_BYTES as usize];
    if first < old.sums.len() {
        let n = (old.covered - pos) as usize;
        if !read_chunk(df, old, first, [&mut buf[..n]])? {
            return Ok(None);
        }
    }
    let mut sums = ChunkSums {
        covered: end,
        sums: old.sums[..first].to_vec(),
    };
    while pos < end {
        let n = (end - pos).min(CHUNK_BYTES);
        sums.sums
            .push(read_crc(df, pos, [&mut buf[..n as usize]], n)?);
        pos += n;
    }
    debug_assert!(sums.is_consistent());
    Ok(Some(sums))
}

/// A close checkpoints only when the next open would otherwise replay a
/// log longer than this: an open replays about 650 MB/s of log (BLAKE3 of
/// small records is most of it; 0.4 ms at 256 KiB), a checkpoint costs a
/// few fsyncs (about 3 ms on a virtual disk).
pub(crate) const CLOSE_CHECKPOINT_LOG_BYTES: u64 = 256 << 10;
/// ... or when files waiting for a checkpoint to be deleted hold more than
/// this (a checkpoint is what frees them).
pub(crate) const CLOSE_CHECKPOINT_GARBAGE_BYTES: u64 = 256 << 20;

impl Engine {
    /// Closing: make everything durable per the policy (nothing under
    /// `Sync::Never`; else one `sync_all`: the dirty data files and the
    /// log), and checkpoint only if the log is long or superseded files
    /// take much space. The next open reuses the log (FORMAT.md §7.5).
    pub(crate) fn close_durably(&mut self) -> Result<()> {
        self.settle_sums()?;
        if self.sync != super::SyncPolicy::Never {
            self.sync_all()?;
        }
        if self.close_needs_checkpoint() {
            self.checkpoint()?;
        }
        // What this close synced: the next opener in this boot need not
        // sync it again (FORMAT.md §1.1).
        self.put_sync_note();
        Ok(())
    }

    /// A close checkpoints when the next open would replay a long log, when
    /// superseded files take much space, when rows lack checksums that the
    /// log cannot give back at the next open (rows written in place or in
    /// files, not inline), or when a synced record's data would be checked
    /// at recovery without a later record declaring it durable (damage to
    /// it could not be told from a lost tail; FORMAT.md §7.4).
    fn close_needs_checkpoint(&self) -> bool {
        let undeclared =
            self.sync != super::SyncPolicy::Never && self.last_checked_seq > self.last_declared;
        self.log_len() > CLOSE_CHECKPOINT_LOG_BYTES
            || undeclared
            || self.sums_stale()
            || self.garbage_bytes() > CLOSE_CHECKPOINT_GARBAGE_BYTES
    }

    /// Bytes of the files waiting for a checkpoint to be deleted.
    pub(super) fn garbage_bytes(&self) -> u64 {
        let live = self.live_files();
        self.garbage
            .iter()
            .filter(|id| !live.contains(id))
            .filter_map(|id| self.vfs.open(&self.files.path(*id), OpenMode::Read).ok())
            .filter_map(|f| f.len().ok())
            .sum()
    }
}
