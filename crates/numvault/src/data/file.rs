//! The table of open data files.

use std::collections::HashSet;
use std::io;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::format::{data_name, DATA_DIR};
use crate::io::vfs::{Mapping, OpenMode, VFile, Vfs};
use crate::model::error::{Error, IoContext, Result};
use crate::model::sums::ChunkSums;
use crate::util::lock;
use lru::LruCache;

/// An open data file, with a cached read-only mapping.
pub(crate) struct DataFile {
    pub path: PathBuf,
    pub file: Arc<dyn VFile>,
    map: Mutex<Option<Arc<dyn Mapping>>>,
}

impl DataFile {
    pub(crate) fn new(path: PathBuf, file: Arc<dyn VFile>) -> Self {
        DataFile {
            path,
            file,
            map: Mutex::new(None),
        }
    }

    /// Drop the cached mapping (after an in-place session changed the file,
    /// for file systems whose mappings are snapshots).
    pub fn forget_mapping(&self) {
        *lock(&self.map) = None;
    }

    /// A mapping covering at least `len` bytes.
    pub fn mapping(&self, len: u64) -> Result<Arc<dyn Mapping>> {
        let mut cached = lock(&self.map);
        if let Some(m) = cached.as_ref() {
            if m.bytes().len() as u64 >= len {
                return Ok(m.clone());
            }
        }
        let file_len = self.file.len().ctx(&self.path)?;
        if file_len < len {
            return Err(Error::corrupt(
                &self.path,
                format!("data file holds {file_len} bytes, the array needs {len}"),
            ));
        }
        // Map only the committed bytes the caller needs: bytes past them may
        // be rewritten (a failed commit's, then the next commit's), and a
        // mapping may be a snapshot (see `Mapping`), so a cached mapping must
        // not cover them.
        let m = self.file.map(len).ctx(&self.path)?;
        *cached = Some(m.clone());
        Ok(m)
    }

    /// Write `data` at `offset` and return the checksums of `data` taken as
    /// the start of a file; large inputs are checksummed on a second
    /// thread while they are written.
    pub fn write_with_sums(&self, data: &[u8], offset: u64) -> Result<ChunkSums> {
        const PARALLEL_MIN: usize = 4 << 20;
        debug_assert_eq!(offset, 0, "checksums are taken from the start of a file");
        if data.len() < PARALLEL_MIN || offset != 0 {
            self.file.write_all_at(data, offset).ctx(&self.path)?;
            return Ok(ChunkSums::of(data));
        }
        std::thread::scope(|s| {
            let h = s.spawn(|| ChunkSums::of(data));
            let w = self.file.write_all_at(data, offset).ctx(&self.path);
            // A checksum thread that panicked is a bug; report it as one.
            let sums = h
                .join()
                .map_err(|_| Error::Internal("checksum thread panicked".into()));
            w?;
            sums
        })
    }
}

/// Default bound on the data files a handle keeps open (and mapped):
/// well under the usual `ulimit -n` of 1,024 and `vm.max_map_count`.
pub const DEFAULT_MAX_OPEN_FILES: usize = 64;

/// The data files a handle keeps open, at most `capacity` of them (least
/// recently used closed first), and which files hold unsynced writes.
///
/// Dirty and retired files are known by id, not by handle: syncing one that
/// is no longer open reopens it (an fdatasync through any handle of a file
/// syncs its bytes), so the number of arrays is bounded by the disk alone,
/// not by the open-file limit.
pub(crate) struct FileTable {
    pub vfs: Arc<dyn Vfs>,
    pub data_dir: PathBuf,
    read_only: bool,
    files: LruCache<u64, Arc<DataFile>>,
    /// Files written since their last fdatasync by payloads that are only
    /// in the file (or by writable sessions): synced before the log.
    pub dirty: HashSet<u64>,
    /// Files written since their last fdatasync only by inline payloads:
    /// the log carries those bytes (recovery redoes them), so they need
    /// syncing only before a checkpoint folds the log (FORMAT.md §7.1).
    pub inline_dirty: HashSet<u64>,
    /// A file was created, renamed into or removed from `data/` since its
    /// last fsync.
    pub dir_dirty: bool,
    /// Files no longer referenced (dropped, overwritten, compacted) that
    /// still hold unsynced bytes: log records not yet synced refer to them,
    /// so they are synced before the log is, like dirty files.
    retired: HashSet<u64>,
}

impl FileTable {
    pub fn new(vfs: Arc<dyn Vfs>, dir: &std::path::Path, read_only: bool, capacity: usize) -> Self {
        FileTable {
            vfs,
            data_dir: dir.join(DATA_DIR),
            read_only,
            files: LruCache::new(NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN)),
            dirty: HashSet::new(),
            inline_dirty: HashSet::new(),
            dir_dirty: false,
            retired: HashSet::new(),
        }
    }

    pub fn path(&self, id: u64) -> PathBuf {
        self.data_dir.join(data_name(id))
    }

    /// Open data file `id` in `mode` and keep its handle.
    fn open(&mut self, id: u64, mode: OpenMode) -> Result<Arc<DataFile>> {
        let path = self.path(id);
        let file = self.vfs.open(&path, mode).ctx(&path)?;
        let df = Arc::new(DataFile::new(path, file));
        self.files.put(id, df.clone());
        debug_assert!(self.files.len() <= self.files.cap().get());
        Ok(df)
    }

    /// The open data file `id` (opened if needed).
    pub fn get(&mut self, id: u64) -> Result<Arc<DataFile>> {
        if let Some(f) = self.files.get(&id) {
            return Ok(f.clone());
        }
        let mode = if self.read_only {
            OpenMode::Read
        } else {
            OpenMode::ReadWrite
        };
        self.open(id, mode)
    }

    /// Create data file `id`, replacing an uncommitted leftover of a crash.
    pub fn create(&mut self, id: u64) -> Result<Arc<DataFile>> {
        let path = self.path(id);
        self.files.pop(&id);
        if self.vfs.exists(&path) {
            // Ids at or above next_file_id are never referenced by a
            // committed state, so no reader can have this file mapped.
            self.vfs.remove_file(&path).ctx(&path)?;
        }
        let df = self.open(id, OpenMode::CreateNew)?;
        self.dir_dirty = true;
        Ok(df)
    }

    /// Make the staging file `staged` data file `id`: rename it into place
    /// and keep its handle.
    pub fn adopt(&mut self, id: u64, staged: &DataFile) -> Result<Arc<DataFile>> {
        let path = self.path(id);
        if self.vfs.exists(&path) {
            // As in `create`: ids at or above next_file_id are leftovers.
            self.vfs.remove_file(&path).ctx(&path)?;
        }
        self.vfs.rename(&staged.path, &path).ctx(&staged.path)?;
        self.dir_dirty = true;
        let df = Arc::new(DataFile::new(path, staged.file.clone()));
        self.files.put(id, df.clone());
        Ok(df)
    }

    /// Data file `id` for recovery's redo, created if a crash lost it.
    pub fn redo(&mut self, id: u64) -> Result<Arc<DataFile>> {
        if let Some(f) = self.files.get(&id) {
            return Ok(f.clone());
        }
        self.open(id, OpenMode::Create)
    }

    /// Forget file `id` and delete it now (or soon, see
    /// `Vfs::remove_file_soon`), without syncing its bytes.
    pub fn delete_now(&mut self, id: u64) {
        self.files.pop(&id);
        self.dirty.remove(&id);
        self.inline_dirty.remove(&id);
        self.retired.remove(&id);
        let p = self.path(id);
        self.vfs.remove_file_soon(&p);
    }

    /// Forget file `id` (no longer referenced); unsynced bytes of it are
    /// still synced before the log.
    pub fn retire(&mut self, id: u64) {
        self.files.pop(&id);
        // Inline bytes are in the log: recovery redoes them if it needs them.
        self.inline_dirty.remove(&id);
        if self.dirty.remove(&id) {
            // Recovery replays the unsynced records that wrote these bytes
            // and checks them: they must reach the disk before the log does.
            self.retired.insert(id);
        }
    }

    /// Keep only the handles of files in `live`.
    pub fn retain(&mut self, live: &HashSet<u64>) {
        let gone: Vec<u64> = self
            .files
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !live.contains(id))
            .collect();
        for id in gone {
            self.files.pop(&id);
        }
    }

    /// File `id` was written by a payload: inline (the log carries its
    /// bytes) or only in the file.
    pub fn mark_written(&mut self, id: u64, inline: bool) {
        if inline {
            if !self.dirty.contains(&id) {
                self.inline_dirty.insert(id);
            }
        } else {
            self.inline_dirty.remove(&id);
            self.dirty.insert(id);
        }
    }

    /// Before a checkpoint folds the log: the files holding only inline
    /// payloads' bytes must be synced too.
    pub fn promote_inline(&mut self) {
        let inline = std::mem::take(&mut self.inline_dirty);
        self.dirty.extend(inline);
    }

    /// fdatasync every dirty file (ascending id) and retired file, then
    /// fsync `data/` if an entry changed. The error names the file.
    pub fn sync_dirty(&mut self) -> io::Result<()> {
        let mut ids: Vec<u64> = self.dirty.iter().chain(&self.retired).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            self.sync_one(id)?;
            self.dirty.remove(&id);
            self.retired.remove(&id);
        }
        if self.dir_dirty {
            self.vfs.sync_dir(&self.data_dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// fdatasync file `id` through its open handle, or a handle opened for
    /// the purpose (a file evicted from the table, or written by an earlier
    /// handle). A file that is gone has nothing left to sync.
    fn sync_one(&mut self, id: u64) -> io::Result<()> {
        if let Some(f) = self.files.peek(&id) {
            return sync_named(f);
        }
        match self.vfs.open(&self.path(id), OpenMode::Read) {
            Ok(file) => sync_named(&DataFile::new(self.path(id), file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn sync_named(f: &DataFile) -> io::Result<()> {
    f.file
        .sync_data()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", f.path.display())))
}
