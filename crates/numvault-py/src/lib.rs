//! Python bindings of numvault (`numvault._core`): `Vault`, `LazyArray`,
//! `WritableArray`, the exceptions, and index helpers. The pure-Python
//! package `numvault` builds the NumPack-compatible API on top.

mod conv;
mod errors;
mod index;
mod lazy;
mod stream;
mod vault;
mod writable;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("FORMAT_VERSION", numvault::FORMAT_VERSION)?;
    m.add("LockedError", py.get_type::<errors::LockedError>())?;
    m.add("CorruptionError", py.get_type::<errors::CorruptionError>())?;
    m.add("InternalError", py.get_type::<errors::InternalError>())?;
    m.add_class::<vault::Vault>()?;
    m.add_class::<lazy::LazyArray>()?;
    m.add_class::<lazy::LazyIter>()?;
    m.add_class::<writable::WritableArray>()?;
    m.add_class::<writable::MappedMemory>()?;
    m.add_class::<stream::BatchIter>()?;
    m.add_class::<stream::OwnedBytes>()?;
    m.add_function(wrap_pyfunction!(lazy::_open_lazy, m)?)?;
    m.add_function(wrap_pyfunction!(vault::resolve_index, m)?)?;
    m.add_function(wrap_pyfunction!(vault::validate_name, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
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
