//! Hand-offs of a [`LazyArray`] to other libraries: DLPack (NumPy,
//! PyTorch, JAX, CuPy...), the Arrow PyCapsule interface (pyarrow, polars,
//! DuckDB...) and Dask. A second `#[pymethods]` block (pyo3's
//! `multiple-pymethods` feature) so that these live apart from lazy.rs.
//!
//! DLPack consumers may ignore the read-only flag (PyTorch does) and write
//! into the memory they are given, so a DLPack export is never the store's
//! shared mapping: it is a private copy-on-write mapping of the array's data
//! file (a write copies the page into the process and never reaches the
//! file), or, when that cannot be had, a private copy. Arrow consumers
//! cannot write (Arrow buffers are immutable), so the Arrow export of an
//! array without deleted or replaced rows is the shared mapping itself.

use std::fs::File;

use memmap2::{MmapMut, MmapOptions};
use numvault::View;
use pyo3::exceptions::{PyBufferError, PyImportError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::conv::{borrowed_array, make_read_only, shape_tuple};
use crate::errors::guard;
use crate::lazy::{materialize, LazyArray};

/// DLPack device type of host memory (`kDLCPU`).
const DL_CPU: i32 = 1;

/// Owner of a private copy-on-write mapping exported through DLPack: the
/// base of the exported ndarray, so the mapping lives as long as the last
/// consumer (NumPy array, torch tensor...) that holds it.
#[pyclass(module = "numvault._core", name = "_PrivateMapping", frozen)]
pub struct PrivateMapping {
    /// Kept only to keep the mapping alive (unmapped on drop).
    _map: MmapMut,
}

/// The data file region behind `view`'s contiguous rows, mapped privately
/// (MAP_PRIVATE, read/write): writes land in pages private to this process.
/// `None` when that mapping cannot be proven to be of the same file as the
/// view's (e.g. the file was removed by a compaction since): the caller
/// copies instead.
#[cfg(target_os = "linux")]
fn private_mapping(view: &View, bytes: &[u8]) -> Option<MmapMut> {
    use std::os::unix::fs::MetadataExt;
    let file = File::open(view.path()).ok()?;
    let meta = file.metadata().ok()?;
    if meta.len() < bytes.len() as u64 {
        return None;
    }
    // The path must still name the file the view maps: compare the device
    // and inode of the view's mapping (from /proc/self/maps) with the open
    // file's.
    let (dev, ino) = mapping_inode(bytes.as_ptr() as usize)?;
    let fdev = meta.dev();
    if ino != meta.ino() || dev != (libc::major(fdev) as u64, libc::minor(fdev) as u64) {
        return None;
    }
    // SAFETY: a private mapping: writes through it never reach the file. The
    // engine never shrinks or rewrites committed bytes of a data file in
    // place (outside explicit in-place sessions, documented as visible to
    // lazy arrays), so the pages read are the committed rows, and never
    // fault for lack of a backing file.
    unsafe { MmapOptions::new().len(bytes.len()).map_copy(&file).ok() }
}

#[cfg(not(target_os = "linux"))]
fn private_mapping(_view: &View, _bytes: &[u8]) -> Option<MmapMut> {
    None
}

/// (device (major, minor), inode) of the file mapped at address `addr`.
#[cfg(target_os = "linux")]
fn mapping_inode(addr: usize) -> Option<((u64, u64), u64)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    for line in maps.lines() {
        let mut f = line.split_ascii_whitespace();
        let range = f.next()?;
        let (a, b) = range.split_once('-')?;
        let a = usize::from_str_radix(a, 16).ok()?;
        let b = usize::from_str_radix(b, 16).ok()?;
        if addr < a || addr >= b {
            continue;
        }
        let _perms = f.next()?;
        let _offset = f.next()?;
        let (maj, min) = f.next()?.split_once(':')?;
        let ino = f.next()?.parse::<u64>().ok()?;
        let maj = u64::from_str_radix(maj, 16).ok()?;
        let min = u64::from_str_radix(min, 16).ok()?;
        return Some(((maj, min), ino));
    }
    None
}

fn interop_module<'py>(py: Python<'py>, module: &str) -> PyResult<Bound<'py, PyModule>> {
    py.import(module).map_err(|e| {
        if e.is_instance_of::<PyImportError>(py) {
            PyImportError::new_err(format!("cannot import {module}: {e}"))
        } else {
            e
        }
    })
}

impl LazyArray {
    /// The array's values as an ndarray that no consumer's write can take
    /// to the store: a private copy-on-write mapping when the array is
    /// identity-mapped, else a fresh copy. Writable.
    fn private_values<'py>(
        slf: &Bound<'py, Self>,
        force_copy: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        let py = slf.py();
        if !force_copy && me.view.rows() > 0 && me.view.row_bytes() > 0 {
            if let Some(bytes) = me.view.contiguous() {
                if let Some(mut map) = private_mapping(&me.view, bytes) {
                    let ptr = map.as_mut_ptr();
                    let owner = Bound::new(py, PrivateMapping { _map: map })?;
                    // SAFETY: `owner` (the array's base) keeps the mapping,
                    // readable and writable, for the array's life.
                    let arr = unsafe {
                        borrowed_array(owner.into_any(), me.view.dtype(), &me.shape, ptr, true)
                    }?;
                    return Ok(arr.into_any());
                }
            }
        }
        Ok(materialize(py, &me.view)?.into_any())
    }
}

#[pymethods]
impl LazyArray {
    /// DLPack export (``np.from_dlpack(lazy)``, ``torch.from_dlpack(lazy)``).
    ///
    /// A consumer asking for DLPack 1.0 or later (``max_version``) gets a
    /// tensor flagged read-only. Consumers that ignore the flag (PyTorch)
    /// or predate it may write into the tensor: it is a private
    /// copy-on-write mapping of the stored rows (or a private copy for an
    /// array with deleted or replaced rows), so such writes stay in this
    /// process and never reach the store. ``copy=True`` always copies;
    /// ``copy=False`` raises ``BufferError`` for an array that needs a copy.
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__<'py>(
        slf: &Bound<'py, Self>,
        stream: Option<Bound<'py, PyAny>>,
        max_version: Option<(u32, u32)>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard(|| {
            let py = slf.py();
            let me = slf.get();
            if let Some(s) = &stream {
                if !s.is_none() {
                    return Err(PyBufferError::new_err(
                        "a numvault LazyArray is in host memory: stream must be None",
                    ));
                }
            }
            if let Some((dev, _)) = dl_device {
                if dev != DL_CPU {
                    return Err(PyBufferError::new_err(format!(
                        "a numvault LazyArray is in host memory (kDLCPU = {DL_CPU}); \
                         device type {dev} was asked for"
                    )));
                }
            }
            if copy == Some(false) && me.view.contiguous().is_none() && me.view.rows() > 0 {
                return Err(PyBufferError::new_err(
                    "this lazy array has deleted or replaced rows and cannot be exported \
                     without a copy; compact it or allow a copy",
                ));
            }
            let arr = Self::private_values(slf, copy == Some(true))?;
            let versioned = matches!(max_version, Some((major, _)) if major >= 1);
            let kwargs = PyDict::new(py);
            if versioned {
                make_read_only(&arr)?;
                kwargs.set_item("max_version", max_version)?;
            }
            if let Some(d) = dl_device {
                kwargs.set_item("dl_device", d)?;
            }
            // `arr` is this export's own memory: NumPy must not copy it again.
            arr.call_method("__dlpack__", (), Some(&kwargs))
        })
    }

    /// DLPack device: host memory, ``(kDLCPU, 0)``.
    fn __dlpack_device__(&self) -> (i32, i32) {
        (DL_CPU, 0)
    }

    /// Arrow PyCapsule interface: ``(schema capsule, array capsule)`` of the
    /// array as an Arrow array (``pyarrow.array(lazy)``, polars, DuckDB...).
    /// 1-d: a primitive array; 2-d: ``FixedSizeList``; more: the
    /// ``arrow.fixed_shape_tensor`` extension type. Zero-copy (over the
    /// store's mapping, kept alive by the capsules) when ``zero_copy`` is
    /// true and the dtype's Arrow layout is NumPy's (not bool); a copy
    /// otherwise. Needs pyarrow.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        slf: &Bound<'py, Self>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        interop_module(slf.py(), "numvault._interop")?
            .call_method1("arrow_c_array", (slf, requested_schema))
    }

    /// Arrow PyCapsule stream interface: the array as a stream of record
    /// batches of one column named after the array
    /// (``pyarrow.RecordBatchReader.from_stream(lazy)``, ``pyarrow.table``),
    /// each batch zero-copy when ``__arrow_c_array__`` is. Needs pyarrow.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        slf: &Bound<'py, Self>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        interop_module(slf.py(), "numvault._interop")?
            .call_method1("arrow_c_stream", (slf, requested_schema))
    }

    /// The array as a ``pyarrow.Array`` (see ``__arrow_c_array__``).
    fn to_arrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        interop_module(slf.py(), "numvault._interop")?.call_method1("to_arrow", (slf,))
    }

    /// The array as a ``dask.array.Array`` whose tasks reopen the store
    /// read-only and read this snapshot's committed state (an error if a
    /// later commit changed the array). ``chunks``: Dask's chunk spec;
    /// default: whole rows in runs of the stored checksum-chunk grid (see
    /// ``numvault.dask``). Needs dask.
    #[pyo3(signature = (chunks=None))]
    fn to_dask<'py>(
        slf: &Bound<'py, Self>,
        chunks: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        interop_module(slf.py(), "numvault.dask")?.call_method1("from_lazy", (slf, chunks))
    }

    /// Dask token: (store path, array name, committed state, version),
    /// never the data.
    fn __dask_tokenize__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let state = self._state(py)?;
        PyTuple::new(
            py,
            [
                "numvault.LazyArray".into_pyobject(py)?.into_any(),
                self.store_path
                    .to_string_lossy()
                    .into_pyobject(py)?
                    .into_any(),
                self.view.name().into_pyobject(py)?.into_any(),
                state.into_any(),
                self.version.into_pyobject(py)?.into_any(),
            ],
        )
    }

    /// The committed state this snapshot shows, as a tuple that changes with
    /// every commit that changes the array: (mtime_ns, shape, data file
    /// name). Compared by Dask tasks against the state they reopen.
    #[getter]
    fn _state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let file = self
            .view
            .path()
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        PyTuple::new(
            py,
            [
                self.view.mtime_ns().into_pyobject(py)?.into_any(),
                shape_tuple(py, &self.shape)?.into_any(),
                file.into_pyobject(py)?.into_any(),
            ],
        )
    }

    /// The array's values in memory private to this process (a
    /// copy-on-write mapping of the stored rows, or a copy), writable, as
    /// exported through DLPack: writes never reach the store.
    fn _private_array<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| Self::private_values(slf, false))
    }
}
