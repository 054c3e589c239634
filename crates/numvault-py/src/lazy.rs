//! `LazyArray`: a read-only, memory-mapped snapshot of one array.

use std::os::raw::c_int;
use std::path::PathBuf;

use numpy::PyUntypedArray;
use numvault::{DType, OpenOptions, Store, View};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySlice, PyTuple};

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
/// themselves. Lazy arrays pickle as (store path, array name, version) and
/// reopen the store read-only when unpickled, so they can be sent to
/// multiprocessing, PyTorch ``DataLoader`` workers or Dask; the receiver
/// sees the array as stored at that time, or, for an array read from a
/// version (``Vault.at(v).lazy(name)``, ``version`` not None), as stored in
/// that version (``KeyError`` if it was deleted since).
#[pyclass(module = "numvault", name = "LazyArray", frozen, weakref)]
pub struct LazyArray {
    pub view: View,
    pub store_path: PathBuf,
    pub shape: Vec<u64>,
    /// The store version it was read from (`Vault.at`), if not the
    /// current state: pickles carry it, so the receiver reads that version.
    pub version: Option<u64>,
}

impl LazyArray {
    pub fn new(view: View, store_path: PathBuf) -> LazyArray {
        let shape = view.shape();
        LazyArray {
            view,
            store_path,
            shape,
            version: None,
        }
    }

    /// Note the store version the view was read from.
    pub fn with_version(mut self, version: Option<u64>) -> LazyArray {
        self.version = version;
        self
    }

    fn dtype_(&self) -> DType {
        self.view.dtype()
    }

    /// True when `reshape` gave this array other trailing dimensions than
    /// the stored ones (the rows are the same).
    fn reshaped(&self) -> bool {
        self.shape[1..] != self.view.shape()[1..]
    }

    /// `select` on the stored rows, shaped with this array's trailing
    /// dimensions.
    fn select_rows<'py>(&self, py: Python<'py>, sel: &Rows<'_>) -> PyResult<Bound<'py, PyAny>> {
        let got = select(py, &self.view, sel)?;
        if !self.reshaped() {
            return Ok(got);
        }
        let mut dims: Vec<u64> = match sel {
            Rows::One(_) => Vec::new(),
            Rows::Range { len, .. } => vec![*len],
            Rows::List { shape, .. } => shape.clone(),
        };
        dims.extend_from_slice(&self.shape[1..]);
        let arr = got.call_method1("reshape", (shape_tuple(py, &dims)?,))?;
        if dims.is_empty() {
            return arr.get_item(());
        }
        Ok(arr)
    }

    /// Python helpers of this class (`numvault._lazy`).
    fn helper<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        py.import("numvault._lazy")?.getattr(name)
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
        const BITWISE: [&str; 10] = [
            "__and__",
            "__rand__",
            "__or__",
            "__ror__",
            "__xor__",
            "__rxor__",
            "__lshift__",
            "__rlshift__",
            "__rshift__",
            "__rrshift__",
        ];
        if BITWISE.contains(&method) {
            slf.get().check_bitwise()?;
        }
        Self::values(slf)?.call_method1(method, (other,))
    }

    /// NumPack's error for a bitwise operator on a float or complex array
    /// (a `TypeError`, as NumPy's).
    fn check_bitwise(&self) -> PyResult<()> {
        if matches!(
            self.dtype_(),
            DType::F16 | DType::F32 | DType::F64 | DType::Complex64 | DType::Complex128
        ) {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "Bitwise operations are only supported for integer arrays; array '{}' is {}",
                self.view.name(),
                self.dtype_()
            )));
        }
        Ok(())
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
        let arr = materialize(py, &me.view)?;
        if me.reshaped() {
            let shaped = arr.call_method1("reshape", (shape_tuple(py, &me.shape)?,))?;
            return Ok(shaped.cast_into::<PyUntypedArray>()?);
        }
        Ok(arr)
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
            let head = me.select_rows(py, &sel)?;
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
            Some(sel) => me.select_rows(py, &sel),
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

    /// Id of the store version the array was read from (``Vault.at``), or
    /// None for the current state at the time it was made.
    #[getter]
    fn version(&self) -> Option<u64> {
        self.version
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
    fn __neg__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.call_method0("__neg__")
    }
    fn __pos__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.call_method0("__pos__")
    }
    fn __invert__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().check_bitwise()?;
        Self::values(slf)?.call_method0("__invert__")
    }
    fn __abs__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.call_method0("__abs__")
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let f = py.import("numvault._core")?.getattr("_open_lazy")?;
        let shape = if self.reshaped() {
            shape_tuple(py, &self.shape)?.into_any()
        } else {
            py.None().into_bound(py)
        };
        let args = (
            self.path(),
            self.view.name().to_string(),
            shape,
            self.version,
        )
            .into_pyobject(py)?;
        PyTuple::new(py, [f, args.into_any()])
    }

    /// ``LazyArray('name', shape=(..), dtype=.., store='path')``.
    fn __repr__(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(u64::to_string).collect();
        let shape = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        let version = match self.version {
            Some(v) => format!(", version={v}"),
            None => String::new(),
        };
        format!(
            "LazyArray({:?}, shape={shape}, dtype={}, store={:?}{version})",
            self.view.name(),
            self.dtype_(),
            self.path()
        )
    }

    /// NumPy's ufunc protocol: ``np.add(lazy, 1)``, ``np.sqrt(lazy)``...
    /// give NumPy's result on the values; reductions (``np.add.reduce``,
    /// ``np.maximum.reduce``...) stream the array in batches.
    #[pyo3(signature = (ufunc, method, *inputs, **kwargs))]
    fn __array_ufunc__<'py>(
        slf: &Bound<'py, Self>,
        ufunc: &Bound<'py, PyAny>,
        method: &Bound<'py, PyAny>,
        inputs: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let kw = match kwargs {
            Some(k) => k.clone(),
            None => PyDict::new(py),
        };
        Self::helper(py, "array_ufunc")?.call1((slf, ufunc, method, inputs, kw))
    }

    /// NumPy's function protocol: ``np.mean(lazy)``, ``np.concatenate([lazy,
    /// x])``, ``np.where(lazy > 0)``...; whole-array reductions (sum, prod,
    /// min, max, any, all, mean, std, var) stream the array in batches.
    fn __array_function__<'py>(
        slf: &Bound<'py, Self>,
        func: &Bound<'py, PyAny>,
        types: &Bound<'py, PyAny>,
        args: &Bound<'py, PyAny>,
        kwargs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::helper(slf.py(), "array_function")?.call1((slf, func, types, args, kwargs))
    }

    /// ``reshape(*shape)`` or ``reshape(shape)`` (``-1`` allowed): a lazy
    /// array when the number of rows stays the same, else NumPy's reshape of
    /// the values.
    #[pyo3(signature = (*shape, order="C"))]
    fn reshape<'py>(
        slf: &Bound<'py, Self>,
        shape: &Bound<'py, PyTuple>,
        order: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::helper(slf.py(), "reshape")?.call1((slf, shape, order))
    }

    /// This array's rows with other trailing dimensions (used by `reshape`).
    fn _with_shape(&self, shape: Vec<u64>) -> PyResult<LazyArray> {
        let stored = self.view.shape();
        let elems = |s: &[u64]| s.iter().skip(1).try_fold(1u64, |a, &d| a.checked_mul(d));
        if shape.first() != stored.first() || elems(&shape) != elems(&stored) {
            return Err(PyValueError::new_err(format!(
                "cannot view array '{}' of shape {:?} as {:?}: rows and row size must stay the same",
                self.view.name(),
                stored,
                shape
            )));
        }
        Ok(LazyArray {
            view: self.view.clone(),
            store_path: self.store_path.clone(),
            shape,
            version: self.version,
        })
    }

    /// The transposed values (NumPy's ``T``; a read-only view of the mapping
    /// when zero-copy).
    #[getter(T)]
    fn transposed<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.getattr("T")
    }

    /// ``astype(dtype, ...)``: a new ndarray (NumPy's ``astype`` arguments).
    #[pyo3(signature = (dtype, **kwargs))]
    fn astype<'py>(
        slf: &Bound<'py, Self>,
        dtype: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.call_method("astype", (dtype,), kwargs)
    }

    /// A new, writable ndarray holding the values.
    #[pyo3(signature = (order="C"))]
    fn copy<'py>(slf: &Bound<'py, Self>, order: &str) -> PyResult<Bound<'py, PyAny>> {
        let arr = Self::full(slf, true)?.into_any();
        if order == "C" {
            return Ok(arr);
        }
        arr.call_method1("copy", (order,))
    }

    /// ``copy.copy(lazy)``: a new ndarray.
    fn __copy__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Ok(Self::full(slf, true)?.into_any())
    }

    /// ``copy.deepcopy(lazy)``: a new ndarray.
    fn __deepcopy__<'py>(
        slf: &Bound<'py, Self>,
        _memo: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(Self::full(slf, true)?.into_any())
    }

    /// The values as nested Python lists.
    fn tolist<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)?.call_method0("tolist")
    }

    /// NumPy's rule: the truth of the one element; an error for any other size.
    fn __bool__(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Self::values(slf)?.is_truthy()
    }

    /// NumPack compatibility: a lazy array holds no handle to close (its
    /// mapping is released when the last reference goes); a no-op.
    fn close(&self) {}

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> bool {
        false
    }

    /// NumPack's accelerator methods (``vectorized_gather``,
    /// ``mega_batch_get_rows``, ``boolean_index_*``...) and NumPy's array
    /// methods (``sum``, ``mean``, ``max``...), from `numvault._lazy`.
    fn __getattr__<'py>(slf: &Bound<'py, Self>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        Self::helper(slf.py(), "getattr_")?.call1((slf, name))
    }
}

/// The binary operators of [`LazyArray`] (reflected forms included), each
/// NumPy's operator on the values through [`LazyArray::binary`]. In a block
/// of their own, written by a macro (the `multiple-pymethods` feature lets
/// pyo3 see methods of more than one block).
macro_rules! binary_operators {
    ($($op:ident),* $(,)?) => {
        #[pymethods]
        impl LazyArray {
            $(
                fn $op<'py>(
                    slf: &Bound<'py, Self>,
                    o: &Bound<'py, PyAny>,
                ) -> PyResult<Bound<'py, PyAny>> {
                    Self::binary(slf, stringify!($op), o)
                }
            )*
        }
    };
}

binary_operators!(
    __add__,
    __radd__,
    __sub__,
    __rsub__,
    __mul__,
    __rmul__,
    __truediv__,
    __rtruediv__,
    __floordiv__,
    __rfloordiv__,
    __mod__,
    __rmod__,
    __matmul__,
    __rmatmul__,
    __and__,
    __rand__,
    __or__,
    __ror__,
    __xor__,
    __rxor__,
    __lshift__,
    __rlshift__,
    __rshift__,
    __rrshift__,
);

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
        a.select_rows(py, &Rows::One(i)).map(Some)
    }

    fn __length_hint__(&self) -> u64 {
        let a = self.array.get();
        a.view
            .rows()
            .saturating_sub(self.next.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Reopen a pickled [`LazyArray`]: open the store read-only (on `version`
/// if given) and take a new snapshot of the array.
#[pyfunction]
#[pyo3(signature = (path, name, shape=None, version=None))]
pub fn _open_lazy(
    py: Python<'_>,
    path: PathBuf,
    name: String,
    shape: Option<Vec<u64>>,
    version: Option<u64>,
) -> PyResult<LazyArray> {
    let p = path.clone();
    let view = nogil(py, move || {
        let opts = OpenOptions {
            version: version.map(numvault::VersionRef::Id),
            ..OpenOptions::read_only()
        };
        let store = Store::open(&p, opts)?;
        store.view(&name)
    })?;
    let lazy = LazyArray::new(view, path).with_version(version);
    match shape {
        Some(s) => lazy._with_shape(s),
        None => Ok(lazy),
    }
}
