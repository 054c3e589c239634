//! `Vault`: the native store handle.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use numpy::PyUntypedArrayMethods;
use numvault::{ArrayRef, DType, OpenOptions, Store, Sync as SyncPolicy};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::conv::{alloc, descr, dict, input, is_ndarray, np, out_slice, shape_tuple, Input};
use crate::errors::{guard, nogil, panic_err, to_py, withgil};
use crate::index::{normalize_all, parse_target, quick_indices, Rows};
use crate::lazy::{LazyArray, NOGIL_BYTES};
use crate::stream::BatchIter;
use crate::txn::Transaction;
use crate::writable::WritableArray;

fn parse_sync(sync: &str, max_delay_ms: f64) -> PyResult<SyncPolicy> {
    Ok(match sync {
        "always" => SyncPolicy::Always,
        "group" => {
            if !(max_delay_ms.is_finite() && max_delay_ms >= 0.0) {
                return Err(PyValueError::new_err(
                    "max_delay_ms must be a non-negative number",
                ));
            }
            SyncPolicy::Group {
                max_delay: Duration::from_secs_f64(max_delay_ms / 1000.0),
            }
        }
        "flush" => SyncPolicy::OnFlush,
        "never" => SyncPolicy::Never,
        other => {
            return Err(PyValueError::new_err(format!(
                "sync must be one of 'always', 'group', 'flush', 'never', got {other:?}"
            )))
        }
    })
}

/// The stored facts needed to resolve indexes and check values.
pub(crate) struct Meta {
    pub dtype: DType,
    pub shape: Vec<u64>,
}

/// `array[index] = value` for an array with `meta`, as rows for the engine:
/// the row indices (repeated ones: the last value wins, as in NumPy), the
/// rows' shape, dtype and bytes; `None` if no row is selected.
pub(crate) type ResolvedRows = (Vec<i64>, Vec<u64>, DType, Vec<u8>);

pub(crate) fn resolve_rows(
    name: &str,
    index: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    meta: &Meta,
) -> PyResult<Option<ResolvedRows>> {
    let sel = parse_target(index, meta.shape[0])?;
    let inp = value_rows(name, value, meta, &sel)?;
    let norm = normalize_all(&sel.to_vec(), meta.shape[0])?;
    if norm.is_empty() {
        return Ok(None);
    }
    let rb = inp.nbytes() / norm.len();
    let (idx, data) = if has_duplicates(&norm) {
        dedupe_last(&norm, inp.bytes(), rb)
    } else {
        (
            norm.iter().map(|&i| i as i64).collect(),
            inp.bytes().to_vec(),
        )
    };
    let mut shape = inp.shape.clone();
    shape[0] = idx.len() as u64;
    Ok(Some((idx, shape, inp.dtype, data)))
}

/// Convert `value` to rows of an existing array: same dtype (no silent
/// casts of arrays; Python scalars and lists are converted), shape
/// broadcast to `sel_shape + row_shape` as NumPy assignment does (extra
/// leading 1-sized axes allowed), then flattened to `(n,) + row_shape`.
fn value_rows<'py>(
    name: &str,
    value: &Bound<'py, PyAny>,
    meta: &Meta,
    sel: &Rows<'_>,
) -> PyResult<Input<'py>> {
    let py = value.py();
    let want = descr(py, meta.dtype);
    let arr = if is_ndarray(value) {
        value.clone()
    } else {
        np(py)?
            .call_method1("asarray", (value, &want))
            .map_err(|e| PyValueError::new_err(format!("array '{name}': bad value: {e}")))?
    };
    let arr = arr.cast_into::<numpy::PyUntypedArray>()?;
    let got = crate::conv::dtype_of(&arr.dtype());
    if got != Some(meta.dtype) {
        return Err(PyValueError::new_err(format!(
            "array '{name}': dtype mismatch: stored {}, got {}",
            meta.dtype,
            arr.dtype().str()?
        )));
    }
    let row_shape = &meta.shape[1..];
    let sel_shape: Vec<u64> = match sel {
        Rows::One(_) => Vec::new(),
        Rows::Range { len, .. } => vec![*len],
        Rows::List { shape, .. } => shape.clone(),
    };
    let mut target = sel_shape.clone();
    target.extend_from_slice(row_shape);
    let mut flat = vec![sel.count()];
    flat.extend_from_slice(row_shape);
    let mut shape: Vec<u64> = arr.shape().iter().map(|&s| s as u64).collect();
    let mut arr = arr.into_any();
    if shape != flat {
        while shape.len() > target.len() && shape[0] == 1 {
            shape.remove(0);
        }
        if shape != target {
            arr = np(py)?
                .call_method1("broadcast_to", (&arr, shape_tuple(py, &target)?))
                .map_err(|_| {
                    PyValueError::new_err(format!(
                        "array '{name}': shape mismatch: could not broadcast value of shape {} \
                         into the selected rows, shape {}",
                        fmt_shape(&shape),
                        fmt_shape(&target)
                    ))
                })?;
        }
        arr = arr.call_method1("reshape", (shape_tuple(py, &flat)?,))?;
    }
    input(&arr, &format!("array '{name}'"))
}

fn fmt_shape(s: &[u64]) -> String {
    let parts: Vec<String> = s.iter().map(u64::to_string).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Keep the last occurrence of each (normalized) index, as NumPy assignment
/// does, gathering the matching rows of `data`.
fn dedupe_last(idx: &[u64], data: &[u8], row_bytes: usize) -> (Vec<i64>, Vec<u8>) {
    let mut last: HashMap<u64, usize> = HashMap::with_capacity(idx.len());
    for (pos, &i) in idx.iter().enumerate() {
        last.insert(i, pos);
    }
    let mut keep: Vec<(u64, usize)> = last.into_iter().collect();
    keep.sort_unstable();
    let mut out = Vec::with_capacity(keep.len() * row_bytes);
    let mut v = Vec::with_capacity(keep.len());
    for (i, pos) in keep {
        v.push(i as i64);
        out.extend_from_slice(&data[pos * row_bytes..(pos + 1) * row_bytes]);
    }
    (v, out)
}

fn has_duplicates(idx: &[u64]) -> bool {
    let mut s = idx.to_vec();
    s.sort_unstable();
    s.windows(2).any(|w| w[0] == w[1])
}

/// An open numvault store: a directory of named numeric arrays with atomic,
/// crash-safe updates.
///
/// ``Vault(path, mode="a", sync="flush", *, max_delay_ms=10.0,
/// lock_timeout=None, shared=False, version=None, upgrade=False,
/// keep_last=None, keep_for=None)``
///
/// * ``mode``: ``"r"`` read-only (shared with any number of readers and one
///   writer; ``refresh()`` picks up new commits), ``"a"`` read/write, created
///   if missing, ``"w"`` read/write, emptied on open (atomically).
/// * ``sync`` (durability against power loss; a process crash never loses a
///   returned call in any mode): ``"always"`` each call is durable when it
///   returns; ``"group"`` a background thread syncs within ``max_delay_ms``;
///   ``"flush"`` durable at ``flush()`` and ``close()`` (the default);
///   ``"never"`` never synced by numvault (still consistent after a crash).
/// * ``lock_timeout``: seconds to wait for another writer's lock; ``None``
///   raises ``LockedError`` at once (a shared writer waits 30 s).
/// * ``shared``: write by turns with other handles and processes: the
///   writer lock is taken for each change (waiting up to ``lock_timeout``),
///   after catching up with what the others committed, so no update is lost
///   and every writer sees the others' changes; without it one Vault holds
///   the store for writing from open to close.
/// * ``version``: with ``mode="r"``, open that version (an int id or a str
///   tag, see ``snapshot()``) instead of the current state: a read-only
///   handle that does not follow later commits, like ``at()``.
/// * ``upgrade``: a writer (``mode`` "a" or "w") upgrades a format-1 store
///   to format 2 at open, which versions need (``NeedsUpgradeError``
///   otherwise); older numvault releases cannot open it afterwards.
/// * ``keep_last``, ``keep_for`` (seconds): retention, for a writer: each
///   checkpoint (``checkpoint()``, ``gc()``, ``close()``, automatic ones)
///   first deletes the untagged versions outside the newest ``keep_last``
///   untagged ones and older than ``keep_for`` (each condition only if
///   set). Tagged versions and versions a handle has open are kept.
///
/// Versions: ``snapshot(tag=None)`` pins the committed state and returns
/// its id; ``versions()`` lists them; ``at(id_or_tag)`` is a read-only Vault
/// on one (every read works on it); ``diff``, ``restore``,
/// ``delete_snapshot`` and ``gc`` compare, bring back and free them.
///
/// A Vault is a context manager and dict-like: ``vault["x"]`` loads,
/// ``vault["x"] = arr`` saves, ``del vault["x"]`` drops, ``"x" in vault``,
/// ``len(vault)`` and iteration over the names. Methods release the GIL
/// during I/O, and one Vault can be shared by several threads.
#[pyclass(module = "numvault", name = "Vault", frozen, subclass, weakref)]
pub struct Vault {
    // Declared first so that open sessions end before the store closes.
    sessions: Mutex<Vec<Py<WritableArray>>>,
    store: RwLock<Option<Arc<Store>>>,
    path: PathBuf,
    mode: String,
    sync: String,
    /// Fork generation at open (see `crate::fork_gen`).
    fork_gen: u64,
    /// Process id at open: a handle used from another process (a child
    /// after fork(), however it was made) is refused.
    pid: u32,
    /// Descriptors of the writer lock this handle holds (see [`LockFds`]).
    lock_fds: Mutex<LockFds>,
}

/// The writer lock of a handle as seen by the fork handling: `fds`, the
/// engine's descriptors open on `LOCK` (registered in [`LOCK_FDS`]), and
/// `dup`, a descriptor of our own on the same open file description (also
/// registered). flock(2) locks belong to the open file description, shared
/// with every forked child until the child's handler runs: after the engine
/// closed the store, `LOCK_UN` through `dup` releases the lock even if a
/// child forked a moment ago still holds a copy.
#[derive(Default)]
struct LockFds {
    fds: Vec<i32>,
    dup: Option<i32>,
}

impl LockFds {
    fn new(fds: Vec<i32>) -> LockFds {
        // SAFETY: fcntl on a descriptor we just found open; the result is
        // checked.
        let dup = fds
            .first()
            .map(|&fd| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })
            .filter(|&d| d >= 0);
        register_lock_fds(&fds);
        if let Some(d) = dup {
            register_lock_fds(&[d]);
        }
        LockFds { fds, dup }
    }

    /// Forget the engine's descriptors: call before the store closes them
    /// (their numbers may be reused at once).
    fn forget_engine_fds(&mut self) {
        unregister_lock_fds(&std::mem::take(&mut self.fds));
    }

    /// The store is closed (`closed`: by us, its lock released by the
    /// engine) or handed to whoever holds it last: drop our descriptor,
    /// first unlocking the lock's open file description if `closed`.
    fn release(&mut self, closed: bool) {
        self.forget_engine_fds();
        if let Some(d) = self.dup.take() {
            unregister_lock_fds(&[d]);
            // SAFETY: `d` is our own descriptor, closed once here.
            unsafe {
                if closed {
                    libc::flock(d, libc::LOCK_UN);
                }
                libc::close(d);
            }
        }
    }
}

/// Bytes of the stored chunk grid: data files are checksummed (and
/// verified when read whole) in chunks of this size from the file's start
/// (the engine's `CHUNK_BYTES`, FORMAT.md). Reported by `info()` so that
/// readers (Dask) can align their blocks with it.
const CHUNK_BYTES: u64 = 1 << 20;

/// Slots of [`LOCK_FDS`]: descriptors of held writer locks (-1: free).
const LOCK_SLOTS: usize = 64;

/// The descriptors of the `LOCK` files that this process's writer handles
/// hold their flock(2) lock through. A flock lock belongs to the open file
/// description, which fork() shares with the child: a child that lives on
/// (a DataLoader worker, a Pool process) would keep the parent's writer
/// lock held after the parent closed its handle, and the next writer open
/// (the parent's own included) would find the store locked. In the child,
/// right after fork(), each of these descriptors is pointed at /dev/null
/// (dup2: the child's reference to the lock goes, the number stays taken so
/// that the abandoned handle can never touch another file through it). The
/// parent's lock is unaffected. Atomics only: the handler runs in the child
/// of a possibly multi-threaded process.
static LOCK_FDS: [AtomicI32; LOCK_SLOTS] = [const { AtomicI32::new(-1) }; LOCK_SLOTS];

extern "C" fn release_locks_in_child() {
    // SAFETY: open, dup2 and close are async-signal-safe; the path is a
    // NUL-terminated literal.
    unsafe {
        let mut null = -1;
        for slot in &LOCK_FDS {
            let fd = slot.swap(-1, Ordering::SeqCst);
            if fd < 0 {
                continue;
            }
            if null < 0 {
                null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
                if null < 0 {
                    return;
                }
            }
            libc::dup2(null, fd);
        }
        if null >= 0 {
            libc::close(null);
        }
    }
}

fn register_lock_fds(fds: &[i32]) {
    static HANDLER: std::sync::Once = std::sync::Once::new();
    // SAFETY: the handler touches only atomics and async-signal-safe calls.
    HANDLER.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(release_locks_in_child));
    });
    for &fd in fds {
        for slot in &LOCK_FDS {
            if slot
                .compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                break;
            }
        }
    }
}

fn unregister_lock_fds(fds: &[i32]) {
    for &fd in fds {
        for slot in &LOCK_FDS {
            if slot
                .compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                break;
            }
        }
    }
}

impl Vault {
    fn forked(&self) -> bool {
        crate::fork_gen() != self.fork_gen || std::process::id() != self.pid
    }

    /// In a child process after fork(): give up the handle without closing
    /// it (closing would write to the parent's store).
    ///
    /// Never waits: a lock held by a parent's thread at fork time stays
    /// held forever in the child (that thread is gone), so a busy lock
    /// leaves the handle to [`Drop`], which needs none.
    fn abandon(&self) {
        let store = match self.store.try_write() {
            Ok(mut g) => g.take(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().take(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        std::mem::forget(store);
        let sessions = match self.sessions.try_lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(std::sync::TryLockError::Poisoned(p)) => std::mem::take(&mut *p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => Vec::new(),
        };
        for w in sessions {
            w.get().abandon();
        }
    }

    /// A read-only handle of this one's kind on `store` (a version's, from
    /// [`Store::at`]): no writer lock, no sessions.
    pub(crate) fn view_of(&self, store: Store) -> Vault {
        Vault {
            sessions: Mutex::new(Vec::new()),
            store: RwLock::new(Some(Arc::new(store))),
            path: self.path.clone(),
            mode: "r".to_string(),
            sync: self.sync.clone(),
            fork_gen: crate::fork_gen(),
            pid: std::process::id(),
            lock_fds: Mutex::new(LockFds::default()),
        }
    }

    /// The name of an array with an open writable session of this handle.
    pub(crate) fn open_session(&self) -> Option<String> {
        let g = match self.sessions.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.iter()
            .find(|w| w.get().is_open())
            .map(|w| w.get().array_name().to_string())
    }

    pub(crate) fn store(&self) -> PyResult<Arc<Store>> {
        if self.forked() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "this Vault ({}) was opened in process {} and is used from process {} (a \
                 child after fork()); it cannot be used here: open the store again in the \
                 child process (e.g. Vault(path, \"r\")); LazyArrays made before the fork \
                 stay usable",
                self.path.display(),
                self.pid,
                std::process::id()
            )));
        }
        let g = match self.store.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match g.as_ref() {
            Some(s) => Ok(s.clone()),
            None => Err(PyValueError::new_err(format!(
                "store {} is closed",
                self.path.display()
            ))),
        }
    }

    fn meta(&self, py: Python<'_>, name: &str) -> PyResult<Meta> {
        let s = self.store()?;
        let n = name.to_string();
        let (dtype, shape) = nogil(py, move || {
            let info = s.info(&n)?;
            Ok((info.dtype, info.shape))
        })?;
        Ok(Meta { dtype, shape })
    }

    pub fn lazy_array(&self, py: Python<'_>, name: &str) -> PyResult<LazyArray> {
        let s = self.store()?;
        let path = self.path.clone();
        let version = s.version();
        let view = nogil(py, move || s.view(name))?;
        Ok(LazyArray::new(view, path).with_version(version))
    }

    fn replace_impl(
        &self,
        py: Python<'_>,
        name: &str,
        index: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        // Fast path, the common case: 1-d integer indices and an array of
        // exactly that many rows go straight to the engine, which checks
        // dtype, shape and indices. What it refuses as not fitting the
        // array takes the full path below (broadcasting, repeated indices,
        // precise errors); a refused call changed nothing.
        if is_ndarray(value) {
            if let Some(idx) = quick_indices(index)? {
                let inp = input(value, &format!("array '{name}'"))?;
                let idx = idx.as_slice();
                if inp.shape.first() == Some(&(idx.len() as u64)) && !idx.is_empty() {
                    let (bytes, shape, dtype) = (inp.bytes(), &inp.shape, inp.dtype);
                    let s = self.store()?;
                    match nogil_raw(py, move || {
                        s.replace(name, idx, ArrayRef::new(dtype, shape, bytes))
                    })? {
                        Ok(()) => return Ok(()),
                        Err(e)
                            if e.is_validation()
                                || matches!(e, numvault::Error::InvalidArgument(_)) => {}
                        Err(e) => return Err(to_py(e)),
                    }
                }
            }
        }
        let meta = self.meta(py, name)?;
        let Some((idx, shape, dtype, data)) = resolve_rows(name, index, value, &meta)? else {
            return Ok(());
        };
        let s = self.store()?;
        nogil(py, move || {
            s.replace(name, &idx, ArrayRef::new(dtype, &shape, &data))
        })
    }
}

/// Engine work with the GIL released; engine errors are returned as they
/// are (panics become `InternalError`).
fn nogil_raw<T, F>(py: Python<'_>, f: F) -> PyResult<numvault::Result<T>>
where
    T: Send,
    F: Send + FnOnce() -> numvault::Result<T>,
{
    match py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))) {
        Ok(r) => Ok(r),
        Err(p) => Err(panic_err(p)),
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        if self.forked() {
            // Exclusive access: no lock to take (one held by a thread of the
            // parent at fork time would never be released here).
            let store = match self.store.get_mut() {
                Ok(g) => g.take(),
                Err(p) => p.into_inner().take(),
            };
            std::mem::forget(store);
            let sessions = match self.sessions.get_mut() {
                Ok(g) => std::mem::take(g),
                Err(p) => std::mem::take(p.into_inner()),
            };
            for w in sessions {
                w.get().abandon();
            }
        } else {
            let lock = match self.lock_fds.get_mut() {
                Ok(v) => v,
                Err(p) => p.into_inner(),
            };
            lock.forget_engine_fds();
            let store = match self.store.get_mut() {
                Ok(g) => g.take(),
                Err(p) => p.into_inner().take(),
            };
            // Closed here only if this was the last reference.
            let closed = match store.map(Arc::try_unwrap) {
                Some(Ok(store)) => {
                    drop(store);
                    true
                }
                Some(Err(_)) | None => false,
            };
            lock.release(closed);
        }
    }
}

#[pymethods]
impl Vault {
    #[new]
    #[pyo3(signature = (path, mode="a", sync="flush", *, max_delay_ms=10.0, lock_timeout=None, shared=false, version=None, upgrade=false, keep_last=None, keep_for=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        mode: &str,
        sync: &str,
        max_delay_ms: f64,
        lock_timeout: Option<f64>,
        shared: bool,
        version: Option<&Bound<'_, PyAny>>,
        upgrade: bool,
        keep_last: Option<i64>,
        keep_for: Option<f64>,
    ) -> PyResult<Vault> {
        let policy = parse_sync(sync, max_delay_ms)?;
        let version = match version {
            Some(v) if !v.is_none() => Some(crate::versions::version_ref(v)?),
            _ => None,
        };
        if version.is_some() && mode != "r" {
            return Err(PyValueError::new_err(format!(
                "version= opens a read-only view of that version: pass mode=\"r\", got {mode:?}"
            )));
        }
        if upgrade && mode == "r" {
            return Err(PyValueError::new_err(
                "upgrade=True rewrites the store: it needs mode \"a\" (or \"w\"), not \"r\"",
            ));
        }
        let mut opts = match mode {
            "r" => OpenOptions::read_only(),
            "a" => OpenOptions::default(),
            "w" => OpenOptions {
                truncate: true,
                ..OpenOptions::default()
            },
            other => {
                return Err(PyValueError::new_err(format!(
                    "mode must be 'r', 'a' or 'w', got {other:?}"
                )))
            }
        };
        if mode != "r" {
            opts.sync = policy;
            opts.shared = shared;
        }
        opts.version = version;
        opts.upgrade = upgrade;
        if (keep_last.is_some() || keep_for.is_some()) && mode == "r" {
            return Err(PyValueError::new_err(
                "keep_last and keep_for are applied by a writer's checkpoints: they need mode \
                 \"a\" (or \"w\"), not \"r\"",
            ));
        }
        if let Some(n) = keep_last {
            opts.keep_last = Some(usize::try_from(n).map_err(|_| {
                PyValueError::new_err("keep_last must be a non-negative number of versions")
            })?);
        }
        if let Some(t) = keep_for {
            if !(t.is_finite() && t >= 0.0) {
                return Err(PyValueError::new_err(
                    "keep_for must be a non-negative number of seconds",
                ));
            }
            opts.keep_for = Some(Duration::from_secs_f64(t));
        }
        if let Some(t) = lock_timeout {
            if !(t.is_finite() && t >= 0.0) {
                return Err(PyValueError::new_err(
                    "lock_timeout must be a non-negative number of seconds",
                ));
            }
            opts.lock_timeout = Some(Duration::from_secs_f64(t));
        }
        let p = path.clone();
        let store = nogil(py, move || Store::open(&p, opts))?;
        // A writer that is not `shared` holds the lock from open to close:
        // note its descriptor for the fork handler.
        let lock_fds: Vec<i32> = store.lock_fd().into_iter().collect();
        Ok(Vault {
            sessions: Mutex::new(Vec::new()),
            store: RwLock::new(Some(Arc::new(store))),
            path,
            mode: mode.to_string(),
            sync: sync.to_string(),
            fork_gen: crate::fork_gen(),
            pid: std::process::id(),
            lock_fds: Mutex::new(LockFds::new(lock_fds)),
        })
    }

    /// Directory of the store.
    #[getter]
    fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Open mode: "r", "a" or "w".
    #[getter]
    fn mode(&self) -> &str {
        &self.mode
    }

    /// Durability policy: "always", "group", "flush" or "never".
    #[getter]
    fn sync(&self) -> &str {
        &self.sync
    }

    /// True once ``close()`` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.store.read().map(|g| g.is_none()).unwrap_or(true)
    }

    /// True if the store was opened read-only.
    #[getter]
    fn read_only(&self) -> bool {
        self.mode == "r"
    }

    /// Create or overwrite array ``name`` with ``array`` (any NumPy array of a
    /// supported dtype and at least one dimension; any memory order or byte
    /// order). Atomic.
    fn save(&self, py: Python<'_>, name: &str, array: &Bound<'_, PyAny>) -> PyResult<()> {
        let inp = input(array, &format!("array '{name}'"))?;
        let (bytes, shape, dtype) = (inp.bytes(), &inp.shape, inp.dtype);
        let s = self.store()?;
        nogil(py, move || s.save(name, ArrayRef::new(dtype, shape, bytes)))
    }

    /// Append the rows of ``array`` to array ``name`` (same dtype and
    /// trailing shape). Atomic.
    fn append(&self, py: Python<'_>, name: &str, array: &Bound<'_, PyAny>) -> PyResult<()> {
        let inp = input(array, &format!("array '{name}'"))?;
        let (bytes, shape, dtype) = (inp.bytes(), &inp.shape, inp.dtype);
        let s = self.store()?;
        nogil(py, move || {
            s.append(name, ArrayRef::new(dtype, shape, bytes))
        })
    }

    /// ``array[index] = value`` on the stored array: replace the selected rows
    /// (any NumPy row index; repeated indices: the last value wins). ``value``
    /// broadcasts to the selected rows like NumPy assignment; arrays must
    /// have the stored dtype. Atomic.
    fn replace(
        &self,
        py: Python<'_>,
        name: &str,
        index: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        guard(|| self.replace_impl(py, name, index, value))
    }

    /// Delete the selected rows (``numpy.delete`` semantics: later rows move
    /// up). Space is reclaimed by ``compact``. Atomic.
    fn delete_rows(&self, py: Python<'_>, name: &str, index: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Some(idx) = quick_indices(index)? {
            let idx = idx.as_slice();
            if idx.is_empty() {
                // Still report an unknown array.
                self.meta(py, name)?;
                return Ok(());
            }
            let s = self.store()?;
            return nogil(py, move || s.delete_rows(name, idx));
        }
        let meta = self.meta(py, name)?;
        let sel = parse_target(index, meta.shape[0])?;
        let idx = sel.to_vec();
        if idx.is_empty() {
            return Ok(());
        }
        let s = self.store()?;
        nogil(py, move || s.delete_rows(name, &idx))
    }

    /// Remove array ``name`` entirely. Atomic.
    fn drop(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let s = self.store()?;
        nogil(py, move || s.drop_array(name))
    }

    /// Rename an array (the target must not exist). Atomic.
    fn rename(&self, py: Python<'_>, src: &str, dst: &str) -> PyResult<()> {
        let s = self.store()?;
        nogil(py, move || s.rename(src, dst))
    }

    /// Rewrite array ``name`` without its deleted and superseded rows;
    /// returns the bytes reclaimed (freed on disk at the next checkpoint).
    fn compact(&self, py: Python<'_>, name: &str) -> PyResult<u64> {
        let s = self.store()?;
        nogil(py, move || s.compact(name))
    }

    /// ``compact`` and what it did: ``{"reclaimed_bytes", "duplicated_bytes"}``.
    /// When a version keeps the array's file, nothing is reclaimed and the
    /// live rows copied into the new file are held twice
    /// (``duplicated_bytes``).
    fn compact_report<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let s = self.store()?;
        let c = nogil(py, move || s.compact_report(name))?;
        let d = PyDict::new(py);
        d.set_item("reclaimed_bytes", c.reclaimed_bytes)?;
        d.set_item("duplicated_bytes", c.duplicated_bytes)?;
        Ok(d)
    }

    /// Read the whole array into a new NumPy array (checksums verified; one
    /// copy, straight from the file into the array).
    fn load<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let s = self.store()?;
        let reader = nogil(py, move || s.reader(name))?;
        let (arr, data) = alloc(py, reader.dtype(), &reader.shape())?;
        let n = reader.nbytes() as usize;
        let out = unsafe { out_slice(data, n) };
        if n >= NOGIL_BYTES {
            nogil(py, || reader.read_into(out))?;
        } else {
            withgil(|| reader.read_into(out))?;
        }
        Ok(arr.into_any())
    }

    /// A ``LazyArray``: a zero-copy, memory-mapped snapshot of array ``name``.
    fn lazy(&self, py: Python<'_>, name: &str) -> PyResult<LazyArray> {
        self.lazy_array(py, name)
    }

    /// Array ``name`` as a ``pyarrow.Array`` (1-d: primitive, 2-d:
    /// ``FixedSizeList``, more: ``arrow.fixed_shape_tensor``): zero-copy over
    /// the store's mapping when the array has no deleted or replaced rows
    /// (and its dtype is not bool), a copy otherwise. The memory stays
    /// valid after the Vault is closed. Needs pyarrow.
    fn to_arrow<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let lazy = Bound::new(py, self.lazy_array(py, name)?)?;
        lazy.call_method0("to_arrow")
    }

    /// ``array[index]`` for the stored array, read through a memory map
    /// (NumPy indexing; returns a new array).
    fn getitem<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let lazy = Bound::new(py, self.lazy_array(py, name)?)?;
        lazy.as_any().get_item(index)
    }

    /// Iterate over array ``name`` in batches of ``rows`` rows (checksums
    /// verified as read). The iterator reads a snapshot taken now. Each batch
    /// is a new writable array of its own: a large array is read ahead, on a
    /// second core, straight into the batches' memory; a damaged chunk
    /// raises ``CorruptionError`` at the first batch that touches it.
    #[pyo3(signature = (name, rows=65536))]
    fn batches(&self, py: Python<'_>, name: &str, rows: i64) -> PyResult<BatchIter> {
        if rows <= 0 {
            return Err(PyValueError::new_err(
                "rows must be a positive number of rows",
            ));
        }
        let s = self.store()?;
        let total = {
            let s2 = s.clone();
            nogil(py, move || s2.shape(name))?[0]
        };
        // Never allocate batches larger than the array itself.
        let rows = (rows as u64).min(total.max(1));
        let it = nogil(py, move || s.batches(name, rows))?;
        Ok(BatchIter::new(it))
    }

    /// Shape of array ``name`` (rows first).
    fn shape<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyTuple>> {
        let s = self.store()?;
        let shape = nogil(py, move || s.shape(name))?;
        shape_tuple(py, &shape)
    }

    /// NumPy dtype of array ``name``.
    fn dtype<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let s = self.store()?;
        let d = nogil(py, move || s.dtype(name))?;
        Ok(descr(py, d).into_any())
    }

    /// Time of the last change of array ``name``, in ns since the Unix epoch.
    fn mtime_ns(&self, py: Python<'_>, name: &str) -> PyResult<u64> {
        let s = self.store()?;
        nogil(py, move || s.mtime_ns(name))
    }

    /// Everything about array ``name`` as a dict: name, dtype, shape,
    /// dead_rows (deleted or superseded rows not yet compacted), data_bytes,
    /// mtime_ns, unchecksummed_bytes, chunk_bytes (the stored checksum-chunk
    /// grid: chunks of this many bytes from the data file's start).
    fn info<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let s = self.store()?;
        let i = nogil(py, move || s.info(name))?;
        dict(
            py,
            &[
                ("name", PyString::new(py, &i.name).into_any()),
                ("dtype", descr(py, i.dtype).into_any()),
                ("shape", shape_tuple(py, &i.shape)?.into_any()),
                ("dead_rows", i.dead_rows.into_pyobject(py)?.into_any()),
                ("data_bytes", i.data_bytes.into_pyobject(py)?.into_any()),
                ("mtime_ns", i.mtime_ns.into_pyobject(py)?.into_any()),
                (
                    "unchecksummed_bytes",
                    i.unchecksummed_bytes.into_pyobject(py)?.into_any(),
                ),
                ("chunk_bytes", CHUNK_BYTES.into_pyobject(py)?.into_any()),
            ],
        )
    }

    /// Sorted names of the arrays under ``prefix`` (a "/"-separated group;
    /// "" for all).
    #[pyo3(signature = (prefix=""))]
    fn names(&self, py: Python<'_>, prefix: &str) -> PyResult<Vec<String>> {
        let s = self.store()?;
        let p = prefix.to_string();
        py.detach(move || Ok(s.list(&p)))
    }

    /// Sorted names of all arrays.
    fn keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.names(py, "")
    }

    /// True if array ``name`` exists.
    fn has(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        let s = self.store()?;
        Ok(py.detach(move || s.has(name)))
    }

    fn __contains__(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        match name.extract::<&str>() {
            Ok(n) => self.has(py, n),
            Err(_) => Ok(false),
        }
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        let s = self.store()?;
        Ok(py.detach(move || s.len()))
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let names = PyList::new(py, self.names(py, "")?)?;
        names.try_iter().map(Bound::into_any)
    }

    fn __getitem__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        self.load(py, name)
    }

    fn __setitem__(&self, py: Python<'_>, name: &str, array: &Bound<'_, PyAny>) -> PyResult<()> {
        self.save(py, name, array)
    }

    fn __delitem__(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.drop(py, name)
    }

    /// Commit several operations atomically: after any crash all of them or
    /// none are present; on error nothing changes. ``ops`` is a list of
    /// tuples: ``("save", name, array)``, ``("append", name, array)``,
    /// ``("replace", name, index, value)``, ``("delete_rows", name, index)``,
    /// ``("drop", name)``, ``("rename", src, dst)``, ``("compact", name)``.
    /// Indexes are resolved against the array as changed by the earlier
    /// operations of the list.
    fn commit(&self, py: Python<'_>, ops: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(|| self.commit_impl(py, ops))
    }

    /// A ``Transaction``: stage changes (each checked against the state the
    /// earlier ones leave, rows beyond a memory budget staged in files),
    /// then ``commit()`` them atomically. A context manager: commits at the
    /// end of the block, discards on an exception.
    fn begin(&self, py: Python<'_>) -> PyResult<Transaction> {
        let s = self.store()?;
        let t = nogil(py, move || s.begin())?;
        Ok(Transaction::new(t))
    }

    /// Make every returned call durable (sync data and log). On a read-only
    /// handle, load the latest committed state instead.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let s = self.store()?;
        nogil(py, move || s.flush())
    }

    /// ``set_lock_timeout(seconds)``: how long a ``shared`` writer waits for
    /// the writer lock at each change from now on (``None``: 30 s). No
    /// effect on other handles.
    fn set_lock_timeout(&self, seconds: Option<f64>) -> PyResult<()> {
        let t = match seconds {
            Some(t) if !(t.is_finite() && t >= 0.0) => {
                return Err(PyValueError::new_err(
                    "lock_timeout must be a non-negative number of seconds",
                ))
            }
            Some(t) => Some(Duration::from_secs_f64(t)),
            None => None,
        };
        self.store()?.set_lock_timeout(t);
        Ok(())
    }

    /// Read-only handles and ``shared`` writers: pick up commits made by
    /// other writers since open (or the last refresh or change). No effect
    /// on an exclusive writer.
    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        let s = self.store()?;
        nogil(py, move || s.refresh())
    }

    /// Write a checkpoint now (sync, new MANIFEST, new log); frees the disk
    /// space of dropped and compacted arrays.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        let s = self.store()?;
        nogil(py, move || s.checkpoint())
    }

    /// Check every data chunk, every log record and the hash chain. Returns
    /// a dict: clean (bool), arrays, chunks, data_bytes, records,
    /// unchecksummed_bytes, problems (list of str).
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.store()?;
        let r = nogil(py, move || s.verify())?;
        let problems: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
        dict(
            py,
            &[
                (
                    "clean",
                    r.is_clean().into_pyobject(py)?.to_owned().into_any(),
                ),
                ("arrays", r.arrays.into_pyobject(py)?.into_any()),
                ("chunks", r.chunks.into_pyobject(py)?.into_any()),
                ("data_bytes", r.data_bytes.into_pyobject(py)?.into_any()),
                ("records", r.records.into_pyobject(py)?.into_any()),
                (
                    "unchecksummed_bytes",
                    r.unchecksummed_bytes.into_pyobject(py)?.into_any(),
                ),
                ("problems", PyList::new(py, problems)?.into_any()),
            ],
        )
    }

    /// Open array ``name`` for in-place writing: returns a ``WritableArray``
    /// whose ``array`` is a NumPy array over the stored rows. Refused
    /// (``ValueError``) if the array has deleted rows that are not compacted;
    /// replaced rows are compacted first. See ``WritableArray`` for the crash
    /// semantics.
    fn writable(&self, py: Python<'_>, name: &str) -> PyResult<Py<WritableArray>> {
        let s = self.store()?;
        let w = Py::new(py, WritableArray::start(py, s, name)?)?;
        let mut g = match self.sessions.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.retain(|x| x.get().is_open());
        g.push(w.clone_ref(py));
        Ok(w)
    }

    /// Flush, checkpoint and release the lock (ends open writable sessions
    /// first). Idempotent. Arrays and LazyArrays obtained earlier stay valid.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.forked() {
            self.abandon();
            return Ok(());
        }
        let sessions = match self.sessions.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        let mut first_err: Option<PyErr> = None;
        for w in sessions {
            if let Err(e) = w.get().finish(py) {
                first_err.get_or_insert(e);
            }
        }
        let taken = match self.store.write() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if taken.is_some() {
            // Before the lock's descriptors are closed (and their numbers reused).
            match self.lock_fds.lock() {
                Ok(mut v) => v.forget_engine_fds(),
                Err(p) => p.into_inner().forget_engine_fds(),
            }
        }
        let mut closed = false;
        if let Some(arc) = taken {
            // Other threads hold clones only for the duration of a call.
            let res = py.detach(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut a = arc;
                loop {
                    match Arc::try_unwrap(a) {
                        Ok(store) => {
                            return (
                                true,
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    store.close()
                                })),
                            );
                        }
                        Err(back) => {
                            if Instant::now() > deadline {
                                // The last call to finish closes it on drop.
                                return (false, Ok(Ok(())));
                            }
                            a = back;
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                }
            });
            let (finished, res) = res;
            match res {
                Ok(Ok(())) => closed = finished,
                Ok(Err(e)) => {
                    // The store is consumed: its files (the lock's) closed.
                    closed = finished;
                    first_err.get_or_insert(to_py(e));
                }
                Err(p) => {
                    first_err.get_or_insert(panic_err(p));
                }
            }
        }
        match self.lock_fds.lock() {
            Ok(mut v) => v.release(closed),
            Err(p) => p.into_inner().release(closed),
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Benchmark hook: seconds taken by ``n`` calls of the engine operation
    /// ``op`` ("has", "shape", "view", "replace", "append", "gather") made
    /// directly in Rust with the GIL released, for measuring the Python
    /// API's overhead. ``index``: int64 row indices; ``value``: rows.
    #[pyo3(signature = (op, name, n, index=None, value=None))]
    fn _engine_time(
        &self,
        py: Python<'_>,
        op: &str,
        name: &str,
        n: u64,
        index: Option<&Bound<'_, PyAny>>,
        value: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        let idx: Vec<i64> = match index {
            Some(i) => {
                let rows = self.meta(py, name)?.shape[0];
                parse_target(i, rows)?.to_vec()
            }
            None => Vec::new(),
        };
        let inp = match value {
            Some(v) => Some(input(v, "value")?),
            None => None,
        };
        let (dtype, shape, bytes) = match &inp {
            Some(i) => (i.dtype, i.shape.clone(), i.bytes()),
            None => (DType::U8, Vec::new(), &[][..]),
        };
        let s = self.store()?;
        let op = op.to_string();
        nogil(py, move || {
            let t = Instant::now();
            match op.as_str() {
                "has" => {
                    for _ in 0..n {
                        std::hint::black_box(s.has(name));
                    }
                }
                "shape" => {
                    for _ in 0..n {
                        std::hint::black_box(s.shape(name)?);
                    }
                }
                "view" => {
                    for _ in 0..n {
                        std::hint::black_box(s.view(name)?);
                    }
                }
                "replace" => {
                    for _ in 0..n {
                        s.replace(name, &idx, ArrayRef::new(dtype, &shape, bytes))?;
                    }
                }
                "append" => {
                    for _ in 0..n {
                        s.append(name, ArrayRef::new(dtype, &shape, bytes))?;
                    }
                }
                "gather" => {
                    let v = s.view(name)?;
                    let mut out = vec![0u8; idx.len() * v.row_bytes() as usize];
                    let t = Instant::now();
                    for _ in 0..n {
                        v.gather_into(&idx, &mut out)?;
                        std::hint::black_box(&out);
                    }
                    return Ok(t.elapsed().as_secs_f64());
                }
                other => {
                    return Err(numvault::Error::InvalidArgument(format!(
                        "unknown benchmark op {other:?}"
                    )))
                }
            }
            Ok(t.elapsed().as_secs_f64())
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { ", closed" } else { "" };
        let version = match self
            .store
            .read()
            .ok()
            .and_then(|g| g.as_ref().map(|s| s.version()))
        {
            Some(Some(v)) => format!(", version={v}"),
            _ => String::new(),
        };
        format!(
            "Vault({:?}, mode={:?}, sync={:?}{version}{state})",
            self.path.to_string_lossy(),
            self.mode,
            self.sync
        )
    }
}

impl Vault {
    fn commit_impl(&self, py: Python<'_>, ops: &Bound<'_, PyAny>) -> PyResult<()> {
        // The engine stages each operation, checked against the state the
        // earlier ones leave, and commits them as one.
        let t = self.begin(py)?;
        let mut any = false;
        for op in ops.try_iter()? {
            t.stage_op(&op?)?;
            any = true;
        }
        if any {
            t.commit_now(py)
        } else {
            t.discard()
        }
    }
}

/// Normalize a row index against ``rows`` with NumPy's meaning; returns a
/// 1-d int64 array of non-negative row numbers, in selection order.
#[pyfunction]
pub fn resolve_index<'py>(
    py: Python<'py>,
    index: &Bound<'py, PyAny>,
    rows: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let sel = parse_target(index, rows)?;
    let v: Vec<i64> = match &sel {
        Rows::One(i) => vec![*i as i64],
        Rows::Range { start, len } => (*start as i64..(*start + *len) as i64).collect(),
        Rows::List { idx, .. } => normalize_all(idx.as_slice(), rows)?
            .into_iter()
            .map(|i| i as i64)
            .collect(),
    };
    Ok(numpy::PyArray1::from_vec(py, v).into_any())
}

/// Raise ``ValueError`` if ``name`` is not a valid array name: 1 to 255
/// bytes of UTF-8 without control characters, "/"-separated components
/// that are neither empty, "." nor "..".
#[pyfunction]
pub fn validate_name(name: &str) -> PyResult<()> {
    numvault::validate_name(name).map_err(to_py)
}
