//! Python bindings of numvault (`numvault._core`): `Vault`, `LazyArray`,
//! `WritableArray`, the exceptions, and index helpers. The pure-Python
//! package `numvault` builds the NumPack-compatible API on top.

mod conv;
mod errors;
mod formats;
mod index;
mod lazy;
mod lazy_interop;
mod numpack_import;
mod stream;
mod txn;
mod vault;
mod versions;
mod writable;

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;

/// Incremented in the child after every fork(). Handles opened before a
/// fork must not touch the store from the child: its threads (and any lock
/// held by one at fork time) did not survive, and a close or checkpoint from
/// the child would race the parent's writes to the same files.
static FORK_GEN: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_fork_child() {
    FORK_GEN.fetch_add(1, Ordering::SeqCst);
}

/// The current fork generation of this process.
pub(crate) fn fork_gen() -> u64 {
    FORK_GEN.load(Ordering::Relaxed)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    static REGISTER: std::sync::Once = std::sync::Once::new();
    // SAFETY: the handler only increments an atomic (async-signal-safe).
    REGISTER.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(on_fork_child));
    });
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("FORMAT_VERSION", numvault::FORMAT_VERSION)?;
    m.add("LockedError", py.get_type::<errors::LockedError>())?;
    m.add("CorruptionError", py.get_type::<errors::CorruptionError>())?;
    m.add("InternalError", py.get_type::<errors::InternalError>())?;
    m.add(
        "NeedsCompactionError",
        py.get_type::<errors::NeedsCompactionError>(),
    )?;
    m.add("ArrayInUseError", py.get_type::<errors::ArrayInUseError>())?;
    m.add(
        "LimitExceededError",
        py.get_type::<errors::LimitExceededError>(),
    )?;
    m.add("ConflictError", py.get_type::<errors::ConflictError>())?;
    m.add(
        "NeedsUpgradeError",
        py.get_type::<errors::NeedsUpgradeError>(),
    )?;
    m.add(
        "VersionInUseError",
        py.get_type::<errors::VersionInUseError>(),
    )?;
    m.add_class::<vault::Vault>()?;
    m.add_class::<txn::Transaction>()?;
    m.add_class::<lazy::LazyArray>()?;
    m.add_class::<lazy::LazyIter>()?;
    m.add_class::<writable::WritableArray>()?;
    m.add_class::<writable::MappedMemory>()?;
    m.add_class::<stream::BatchIter>()?;
    m.add_class::<stream::BatchMemory>()?;
    m.add_function(wrap_pyfunction!(lazy::_open_lazy, m)?)?;
    m.add_function(wrap_pyfunction!(vault::resolve_index, m)?)?;
    m.add_function(wrap_pyfunction!(vault::validate_name, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(numpack_import::_import_numpack, m)?)?;
    formats::register(m)?;
    Ok(())
}

/// Test hook: panic inside Rust code, with the GIL released ("nogil") or
/// held ("gil"), to check that a panic becomes `InternalError`.
#[pyfunction]
fn _panic_for_test(py: Python<'_>, mode: &str) -> PyResult<()> {
    if mode == "nogil" {
        errors::nogil(py, || -> numvault::Result<()> {
            panic!("test panic without the GIL")
        })
    } else {
        errors::guard(|| -> PyResult<()> { panic!("test panic with the GIL") })
    }
}
