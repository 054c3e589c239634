//! The store handle: opening and recovery, commits, checkpoints, durability.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::array::{ArrayInfo, ArrayRef};
use crate::error::{Error, IoContext, Result};
use crate::format::{
    self, decode_log_header, decode_manifest, encode_log_header, encode_manifest, frame_record,
    read_record, HeaderError, RecordRead, FORMAT_VERSION, LOG_HEADER_BYTES,
};
use crate::history::{self, CommitInfo, OpSummary, HISTORY};
use crate::meta::{ArrayMeta, ChunkSums, Op, Payload, State, CHUNK_BYTES};
use crate::options::{OpenOptions, Sync as SyncPolicy};
use crate::vfs::{LockGuard, Mapping, OpenMode, VFile, Vfs};
use crate::write::Intent;

pub(crate) const MANIFEST: &str = "MANIFEST";
pub(crate) const MANIFEST_TMP: &str = "MANIFEST.tmp";
pub(crate) const LOCK: &str = "LOCK";
pub(crate) const DATA_DIR: &str = "data";

pub(crate) fn log_name(gen: u64) -> String {
    format!("wal-{gen:016x}.log")
}

pub(crate) fn data_name(id: u64) -> String {
    format!("{id:016x}.nvd")
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// An open data file, with a cached read-only mapping.
pub(crate) struct DataFile {
    pub path: PathBuf,
    pub file: Arc<dyn VFile>,
    map: Mutex<Option<Arc<dyn Mapping>>>,
}

impl DataFile {
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
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data is only changed by code that cannot panic midway on
    // valid input; recover rather than cascade a poisoned lock.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// File handles and dirty tracking; separate from [`State`] so planning can
/// borrow both at once.
/// The checksums of a writable session's bytes, being computed on a helper
/// thread after `finish()` returned (outside `Sync::Always`, §11 of
/// FORMAT.md). They are logged as the session's end (`SetSums`) before the
/// store does anything else: `Inner::settle_sums`, called by every `Store`
/// call and at the start of every commit, sync and checkpoint. Until then
/// the array's checksums stay suspended, as during the session.
pub(crate) struct PendingSums {
    pub name: String,
    pub file_id: u64,
    pub job: JoinHandle<ChunkSums>,
}

pub(crate) struct Io {
    pub vfs: Arc<dyn Vfs>,
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub read_only: bool,
    pub sync: SyncPolicy,
    files: HashMap<u64, Arc<DataFile>>,
    pub dirty_files: HashSet<u64>,
    pub dir_dirty: bool,
    /// Data not carried inline was written by the commit being planned; under
    /// `Sync::Always` it is synced before the record.
    pub presync: bool,
    /// Arrays open in an in-place writable session: other mutations of them
    /// are refused and their checksums are not refreshed until it ends.
    pub busy: HashSet<String>,
    /// Files no longer referenced (dropped, overwritten, compacted) that
    /// still hold unsynced bytes: log records not yet synced refer to them,
    /// so they are synced before the log is, like dirty files.
    retired: Vec<Arc<DataFile>>,
    /// Set when a sync inside planning failed; the commit poisons the handle.
    pub sync_failed: Option<PathBuf>,
    /// Data file id -> log generation of the last commit that wrote a
    /// payload (new rows) into it. A writable session checkpoints first if
    /// the current log may hold such a record (see `Store::writable`).
    pub payload_gen: HashMap<u64, u64>,
    /// Data files created by an unsynced Put (payload in the file) since
    /// the last sync: no durable state and no durable record refers to
    /// them, so when a commit makes one unreferenced it is deleted at once
    /// and the record carries a Release op (see `Inner::commit`). Cleared
    /// whenever everything written so far becomes durable.
    pub fresh: HashSet<u64>,
}

impl Io {
    pub fn data_path(&self, id: u64) -> PathBuf {
        self.data_dir.join(data_name(id))
    }

    /// Open data file `id` in `mode` and keep its handle (only kept handles
    /// are synced by `sync_dirty_data`).
    fn open_file(&mut self, id: u64, mode: OpenMode) -> Result<Arc<DataFile>> {
        let path = self.data_path(id);
        let file = self.vfs.open(&path, mode).ctx(&path)?;
        let df = Arc::new(DataFile {
            path,
            file,
            map: Mutex::new(None),
        });
        self.files.insert(id, df.clone());
        Ok(df)
    }

    /// The open data file `id`.
    pub fn file(&mut self, id: u64) -> Result<Arc<DataFile>> {
        if let Some(f) = self.files.get(&id) {
            return Ok(f.clone());
        }
        let mode = if self.read_only {
            OpenMode::Read
        } else {
            OpenMode::ReadWrite
        };
        self.open_file(id, mode)
    }

    /// Create data file `id`, replacing an uncommitted leftover of a crash.
    pub fn create_file(&mut self, id: u64) -> Result<Arc<DataFile>> {
        let path = self.data_path(id);
        self.files.remove(&id);
        if self.vfs.exists(&path) {
            // Ids at or above next_file_id are never referenced by a
            // committed state, so no reader can have this file mapped.
            self.vfs.remove_file(&path).ctx(&path)?;
        }
        let df = self.open_file(id, OpenMode::CreateNew)?;
        self.dir_dirty = true;
        Ok(df)
    }

    /// Data file `id` for recovery's redo, created if a crash lost it. The
    /// handle is kept: the redone bytes must be durable before the
    /// checkpoint that ends recovery drops the log records carrying them.
    pub fn redo_file(&mut self, id: u64) -> Result<Arc<DataFile>> {
        if let Some(f) = self.files.get(&id) {
            return Ok(f.clone());
        }
        self.open_file(id, OpenMode::Create)
    }

    /// Delete a released file (`Io::fresh`) now. Its bytes need no sync:
    /// the record that released it tells recovery they may be missing.
    /// `false` if it could not be removed (left for the next checkpoint).
    pub fn release_file(&mut self, id: u64) -> bool {
        self.files.remove(&id);
        self.dirty_files.remove(&id);
        self.fresh.remove(&id);
        self.payload_gen.remove(&id);
        let p = self.data_path(id);
        self.vfs.remove_file(&p).is_ok()
    }

    pub fn forget_file(&mut self, id: u64) {
        let f = self.files.remove(&id);
        if self.dirty_files.remove(&id) {
            // Recovery replays the unsynced records that wrote these bytes
            // and checks them: they must reach the disk before the log does.
            self.retired.extend(f);
        }
    }

    fn sync_dirty_data(&mut self) -> io::Result<Option<PathBuf>> {
        let mut ids: Vec<u64> = self.dirty_files.iter().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(f) = self.files.get(&id) {
                if let Err(e) = f.file.sync_data() {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{}: {e}", f.path.display()),
                    ));
                }
            }
            self.dirty_files.remove(&id);
        }
        while let Some(f) = self.retired.pop() {
            if let Err(e) = f.file.sync_data() {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", f.path.display()),
                ));
            }
        }
        if self.dir_dirty {
            self.vfs.sync_dir(&self.data_dir)?;
            self.dir_dirty = false;
        }
        Ok(None)
    }
}

pub(crate) struct Inner {
    pub io: Io,
    pub state: State,
    created_ns: u64,
    checkpoint_log_bytes: u64,
    log: Option<Arc<dyn VFile>>,
    pub log_path: PathBuf,
    log_end: u64,
    /// Bytes of the log file already written (records, then zeros that
    /// preallocate space under `Sync::Always`).
    log_alloc: u64,
    log_dirty: bool,
    /// Highest seq known to be durable (log fsynced after it).
    synced_seq: u64,
    dirty_since: Option<Instant>,
    garbage: Vec<u64>,
    poisoned: Option<PathBuf>,
    lock: Option<LockGuard>,
    closed: bool,
    stop_flusher: bool,
    /// history: summaries of records not yet in `HISTORY` (appended at the
    /// next checkpoint, after the records themselves are durable).
    pending_history: Vec<CommitInfo>,
    /// A finished writable session's checksums being computed.
    pub(crate) pending_sums: Option<PendingSums>,
    /// history: the open `HISTORY` file, the offset to append at, and
    /// whether entries were written since its last fdatasync.
    history: Option<(Arc<dyn VFile>, u64, bool)>,
}

pub(crate) struct Shared {
    pub inner: Mutex<Inner>,
    pub(crate) cv: Condvar,
    pub path: PathBuf,
}

/// An open store. `Send + Sync`: share it between threads behind an `Arc`.
///
/// One process may hold a store open for writing at a time (an advisory lock
/// on `LOCK`); any number may open it read-only.
pub struct Store {
    pub(crate) shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

/// Several changes committed atomically by [`Store::commit`].
#[derive(Default)]
pub struct Batch<'a> {
    pub(crate) intents: Vec<Intent<'a>>,
}

impl<'a> Batch<'a> {
    pub fn new() -> Self {
        Batch::default()
    }
    /// Create or overwrite an array.
    pub fn save(&mut self, name: &'a str, array: ArrayRef<'a>) -> &mut Self {
        self.intents.push(Intent::Save { name, array });
        self
    }
    /// Append rows.
    pub fn append(&mut self, name: &'a str, array: ArrayRef<'a>) -> &mut Self {
        self.intents.push(Intent::Append { name, array });
        self
    }
    /// Replace rows at `indices` (negative counts from the end).
    pub fn replace(&mut self, name: &'a str, indices: &'a [i64], array: ArrayRef<'a>) -> &mut Self {
        self.intents.push(Intent::Replace {
            name,
            indices,
            array,
        });
        self
    }
    /// Delete rows at `indices`.
    pub fn delete_rows(&mut self, name: &'a str, indices: &'a [i64]) -> &mut Self {
        self.intents.push(Intent::DeleteRows { name, indices });
        self
    }
    /// Remove an array.
    pub fn drop_array(&mut self, name: &'a str) -> &mut Self {
        self.intents.push(Intent::Drop { name });
        self
    }
    /// Rename an array.
    pub fn rename(&mut self, from: &'a str, to: &'a str) -> &mut Self {
        self.intents.push(Intent::Rename { from, to });
        self
    }
    /// Rewrite an array without its dead rows.
    pub fn compact(&mut self, name: &'a str) -> &mut Self {
        self.intents.push(Intent::Compact { name });
        self
    }
    pub fn is_empty(&self) -> bool {
        self.intents.is_empty()
    }
}

/// Largest log file read at open: the checkpoint limit is far below this; a
/// larger file is damaged, and reading it whole must not exhaust memory.
pub(crate) const MAX_LOG_FILE_BYTES: u64 = 2 << 30;
pub(crate) const MAX_MANIFEST_FILE_BYTES: u64 =
    format::MAX_MANIFEST_BODY + format::MANIFEST_HEADER_BYTES as u64;

pub(crate) fn read_whole(file: &dyn VFile, path: &Path, max: u64) -> Result<Vec<u8>> {
    let len = file.len().ctx(path)?;
    if len > max {
        return Err(Error::corrupt(
            path,
            format!("file is {len} bytes, more than the {max} a valid one can be"),
        ));
    }
    let len = usize::try_from(len).map_err(|_| Error::corrupt(path, "file too large"))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0).ctx(path)?;
    Ok(buf)
}

fn header_err(path: &Path, e: HeaderError) -> Error {
    match e {
        HeaderError::Bad(d) => Error::corrupt(path, d),
        HeaderError::Version(found) => Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        },
    }
}

/// What replaying the log found.
struct Replay {
    /// Offset just past the last valid record.
    end: u64,
    /// Bytes after `end` (a torn tail, or records dropped because their
    /// unsynced data did not survive).
    dropped_tail: bool,
    records: u64,
    garbage: Vec<u64>,
}

impl Store {
    /// Open (and by default create) the store at `path`.
    pub fn open(path: impl AsRef<Path>, opts: OpenOptions) -> Result<Store> {
        let dir = path.as_ref().to_path_buf();
        if opts.read_only {
            return Self::open_read_only(dir, opts);
        }
        let vfs = opts.vfs.clone();
        if !vfs.exists(&dir) {
            if !opts.create {
                return Err(Error::NoSuchStore { path: dir });
            }
            vfs.create_dir_all(&dir).ctx(&dir)?;
        }
        let lock_path = dir.join(LOCK);
        let guard = match vfs.lock_exclusive(&lock_path, opts.lock_timeout) {
            Ok(g) => g,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(Error::Locked { path: dir });
            }
            Err(e) => return Err(Error::io(lock_path, e)),
        };
        let inner = Inner::open_writer(dir.clone(), &opts, guard)?;
        Self::start(inner, dir, opts.sync)
    }

    fn open_read_only(dir: PathBuf, opts: OpenOptions) -> Result<Store> {
        let vfs = opts.vfs.clone();
        if !vfs.exists(&dir.join(MANIFEST)) {
            return Err(if vfs.exists(&dir) {
                Error::NotAStore { path: dir }
            } else {
                Error::NoSuchStore { path: dir }
            });
        }
        let mut inner = Inner::load_reader(dir.clone(), &opts)?;
        if inner.log_end > LOG_HEADER_BYTES || inner.reader_tail_dirty {
            // A log tail means a writer is live or crashed. If nobody holds
            // the lock, the writer crashed: recover under the lock (as SQLite
            // readers roll back a hot journal), so that redo records reach
            // the data files. If that is not permitted, read as found.
            if let Ok(g) = vfs.lock_exclusive(&dir.join(LOCK), None) {
                let wopts = OpenOptions {
                    read_only: false,
                    create: false,
                    truncate: false,
                    ..opts.clone()
                };
                if let Ok(w) = Inner::open_writer(dir.clone(), &wopts, g) {
                    let w = Self::start(w, dir.clone(), SyncPolicy::OnFlush)?;
                    w.close()?;
                    inner = Inner::load_reader(dir.clone(), &opts)?;
                }
            }
        }
        Self::start(inner.into_inner(), dir, SyncPolicy::Never)
    }

    fn start(inner: Inner, path: PathBuf, sync: SyncPolicy) -> Result<Store> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            cv: Condvar::new(),
            path,
        });
        let flusher = match sync {
            SyncPolicy::Group { max_delay } => {
                let s = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("numvault-group-commit".into())
                    .spawn(move || group_commit_loop(&s, max_delay));
                match spawned {
                    Ok(h) => Some(h),
                    Err(e) => return Err(Error::io(&shared.path, e)),
                }
            }
            _ => None,
        };
        Ok(Store { shared, flusher })
    }

    pub(crate) fn inner(&self) -> MutexGuard<'_, Inner> {
        let mut g = lock(&self.shared.inner);
        if g.pending_sums.is_some() {
            // A failure leaves the checksums suspended (the next checkpoint
            // computes them) or poisons the handle; either is reported by
            // the next mutation.
            let _ = g.settle_sums();
            self.shared.cv.notify_all();
        }
        g
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The durability policy in force.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.inner().io.sync
    }

    /// True if opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner().io.read_only
    }

    /// Commit several changes atomically: after any crash either all or none
    /// of them are present. On error nothing changes, with one exception: if
    /// the log fsync fails after the record was written (`Sync::Always`), the
    /// outcome is unknown until reopen and the handle is poisoned.
    pub fn commit(&self, batch: &Batch<'_>) -> Result<()> {
        let mut g = self.inner();
        g.commit(&batch.intents)?;
        if g.dirty_since.is_some() {
            self.shared.cv.notify_all();
        }
        Ok(())
    }

    fn commit_one(&self, intent: Intent<'_>) -> Result<()> {
        let mut g = self.inner();
        g.commit(std::slice::from_ref(&intent))?;
        if g.dirty_since.is_some() {
            self.shared.cv.notify_all();
        }
        Ok(())
    }

    /// Create or overwrite an array.
    pub fn save(&self, name: &str, array: ArrayRef<'_>) -> Result<()> {
        self.commit_one(Intent::Save { name, array })
    }

    /// Append rows; dtype and trailing shape must match.
    pub fn append(&self, name: &str, array: ArrayRef<'_>) -> Result<()> {
        self.commit_one(Intent::Append { name, array })
    }

    /// Replace the rows at `indices` (any order, negative from the end, no
    /// duplicates) with the rows of `array`, in the same order.
    pub fn replace(&self, name: &str, indices: &[i64], array: ArrayRef<'_>) -> Result<()> {
        self.commit_one(Intent::Replace {
            name,
            indices,
            array,
        })
    }

    /// Delete rows; later rows are renumbered, as `numpy.delete` does.
    /// Repeated indices are allowed and delete the row once.
    pub fn delete_rows(&self, name: &str, indices: &[i64]) -> Result<()> {
        self.commit_one(Intent::DeleteRows { name, indices })
    }

    /// Rewrite an array into a new file without dead rows; returns the bytes
    /// reclaimed (freed on disk at the next checkpoint).
    pub fn compact(&self, name: &str) -> Result<u64> {
        let before = self.info(name)?;
        self.commit_one(Intent::Compact { name })?;
        let after = self.info(name)?;
        Ok(before.data_bytes.saturating_sub(after.data_bytes))
    }

    /// Remove an array.
    pub fn drop_array(&self, name: &str) -> Result<()> {
        self.commit_one(Intent::Drop { name })
    }

    /// Rename an array; the target must not exist.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.commit_one(Intent::Rename { from, to })
    }

    /// Names of the arrays under `prefix` (a '/'-separated group; "" for
    /// all), in sorted order. Only the arrays under the prefix are touched.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let g = self.inner();
        list_prefix(&g.state, prefix)
    }

    /// True if the array exists.
    pub fn has(&self, name: &str) -> bool {
        self.inner().state.arrays.contains_key(name)
    }

    /// Number of arrays.
    pub fn len(&self) -> usize {
        self.inner().state.arrays.len()
    }

    /// True if the store holds no arrays.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn meta(&self, name: &str) -> Result<Arc<ArrayMeta>> {
        self.inner()
            .state
            .arrays
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// Shape (rows first).
    pub fn shape(&self, name: &str) -> Result<Vec<u64>> {
        Ok(self.meta(name)?.shape())
    }

    /// Element type.
    pub fn dtype(&self, name: &str) -> Result<crate::DType> {
        Ok(self.meta(name)?.dtype)
    }

    /// Time of the last change, ns since the Unix epoch.
    pub fn mtime_ns(&self, name: &str) -> Result<u64> {
        Ok(self.meta(name)?.mtime_ns)
    }

    /// Everything about one array.
    pub fn info(&self, name: &str) -> Result<ArrayInfo> {
        let m = self.meta(name)?;
        Ok(array_info(name, &m))
    }

    /// Sequence number of the last commit (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.inner().state.seq
    }

    /// Make every returned mutation durable (sync data files and the log).
    /// On a read-only handle, load the latest committed state instead.
    pub fn flush(&self) -> Result<()> {
        let mut g = self.inner();
        if g.io.read_only {
            return g.reader_refresh();
        }
        g.check_writable()?;
        g.sync_all()?;
        if g.log_end > 1 << 20 {
            g.checkpoint()?;
        }
        Ok(())
    }

    /// Read-only handles: pick up commits made since open (or the last
    /// refresh). Writers: no effect.
    pub fn refresh(&self) -> Result<()> {
        let mut g = self.inner();
        if g.io.read_only {
            g.reader_refresh()
        } else {
            Ok(())
        }
    }

    /// Write a checkpoint now: sync everything, write a new MANIFEST and
    /// start a new log; frees the space of dropped and compacted files.
    pub fn checkpoint(&self) -> Result<()> {
        let mut g = self.inner();
        g.check_writable()?;
        g.checkpoint()
    }

    /// Flush, checkpoint and release the lock. Dropping the store does the
    /// same but cannot report errors.
    pub fn close(mut self) -> Result<()> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<()> {
        {
            let mut g = self.inner();
            g.stop_flusher = true;
        }
        self.shared.cv.notify_all();
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
        let mut g = self.inner();
        if g.closed {
            return Ok(());
        }
        let res = if g.io.read_only || g.poisoned.is_some() {
            Ok(())
        } else {
            g.checkpoint()
        };
        g.closed = true;
        g.lock = None;
        g.log = None;
        res
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.close_inner();
    }
}

pub(crate) fn array_info(name: &str, m: &ArrayMeta) -> ArrayInfo {
    ArrayInfo {
        name: name.to_string(),
        dtype: m.dtype,
        shape: m.shape(),
        dead_rows: m.dead_slots(),
        data_bytes: m.phys_bytes(),
        mtime_ns: m.mtime_ns,
        unchecksummed_bytes: m.phys_bytes().saturating_sub(m.sums.covered),
        file: Path::new(DATA_DIR).join(data_name(m.file_id)),
    }
}

pub(crate) fn list_prefix(state: &State, prefix: &str) -> Vec<String> {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return state.arrays.keys().cloned().collect();
    }
    let group = format!("{prefix}/");
    let mut out: Vec<String> = state
        .arrays
        .range(group.clone()..)
        .take_while(|(k, _)| k.starts_with(&group))
        .map(|(k, _)| k.clone())
        .collect();
    if state.arrays.contains_key(prefix) {
        out.insert(0, prefix.to_string());
    }
    out
}

fn group_commit_loop(shared: &Shared, max_delay: Duration) {
    let mut g = lock(&shared.inner);
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

/// A read-only load in progress (before the handle is built).
struct ReaderLoad {
    inner: Inner,
    reader_tail_dirty: bool,
}

impl std::ops::Deref for ReaderLoad {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl ReaderLoad {
    fn into_inner(self) -> Inner {
        self.inner
    }
}

impl Inner {
    fn new(dir: PathBuf, opts: &OpenOptions, read_only: bool) -> Inner {
        Inner {
            io: Io {
                vfs: opts.vfs.clone(),
                data_dir: dir.join(DATA_DIR),
                dir: dir.clone(),
                read_only,
                sync: opts.sync,
                files: HashMap::new(),
                dirty_files: HashSet::new(),
                dir_dirty: false,
                presync: false,
                busy: HashSet::new(),
                retired: Vec::new(),
                sync_failed: None,
                payload_gen: HashMap::new(),
                fresh: HashSet::new(),
            },
            state: State::default(),
            created_ns: 0,
            // Keep the log well under what an opener accepts.
            checkpoint_log_bytes: opts.checkpoint_log_bytes.min(MAX_LOG_FILE_BYTES / 2),
            log: None,
            log_path: dir.join(log_name(0)),
            log_end: LOG_HEADER_BYTES,
            log_alloc: LOG_HEADER_BYTES,
            log_dirty: false,
            synced_seq: 0,
            dirty_since: None,
            garbage: Vec::new(),
            poisoned: None,
            lock: None,
            closed: false,
            stop_flusher: false,
            pending_history: Vec::new(),
            pending_sums: None,
            history: None,
        }
    }

    fn open_writer(dir: PathBuf, opts: &OpenOptions, guard: LockGuard) -> Result<Inner> {
        let mut inner = Inner::new(dir.clone(), opts, false);
        inner.lock = Some(guard);
        let vfs = opts.vfs.clone();
        let manifest = dir.join(MANIFEST);
        if !vfs.exists(&manifest) {
            let entries = vfs.list_dir(&dir).ctx(&dir)?;
            let ours = |n: &String| n == DATA_DIR || n.starts_with("wal-");
            // A crash inside `initialize` leaves an empty data directory and
            // a generation-0 log without records: nothing was ever committed,
            // so the store is created anew.
            let unfinished = inner.interrupted_creation(&entries);
            if entries.iter().any(ours) && !unfinished {
                return Err(Error::corrupt(
                    &manifest,
                    "MANIFEST is missing but the directory holds a log or data files",
                ));
            }
            let foreign = entries.iter().any(|n| n != LOCK && n != MANIFEST_TMP);
            if (foreign && !unfinished) || !opts.create {
                return Err(Error::NotAStore { path: dir });
            }
            inner.initialize()?;
            return Ok(inner);
        }
        inner.load_manifest()?;
        let replay = inner.replay_log(true)?;
        inner.garbage = replay.garbage;
        if opts.truncate {
            let names: Vec<String> = inner.state.arrays.keys().cloned().collect();
            for n in names {
                if let Some(a) = inner.state.arrays.remove(&n) {
                    inner.garbage.push(a.file_id);
                }
            }
        }
        if replay.records > 0 || replay.dropped_tail || opts.truncate {
            inner.checkpoint()?;
        }
        inner.collect_stray_files()?;
        // Everything in the MANIFEST, and any replayed log (checkpointed
        // above), is durable now.
        inner.synced_seq = inner.state.seq;
        Ok(inner)
    }

    fn load_reader(dir: PathBuf, opts: &OpenOptions) -> Result<ReaderLoad> {
        // A checkpoint may swap the MANIFEST and delete the log between our
        // reads; retry on a log that has vanished.
        let mut last_err = None;
        for _ in 0..16 {
            let mut inner = Inner::new(dir.clone(), opts, true);
            inner.load_manifest()?;
            match inner.replay_log(false) {
                Ok(r) => {
                    return Ok(ReaderLoad {
                        inner,
                        reader_tail_dirty: r.dropped_tail,
                    })
                }
                Err(Error::Io { source, path }) if source.kind() == io::ErrorKind::NotFound => {
                    last_err = Some(Error::Io { source, path });
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or(Error::NotAStore { path: dir }))
    }

    /// True if `entries` (of a directory without MANIFEST) are exactly what
    /// a crash during [`Inner::initialize`] can leave: LOCK, MANIFEST.tmp, an
    /// empty data directory and a generation-0 log holding at most a header.
    fn interrupted_creation(&self, entries: &[String]) -> bool {
        let vfs = &self.io.vfs;
        let log0 = log_name(0);
        entries.iter().all(|n| {
            if n == DATA_DIR {
                vfs.list_dir(&self.io.data_dir).is_ok_and(|v| v.is_empty())
            } else if *n == log0 {
                vfs.open(&self.io.dir.join(n), OpenMode::Read)
                    .and_then(|f| f.len())
                    .is_ok_and(|len| len <= LOG_HEADER_BYTES)
            } else {
                n == LOCK || n == MANIFEST_TMP
            }
        })
    }

    fn initialize(&mut self) -> Result<()> {
        let vfs = self.io.vfs.clone();
        vfs.create_dir_all(&self.io.data_dir)
            .ctx(&self.io.data_dir)?;
        self.state = State {
            gen: 0,
            seq: 0,
            chain: [0; 32],
            next_file_id: 1,
            arrays: Default::default(),
        };
        self.created_ns = now_ns();
        let log = self.create_log(0)?;
        self.write_manifest()?;
        self.log_path = self.io.dir.join(log_name(0));
        self.log = Some(log);
        self.log_end = LOG_HEADER_BYTES;
        Ok(())
    }

    fn load_manifest(&mut self) -> Result<()> {
        let path = self.io.dir.join(MANIFEST);
        let f = self.io.vfs.open(&path, OpenMode::Read).ctx(&path)?;
        let bytes = read_whole(f.as_ref(), &path, MAX_MANIFEST_FILE_BYTES)?;
        let (state, created) = decode_manifest(&bytes).map_err(|e| header_err(&path, e))?;
        self.state = state;
        self.created_ns = created;
        Ok(())
    }

    /// Replay the log after the checkpoint. `recover`: this is the writer;
    /// redo inline payloads into data files and cut off a bad tail.
    fn replay_log(&mut self, recover: bool) -> Result<Replay> {
        let path = self.io.dir.join(log_name(self.state.gen));
        self.log_path = path.clone();
        let mode = if recover {
            OpenMode::ReadWrite
        } else {
            OpenMode::Read
        };
        let file = match self.io.vfs.open(&path, mode) {
            Ok(f) => f,
            Err(e) => return Err(Error::io(&path, e)),
        };
        let bytes = read_whole(file.as_ref(), &path, MAX_LOG_FILE_BYTES)?;
        if bytes.len() < LOG_HEADER_BYTES as usize {
            return Err(Error::corrupt(&path, "log header is truncated"));
        }
        let gen = decode_log_header(&bytes).map_err(|e| header_err(&path, e))?;
        if gen != self.state.gen {
            return Err(Error::corrupt(
                &path,
                format!(
                    "log generation {gen} does not match MANIFEST generation {}",
                    self.state.gen
                ),
            ));
        }
        // A record whose data is missing is accepted when a later record
        // released that file (deleted it early, FORMAT.md §7.4). If the log
        // then ends before the releasing record, the state would refer to the
        // missing file: the replay is redone with the log cut before the
        // first record so accepted (`limit`).
        let initial = self.state.clone();
        let history_len = self.pending_history.len();
        let mut limit = bytes.len();
        let mut replay = loop {
            let mut replay = Replay {
                end: LOG_HEADER_BYTES,
                dropped_tail: false,
                records: 0,
                garbage: Vec::new(),
            };
            // Released file -> offset of the record that released it, in
            // the valid records from the first missing payload on (a record
            // may release a file its own earlier ops wrote to).
            let mut releases: Option<HashMap<u64, usize>> = None;
            // Released files the state still refers to -> offset of the
            // first record accepted without their data.
            let mut unbacked: HashMap<u64, usize> = HashMap::new();
            let mut pos = LOG_HEADER_BYTES as usize;
            loop {
                match read_record(&bytes[pos..limit]) {
                    RecordRead::Ok(rec, len, hash) => {
                        if rec.seq != self.state.seq + 1 || rec.prev_hash != self.state.chain {
                            return Err(Error::corrupt(
                                &path,
                                format!(
                                    "record at offset {pos} breaks the hash chain (seq {}, expected {})",
                                    rec.seq,
                                    self.state.seq + 1
                                ),
                            ));
                        }
                        // A failed apply aborts the open, so single-op records
                        // can be applied in place; multi-op records keep the
                        // state before them in case a later op's data is lost.
                        let before = (rec.ops.len() > 1).then(|| self.state.clone());
                        let mut garbage = Vec::new();
                        let mut lost = false;
                        for op in &rec.ops {
                            let present =
                                Self::payload_present(&mut self.io, &self.state, op, recover)?;
                            let released = !present && {
                                let fid = op_file(&self.state, op);
                                let at = releases
                                    .get_or_insert_with(|| {
                                        releases_after(
                                            &bytes[..limit],
                                            pos,
                                            self.state.seq,
                                            self.state.chain,
                                        )
                                    })
                                    .get(&fid)
                                    .copied();
                                if at.is_some_and(|at| at >= pos) {
                                    unbacked.entry(fid).or_insert(pos);
                                    true
                                } else {
                                    false
                                }
                            };
                            if (!present && !released)
                                || (present
                                    && recover
                                    && !crate::inplace::session_sums_present(
                                        &self.io,
                                        &self.state,
                                        op,
                                        || durable_record_after(&bytes, pos, rec.seq).is_some(),
                                    )?)
                            {
                                // Unsynced data that did not survive ends the log
                                // here, unless a later record says this one was
                                // already durable (then its data was synced too,
                                // and is damaged).
                                if let Some(at) = durable_record_after(&bytes, pos, rec.seq) {
                                    return Err(Error::corrupt(
                                        self.io.data_path(op_file(&self.state, op)),
                                        format!(
                                            "data of record {} (log offset {pos}) is damaged, but the record at log offset {at} says it was durable",
                                            rec.seq
                                        ),
                                    ));
                                }
                                lost = true;
                                break;
                            }
                            match self.state.apply(op, rec.time_ns) {
                                Ok(g) => garbage.extend(g),
                                Err(d) => {
                                    return Err(Error::corrupt(
                                        &path,
                                        format!("record {} at offset {pos}: {d}", rec.seq),
                                    ))
                                }
                            }
                            if let Op::Release { file_id, .. } = op {
                                unbacked.remove(file_id);
                            }
                        }
                        if lost {
                            if let Some(b) = before {
                                self.state = b;
                            }
                            break;
                        }
                        if recover {
                            // history: summarized at the checkpoint that folds it.
                            self.pending_history.push(CommitInfo::of_record(&rec, hash));
                        }
                        self.state.seq = rec.seq;
                        self.state.chain = hash;
                        replay.garbage.extend(garbage);
                        replay.records += 1;
                        pos += len as usize;
                        replay.end = pos as u64;
                    }
                    RecordRead::Short | RecordRead::Bad(_) => {
                        if let Some(at) = durable_record_after(&bytes, pos, self.state.seq + 1) {
                            return Err(Error::corrupt(
                                &path,
                                format!(
                                    "record {} at offset {pos} is damaged, but the valid record at offset {at} says it was already durable",
                                    self.state.seq + 1
                                ),
                            ));
                        }
                        break;
                    }
                }
            }
            match unbacked.values().min() {
                None => break replay,
                Some(&cut) => {
                    // cut < every accepted end so far: each pass shortens.
                    limit = cut;
                    self.state = initial.clone();
                    self.pending_history.truncate(history_len);
                }
            }
        };
        // Zeros after the last record are preallocation (Sync::Always), not
        // damage; anything else there is a torn or lost tail.
        let tail = &bytes[replay.end as usize..];
        replay.dropped_tail = tail.iter().any(|b| *b != 0);
        if recover && replay.dropped_tail {
            file.set_len(replay.end).ctx(&path)?;
            file.sync_data().ctx(&path)?;
        }
        self.log_alloc = if replay.dropped_tail {
            replay.end
        } else {
            bytes.len() as u64
        };
        self.log = Some(file);
        self.log_end = replay.end;
        Ok(replay)
    }

    /// Check that the data `op` refers to is present, and (writer) redo an
    /// inline payload. `state` is the state just before `op` (earlier ops of
    /// the same record applied). `false`: unsynced data was lost.
    fn payload_present(io: &mut Io, state: &State, op: &Op, recover: bool) -> Result<bool> {
        let Some((name, payload, first_slot)) = op.payload() else {
            return Ok(true);
        };
        let (file_id, rb) = match op {
            Op::Put {
                file_id,
                dtype,
                row_shape,
                ..
            } => (
                *file_id,
                crate::meta::row_bytes(*dtype, row_shape).unwrap_or(0),
            ),
            _ => match state.arrays.get(name) {
                Some(a) => (a.file_id, a.row_bytes),
                None => return Ok(true), // apply() reports the unknown array
            },
        };
        let offset = first_slot.saturating_mul(rb);
        let path = io.data_path(file_id);
        match payload {
            Payload::Inline(bytes) => {
                if recover {
                    let df = io.redo_file(file_id)?;
                    df.file.write_all_at(bytes, offset).ctx(&df.path)?;
                    io.dirty_files.insert(file_id);
                    io.dir_dirty = true;
                }
            }
            Payload::InFile { crc32c, synced } => {
                let len = match op {
                    Op::Put { sums, .. } => sums.covered,
                    Op::Append { rows, .. } => rows.saturating_mul(rb),
                    Op::Replace { slots, .. } => (slots.len() as u64).saturating_mul(rb),
                    _ => 0,
                };
                if !Self::region_matches(io.vfs.as_ref(), &path, offset, len, *crc32c)? {
                    if *synced {
                        return Err(Error::corrupt(
                            &path,
                            format!(
                                "data synced before commit is missing or damaged at bytes {offset}..{}",
                                offset.saturating_add(len)
                            ),
                        ));
                    }
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn region_matches(vfs: &dyn Vfs, path: &Path, offset: u64, len: u64, crc: u32) -> Result<bool> {
        let f = match vfs.open(path, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(path, e)),
        };
        if f.len().ctx(path)? < offset.saturating_add(len) {
            return Ok(false);
        }
        let mut buf = vec![0u8; CHUNK_BYTES as usize];
        let mut c = 0u32;
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK_BYTES) as usize;
            f.read_exact_at(&mut buf[..n], offset + done).ctx(path)?;
            c = crc32c::crc32c_append(c, &buf[..n]);
            done += n as u64;
        }
        Ok(c == crc)
    }

    /// Delete data files that no committed state references (leftovers of
    /// crashed uncommitted saves and of drops before a crash).
    fn collect_stray_files(&mut self) -> Result<()> {
        let data_dir = self.io.data_dir.clone();
        if !self.io.vfs.exists(&data_dir) {
            self.io.vfs.create_dir_all(&data_dir).ctx(&data_dir)?;
            return Ok(());
        }
        let live: HashSet<String> = self
            .state
            .arrays
            .values()
            .map(|a| data_name(a.file_id))
            .collect();
        for name in self.io.vfs.list_dir(&data_dir).ctx(&data_dir)? {
            if name.ends_with(".nvd") && !live.contains(&name) {
                let p = data_dir.join(&name);
                self.io.vfs.remove_file(&p).ctx(&p)?;
            }
        }
        // Stale logs of older generations and a leftover temp manifest.
        let dir = self.io.dir.clone();
        let current = log_name(self.state.gen);
        for name in self.io.vfs.list_dir(&dir).ctx(&dir)? {
            if (name.starts_with("wal-") && name != current) || name == MANIFEST_TMP {
                let p = dir.join(&name);
                self.io.vfs.remove_file(&p).ctx(&p)?;
            }
        }
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed {
                path: self.io.dir.clone(),
            });
        }
        if self.io.read_only {
            return Err(Error::ReadOnly {
                path: self.io.dir.clone(),
            });
        }
        if let Some(p) = &self.poisoned {
            return Err(Error::Poisoned { path: p.clone() });
        }
        Ok(())
    }

    /// Refuse further writes after a failed sync (fsync-gate).
    pub(crate) fn poison(&mut self, path: &Path) {
        self.poisoned = Some(path.to_path_buf());
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed {
                path: self.io.dir.clone(),
            });
        }
        Ok(())
    }

    /// Log ops built outside the planner (in-place sessions) and apply them.
    /// Log the checksums of a finished writable session (see
    /// [`PendingSums`]), waiting for them if needed.
    pub(crate) fn settle_sums(&mut self) -> Result<()> {
        let Some(p) = self.pending_sums.take() else {
            return Ok(());
        };
        let Ok(sums) = p.job.join() else {
            // The helper panicked: the checksums stay suspended and the next
            // checkpoint computes them from the file.
            return Ok(());
        };
        if self
            .state
            .arrays
            .get(&p.name)
            .is_some_and(|a| a.file_id == p.file_id && sums.covered <= a.phys_bytes())
        {
            self.commit_ops(vec![Op::SetSums { name: p.name, sums }], false)?;
        }
        Ok(())
    }

    pub(crate) fn commit_ops(&mut self, ops: Vec<Op>, durable: bool) -> Result<()> {
        self.settle_sums()?;
        self.check_writable()?;
        let time_ns = now_ns();
        let mut staged = self.state.clone();
        for op in &ops {
            staged.apply(op, time_ns).map_err(Error::InvalidArgument)?;
        }
        self.append_record(time_ns, &ops)?;
        staged.seq = self.state.seq;
        staged.chain = self.state.chain;
        staged.gen = self.state.gen;
        self.state = staged;
        if durable {
            self.sync_all()?;
        }
        Ok(())
    }

    /// Commit intents atomically.
    pub(crate) fn commit(&mut self, intents: &[Intent<'_>]) -> Result<()> {
        self.settle_sums()?;
        self.check_writable()?;
        if intents.is_empty() {
            return Ok(());
        }
        let time_ns = now_ns();
        let mut created = Vec::new();
        self.io.presync = false;
        let planned = if intents.len() == 1 {
            crate::write::plan(&mut self.io, &self.state, &intents[0], &mut created)
                .map(|op| (op.into_iter().collect::<Vec<_>>(), None))
        } else {
            let mut staged = self.state.clone();
            let mut ops = Vec::with_capacity(intents.len());
            let mut batch_garbage = Vec::new();
            let mut res = Ok(());
            for intent in intents {
                match crate::write::plan(&mut self.io, &staged, intent, &mut created) {
                    Ok(None) => {}
                    Ok(Some(op)) => {
                        match staged.apply(&op, time_ns) {
                            Ok(g) => batch_garbage.extend(g),
                            Err(d) => {
                                res = Err(Error::InvalidArgument(d));
                                break;
                            }
                        }
                        ops.push(op);
                    }
                    Err(e) => {
                        res = Err(e);
                        break;
                    }
                }
            }
            res.map(|()| (ops, Some((staged, batch_garbage))))
        };
        if let Some(p) = self.io.sync_failed.take() {
            // fsync-gate: a failed sync is never retried as if it worked.
            self.poisoned = Some(p);
        }
        let (mut ops, staged) = match planned {
            Ok(p) => p,
            Err(e) => {
                self.discard_created(&created);
                return Err(e);
            }
        };
        if ops.is_empty() {
            return Ok(());
        }
        // Files this commit makes unreferenced that no durable state refers
        // to are released: deleted right after the record is written, so a
        // run of saves does not pile up superseded files (and their page
        // cache) until the next checkpoint. The record says so, for
        // recovery (FORMAT.md §7.1 step 7, §7.4).
        let released = self.releasable(&ops, staged.as_ref().map(|(_, g)| g.as_slice()));
        for (name, id) in &released {
            ops.push(Op::Release {
                name: name.clone(),
                file_id: *id,
            });
        }
        if let Err(e) = self.append_record(time_ns, &ops) {
            // A poisoning failure (a sync after the record was written, or a
            // tail that could not be cut) may leave the record in the log:
            // keep the files it refers to; the next open removes them if
            // the record did not survive.
            if self.poisoned.is_none() {
                self.discard_created(&created);
            }
            return Err(e);
        }
        // The record is written: install the new state.
        let mut garbage = Vec::new();
        match staged {
            Some((mut s, g)) => {
                garbage = g;
                s.seq = self.state.seq;
                s.chain = self.state.chain;
                s.gen = self.state.gen;
                self.state = s;
            }
            None => {
                for op in &ops {
                    match self.state.apply(op, time_ns) {
                        Ok(g) => garbage.extend(g),
                        Err(d) => {
                            // Unreachable for planned ops; refuse to go on
                            // with memory that disagrees with the log.
                            self.poisoned = Some(self.log_path.clone());
                            return Err(Error::corrupt(&self.log_path, d));
                        }
                    }
                }
            }
        }
        for (_, id) in &released {
            if !self.io.release_file(*id) {
                // Not deleted now: the next checkpoint deletes it.
                self.garbage.push(*id);
            }
        }
        for id in garbage {
            if released.iter().any(|(_, r)| *r == id) {
                continue;
            }
            self.io.forget_file(id);
            self.garbage.push(id);
        }
        if self.io.sync != SyncPolicy::Always {
            for op in &ops {
                if let Op::Put {
                    file_id,
                    payload: Payload::InFile { .. },
                    ..
                } = op
                {
                    self.io.fresh.insert(*file_id);
                }
            }
        }
        if self.log_end > self.checkpoint_log_bytes {
            // The commit itself succeeded; a checkpoint failure must not be
            // reported as the operation failing. A failed sync poisons the
            // handle and the next mutation reports it; anything else is
            // retried at the next commit.
            let _ = self.checkpoint();
        }
        Ok(())
    }

    /// The files `ops` make unreferenced that can be released at once (see
    /// `Io::fresh`), each with the array whose change released it.
    /// `batch_garbage`: what the ops of a multi-op commit made unreferenced.
    fn releasable(&self, ops: &[Op], batch_garbage: Option<&[u64]>) -> Vec<(String, u64)> {
        if self.io.fresh.is_empty() || self.io.sync == SyncPolicy::Always {
            return Vec::new();
        }
        let mut out = Vec::new();
        match batch_garbage {
            None => {
                for op in ops {
                    if let Op::Put { name, .. } | Op::Drop { name } | Op::Compact { name, .. } = op
                    {
                        if let Some(a) = self.state.arrays.get(name) {
                            if self.io.fresh.contains(&a.file_id) {
                                out.push((name.clone(), a.file_id));
                            }
                        }
                    }
                }
            }
            Some(g) => {
                let name = ops.first().map(|o| o.array_name().to_string());
                for id in g {
                    if self.io.fresh.contains(id) {
                        if let Some(n) = &name {
                            out.push((n.clone(), *id));
                        }
                    }
                }
            }
        }
        out
    }

    fn discard_created(&mut self, created: &[u64]) {
        for id in created {
            let p = self.io.data_path(*id);
            self.io.forget_file(*id);
            let _ = self.io.vfs.remove_file(&p);
        }
    }

    /// Write one record to the log; on success the chain and seq advance.
    fn append_record(&mut self, time_ns: u64, ops: &[Op]) -> Result<()> {
        let Some(log) = self.log.clone() else {
            return Err(Error::Closed {
                path: self.io.dir.clone(),
            });
        };
        let body = format::encode_body(time_ns, self.synced_seq, ops);
        if body.len() > format::MAX_RECORD_BODY as usize {
            return Err(Error::InvalidArgument(format!(
                "commit of {} bytes exceeds the log record limit of {} bytes; split it into smaller commits",
                body.len(),
                format::MAX_RECORD_BODY
            )));
        }
        let (bytes, hash) = frame_record(self.state.seq + 1, &self.state.chain, &body);
        if self.log_end + bytes.len() as u64 > MAX_LOG_FILE_BYTES {
            // Checkpoints keep failing (they are retried after each commit):
            // refuse rather than write a log no opener would accept.
            return Err(Error::io(
                &self.log_path,
                io::Error::other(
                    "the log is full because checkpoints are failing; fix the cause and retry",
                ),
            ));
        }
        if self.io.sync == SyncPolicy::Always && self.io.presync {
            // Data not carried inline must be durable before the record.
            if let Err(e) = self.io.sync_dirty_data() {
                self.poisoned = Some(self.io.data_dir.clone());
                return Err(Error::io(&self.io.data_dir, e));
            }
        }
        if self.io.sync == SyncPolicy::Always {
            self.preallocate_log(&log, bytes.len() as u64)?;
        }
        if let Err(e) = log.write_all_at(&bytes, self.log_end) {
            // Cut off whatever part landed so the next record starts clean.
            if log.set_len(self.log_end).is_err() {
                self.poisoned = Some(self.log_path.clone());
            }
            return Err(Error::io(&self.log_path, e));
        }
        self.log_end += bytes.len() as u64;
        self.state.seq += 1;
        // history: summarized at the checkpoint that folds this record.
        self.pending_history.push(CommitInfo {
            seq: self.state.seq,
            time_ns,
            hash,
            prev_hash: self.state.chain,
            ops: ops.iter().filter_map(OpSummary::of).collect(),
            in_log: true,
        });
        self.state.chain = hash;
        self.log_dirty = true;
        match self.io.sync {
            SyncPolicy::Always => {
                if let Err(e) = log.sync_data() {
                    self.poisoned = Some(self.log_path.clone());
                    return Err(Error::io(&self.log_path, e));
                }
                self.log_dirty = false;
                self.synced_seq = self.state.seq;
                self.io.fresh.clear();
            }
            SyncPolicy::Group { .. } => {
                if self.dirty_since.is_none() {
                    self.dirty_since = Some(Instant::now());
                }
            }
            SyncPolicy::OnFlush | SyncPolicy::Never => {}
        }
        Ok(())
    }

    /// Under `Sync::Always`, make sure the log has `need` bytes of written
    /// (zeroed) and synced space past its end, so that each commit is an
    /// overwrite within the file: its fdatasync then has no file size or
    /// block allocation to commit, only the data.
    fn preallocate_log(&mut self, log: &Arc<dyn VFile>, need: u64) -> Result<()> {
        if self.log_end + need <= self.log_alloc {
            return Ok(());
        }
        // Grow geometrically from 64 KiB to steps of 1 MiB: the first commit
        // after an open (whose log is new after the closing checkpoint) then
        // writes 128 KiB of zeros, not 2 MiB.
        let mut at = self.log_alloc.max(self.log_end);
        let step = at.clamp(64 << 10, 1 << 20);
        let target = (self.log_end + need).div_ceil(step) * step + step;
        let zeros = vec![0u8; step as usize];
        while at < target {
            let n = (target - at).min(step) as usize;
            log.write_all_at(&zeros[..n], at).ctx(&self.log_path)?;
            at += n as u64;
        }
        if let Err(e) = log.sync_data() {
            self.poisoned = Some(self.log_path.clone());
            return Err(Error::io(&self.log_path, e));
        }
        self.log_alloc = target;
        Ok(())
    }

    /// Sync data files, then the log.
    pub(crate) fn sync_all(&mut self) -> Result<()> {
        if !self.io.read_only && self.poisoned.is_none() {
            self.settle_sums()?;
        }
        if let Some(p) = &self.poisoned {
            self.dirty_since = None;
            return Err(Error::Poisoned { path: p.clone() });
        }
        if self.io.read_only {
            return Ok(());
        }
        if let Err(e) = self.io.sync_dirty_data() {
            self.poisoned = Some(self.io.data_dir.clone());
            return Err(Error::io(&self.io.data_dir, e));
        }
        if self.log_dirty {
            if let Some(log) = &self.log {
                if let Err(e) = log.sync_data() {
                    self.poisoned = Some(self.log_path.clone());
                    return Err(Error::io(&self.log_path, e));
                }
            }
            self.log_dirty = false;
        }
        self.synced_seq = self.state.seq;
        self.io.fresh.clear();
        self.dirty_since = None;
        // history: bound the memory of summaries between checkpoints (their
        // records are durable now); the checkpoint fdatasyncs them.
        if self.pending_history.len() >= 16_384 {
            let _ = self.write_history(false);
        }
        Ok(())
    }

    /// Append the pending commit summaries to `HISTORY` (docs/FORMAT.md
    /// §5.7); `sync`: also fdatasync it. Only summaries of durable records
    /// are pending when this runs (after `sync_all`). On a write failure they
    /// stay pending and the next attempt overwrites the partial write.
    fn write_history(&mut self, sync: bool) -> Result<()> {
        let path = self.io.dir.join(HISTORY);
        let (file, mut end, mut dirty) = match self.history.take() {
            Some(h) => h,
            None if self.pending_history.is_empty() => return Ok(()),
            None => {
                let f = self.io.vfs.open(&path, OpenMode::Create).ctx(&path)?;
                let mut len = f.len().ctx(&path)?;
                if len < history::FILE_HEADER_BYTES {
                    f.write_all_at(&history::file_header(), 0).ctx(&path)?;
                    len = history::FILE_HEADER_BYTES;
                }
                (f, len, true)
            }
        };
        if !self.pending_history.is_empty() {
            let mut bytes = Vec::new();
            for c in &self.pending_history {
                bytes.extend(history::encode_entry(c));
            }
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
                self.poisoned = Some(path.clone());
                return Err(Error::io(&path, e));
            }
            dirty = false;
        }
        self.history = Some((file, end, dirty));
        Ok(())
    }

    fn create_log(&mut self, gen: u64) -> Result<Arc<dyn VFile>> {
        let path = self.io.dir.join(log_name(gen));
        if self.io.vfs.exists(&path) {
            self.io.vfs.remove_file(&path).ctx(&path)?;
        }
        let f = self.io.vfs.open(&path, OpenMode::CreateNew).ctx(&path)?;
        f.write_all_at(&encode_log_header(gen), 0).ctx(&path)?;
        if let Err(e) = f.sync_data() {
            self.poisoned = Some(path.clone());
            return Err(Error::io(&path, e));
        }
        // The log's directory entry must be durable before a MANIFEST naming
        // it can be: a file system may persist the later rename first.
        if let Err(e) = self.io.vfs.sync_dir(&self.io.dir) {
            self.poisoned = Some(self.io.dir.clone());
            return Err(Error::io(&self.io.dir, e));
        }
        Ok(f)
    }

    /// temp file + fsync + rename + directory fsync.
    fn write_manifest(&mut self) -> Result<()> {
        let dir = self.io.dir.clone();
        let tmp = dir.join(MANIFEST_TMP);
        let dst = dir.join(MANIFEST);
        let bytes = encode_manifest(&self.state, self.created_ns);
        if bytes.len() as u64 > MAX_MANIFEST_FILE_BYTES {
            // Never write a MANIFEST that could not be read back. Only
            // enormous extent or remap tables get here: compact the arrays.
            return Err(Error::InvalidArgument(format!(
                "checkpoint of {} bytes exceeds the MANIFEST limit of {MAX_MANIFEST_FILE_BYTES} bytes; compact arrays with many deleted or replaced rows",
                bytes.len()
            )));
        }
        if self.io.vfs.exists(&tmp) {
            self.io.vfs.remove_file(&tmp).ctx(&tmp)?;
        }
        let f = self.io.vfs.open(&tmp, OpenMode::CreateNew).ctx(&tmp)?;
        f.write_all_at(&bytes, 0).ctx(&tmp)?;
        if let Err(e) = f.sync_data() {
            self.poisoned = Some(tmp.clone());
            return Err(Error::io(&tmp, e));
        }
        self.io.vfs.rename(&tmp, &dst).ctx(&dst)?;
        if let Err(e) = self.io.vfs.sync_dir(&dir) {
            self.poisoned = Some(dir.clone());
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
            .filter(|(n, a)| a.sums.covered < a.phys_bytes() && !self.io.busy.contains(*n))
            .map(|(n, _)| n.clone())
            .collect();
        for name in stale {
            let Some(a) = self.state.arrays.get(&name).cloned() else {
                continue;
            };
            let df = self.io.file(a.file_id)?;
            let mut sums = (*a.sums).clone();
            let end = a.phys_bytes();
            // Recompute from the start of the last (partial) chunk, after
            // checking its covered part, so damage there is not re-blessed
            // (such an array keeps its old sums and verify() reports it).
            let first = (sums.covered / CHUNK_BYTES) as usize;
            let mut pos = first as u64 * CHUNK_BYTES;
            let mut buf = vec![0u8; CHUNK_BYTES as usize];
            if let Some(old) = sums.sums.get(first) {
                let n = (sums.covered - pos) as usize;
                df.file.read_exact_at(&mut buf[..n], pos).ctx(&df.path)?;
                if crc32c::crc32c(&buf[..n]) != *old {
                    continue;
                }
            }
            sums.sums.truncate(first);
            while pos < end {
                let n = (end - pos).min(CHUNK_BYTES) as usize;
                df.file.read_exact_at(&mut buf[..n], pos).ctx(&df.path)?;
                sums.sums.push(crc32c::crc32c(&buf[..n]));
                pos += n as u64;
            }
            sums.covered = end;
            if let Some(m) = self.state.arrays.get_mut(&name) {
                Arc::make_mut(m).sums = Arc::new(sums);
            }
        }
        Ok(())
    }

    /// Checkpoint: refresh checksums, sync data, write a new log and
    /// MANIFEST generation, then delete the old log and unreferenced files.
    pub(crate) fn checkpoint(&mut self) -> Result<()> {
        if self.poisoned.is_none() {
            self.settle_sums()?;
        }
        self.check_writable()?;
        // Nothing since the last checkpoint (e.g. a handle only read from):
        // the MANIFEST already describes this state; skip its fsyncs.
        let stale_sums = self
            .state
            .arrays
            .iter()
            .any(|(n, a)| a.sums.covered < a.phys_bytes() && !self.io.busy.contains(n));
        if self.log_end == LOG_HEADER_BYTES && self.garbage.is_empty() && !stale_sums {
            return self.sync_all();
        }
        self.refresh_sums()?;
        self.sync_all()?;
        // history: the records are durable now; summarize them before the
        // checkpoint deletes the log.
        self.write_history(true)?;
        let old_gen = self.state.gen;
        let new_gen = old_gen + 1;
        let new_log = self.create_log(new_gen)?;
        self.state.gen = new_gen;
        if let Err(e) = self.write_manifest() {
            self.state.gen = old_gen;
            // A poisoning failure may come after the rename (the directory
            // sync): the MANIFEST may then name the new log, so keep it.
            if self.poisoned.is_none() {
                let _ = self
                    .io
                    .vfs
                    .remove_file(&self.io.dir.join(log_name(new_gen)));
            }
            return Err(e);
        }
        let old_log = self.log_path.clone();
        self.log = Some(new_log);
        self.log_path = self.io.dir.join(log_name(new_gen));
        self.log_end = LOG_HEADER_BYTES;
        self.log_alloc = LOG_HEADER_BYTES;
        self.log_dirty = false;
        // Failures below leave only unreferenced files, removed at next open.
        let _ = self.io.vfs.remove_file(&old_log);
        let garbage = std::mem::take(&mut self.garbage);
        let live: HashSet<u64> = self.state.arrays.values().map(|a| a.file_id).collect();
        for id in garbage {
            if !live.contains(&id) {
                self.io.forget_file(id);
                let _ = self.io.vfs.remove_file(&self.io.data_path(id));
            }
        }
        Ok(())
    }

    /// Reader: load commits made since the last load.
    pub(crate) fn reader_refresh(&mut self) -> Result<()> {
        self.check_open()?;
        let path = self.io.dir.join(MANIFEST);
        let f = self.io.vfs.open(&path, OpenMode::Read).ctx(&path)?;
        let bytes = read_whole(f.as_ref(), &path, MAX_MANIFEST_FILE_BYTES)?;
        let (state, created) = decode_manifest(&bytes).map_err(|e| header_err(&path, e))?;
        if state.gen == self.state.gen && state.seq <= self.state.seq {
            // Same generation: read the log past what we have applied.
            return self.reader_read_more();
        }
        let keep = std::mem::take(&mut self.io.files);
        self.state = state;
        self.created_ns = created;
        match self.replay_log(false) {
            Ok(_) => {
                // Keep handles of files still referenced.
                let live: HashSet<u64> = self.state.arrays.values().map(|a| a.file_id).collect();
                self.io.files = keep
                    .into_iter()
                    .filter(|(id, _)| live.contains(id))
                    .collect();
                Ok(())
            }
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                // A checkpoint raced us; try once more from the top.
                self.state = State::default();
                let fresh = Inner::load_reader(self.io.dir.clone(), &self.reopen_opts())?;
                let mut fresh = fresh.into_inner();
                fresh.io.files = keep;
                let live: HashSet<u64> = fresh.state.arrays.values().map(|a| a.file_id).collect();
                fresh.io.files.retain(|id, _| live.contains(id));
                *self = fresh;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn reopen_opts(&self) -> OpenOptions {
        OpenOptions {
            read_only: true,
            create: false,
            truncate: false,
            sync: SyncPolicy::Never,
            lock_timeout: None,
            checkpoint_log_bytes: self.checkpoint_log_bytes,
            vfs: self.io.vfs.clone(),
        }
    }

    fn reader_read_more(&mut self) -> Result<()> {
        let Some(log) = self.log.clone() else {
            return Ok(());
        };
        let len = log.len().ctx(&self.log_path)?;
        if len <= self.log_end {
            return Ok(());
        }
        if len > MAX_LOG_FILE_BYTES {
            return Err(Error::corrupt(
                &self.log_path,
                format!("log is {len} bytes, more than a valid one can be"),
            ));
        }
        let n = usize::try_from(len - self.log_end)
            .map_err(|_| Error::corrupt(&self.log_path, "log too large"))?;
        let mut buf = vec![0u8; n];
        log.read_exact_at(&mut buf, self.log_end)
            .ctx(&self.log_path)?;
        let mut pos = 0usize;
        while let RecordRead::Ok(rec, len, hash) = read_record(&buf[pos..]) {
            if rec.seq != self.state.seq + 1 || rec.prev_hash != self.state.chain {
                return Err(Error::corrupt(
                    &self.log_path,
                    "record breaks the hash chain",
                ));
            }
            let mut next = self.state.clone();
            for op in &rec.ops {
                next.apply(op, rec.time_ns)
                    .map_err(|d| Error::corrupt(&self.log_path, d))?;
            }
            next.seq = rec.seq;
            next.chain = hash;
            self.state = next;
            pos += len as usize;
            self.log_end += len;
        }
        Ok(())
    }
}

/// The data file an op with a payload writes to (for error messages).
fn op_file(state: &State, op: &Op) -> u64 {
    match op {
        Op::Put { file_id, .. } | Op::Compact { file_id, .. } => *file_id,
        _ => op
            .payload()
            .and_then(|(name, _, _)| state.arrays.get(name))
            .map_or(0, |a| a.file_id),
    }
}

/// The Release ops of the valid records from offset `pos` of `bytes` on
/// that continue the chain after record `seq` (hash `chain`): released file
/// id -> offset of the first record releasing it. Stops at the first record
/// that is not valid or does not continue the chain.
fn releases_after(
    bytes: &[u8],
    mut pos: usize,
    mut seq: u64,
    mut chain: [u8; 32],
) -> HashMap<u64, usize> {
    let mut out = HashMap::new();
    while let RecordRead::Ok(rec, len, hash) = read_record(&bytes[pos..]) {
        if rec.seq != seq.wrapping_add(1) || rec.prev_hash != chain {
            break;
        }
        for op in &rec.ops {
            if let Op::Release { file_id, .. } = op {
                out.entry(*file_id).or_insert(pos);
            }
        }
        seq = rec.seq;
        chain = hash;
        pos += len as usize;
    }
    out
}

/// Looks past a damaged or incomplete record at `pos` (expected seq
/// `expected`) for a valid later record that declares `expected` durable
/// (its `synced_seq` covers it). Such a record means synced data was damaged:
/// corruption, not a torn or reordered unsynced tail. Returns its offset.
/// Candidates are filtered by their seq field before the crc is computed, so
/// a large garbage tail costs a linear scan.
fn durable_record_after(bytes: &[u8], pos: usize, expected: u64) -> Option<usize> {
    let hdr = format::RECORD_HEADER_BYTES;
    let mut off = pos + 1;
    while off + hdr <= bytes.len() {
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[off + 8..off + 16]);
        let seq = u64::from_le_bytes(seq);
        if seq > expected && seq - expected < 1 << 32 {
            if let RecordRead::Ok(rec, len, _) = read_record(&bytes[off..]) {
                if rec.synced_seq >= expected {
                    return Some(off);
                }
                off += len as usize;
                continue;
            }
        }
        off += 1;
    }
    None
}

/// Compute chunk sums of `data` while writing it, on two threads for large
/// inputs so the checksum hides behind the write.
pub(crate) fn write_with_sums(df: &DataFile, data: &[u8], offset: u64) -> Result<ChunkSums> {
    const PARALLEL_MIN: usize = 4 << 20;
    if data.len() < PARALLEL_MIN || offset != 0 {
        df.file.write_all_at(data, offset).ctx(&df.path)?;
        return Ok(ChunkSums::of(data));
    }
    std::thread::scope(|s| {
        let h = s.spawn(|| ChunkSums::of(data));
        let w = df.file.write_all_at(data, offset).ctx(&df.path);
        let sums = h
            .join()
            .map_err(|_| Error::InvalidArgument("checksum thread panicked".into()));
        w?;
        sums
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Op;

    fn log_of(synced: &[u64]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = encode_log_header(0);
        let mut starts = Vec::new();
        let mut chain = [0u8; 32];
        for (i, s) in synced.iter().enumerate() {
            let body = format::encode_body(1, *s, &[Op::Drop { name: "a".into() }]);
            let (rec, h) = frame_record(i as u64 + 1, &chain, &body);
            chain = h;
            starts.push(bytes.len());
            bytes.extend_from_slice(&rec);
        }
        (bytes, starts)
    }

    #[test]
    fn damage_before_a_durable_point_is_corruption_after_it_a_tail() {
        // Record 2 is damaged. Record 3 says 2 was synced: corruption.
        let (mut bytes, starts) = log_of(&[0, 1, 2]);
        bytes[starts[1] + 60] ^= 1;
        assert_eq!(durable_record_after(&bytes, starts[1], 2), Some(starts[2]));
        // Record 3 says only 1 was synced: a reordered unsynced tail.
        let (mut bytes, starts) = log_of(&[0, 1, 1]);
        bytes[starts[1] + 60] ^= 1;
        assert_eq!(durable_record_after(&bytes, starts[1], 2), None);
        // A damaged length field is caught by the crc too.
        let (mut bytes, starts) = log_of(&[0, 1, 2]);
        bytes[starts[1]] ^= 0x10;
        assert!(!matches!(
            read_record(&bytes[starts[1]..]),
            RecordRead::Ok(..)
        ));
        assert_eq!(durable_record_after(&bytes, starts[1], 2), Some(starts[2]));
        // A torn final record with nothing after it is a tail.
        let (bytes, starts) = log_of(&[0, 1]);
        let torn = &bytes[..bytes.len() - 3];
        assert_eq!(durable_record_after(torn, starts[1], 2), None);
    }
}
