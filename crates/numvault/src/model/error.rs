//! The one error type of the engine.
//!
//! Every fallible function returns [`Result<T>`]. Messages name the array and
//! the offending index, shape, dtype or file so that a user can act on them
//! without reading the source.

use std::io;
use std::path::PathBuf;

use super::dtype::DType;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error numvault can return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No array of that name exists in the store.
    #[error("array '{0}' does not exist")]
    NotFound(String),

    /// A rename target already exists.
    #[error("array '{0}' already exists")]
    AlreadyExists(String),

    /// The name is not a valid array name (see [`crate::validate_name`]).
    #[error("invalid array name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// A row index is outside `-rows..rows`.
    #[error("array '{array}': index {index} is out of range for {rows} rows")]
    IndexOutOfRange {
        array: String,
        index: i64,
        rows: u64,
    },

    /// An index appears twice in a call that forbids it (replace).
    #[error("array '{array}': index {index} appears more than once")]
    DuplicateIndex { array: String, index: i64 },

    /// The shape of the input does not fit the stored array.
    #[error("array '{array}': shape mismatch: expected {expected}, got {got}")]
    ShapeMismatch {
        array: String,
        expected: String,
        got: String,
    },

    /// The dtype of the input differs from the stored array's.
    #[error("array '{array}': dtype mismatch: stored {stored}, got {got}")]
    DTypeMismatch {
        array: String,
        stored: DType,
        got: DType,
    },

    /// An argument is malformed in a way no other variant describes
    /// (data length not matching the shape, zero batch size, 0-d array, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A size limit of the format would be exceeded: a commit whose log
    /// record, or a state whose MANIFEST, would be larger than readers
    /// accept, a shape too large to address, too many dimensions. Nothing
    /// was changed; split the commit, or compact the arrays named.
    #[error("limit exceeded: {what} (limit {limit})")]
    LimitExceeded { what: String, limit: u64 },

    /// The operation needs the array compacted first (in-place writing of
    /// an array with deleted rows). `Store::compact` does it.
    #[error("array '{array}' must be compacted first: {reason}")]
    NeedsCompaction { array: String, reason: String },

    /// The array is open in an in-place writable session; other changes to
    /// it wait until the session ends.
    #[error("array '{array}' is open for in-place writing; finish that session first")]
    InUse { array: String },

    /// Changes staged against an earlier state no longer apply to the state
    /// they were to be committed on (another writer changed the arrays
    /// meanwhile). Nothing was committed.
    #[error("conflict: {0}")]
    Conflict(String),

    /// A bug in numvault (a helper thread panicked, an invariant failed).
    /// The store is unchanged unless the handle reports `Poisoned` next.
    #[error("internal error: {0} (this is a bug in numvault; please report it)")]
    Internal(String),

    /// Another handle or process holds the writer lock (and still did at
    /// the end of the wait, if there was one). `holder` says who, when
    /// known (e.g. "pid 1234").
    #[error("store {path} is locked by another writer{}", holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Locked {
        path: PathBuf,
        holder: Option<String>,
    },

    /// A mutation was attempted on a handle opened read-only.
    #[error("store {path} is open read-only")]
    ReadOnly { path: PathBuf },

    /// No version of the store has this id or tag (FORMAT.md §15).
    #[error("store {path} has no version {version}")]
    NoSuchVersion { path: PathBuf, version: String },

    /// A live reader holds a lease on the version (FORMAT.md §15.7); it
    /// cannot be deleted until that reader closes it.
    #[error("version {version} is being read{}; close that reader first", holder.as_ref().map(|h| format!(" by {h}")).unwrap_or_default())]
    VersionInUse {
        version: u64,
        holder: Option<String>,
    },

    /// The array is not in the version named (a restore of it).
    #[error("array '{array}' is not in version {version}")]
    NotInVersion { array: String, version: u64 },

    /// The operation needs a newer format than the store's (FORMAT.md §12);
    /// nothing was written. Upgrade the store first.
    #[error(
        "store {path} is format version {found}; {what} needs version {needed}: upgrade it \
         with `numvault upgrade {path}`, `Vault(path, upgrade=True)` (Python) or \
         `Store::upgrade` (Rust); older numvault releases cannot open an upgraded store"
    )]
    NeedsUpgrade {
        path: PathBuf,
        found: u32,
        needed: u32,
        what: String,
    },

    /// A file carries a format version this build cannot read.
    #[error("{path}: unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// A file's structure is damaged (bad magic, checksum, length, reference).
    #[error("{path}: corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },

    /// A file's bytes cannot be decoded: a field is truncated, out of range
    /// or inconsistent at `offset` (bytes from the start of the file).
    #[error("{path}: cannot decode byte {offset}: {what}")]
    Decode {
        path: PathBuf,
        offset: u64,
        what: String,
    },

    /// Data read from an array's file does not match its stored checksum.
    #[error("array '{array}': checksum mismatch in {path}, chunk {chunk} (bytes {start}..{end})")]
    ChecksumMismatch {
        array: String,
        path: PathBuf,
        chunk: u64,
        start: u64,
        end: u64,
    },

    /// The directory exists and is not empty, but is not a numvault store.
    #[error("{path} is not a numvault store (no MANIFEST)")]
    NotAStore { path: PathBuf },

    /// The store directory does not exist and creation was not requested.
    #[error("store {path} does not exist")]
    NoSuchStore { path: PathBuf },

    /// An operating-system I/O error, with the file it happened on.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// An fsync failed earlier; the handle refuses writes until reopened,
    /// because the kernel may have dropped the dirty pages (fsync-gate).
    #[error("store handle is poisoned after a failed sync on {path}; reopen the store")]
    Poisoned { path: PathBuf },

    /// The handle was closed.
    #[error("store {path} is closed")]
    Closed { path: PathBuf },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// True when the error says a requested change does not fit the state
    /// it was checked against (unknown or existing name, index, shape,
    /// dtype, an array in a writable session), as opposed to I/O, damage or
    /// limits.
    pub fn is_validation(&self) -> bool {
        matches!(
            self,
            Error::NotFound(_)
                | Error::AlreadyExists(_)
                | Error::IndexOutOfRange { .. }
                | Error::DuplicateIndex { .. }
                | Error::ShapeMismatch { .. }
                | Error::DTypeMismatch { .. }
                | Error::InUse { .. }
        )
    }

    /// True when the error reports damaged or unreadable on-disk contents.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. }
                | Error::Decode { .. }
                | Error::ChecksumMismatch { .. }
                | Error::UnsupportedVersion { .. }
        )
    }
}

/// Attach a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
