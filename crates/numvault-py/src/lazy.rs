//! `LazyArray`: a read-only, memory-mapped snapshot of one array.

use std::os::raw::c_int;
use std::path::PathBuf;

use numpy::PyUntypedArray;
use numvault::{DType, OpenOptions, Store, View};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice, PyTuple};

use crate::conv::{alloc, borrowed_array, descr, make_read_only, out_slice, shape_tuple};
use crate::errors::{guard, nogil, withgil};
use crate::index::{parse_rows, Rows};

/// Copies at least this large are done with the GIL released; below it the
/// release and re-acquisition cost more than they let other threads gain.
pub const NOGIL_BYTES: usize = 256 << 10;

/// Copy the rows selected by `sel` out of `view` into a new array. A single
/// row of a 1-d array comes back as a NumPy scalar, as NumPy does.
pub fn select<'py>(py: Python<'py>, view: &View, sel: &Rows<'_>) -> PyResult<Bound<'py, PyAny>> {
    let shape = view.shape();
    let row_shape = &shape[1..];
    let rb = view.row_bytes() as usize;
    let dtype = view.dtype();
    match sel {
        Rows::One(i) => {
            let (arr, data) = alloc(py, dtype, row_shape)?;
            let out = unsafe { out_slice(data, rb) };
            withgil(|| view.read_range_into(*i, *i + 1, out))?;
            if row_shape.is_empty() {
                return arr.get_item(());
            }
            Ok(arr.into_any())
        }
        Rows::Range { start, len } => {
            let mut s = Vec::with_capacity(shape.len());
            s.push(*len);
            s.extend_from_slice(row_shape);
            let (arr, data) = alloc(py, dtype, &s)?;
            let n = *len as usize * rb;
            let out = unsafe { out_slice(data, n) };
            let (a, b) = (*start, *start + *len);
            if n >= NOGIL_BYTES {
                nogil(py, || view.read_range_into(a, b, out))?;
            } else {
                withgil(|| view.read_range_into(a, b, out))?;
            }
            Ok(arr.into_any())
        }
        Rows::List { idx, shape: ishape } => {
            let idx = idx.as_slice();
            let mut s = Vec::with_capacity(ishape.len() + row_shape.len());
            s.extend_from_slice(ishape);
            s.extend_from_slice(row_shape);
            let (arr, data) = alloc(py, dtype, &s)?;
            let n = idx.len() * rb;
            let out = unsafe { out_slice(data, n) };
            if n >= NOGIL_BYTES {
                nogil(py, || view.gather_into(idx, out))?;
            } else {
                withgil(|| view.gather_into(idx, out))?;
            }
            Ok(arr.into_any())
        }
    }
}

/// Every visible row, copied.
pub fn materialize<'py>(py: Python<'py>, view: &View) -> PyResult<Bound<'py, PyUntypedArray>> {
    let shape = view.shape();
    let (arr, data) = alloc(py, view.dtype(), &shape)?;
    let n = (view.rows() * view.row_bytes()) as usize;
    let out = unsafe { out_slice(data, n) };
    let rows = view.rows();
    if n >= NOGIL_BYTES {
        nogil(py, || view.read_range_into(0, rows, out))?;
    } else {
        withgil(|| view.read_range_into(0, rows, out))?;
    }
    Ok(arr)
}

/// A lazy, read-only view of one stored array, backed by a memory map.
///
/// Returned by ``Vault.lazy(name)`` and ``NumPack.load(name, lazy=True)``. It
/// is a snapshot: it shows the array as it was when it was created and stays
/// valid (and unchanged) whatever is written to the store later, even after
/// the store is closed. The one exception is ``writable_batch_mode``, which
/// changes rows in place and is visible through existing lazy arrays.
///
/// Indexing (``lazy[i]``, ``lazy[a:b:s]``, ``lazy[int_array]``,
/// ``lazy[bool_mask]``, tuples of those) follows NumPy and always returns a
/// new, independent, writable NumPy array (or a NumPy scalar). Deleted rows
/// are never visible. ``np.asarray(lazy)`` is zero-copy (a read-only array
/// over the mapping) when the array has no deleted or replaced rows, and a
/// copy otherwise; the arrays it returns keep the mapping alive by
/// themselves. Lazy arrays pickle as (store path, array name) and reopen the
/// store read-only when unpickled, so they can be sent to multiprocessing,
/// PyTorch ``DataLoader`` workers or Dask; the receiver sees the array as
/// stored at that time.
#[pyclass(module = "numvault", name = "LazyArray", frozen, weakref)]
pub struct LazyArray {
    pub view: View,
    pub store_path: PathBuf,
    pub shape: Vec<u64>,
}

impl LazyArray {
    pub fn new(view: View, store_path: PathBuf) -> LazyArray {
        let shape = view.shape();
        LazyArray {
            view,
            store_path,
            shape,
        }
    }

    fn dtype_(&self) -> DType {
        self.view.dtype()
    }

    /// The whole array as NumPy: zero-copy over the mapping when possible.
    /// The array's values as a read-only ndarray (zero-copy when possible),
    /// for operators, which NumPy computes on them; nothing writes back.
    fn values<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Ok(Self::full(slf, false)?.into_any())
    }

    /// `values <op> other` through NumPy's operator `method` (reflected
    /// ones included), so results, broadcasting and errors are NumPy's. An
    /// in-place operator (`lazy += 1`) falls back to these and rebinds the
    /// name to the new ndarray; the store is never changed.
    fn binary<'py>(
        slf: &Bound<'py, Self>,
        method: &str,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.call_method1(method, (other,))
    }

    fn full<'py>(slf: &Bound<'py, Self>, force_copy: bool) -> PyResult<Bound<'py, PyUntypedArray>> {
        let me = slf.get();
        let py = slf.py();
        if !force_copy && me.view.rows() > 0 && me.view.row_bytes() > 0 {
            if let Some(bytes) = me.view.contiguous() {
                // SAFETY: the mapping lives in `me.view`, immutable for the life of
                // `slf`, which becomes the array's base.
                return unsafe {
                    borrowed_array(
                        slf.clone().into_any(),
                        me.dtype_(),
                        &me.shape,
                        bytes.as_ptr() as *mut u8,
                        false,
                    )
                };
            }
        }
        materialize(py, &me.view)
    }

    fn getitem_inner<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let me = slf.get();
        let rows = me.view.rows();
        if let Ok(t) = key.cast::<PyTuple>() {
            if t.is_empty() {
                return Ok(Self::full(slf, true)?.into_any());
            }
            let first = t.get_item(0)?;
            let rest = t.get_slice(1, t.len());
            // Exact decomposition (rows first, then NumPy on the rest) holds
            // only when the rest has no advanced index: NumPy broadcasts
            // advanced indices together and may move their axes first.
            let rest_advanced = rest.iter().any(|k| {
                k.is_instance_of::<PyList>()
                    || crate::conv::is_ndarray(&k)
                    || k.is_instance_of::<pyo3::types::PyBool>()
                    || k.hasattr("dtype").unwrap_or(false)
            });
            if rest_advanced || first.is_instance_of::<pyo3::types::PyEllipsis>() {
                return Self::fallback(slf, key);
            }
            let Some(sel) = parse_rows(&first, rows, false)? else {
                return Self::fallback(slf, key);
            };
            let head = select(py, &me.view, &sel)?;
            if rest.is_empty() {
                return Ok(head);
            }
            let key2 = if matches!(sel, Rows::One(_)) {
                rest.into_any()
            } else {
                // Keep every axis of the index array(s) in place of axis 0.
                let ndim_idx = match &sel {
                    Rows::List { shape, .. } => shape.len(),
                    _ => 1,
                };
                let mut items: Vec<Bound<'py, PyAny>> = Vec::new();
                for _ in 0..ndim_idx {
                    items.push(PySlice::full(py).into_any());
                }
                items.extend(rest.iter());
                PyTuple::new(py, items)?.into_any()
            };
            return head.get_item(key2);
        }
        match parse_rows(key, rows, false)? {
            Some(sel) => select(py, &me.view, &sel),
            None => Self::fallback(slf, key),
        }
    }

    /// Any other index: let NumPy apply it to the whole array (zero-copy when
    /// possible) and copy the result off the mapping.
    fn fallback<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let full = Self::full(slf, false)?;
        let res = full.get_item(key)?;
        if crate::conv::is_ndarray(&res) && !res.getattr("base")?.is_none() {
            return res.call_method0("copy");
        }
        Ok(res)
    }
}

#[pymethods]
impl LazyArray {
    /// Shape of the array (rows first), as a tuple.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        shape_tuple(py, &self.shape)
    }

    /// NumPy dtype of the elements.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        descr(py, self.dtype_()).into_any()
    }

    /// Number of dimensions.
    #[getter]
    fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    #[getter]
    fn size(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Bytes per element.
    #[getter]
    fn itemsize(&self) -> usize {
        self.dtype_().itemsize()
    }

    /// Bytes of all elements.
    #[getter]
    fn nbytes(&self) -> u64 {
        self.view.rows() * self.view.row_bytes()
    }

    /// Name of the array in its store.
    #[getter]
    fn name(&self) -> &str {
        self.view.name()
    }

    /// Path of the store the array belongs to.
    #[getter]
    fn path(&self) -> String {
        self.store_path.to_string_lossy().into_owned()
    }

    /// True when ``np.asarray(self)`` is zero-copy (no deleted or replaced rows).
    #[getter]
    fn zero_copy(&self) -> bool {
        self.view.contiguous().is_some()
    }

    fn __len__(&self) -> usize {
        self.view.rows() as usize
    }

    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard(|| Self::getitem_inner(slf, key))
    }

    fn __iter__(slf: &Bound<'_, Self>) -> LazyIter {
        LazyIter {
            array: slf.clone().unbind(),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// NumPy array protocol. Zero-copy and read-only when the array has no
    /// deleted or replaced rows (unless ``copy=True``); a copy otherwise.
    #[pyo3(signature = (dtype=None, copy=None))]
    fn __array__<'py>(
        slf: &Bound<'py, Self>,
        dtype: Option<&Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.get();
        if copy == Some(false) && me.view.contiguous().is_none() && me.view.rows() > 0 {
            return Err(PyValueError::new_err(
                "this lazy array has deleted or replaced rows and cannot be viewed without a \
                 copy; compact it (Vault.compact / NumPack.update) or allow a copy",
            ));
        }
        let arr = Self::full(slf, copy == Some(true))?.into_any();
        match dtype {
            Some(d) if !d.is_none() => {
                let kwargs = pyo3::types::PyDict::new(slf.py());
                kwargs.set_item("copy", copy == Some(true))?;
                arr.call_method("astype", (d,), Some(&kwargs))
            }
            _ => Ok(arr),
        }
    }

    /// A copy of the whole array as a new writable NumPy array.
    fn to_numpy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Ok(Self::full(slf, true)?.into_any())
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        // Export the buffer of a read-only ndarray over the same memory; its
        // base keeps this object (and so the mapping) alive.
        let arr = Self::full(&slf, false)?;
        if arr.getattr("flags")?.getattr("writeable")?.is_truthy()? {
            make_read_only(arr.as_any())?;
        }
        let rc = unsafe { pyo3::ffi::PyObject_GetBuffer(arr.as_ptr(), view, flags) };
        if rc != 0 {
            return Err(PyErr::take(slf.py())
                .unwrap_or_else(|| PyBufferError::new_err("cannot export the buffer")));
        }
        Ok(())
    }

    /// Comparisons are NumPy's, element-wise, on the array's values (an
    /// ndarray of bools, never an identity test).
    fn __richcmp__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        op: pyo3::basic::CompareOp,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.rich_compare(other, op)
    }

    // One method per Python number slot, each a one-line call of `binary`:
    // pyo3 reads the methods of this block as written, so a macro_rules
    // expansion here would not be seen (it would take the
    // `multiple-pymethods` feature and its `inventory` dependency).
    fn __add__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__add__", o)
    }
    fn __radd__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__radd__", o)
    }
    fn __sub__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__sub__", o)
    }
    fn __rsub__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rsub__", o)
    }
    fn __mul__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__mul__", o)
    }
    fn __rmul__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rmul__", o)
    }
    fn __truediv__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__truediv__", o)
    }
    fn __rtruediv__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rtruediv__", o)
    }
    fn __floordiv__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__floordiv__", o)
    }
    fn __rfloordiv__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rfloordiv__", o)
    }
    fn __mod__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__mod__", o)
    }
    fn __rmod__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rmod__", o)
    }
    fn __pow__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
        modulo: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match modulo {
            Some(m) if !m.is_none() => Self::values(slf)?.call_method1("__pow__", (o, m)),
            _ => Self::binary(slf, "__pow__", o),
        }
    }
    fn __rpow__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
        _modulo: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rpow__", o)
    }
    fn __matmul__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__matmul__", o)
    }
    fn __rmatmul__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rmatmul__", o)
    }
    fn __and__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__and__", o)
    }
    fn __rand__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rand__", o)
    }
    fn __or__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__or__", o)
    }
    fn __ror__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__ror__", o)
    }
    fn __xor__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__xor__", o)
    }
    fn __rxor__<'py>(slf: &Bound<'py, Self>, o: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rxor__", o)
    }
    fn __lshift__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__lshift__", o)
    }
    fn __rlshift__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rlshift__", o)
    }
    fn __rshift__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rshift__", o)
    }
    fn __rrshift__<'py>(
        slf: &Bound<'py, Self>,
        o: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::binary(slf, "__rrshift__", o)
    }
    fn __neg__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.call_method0("__neg__")
    }
    fn __pos__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.call_method0("__pos__")
    }
    fn __invert__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.call_method0("__invert__")
    }
    fn __abs__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.call_method0("__abs__")
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let f = py.import("numvault._core")?.getattr("_open_lazy")?;
        let args = PyTuple::new(py, [self.path(), self.view.name().to_string()])?;
        PyTuple::new(py, [f, args.into_any()])
    }

    fn __repr__(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(u64::to_string).collect();
        let shape = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        format!(
            "LazyArray({:?}, shape={shape}, dtype={})",
            self.view.name(),
            self.dtype_()
        )
    }
}

/// Iterator over the rows of a [`LazyArray`].
#[pyclass(module = "numvault._core", name = "_LazyIter", frozen)]
pub struct LazyIter {
    array: Py<LazyArray>,
    next: std::sync::atomic::AtomicU64,
}

#[pymethods]
impl LazyIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let a = self.array.get();
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if i >= a.view.rows() {
            return Ok(None);
        }
        select(py, &a.view, &Rows::One(i)).map(Some)
    }

    fn __length_hint__(&self) -> u64 {
        let a = self.array.get();
        a.view
            .rows()
            .saturating_sub(self.next.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Reopen a pickled [`LazyArray`]: open the store read-only and take a new
/// snapshot of the array.
#[pyfunction]
pub fn _open_lazy(py: Python<'_>, path: PathBuf, name: String) -> PyResult<LazyArray> {
    let p = path.clone();
    let view = nogil(py, move || {
        let store = Store::open(&p, OpenOptions::read_only())?;
        store.view(&name)
    })?;
    Ok(LazyArray::new(view, path))
}
