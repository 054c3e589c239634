//! [`Store`]: opening, closing, changes and queries.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::format::{data_name, DATA_DIR, LOCK, LOG_HEADER_BYTES, MANIFEST};
use crate::model::array::{ArrayInfo, ArrayRef};
use crate::model::dtype::DType;
use crate::model::error::{Error, IoContext, Result};
use crate::model::state::{ArrayMeta, State};
use crate::txn::batch::Batch;
use crate::txn::durability::group_commit_loop;
use crate::txn::plan::Intent;
use crate::txn::stage::{Txn, TXN_MEMORY_BYTES};
use crate::txn::turns::read_note;
use crate::txn::{Engine, OpenOptions, Shared, SyncPolicy};

/// What [`Store::compact_report`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// Bytes of dead rows freed (at the next checkpoint).
    pub reclaimed_bytes: u64,
    /// Bytes of live rows now held twice, because a version keeps the old
    /// file.
    pub duplicated_bytes: u64,
}

/// An open store. `Send + Sync`: share it between threads behind an `Arc`.
///
/// One process may hold a store open for writing at a time (an advisory lock
/// on `LOCK`); any number may open it read-only.
pub struct Store {
    pub(crate) shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

impl Store {
    /// Open (and by default create) the store at `path`.
    pub fn open(path: impl AsRef<Path>, opts: OpenOptions) -> Result<Store> {
        let dir = path.as_ref().to_path_buf();
        if let Some(v) = opts.version.clone() {
            let ro = OpenOptions {
                read_only: true,
                version: None,
                ..opts
            };
            if let crate::txn::versions::VersionRef::Id(id) = v {
                // The lease before the state is loaded: a deletion then
                // either sees the lease or is in the state loaded.
                let lease = crate::txn::versions::Lease::take(&ro.vfs, &dir, id)?;
                let base = Self::open_read_only(dir, ro)?;
                return base.at_leased(id, lease);
            }
            let base = Self::open_read_only(dir, ro)?;
            return base.at(v);
        }
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
        let guard = match vfs.lock_exclusive(&lock_path, opts.lock_wait()) {
            Ok(g) => g,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let holder = read_note(vfs.as_ref(), &lock_path).holder();
                return Err(Error::Locked { path: dir, holder });
            }
            Err(e) => return Err(Error::io(lock_path, e)),
        };
        let engine = Engine::open_writer(&dir, &opts, guard)?;
        let store = Self::start(engine, dir, opts.sync)?;
        if opts.upgrade {
            store.upgrade()?;
        }
        Ok(store)
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
        let mut load = Engine::load_reader(&dir, &opts)?;
        // In the boot that wrote the log, every record's data is readable
        // and a clean close leaves records in it: read as found. After a
        // reboot (records whose data a power loss may have taken, inline
        // rows never redone) or a torn tail, a writer is live or crashed.
        // If nobody holds the lock, the writer crashed: recover under the
        // lock (as SQLite readers roll back a hot journal), so that redo
        // records reach the data files. If that is not permitted, read as
        // found.
        let after_reboot =
            load.engine.log_len() > LOG_HEADER_BYTES && !load.engine.log_in_this_boot();
        if after_reboot || load.tail_dirty {
            if let Ok(g) = vfs.lock_exclusive(&dir.join(LOCK), None) {
                let wopts = OpenOptions {
                    read_only: false,
                    create: false,
                    truncate: false,
                    ..opts.clone()
                };
                if let Ok(w) = Engine::open_writer(&dir, &wopts, g) {
                    let w = Self::start(w, dir.clone(), SyncPolicy::OnFlush)?;
                    w.close()?;
                    load = Engine::load_reader(&dir, &opts)?;
                }
            }
        }
        Self::start(load.engine, dir, SyncPolicy::Never)
    }

    pub(crate) fn start(engine: Engine, path: PathBuf, sync: SyncPolicy) -> Result<Store> {
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
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

    /// The engine, locked, with a finished writable session's checksums
    /// logged first (FORMAT.md §11).
    pub(crate) fn engine(&self) -> MutexGuard<'_, Engine> {
        self.shared.lock()
    }

    /// A transaction: stage changes (each validated against the state the
    /// earlier ones leave), then commit them atomically. Staged rows beyond
    /// [`TXN_MEMORY_BYTES`] go to staging files, so a transaction of any
    /// size runs in bounded memory.
    pub fn begin(&self) -> Result<Txn> {
        self.begin_with_memory(TXN_MEMORY_BYTES)
    }

    /// [`Store::begin`] with at most `memory_bytes` of staged rows kept in
    /// memory.
    pub fn begin_with_memory(&self, memory_bytes: usize) -> Result<Txn> {
        Txn::begin(self.shared.clone(), memory_bytes)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The durability policy in force.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.engine().sync
    }

    /// True if opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.engine().read_only
    }

    /// Commit several changes atomically: after any crash either all or none
    /// of them are present. On error nothing changes, with one exception: if
    /// the log fsync fails after the record was written (`Sync::Always`), the
    /// outcome is unknown until reopen and the handle is poisoned
    /// (docs/FORMAT.md §13).
    pub fn commit(&self, batch: &Batch<'_>) -> Result<()> {
        self.commit_intents(&batch.intents)
    }

    fn commit_intents(&self, intents: &[Intent<'_>]) -> Result<()> {
        let mut g = self.engine();
        g.commit(intents)?;
        if g.dirty_since.is_some() {
            // Under Sync::Group, start the clock of the background sync.
            self.shared.cv.notify_all();
        }
        Ok(())
    }

    /// Create or overwrite an array.
    pub fn save(&self, name: &str, array: ArrayRef<'_>) -> Result<()> {
        self.commit_intents(&[Intent::Save {
            name,
            array: array.into(),
        }])
    }

    /// Append rows; dtype and trailing shape must match.
    pub fn append(&self, name: &str, array: ArrayRef<'_>) -> Result<()> {
        self.commit_intents(&[Intent::Append {
            name,
            array: array.into(),
        }])
    }

    /// Replace the rows at `indices` (any order, negative from the end, no
    /// duplicates) with the rows of `array`, in the same order.
    pub fn replace(&self, name: &str, indices: &[i64], array: ArrayRef<'_>) -> Result<()> {
        self.commit_intents(&[Intent::Replace {
            name,
            indices,
            array: array.into(),
        }])
    }

    /// Delete rows; later rows are renumbered, as `numpy.delete` does.
    /// Repeated indices are allowed and delete the row once.
    pub fn delete_rows(&self, name: &str, indices: &[i64]) -> Result<()> {
        self.commit_intents(&[Intent::DeleteRows { name, indices }])
    }

    /// Rewrite an array into a new file without dead rows; returns the bytes
    /// reclaimed (freed on disk at the next checkpoint; 0 when a version
    /// keeps the old file, see [`Store::compact_report`]).
    pub fn compact(&self, name: &str) -> Result<u64> {
        Ok(self.compact_report(name)?.reclaimed_bytes)
    }

    /// [`Store::compact`], saying also what it duplicated: when a version
    /// keeps the array's file (FORMAT.md §15.5), the old file stays and the
    /// live rows copied into the new one are held twice.
    pub fn compact_report(&self, name: &str) -> Result<Compaction> {
        let before = self.info(name)?;
        let kept = {
            let g = self.engine();
            let id = g.state.arrays.get(name).map(|a| a.file_id);
            id.is_some_and(|id| g.state.file_refs.get(&id).is_some_and(|r| r.versions > 0))
        };
        self.commit_intents(&[Intent::Compact { name }])?;
        let after = self.info(name)?;
        let changed = after.file != before.file;
        Ok(match (kept, changed) {
            (true, true) => Compaction {
                reclaimed_bytes: 0,
                duplicated_bytes: after.data_bytes,
            },
            _ => Compaction {
                reclaimed_bytes: before.data_bytes.saturating_sub(after.data_bytes),
                duplicated_bytes: 0,
            },
        })
    }

    /// Remove an array.
    pub fn drop_array(&self, name: &str) -> Result<()> {
        self.commit_intents(&[Intent::Drop { name }])
    }

    /// Rename an array; the target must not exist.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.commit_intents(&[Intent::Rename { from, to }])
    }

    /// Names of the arrays under `prefix` (a '/'-separated group; "" for
    /// all), in sorted order. Only the arrays under the prefix are touched.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        list_prefix(&self.engine().state, prefix)
    }

    /// True if the array exists.
    pub fn has(&self, name: &str) -> bool {
        self.engine().state.arrays.contains_key(name)
    }

    /// Number of arrays.
    pub fn len(&self) -> usize {
        self.engine().state.arrays.len()
    }

    /// True if the store holds no arrays.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn meta(&self, name: &str) -> Result<Arc<ArrayMeta>> {
        self.engine()
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
    pub fn dtype(&self, name: &str) -> Result<DType> {
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
        self.engine().state.seq
    }

    /// Make every returned mutation durable (sync data files and the log).
    /// On a read-only handle, load the latest committed state instead.
    pub fn flush(&self) -> Result<()> {
        let mut g = self.engine();
        if g.read_only {
            return g.reader_refresh();
        }
        g.check_writable()?;
        g.sync_all()?;
        if g.log_len() > 1 << 20 {
            g.checkpoint()?;
        }
        Ok(())
    }

    /// The descriptor of the writer lock this handle holds right now (an
    /// exclusive writer: from open to close), if it is a real file's flock.
    #[cfg(unix)]
    pub fn lock_fd(&self) -> Option<std::os::fd::RawFd> {
        self.engine()
            .lock_guard()
            .and_then(crate::io::vfs::held_lock_fd)
    }

    /// Change how long a writer by turns waits for the writer lock at each
    /// commit (`None`: [`crate::txn::options::SHARED_LOCK_TIMEOUT`]). No
    /// effect on other handles.
    pub fn set_lock_timeout(&self, timeout: Option<std::time::Duration>) {
        let mut g = self.engine();
        if g.is_shared() {
            g.set_lock_wait(Some(
                timeout.unwrap_or(crate::txn::options::SHARED_LOCK_TIMEOUT),
            ));
        }
    }

    /// Read-only handles and writers by turns (`OpenOptions::shared`): pick
    /// up commits made since open (or the last refresh or commit).
    /// Exclusive writers: no effect (nobody else commits).
    pub fn refresh(&self) -> Result<()> {
        let mut g = self.engine();
        if g.read_only {
            g.reader_refresh()
        } else if g.is_shared() {
            // A writer by turns catches up by taking a turn (the writer
            // lock, waiting as a commit would) and ending it.
            g.take_turn()?;
            g.end_turn();
            Ok(())
        } else {
            Ok(())
        }
    }

    /// Write a checkpoint now: sync everything, write a new MANIFEST and
    /// start a new log; frees the space of dropped and compacted files.
    pub fn checkpoint(&self) -> Result<()> {
        let mut g = self.engine();
        g.check_writable()?;
        g.checkpoint()
    }

    /// Make everything durable per the sync policy (nothing under
    /// `Sync::Never`), checkpoint if the log is long, and release the lock.
    /// Dropping the store does the same but cannot report errors.
    pub fn close(mut self) -> Result<()> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<()> {
        self.engine().stop_flusher = true;
        self.shared.cv.notify_all();
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
        let mut g = self.engine();
        if g.closed {
            return Ok(());
        }
        let res = if g.read_only || g.is_poisoned() {
            Ok(())
        } else {
            g.close_durably()
        };
        g.shut();
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
