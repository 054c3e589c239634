//! The I/O layer under the engine.
//!
//! The engine touches the disk only through [`Vfs`] and [`VFile`], so tests can
//! substitute [`crate::sim::SimVfs`], which injects crashes, torn writes,
//! dropped unsynced writes and I/O errors. [`StdVfs`] is the real file system.

use std::any::Any;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A read-only mapping (or snapshot) of a file's first `len()` bytes.
pub trait Mapping: Send + Sync {
    /// The mapped bytes.
    fn bytes(&self) -> &[u8];
}

/// An open file.
// `len` is a fallible I/O query, not a collection size: no `is_empty`.
#[allow(clippy::len_without_is_empty)]
pub trait VFile: Send + Sync {
    /// Fill `buf` from `offset`; a short file is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Write all of `buf` at `offset`, extending the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Make written data durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncate or extend. The engine shrinks only the commit log, never a
    /// data file (a reader may have it mapped).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Map the first `len` bytes read-only. Must stay valid after the file is
    /// renamed, unlinked or grown.
    fn map(&self, len: u64) -> io::Result<Arc<dyn Mapping>>;
    /// Map the first `len` bytes read-write, shared with the file. Only used by
    /// in-place writable sessions; `None` if unsupported.
    fn map_mut(&self, len: u64) -> io::Result<Option<memmap2::MmapMut>>;
}

/// How to open a file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; create if missing (never truncates).
    Create,
    /// Read and write; fail if the file exists.
    CreateNew,
}

/// A held advisory lock; released on drop.
pub type LockGuard = Box<dyn Any + Send + Sync>;

/// The file-system operations the engine needs.
pub trait Vfs: Send + Sync + 'static {
    /// Open a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VFile>>;
    /// Atomically replace `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Remove a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Remove a file that nothing needs any more, possibly later (the real
    /// file system unlinks on a helper thread: freeing a large file's pages
    /// takes milliseconds). A file that remains, because the process ended
    /// first or the removal failed, is a stray that the next open that
    /// folds the log removes.
    fn remove_file_soon(&self, path: &Path) {
        let _ = self.remove_file(path);
    }
    /// Wait for the removals [`remove_file_soon`](Self::remove_file_soon)
    /// started (a checkpoint does, so that it leaves only referenced files).
    fn settle_removals(&self) {}
    /// Create a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries of a directory.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// True if the path exists.
    fn exists(&self, path: &Path) -> bool;
    /// Make the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// An id of the running system's boot, different after every reboot
    /// (so after every power loss or kernel crash): while it is the same,
    /// every write that returned is visible to reads, synced or not.
    /// `None` if unknown (then recovery always checks everything).
    fn boot_id(&self) -> Option<String> {
        None
    }
    /// Take an exclusive advisory lock on `path` (created if missing).
    /// `wait`: `None` fails at once with `WouldBlock` if held; otherwise
    /// retries until the timeout.
    fn lock_exclusive(&self, path: &Path, wait: Option<Duration>) -> io::Result<LockGuard>;
    /// A shared advisory lock on `path` (created if missing), taken at once
    /// or `WouldBlock`; held until the guard is dropped. `Unsupported` where
    /// the file system has no shared locks (then no lease is taken).
    fn lock_shared(&self, path: &Path) -> io::Result<LockGuard> {
        let _ = path;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    /// Like [`Vfs::lock_exclusive`], for a caller that locks the same path
    /// again and again (a writer by turns): the lock file may be kept open
    /// in `keep` between locks, and the guard then releases the lock, not
    /// the file.
    fn lock_exclusive_kept(
        &self,
        path: &Path,
        wait: Option<Duration>,
        keep: &mut Option<LockGuard>,
    ) -> io::Result<LockGuard> {
        let _ = keep;
        self.lock_exclusive(path, wait)
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdVfs;

/// Unlinks of [`StdVfs::remove_file_soon`] still running (process-wide).
static UNLINKS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

struct StdFile {
    file: File,
}

struct StdMap(memmap2::Mmap);

impl Mapping for StdMap {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

struct EmptyMap;

impl Mapping for EmptyMap {
    fn bytes(&self) -> &[u8] {
        &[]
    }
}

impl VFile for StdFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn map(&self, len: u64) -> io::Result<Arc<dyn Mapping>> {
        if len == 0 {
            return Ok(Arc::new(EmptyMap));
        }
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mapping too large"))?;
        // SAFETY: the engine never shrinks or rewrites a data file in place
        // (compaction writes a new file), so bytes below `len` that belong to
        // a committed state never change under the mapping.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(&self.file)? };
        Ok(Arc::new(StdMap(map)))
    }
    fn map_mut(&self, len: u64) -> io::Result<Option<memmap2::MmapMut>> {
        if len == 0 {
            return Ok(None);
        }
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mapping too large"))?;
        // SAFETY: only used for explicit in-place writable sessions, whose
        // semantics are documented; the file is never shrunk.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(&self.file)? };
        Ok(Some(map))
    }
}

impl Vfs for StdVfs {
    fn boot_id(&self) -> Option<String> {
        // Linux: random per boot. Elsewhere unknown: always full recovery.
        // Read once per process (no process outlives its boot): a writer by
        // turns asks at every commit.
        static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        BOOT_ID
            .get_or_init(|| {
                let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
                let id = id.trim();
                (!id.is_empty()).then(|| id.to_string())
            })
            .clone()
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VFile>> {
        let mut o = OpenOptions::new();
        o.read(true);
        match mode {
            OpenMode::Read => {}
            OpenMode::ReadWrite => {
                o.write(true);
            }
            OpenMode::Create => {
                o.write(true).create(true);
            }
            OpenMode::CreateNew => {
                o.write(true).create_new(true);
            }
        }
        Ok(Arc::new(StdFile {
            file: o.open(path)?,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn remove_file_soon(&self, path: &Path) {
        let p = path.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("numvault-unlink".into())
            .spawn(move || {
                let _ = fs::remove_file(p);
            });
        match spawned {
            Ok(h) => {
                let mut v = UNLINKS.lock().unwrap_or_else(|p| p.into_inner());
                v.retain(|h| !h.is_finished());
                v.push(h);
            }
            Err(_) => {
                let _ = fs::remove_file(path);
            }
        }
    }
    fn settle_removals(&self) {
        let pending = std::mem::take(&mut *UNLINKS.lock().unwrap_or_else(|p| p.into_inner()));
        for h in pending {
            let _ = h.join();
        }
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(path)? {
            out.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn lock_exclusive(&self, path: &Path, wait: Option<Duration>) -> io::Result<LockGuard> {
        let file = open_lock_file(path)?;
        try_lock_until(&file, wait)?;
        Ok(Box::new(HeldLock(file)))
    }
    fn lock_shared(&self, path: &Path) -> io::Result<LockGuard> {
        let file = open_lock_file(path)?;
        // `WouldBlock` becomes `io::ErrorKind::WouldBlock`.
        file.try_lock_shared().map_err(io::Error::from)?;
        Ok(Box::new(HeldLock(file)))
    }
    fn lock_exclusive_kept(
        &self,
        path: &Path,
        wait: Option<Duration>,
        keep: &mut Option<LockGuard>,
    ) -> io::Result<LockGuard> {
        let kept = keep.as_ref().and_then(|k| k.downcast_ref::<Arc<File>>());
        let file = match kept {
            Some(f) => f.clone(),
            None => {
                let f = Arc::new(open_lock_file(path)?);
                *keep = Some(Box::new(f.clone()));
                f
            }
        };
        try_lock_until(&file, wait)?;
        Ok(Box::new(HeldKeptLock(file)))
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// flock `file`, retrying until `wait` has passed (`None`: once).
fn try_lock_until(file: &File, wait: Option<Duration>) -> io::Result<()> {
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) => match deadline {
                Some(d) if Instant::now() < d => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => return Err(io::Error::from(io::ErrorKind::WouldBlock)),
            },
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Keeps the lock file open (and thus locked) until dropped.
struct HeldLock(File);

/// A lock taken through a lock file kept open by its owner: dropping it
/// unlocks the file (`LOCK_UN`, which also releases it in a child process
/// that shares the descriptor after fork()) and keeps it open.
struct HeldKeptLock(Arc<File>);

impl Drop for HeldKeptLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[cfg(unix)]
fn held_file(guard: &LockGuard) -> Option<&File> {
    if let Some(h) = guard.downcast_ref::<HeldLock>() {
        return Some(&h.0);
    }
    guard.downcast_ref::<HeldKeptLock>().map(|h| h.0.as_ref())
}

/// The descriptor through which a lock taken by [`StdVfs::lock_exclusive`]
/// is held (`None` for other file systems' locks), for a process that must
/// keep a forked child from holding it.
#[cfg(unix)]
pub fn held_lock_fd(guard: &LockGuard) -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    guard.downcast_ref::<HeldLock>().map(|h| h.0.as_raw_fd())
}

/// Replace the contents of the file a lock taken by
/// [`StdVfs::lock_exclusive`] is held through with `bytes` (best effort;
/// `false` if `guard` is another file system's lock, to be written by path).
#[cfg(unix)]
pub fn write_held_lock(guard: &LockGuard, bytes: &[u8]) -> bool {
    use std::os::unix::fs::FileExt;
    let Some(f) = held_file(guard) else {
        return false;
    };
    let _ = f.write_all_at(bytes, 0);
    let _ = f.set_len(bytes.len() as u64);
    true
}

/// See the Unix version: elsewhere the note is written by path.
#[cfg(not(unix))]
pub fn write_held_lock(_guard: &LockGuard, _bytes: &[u8]) -> bool {
    false
}
