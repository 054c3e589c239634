//! Open options and durability policies.

use std::sync::Arc;
use std::time::Duration;

use crate::io::vfs::{StdVfs, Vfs};

/// When a mutation becomes durable against power loss.
///
/// In every mode a process crash (`kill -9`) loses no operation that
/// returned and never leaves an inconsistent store. The modes differ only in
/// what a power loss or kernel crash can take away; see docs/FORMAT.md.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Sync {
    /// Every mutation is durable when it returns (one log fsync per commit).
    Always,
    /// Group commit: a background thread syncs within `max_delay` of the
    /// first unsynced commit.
    Group { max_delay: Duration },
    /// Durable at [`crate::Store::flush`], at checkpoints and at close.
    /// The default.
    #[default]
    OnFlush,
    /// No fsync for ordinary commits, for throwaway data; `flush()`,
    /// checkpoints (automatic ones included) and the start of a writable
    /// session still sync. A close syncs only if it checkpoints (a long log,
    /// rows its checksums do not cover yet, much space held by superseded
    /// files: FORMAT.md §7.6), so what was committed since the last sync can
    /// be lost to a power loss even after a clean close. Still consistent
    /// after any crash.
    Never,
}

/// How long a shared writer waits for its turn by default.
pub const SHARED_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How to open a store.
#[derive(Clone)]
pub struct OpenOptions {
    /// Open without the writer lock; mutations fail with `Error::ReadOnly`.
    pub read_only: bool,
    /// Create the store if the directory is missing or empty.
    pub create: bool,
    /// Drop every array on open (atomic: a crash leaves the old or empty store).
    pub truncate: bool,
    /// Durability policy.
    pub sync: Sync,
    /// Wait up to this long for another writer's lock; `None` fails at once
    /// (a shared writer waits [`SHARED_LOCK_TIMEOUT`] then).
    pub lock_timeout: Option<Duration>,
    /// Write by turns with other handles and processes (FORMAT.md §10.1):
    /// the writer lock is taken for each commit (waiting up to
    /// `lock_timeout`), the handle first catches up with what other writers
    /// committed, checks its changes against that state, commits, and
    /// releases the lock. Readers never wait. Without it the handle holds
    /// the lock from open to close and other writers are refused.
    pub shared: bool,
    /// Write a checkpoint when the log grows past this many bytes.
    pub checkpoint_log_bytes: u64,
    /// At most this many data files are kept open (and mapped) by the
    /// handle, least recently used closed first (views and readers may hold
    /// more while they live). Default [`crate::DEFAULT_MAX_OPEN_FILES`].
    pub max_open_files: usize,
    /// The largest MANIFEST a commit may lead to (capped at the format's
    /// limit; lower only to test the limit).
    #[doc(hidden)]
    pub max_manifest_bytes: u64,
    /// The file system (tests inject faults through [`crate::sim::SimVfs`]).
    pub vfs: Arc<dyn Vfs>,
    /// A writer: upgrade a format-1 store to format 2 at open (FORMAT.md
    /// §12).
    pub upgrade: bool,
    /// Open this version (an id or tag), read-only (FORMAT.md §15.6).
    pub version: Option<super::versions::VersionRef>,
    /// Retention (FORMAT.md §15.8): at each checkpoint, delete untagged
    /// versions beyond the newest `keep_last` ...
    pub keep_last: Option<usize>,
    /// ... that are older than `keep_for` (each condition only if set).
    pub keep_for: Option<Duration>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            read_only: false,
            create: true,
            truncate: false,
            sync: Sync::OnFlush,
            lock_timeout: None,
            shared: false,
            checkpoint_log_bytes: 64 << 20,
            max_open_files: crate::data::file::DEFAULT_MAX_OPEN_FILES,
            max_manifest_bytes: crate::format::MAX_MANIFEST_FILE_BYTES,
            vfs: Arc::new(StdVfs),
            upgrade: false,
            version: None,
            keep_last: None,
            keep_for: None,
        }
    }
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("read_only", &self.read_only)
            .field("create", &self.create)
            .field("truncate", &self.truncate)
            .field("sync", &self.sync)
            .field("lock_timeout", &self.lock_timeout)
            .field("shared", &self.shared)
            .field("checkpoint_log_bytes", &self.checkpoint_log_bytes)
            .field("max_open_files", &self.max_open_files)
            .field("upgrade", &self.upgrade)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl OpenOptions {
    /// Read-only options (no lock, no creation).
    pub fn read_only() -> Self {
        OpenOptions {
            read_only: true,
            create: false,
            ..OpenOptions::default()
        }
    }

    /// Builder: set the durability policy.
    pub fn sync(mut self, sync: Sync) -> Self {
        self.sync = sync;
        self
    }

    /// Builder: write by turns with other writers (see [`OpenOptions::shared`]).
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// The lock wait in force: `lock_timeout`, or for a shared writer
    /// [`SHARED_LOCK_TIMEOUT`] if unset.
    pub fn lock_wait(&self) -> Option<Duration> {
        match self.lock_timeout {
            None if self.shared => Some(SHARED_LOCK_TIMEOUT),
            t => t,
        }
    }

    /// Builder: use another file system.
    pub fn vfs(mut self, vfs: Arc<dyn Vfs>) -> Self {
        self.vfs = vfs;
        self
    }
}
