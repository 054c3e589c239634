//! A simulated, fault-injecting file system for crash and I/O-error tests.
//!
//! Every file keeps two images: what the running process sees (*live*) and
//! what would survive a power loss (*durable*, updated by `sync_data`).
//! Directory entries are likewise live or durable (updated by `sync_dir`).
//! Each mutating call (write, set_len, sync, rename, remove, create) is a
//! numbered *fault point*. A [`FaultPlan`] can
//! - crash the simulated process at point N (the call and every later one
//!   fail, nothing more reaches the "disk"),
//! - fail point N with an I/O error (EIO, ENOSPC, ...) and continue,
//! - tear the write at point N (only a prefix of it lands) before crashing.
//!
//! After a crash, [`SimVfs::after_crash`] gives the file system as the next
//! process would find it: with unsynced writes kept (process crash) or
//! dropped (power loss). [`SimVfs::after_power_loss`] models a harsher power
//! loss: every file keeps the writes made since its last `sync_data`, and
//! every directory the entry changes made since its last `sync_dir`, so a
//! random subset of them can land, writes in any order and each possibly
//! torn at 512-byte sector boundaries.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::vfs::{LockGuard, Mapping, OpenMode, VFile, Vfs};

/// Which fault to inject, counted in fault points from the start.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// Crash at this point: the call does not happen and the process is dead.
    pub crash_at: Option<u64>,
    /// With `crash_at`: if that point is a write, this many bytes of it land
    /// before the crash (a torn write).
    pub torn_bytes: Option<usize>,
    /// Fail this point with this error kind, then carry on normally.
    pub fail_at: Option<(u64, io::ErrorKind)>,
    /// Fail the N-th read (counted separately) with EIO.
    pub fail_read_at: Option<u64>,
}

#[derive(Default, Clone)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Changes since the last `sync_data`, oldest first.
    pending: Vec<Pending>,
}

/// An unsynced change to a file's bytes.
#[derive(Clone)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

/// An unsynced directory-entry change (the directory is the parent of the
/// path it creates, renames to or removes).
enum DirOp {
    Link(PathBuf, InodeRef),
    Rename(PathBuf, PathBuf),
    Unlink(PathBuf),
}

impl DirOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            DirOp::Link(p, _) | DirOp::Rename(_, p) | DirOp::Unlink(p) => p.parent(),
        }
    }
}

/// The size of a sector: the unit a torn write lands in.
pub const SECTOR_BYTES: u64 = 512;

/// splitmix64: the power-loss choices come from a seed, reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

type InodeRef = Arc<Mutex<Inode>>;

#[derive(Default)]
struct FsState {
    live: BTreeMap<PathBuf, InodeRef>,
    durable: BTreeMap<PathBuf, InodeRef>,
    dirs: HashSet<PathBuf>,
    locks: HashSet<PathBuf>,
    crashed: bool,
    /// Directory changes not yet made durable by `sync_dir`, oldest first.
    dir_log: Vec<DirOp>,
}

struct Shared {
    /// Which boot of the simulated machine this is: a power loss starts a
    /// new one, a process crash does not (see `Vfs::boot_id`).
    boot: u64,
    state: Mutex<FsState>,
    plan: Mutex<FaultPlan>,
    points: AtomicU64,
    reads: AtomicU64,
    /// The kind of each fault point since the last `set_plan`.
    kinds: Mutex<Vec<&'static str>>,
}

/// The simulated file system. Cheap to clone (clones share state).
#[derive(Clone)]
pub struct SimVfs {
    shared: Arc<Shared>,
}

impl Default for SimVfs {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another test thread must not cascade; the data is plain.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn crashed_err() -> io::Error {
    io::Error::other("simulated crash: process is dead")
}

enum Point {
    Go,
    /// Only this many bytes of a write land, then the process is dead.
    Torn(usize),
}

impl SimVfs {
    /// An empty file system with no faults planned.
    pub fn new() -> Self {
        Self::booted(0)
    }

    fn booted(boot: u64) -> Self {
        SimVfs {
            shared: Arc::new(Shared {
                boot,
                state: Mutex::new(FsState::default()),
                plan: Mutex::new(FaultPlan::default()),
                points: AtomicU64::new(0),
                reads: AtomicU64::new(0),
                kinds: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Replace the fault plan and reset the point counters.
    pub fn set_plan(&self, plan: FaultPlan) {
        *lock(&self.shared.plan) = plan;
        self.shared.points.store(0, Ordering::SeqCst);
        self.shared.reads.store(0, Ordering::SeqCst);
        lock(&self.shared.kinds).clear();
    }

    /// The kind of every fault point passed since the last `set_plan`, in
    /// order: "write", "sync" (`sync_data`), "set_len", "create", "rename",
    /// "remove" or "sync_dir".
    pub fn point_kinds(&self) -> Vec<&'static str> {
        lock(&self.shared.kinds).clone()
    }

    /// Reads passed since the last `set_plan` (the numbers `fail_read_at`
    /// counts).
    pub fn reads(&self) -> u64 {
        self.shared.reads.load(Ordering::SeqCst)
    }

    /// The file system as a new process finds it after a power loss that
    /// kept a random (seeded) part of what was not synced: each write since
    /// a file's last `sync_data` lands whole, not at all, or torn (a random
    /// subset of its 512-byte sectors), in any order within the stretches
    /// between truncations; each directory change since the directory's
    /// last `sync_dir` lands or not. Synced data and entries always survive.
    /// Locks are released; no faults are planned.
    pub fn after_power_loss(&self, seed: u64) -> SimVfs {
        let mut rng = Rng(seed);
        let st = lock(&self.shared.state);
        // Directory entries: the durable ones, plus some unsynced changes.
        let mut names: BTreeMap<PathBuf, InodeRef> = st.durable.clone();
        for op in &st.dir_log {
            if rng.below(2) == 0 {
                continue;
            }
            match op {
                DirOp::Link(p, i) => {
                    names.insert(p.clone(), i.clone());
                }
                DirOp::Rename(from, to) => {
                    if let Some(i) = names.remove(from) {
                        names.insert(to.clone(), i);
                    }
                }
                DirOp::Unlink(p) => {
                    names.remove(p);
                }
            }
        }
        rebuild(&names, &st.dirs, self.shared.boot + 1, |i| {
            power_loss_image(i, &mut rng)
        })
    }

    /// Fault points passed since the last `set_plan`.
    pub fn points(&self) -> u64 {
        self.shared.points.load(Ordering::SeqCst)
    }

    /// True once a planned crash has happened.
    pub fn crashed(&self) -> bool {
        lock(&self.shared.state).crashed
    }

    /// The file system as a new process finds it after a crash: unsynced
    /// data and directory changes kept (`keep_unsynced`, a process crash) or
    /// dropped (a power loss). Locks are released; no faults are planned.
    pub fn after_crash(&self, keep_unsynced: bool) -> SimVfs {
        let st = lock(&self.shared.state);
        let names = if keep_unsynced { &st.live } else { &st.durable };
        // Unsynced writes survive only a crash of the process, in which the
        // machine keeps running: the same boot.
        let boot = self.shared.boot + u64::from(!keep_unsynced);
        rebuild(names, &st.dirs, boot, |i| {
            if keep_unsynced {
                i.live.clone()
            } else {
                i.durable.clone()
            }
        })
    }

    /// The file system as a new process finds it after this one was killed
    /// while the machine kept running: it sees every write, but what was
    /// not synced is still unsynced, so a later
    /// [`after_power_loss`](Self::after_power_loss) of the new process's
    /// file system can still drop it. Same boot; locks are released; no
    /// faults are planned.
    pub fn after_kill(&self) -> SimVfs {
        let st = lock(&self.shared.state);
        let mut copies: Vec<(*const Mutex<Inode>, InodeRef)> = Vec::new();
        let mut copy = |i: &InodeRef| -> InodeRef {
            let ptr = Arc::as_ptr(i);
            if let Some((_, c)) = copies.iter().find(|(p, _)| *p == ptr) {
                return c.clone();
            }
            let c = Arc::new(Mutex::new(lock(i).clone()));
            copies.push((ptr, c.clone()));
            c
        };
        let live = st.live.iter().map(|(p, i)| (p.clone(), copy(i))).collect();
        let durable = st
            .durable
            .iter()
            .map(|(p, i)| (p.clone(), copy(i)))
            .collect();
        let dir_log = st
            .dir_log
            .iter()
            .map(|op| match op {
                DirOp::Link(p, i) => DirOp::Link(p.clone(), copy(i)),
                DirOp::Rename(a, b) => DirOp::Rename(a.clone(), b.clone()),
                DirOp::Unlink(p) => DirOp::Unlink(p.clone()),
            })
            .collect();
        let fresh = SimVfs::booted(self.shared.boot);
        {
            let mut fs = lock(&fresh.shared.state);
            fs.live = live;
            fs.durable = durable;
            fs.dirs = st.dirs.clone();
            fs.dir_log = dir_log;
        }
        fresh
    }

    /// Read a file's live bytes (for tests that corrupt or inspect files).
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = lock(&self.shared.state);
        st.live.get(path).map(|i| lock(i).live.clone())
    }

    /// Overwrite a file's bytes, live and durable (for corruption tests).
    pub fn write_file(&self, path: &Path, bytes: Vec<u8>) {
        let mut st = lock(&self.shared.state);
        let inode = st.live.entry(path.to_path_buf()).or_default().clone();
        st.durable.insert(path.to_path_buf(), inode.clone());
        let mut i = lock(&inode);
        i.live = bytes.clone();
        i.durable = bytes;
        i.pending.clear();
    }

    /// Every file path that exists (live).
    pub fn files(&self) -> Vec<PathBuf> {
        lock(&self.shared.state).live.keys().cloned().collect()
    }

    fn point(&self, write_len: usize, kind: &'static str) -> io::Result<Point> {
        let mut st = lock(&self.shared.state);
        if st.crashed {
            return Err(crashed_err());
        }
        let n = self.shared.points.fetch_add(1, Ordering::SeqCst);
        lock(&self.shared.kinds).push(kind);
        let plan = lock(&self.shared.plan);
        if plan.crash_at == Some(n) {
            st.crashed = true;
            return match plan.torn_bytes {
                Some(t) if t < write_len => Ok(Point::Torn(t)),
                _ => Err(crashed_err()),
            };
        }
        if let Some((at, kind)) = plan.fail_at {
            if at == n {
                return Err(io::Error::new(
                    kind,
                    format!("injected {kind:?} at point {n}"),
                ));
            }
        }
        Ok(Point::Go)
    }

    fn read_point(&self) -> io::Result<()> {
        if lock(&self.shared.state).crashed {
            return Err(crashed_err());
        }
        let n = self.shared.reads.fetch_add(1, Ordering::SeqCst);
        if lock(&self.shared.plan).fail_read_at == Some(n) {
            return Err(io::Error::other(format!("injected EIO on read {n}")));
        }
        Ok(())
    }

    fn parent(path: &Path) -> PathBuf {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// A fresh file system holding `names`, each file's bytes taken from
/// `image(inode)` (inode identity kept across names), live and durable alike.
fn rebuild(
    names: &BTreeMap<PathBuf, InodeRef>,
    dirs: &HashSet<PathBuf>,
    boot: u64,
    mut image: impl FnMut(&Inode) -> Vec<u8>,
) -> SimVfs {
    let mut copies: Vec<(*const Mutex<Inode>, InodeRef)> = Vec::new();
    let mut live = BTreeMap::new();
    for (path, inode) in names {
        let ptr = Arc::as_ptr(inode);
        let copy = match copies.iter().find(|(p, _)| *p == ptr) {
            Some((_, c)) => c.clone(),
            None => {
                let bytes = image(&lock(inode));
                let c = Arc::new(Mutex::new(Inode {
                    live: bytes.clone(),
                    durable: bytes,
                    pending: Vec::new(),
                }));
                copies.push((ptr, c.clone()));
                c
            }
        };
        live.insert(path.clone(), copy);
    }
    let fresh = SimVfs::booted(boot);
    {
        let mut fs = lock(&fresh.shared.state);
        fs.durable = live.clone();
        fs.live = live;
        fs.dirs = dirs.clone();
    }
    fresh
}

struct SimFile {
    fs: SimVfs,
    inode: InodeRef,
    writable: bool,
}

struct SnapshotMap(Vec<u8>);

impl Mapping for SnapshotMap {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

fn write_into(buf: &mut Vec<u8>, data: &[u8], offset: u64) -> io::Result<()> {
    let off = usize::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    let end = off + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[off..end].copy_from_slice(data);
    Ok(())
}

fn land_writes(bytes: &mut Vec<u8>, segment: &mut Vec<(u64, &[u8])>, rng: &mut Rng) {
    // Writes between truncations land in any order.
    while !segment.is_empty() {
        let k = rng.below(segment.len() as u64) as usize;
        let (off, data) = segment.swap_remove(k);
        match rng.below(3) {
            0 => {}
            1 => {
                let _ = write_into(bytes, data, off);
            }
            _ => {
                // Torn: each 512-byte sector of the write lands or not.
                let end = off + data.len() as u64;
                let mut s = off;
                while s < end {
                    let e = ((s / SECTOR_BYTES + 1) * SECTOR_BYTES).min(end);
                    if rng.below(2) == 1 {
                        let a = (s - off) as usize;
                        let b = (e - off) as usize;
                        let _ = write_into(bytes, &data[a..b], s);
                    }
                    s = e;
                }
            }
        }
    }
}

/// A file's bytes after a power loss: the durable image plus a random part
/// of the unsynced changes (see [`SimVfs::after_power_loss`]).
fn power_loss_image(inode: &Inode, rng: &mut Rng) -> Vec<u8> {
    let mut bytes = inode.durable.clone();
    let mut segment: Vec<(u64, &[u8])> = Vec::new();
    for p in &inode.pending {
        match p {
            Pending::Write(off, data) => segment.push((*off, data)),
            Pending::SetLen(len) => {
                land_writes(&mut bytes, &mut segment, rng);
                if let (1, Ok(n)) = (rng.below(2), usize::try_from(*len)) {
                    bytes.resize(n, 0);
                }
            }
        }
    }
    land_writes(&mut bytes, &mut segment, rng);
    bytes
}

impl VFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.fs.read_point()?;
        let i = lock(&self.inode);
        let off = usize::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
        let end = off
            .checked_add(buf.len())
            .ok_or_else(|| io::Error::other("overflow"))?;
        if end > i.live.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buf.copy_from_slice(&i.live[off..end]);
        Ok(())
    }
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        let (data, result) = match self.fs.point(data.len(), "write")? {
            Point::Go => (data, Ok(())),
            Point::Torn(n) => (&data[..n], Err(crashed_err())),
        };
        let mut i = lock(&self.inode);
        write_into(&mut i.live, data, offset)?;
        i.pending.push(Pending::Write(offset, data.to_vec()));
        result
    }
    fn len(&self) -> io::Result<u64> {
        if lock(&self.fs.shared.state).crashed {
            return Err(crashed_err());
        }
        Ok(lock(&self.inode).live.len() as u64)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.fs.point(0, "sync")?;
        let mut i = lock(&self.inode);
        i.durable = i.live.clone();
        i.pending.clear();
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        self.fs.point(0, "set_len")?;
        let n = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
        let mut i = lock(&self.inode);
        i.live.resize(n, 0);
        i.pending.push(Pending::SetLen(len));
        Ok(())
    }
    fn map(&self, len: u64) -> io::Result<Arc<dyn Mapping>> {
        self.fs.read_point()?;
        let i = lock(&self.inode);
        let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
        if len > i.live.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        Ok(Arc::new(SnapshotMap(i.live[..len].to_vec())))
    }
    fn map_mut(&self, _len: u64) -> io::Result<Option<memmap2::MmapMut>> {
        Ok(None)
    }
}

struct SimLock {
    fs: SimVfs,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        lock(&self.fs.shared.state).locks.remove(&self.path);
    }
}

impl Vfs for SimVfs {
    fn boot_id(&self) -> Option<String> {
        Some(format!("sim-boot-{}", self.shared.boot))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VFile>> {
        let existing = {
            let st = lock(&self.shared.state);
            if st.crashed {
                return Err(crashed_err());
            }
            st.live.get(path).cloned()
        };
        let inode = match (existing, mode) {
            (Some(_), OpenMode::CreateNew) => {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists))
            }
            (Some(i), _) => i,
            (None, OpenMode::Read | OpenMode::ReadWrite) => {
                return Err(io::Error::from(io::ErrorKind::NotFound))
            }
            (None, OpenMode::Create | OpenMode::CreateNew) => {
                self.point(0, "create")?;
                let mut st = lock(&self.shared.state);
                if !st.dirs.contains(&Self::parent(path)) {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                }
                let i: InodeRef = Arc::default();
                st.live.insert(path.to_path_buf(), i.clone());
                st.dir_log.push(DirOp::Link(path.to_path_buf(), i.clone()));
                i
            }
        };
        Ok(Arc::new(SimFile {
            fs: self.clone(),
            inode,
            writable: mode != OpenMode::Read,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.point(0, "rename")?;
        let mut st = lock(&self.shared.state);
        let inode = st
            .live
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.live.insert(to.to_path_buf(), inode);
        st.dir_log
            .push(DirOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.point(0, "remove")?;
        let mut st = lock(&self.shared.state);
        st.live
            .remove(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.dir_log.push(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.shared.state);
        if st.crashed {
            return Err(crashed_err());
        }
        let mut p = path.to_path_buf();
        loop {
            st.dirs.insert(p.clone());
            if !p.pop() {
                break;
            }
        }
        Ok(())
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let st = lock(&self.shared.state);
        if !st.dirs.contains(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(st
            .live
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }
    fn exists(&self, path: &Path) -> bool {
        let st = lock(&self.shared.state);
        st.live.contains_key(path) || st.dirs.contains(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.point(0, "sync_dir")?;
        let mut st = lock(&self.shared.state);
        st.dir_log.retain(|op| op.dir() != Some(path));
        let FsState { live, durable, .. } = &mut *st;
        durable.retain(|p, _| p.parent() != Some(path));
        for (p, i) in live.iter() {
            if p.parent() == Some(path) {
                durable.insert(p.clone(), i.clone());
            }
        }
        Ok(())
    }
    fn lock_exclusive(&self, path: &Path, wait: Option<Duration>) -> io::Result<LockGuard> {
        let deadline = wait.map(|w| std::time::Instant::now() + w);
        loop {
            {
                let mut st = lock(&self.shared.state);
                if st.locks.insert(path.to_path_buf()) {
                    return Ok(Box::new(SimLock {
                        fs: self.clone(),
                        path: path.to_path_buf(),
                    }));
                }
            }
            match deadline {
                Some(d) if std::time::Instant::now() < d => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => return Err(io::Error::from(io::ErrorKind::WouldBlock)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_writes_are_dropped_on_power_loss_and_kept_on_process_crash() {
        let fs = SimVfs::new();
        let dir = PathBuf::from("/s");
        fs.create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        let f = fs.open(&p, OpenMode::Create).unwrap();
        f.write_all_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(&dir).unwrap();
        f.write_all_at(b" world", 5).unwrap();
        let kept = fs.after_crash(true);
        let dropped = fs.after_crash(false);
        assert_eq!(kept.read_file(&p).unwrap(), b"hello world");
        assert_eq!(dropped.read_file(&p).unwrap(), b"hello");
    }

    #[test]
    fn unsynced_directory_entries_vanish_on_power_loss() {
        let fs = SimVfs::new();
        let dir = PathBuf::from("/s");
        fs.create_dir_all(&dir).unwrap();
        let f = fs.open(&dir.join("a"), OpenMode::Create).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        f.sync_data().unwrap();
        assert!(fs.after_crash(false).read_file(&dir.join("a")).is_none());
        fs.sync_dir(&dir).unwrap();
        fs.rename(&dir.join("a"), &dir.join("b")).unwrap();
        let after = fs.after_crash(false);
        assert!(after.read_file(&dir.join("a")).is_some());
        assert!(after.read_file(&dir.join("b")).is_none());
    }

    #[test]
    fn crash_plan_stops_everything_and_torn_write_lands_partially() {
        let fs = SimVfs::new();
        let dir = PathBuf::from("/s");
        fs.create_dir_all(&dir).unwrap();
        let f = fs.open(&dir.join("a"), OpenMode::Create).unwrap();
        fs.set_plan(FaultPlan {
            crash_at: Some(1),
            torn_bytes: Some(2),
            ..FaultPlan::default()
        });
        f.write_all_at(b"ab", 0).unwrap();
        assert!(f.write_all_at(b"cdef", 2).is_err());
        assert!(f.sync_data().is_err());
        assert!(fs.crashed());
        assert_eq!(
            fs.after_crash(true).read_file(&dir.join("a")).unwrap(),
            b"abcd"
        );
    }

    #[test]
    fn power_loss_keeps_synced_bytes_and_some_unsynced_sectors() {
        let fs = SimVfs::new();
        let dir = PathBuf::from("/s");
        fs.create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        let f = fs.open(&p, OpenMode::Create).unwrap();
        f.write_all_at(&[1u8; 1000], 0).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(&dir).unwrap();
        f.write_all_at(&[2u8; 2048], 1000).unwrap();
        f.write_all_at(&[3u8; 100], 200).unwrap();
        fs.rename(&p, &dir.join("g")).unwrap();
        let mut shapes = HashSet::new();
        for seed in 0..200 {
            let after = fs.after_power_loss(seed);
            let b = after
                .read_file(&p)
                .or_else(|| after.read_file(&dir.join("g")))
                .unwrap();
            // Synced bytes survive unless an unsynced write covers them.
            assert!(b[..200].iter().all(|&x| x == 1));
            assert!(b[300..1000].iter().all(|&x| x == 1));
            assert!(b[1000..].iter().all(|&x| x == 2 || x == 0));
            shapes.insert((b.len(), b[1000..].iter().filter(|&&x| x == 2).count()));
        }
        // Whole, dropped and torn variants all occur.
        assert!(shapes.len() > 3, "{shapes:?}");
    }

    #[test]
    fn injected_error_is_transient() {
        let fs = SimVfs::new();
        let dir = PathBuf::from("/s");
        fs.create_dir_all(&dir).unwrap();
        let f = fs.open(&dir.join("a"), OpenMode::Create).unwrap();
        fs.set_plan(FaultPlan {
            fail_at: Some((0, io::ErrorKind::StorageFull)),
            ..FaultPlan::default()
        });
        assert_eq!(
            f.write_all_at(b"x", 0).unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        f.write_all_at(b"x", 0).unwrap();
    }
}
