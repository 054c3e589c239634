//! `_core._import_numpack`: import a NumPack store directory into a numvault
//! store in one commit, through the `numpack-reader` crate (the same code
//! as `numvault import`). `numvault.io.from_numpack` wraps it.

use std::path::PathBuf;

use numpack_reader::{Error as NpError, ImportOptions};
use pyo3::exceptions::{PyMemoryError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{panic_err, to_py, CorruptionError};

/// The Python exception of a reader error. Errors about the NumPack store
/// carry `numpack_kind` ("corrupt", "unsupported", "not_numpack", "io"),
/// `numpack_file`, `numpack_array`, `numpack_offset` and `numpack_detail`
/// attributes for the
/// wrapper to turn into a `ConversionError`.
fn to_py_err(py: Python<'_>, e: NpError) -> PyErr {
    let msg = e.to_string();
    let detail = match &e {
        NpError::Corrupt { detail, .. } | NpError::Unsupported { detail, .. } => detail.clone(),
        _ => msg.clone(),
    };
    let (err, kind, file, array, offset) = match e {
        NpError::Corrupt {
            path,
            array,
            offset,
            ..
        } => (
            CorruptionError::new_err(msg),
            "corrupt",
            Some(path),
            array,
            Some(offset),
        ),
        NpError::Unsupported { path, array, .. } => (
            PyValueError::new_err(msg),
            "unsupported",
            Some(path),
            array,
            None,
        ),
        NpError::NotNumPack { path } => (
            PyValueError::new_err(msg),
            "not_numpack",
            Some(path),
            None,
            None,
        ),
        NpError::Io {
            path,
            array,
            source,
        } => (
            match source.raw_os_error() {
                Some(errno) => PyOSError::new_err((errno, msg)),
                None => PyOSError::new_err(msg),
            },
            "io",
            Some(path),
            array,
            None,
        ),
        NpError::OutOfMemory { array, .. } => (
            PyMemoryError::new_err(msg),
            "memory",
            None,
            Some(array),
            None,
        ),
        NpError::Target { source, .. } => return to_py(source),
        NpError::Cancelled(_) => {
            // A Python exception raised in the progress callback (Ctrl-C).
            if let Some(e) = PyErr::take(py) {
                return e;
            }
            (PyValueError::new_err(msg), "cancelled", None, None, None)
        }
        _ => (PyValueError::new_err(msg), "other", None, None, None),
    };
    let v = err.value(py);
    let _ = v.setattr("numpack_kind", kind);
    let _ = v.setattr("numpack_file", file.map(|p| p.display().to_string()));
    let _ = v.setattr("numpack_array", array);
    let _ = v.setattr("numpack_offset", offset);
    let _ = v.setattr("numpack_detail", detail);
    err
}

/// Import the NumPack store `src` into the numvault store `dst` (created if
/// missing; removed again if this call created it and the import fails) in
/// one atomic commit. `arrays`: only these NumPack arrays; `prefix`: put
/// them under this group; `replace_all`: drop every other array of `dst` in
/// the same commit; `shared`: write into an existing `dst` by turns (the
/// writer lock only for the commit); `progress(nbytes)` is called as rows are staged (an
/// exception from it cancels the import). Returns one dict per imported
/// array.
#[pyfunction]
#[pyo3(signature = (src, dst, *, prefix=None, arrays=None, replace_all=false, shared=false, chunk_bytes=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn _import_numpack(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    prefix: Option<String>,
    arrays: Option<Vec<String>>,
    replace_all: bool,
    shared: bool,
    chunk_bytes: Option<usize>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyList>> {
    let select: Option<numpack_reader::Select> = arrays.map(|names| {
        let set: std::collections::HashSet<String> = names.into_iter().collect();
        Box::new(move |n: &str| set.contains(n)) as numpack_reader::Select
    });
    let opts = ImportOptions {
        prefix,
        select,
        chunk_bytes: chunk_bytes
            .unwrap_or(numpack_reader::DEFAULT_CHUNK_BYTES)
            .max(1),
        replace_all,
        shared,
    };
    let res = py.detach(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut report = |n: u64| -> numpack_reader::Result<()> {
                let Some(cb) = &progress else { return Ok(()) };
                Python::attach(|py| {
                    let r = py
                        .check_signals()
                        .and_then(|_| cb.call1(py, (n,)).map(|_| ()));
                    match r {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            let why = e.to_string();
                            e.restore(py);
                            Err(NpError::Cancelled(why))
                        }
                    }
                })
            };
            numpack_reader::import_dir(&src, &dst, &opts, &mut report)
        }))
    });
    let report = match res {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(to_py_err(py, e)),
        Err(p) => return Err(panic_err(p)),
    };
    let out = PyList::empty(py);
    for a in &report.arrays {
        let d = PyDict::new(py);
        d.set_item("source", &a.source)?;
        d.set_item("name", &a.name)?;
        d.set_item("dtype", a.dtype.to_string())?;
        d.set_item("shape", a.shape.clone())?;
        d.set_item("deleted_rows", a.deleted_rows)?;
        d.set_item("bytes", a.bytes)?;
        d.set_item("segmented", a.segmented)?;
        out.append(d)?;
    }
    Ok(out.unbind())
}
