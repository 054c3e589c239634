//! Engine errors and Rust panics as Python exceptions.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::create_exception;
use pyo3::exceptions::{
    PyFileNotFoundError, PyIndexError, PyKeyError, PyOSError, PyPermissionError, PyRuntimeError,
    PyValueError,
};
use pyo3::prelude::*;

create_exception!(
    numvault,
    LockedError,
    PyOSError,
    "The store is locked by another writer (another process or handle holds it open for \
     writing). A subclass of OSError. Open with mode=\"r\" to read concurrently, or pass \
     lock_timeout to wait for the lock."
);
create_exception!(
    numvault,
    CorruptionError,
    PyOSError,
    "The store's files are damaged: a checksum mismatch, a truncated or malformed file, or \
     an unsupported format version. The message names the file, the array and the byte range. \
     A subclass of OSError."
);
create_exception!(
    numvault,
    InternalError,
    PyRuntimeError,
    "An unexpected internal failure (a bug in numvault, e.g. a Rust panic) turned into a \
     Python exception instead of aborting the process. A subclass of RuntimeError."
);

create_exception!(
    numvault,
    NeedsCompactionError,
    PyValueError,
    "The operation needs the array compacted first (in-place writing of an array with \
     deleted rows): call Vault.compact(name) (NumPack.update(name)). A subclass of ValueError."
);
create_exception!(
    numvault,
    ArrayInUseError,
    PyValueError,
    "The array is open in an in-place writable session; other changes to it are refused \
     until the session finishes. A subclass of ValueError."
);
create_exception!(
    numvault,
    LimitExceededError,
    PyValueError,
    "A size limit of the format would be exceeded (a commit larger than a log record may \
     be, a store state whose checkpoint would be too large); nothing was changed. Split the \
     commit or compact the arrays named. A subclass of ValueError."
);
create_exception!(
    numvault,
    ConflictError,
    PyRuntimeError,
    "Changes staged against an earlier state no longer apply to the state they were to be \
     committed on (another writer changed the arrays meanwhile); nothing was committed. A \
     subclass of RuntimeError."
);

create_exception!(
    numvault,
    NeedsUpgradeError,
    PyValueError,
    "The operation (snapshots and other versions) needs a newer format than the store's: \
     open it with upgrade=True or run `numvault upgrade STORE`. Nothing was written. A \
     subclass of ValueError."
);

create_exception!(
    numvault,
    VersionInUseError,
    PyValueError,
    "The version cannot be deleted: a handle on it (Vault.at, Vault(path, \"r\", \
     version=...), in this process or another, named by its pid) is still open. Close that \
     handle first; a crashed reader never holds a version. A subclass of ValueError."
);

/// Map an engine error to the Python exception the API documents.
pub fn to_py(e: numvault::Error) -> PyErr {
    use numvault::Error as E;
    let msg = e.to_string();
    match e {
        E::NotFound(name) => PyKeyError::new_err(format!("array '{name}' does not exist")),
        E::IndexOutOfRange { .. } | E::DuplicateIndex { .. } => PyIndexError::new_err(msg),
        E::AlreadyExists(_)
        | E::InvalidName { .. }
        | E::ShapeMismatch { .. }
        | E::DTypeMismatch { .. }
        | E::InvalidArgument(_) => PyValueError::new_err(msg),
        E::Locked { .. } => LockedError::new_err((libc::EAGAIN, msg)),
        E::ReadOnly { .. } => PyPermissionError::new_err(msg),
        E::UnsupportedVersion { .. }
        | E::Corrupt { .. }
        | E::Decode { .. }
        | E::ChecksumMismatch { .. } => CorruptionError::new_err(msg),
        E::NeedsCompaction { .. } => NeedsCompactionError::new_err(msg),
        E::InUse { .. } => ArrayInUseError::new_err(msg),
        E::LimitExceeded { .. } => LimitExceededError::new_err(msg),
        E::Conflict(_) => ConflictError::new_err(msg),
        E::NoSuchVersion { .. } | E::NotInVersion { .. } => PyKeyError::new_err(msg),
        E::NeedsUpgrade { .. } => NeedsUpgradeError::new_err(msg),
        E::VersionInUse { .. } => VersionInUseError::new_err(msg),
        E::Internal(_) => InternalError::new_err(msg),
        E::NoSuchStore { .. } => PyFileNotFoundError::new_err((libc::ENOENT, msg)),
        E::NotAStore { .. } => PyOSError::new_err(msg),
        E::Io { ref source, .. } => match source.raw_os_error() {
            // OSError(errno, msg) picks the matching subclass (FileNotFoundError, ...).
            Some(errno) => PyOSError::new_err((errno, msg)),
            None => PyOSError::new_err(msg),
        },
        E::Poisoned { .. } => PyOSError::new_err(msg),
        E::Closed { .. } => PyValueError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

pub fn panic_err(p: Box<dyn Any + Send>) -> PyErr {
    InternalError::new_err(format!(
        "internal error in numvault (Rust panic: {}); the store handle is still usable, \
         please report this",
        panic_message(p.as_ref())
    ))
}

/// Run `f` with the GIL held, turning a panic into `InternalError`.
pub fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(panic_err(p)),
    }
}

/// Run engine work with the GIL released, mapping errors and panics.
pub fn nogil<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: Send + FnOnce() -> numvault::Result<T>,
{
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(r) => r.map_err(to_py),
        Err(p) => Err(panic_err(p)),
    }
}

/// Like [`nogil`] but keeps the GIL (for work too small to repay releasing it).
pub fn withgil<T>(f: impl FnOnce() -> numvault::Result<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(to_py),
        Err(p) => Err(panic_err(p)),
    }
}
