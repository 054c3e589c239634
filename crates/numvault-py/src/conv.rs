//! NumPy arrays in and out: dtype mapping, input normalization (byte order,
//! memory order), output allocation, and arrays over memory owned by a
//! Python object (zero-copy).

use std::os::raw::c_int;
use std::ptr::null_mut;

use numpy::npyffi::{self, npy_intp, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use numvault::DType;
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

/// The `numpy` module, imported once.
pub fn np(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static NP: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    NP.get_or_try_init(py, || py.import("numpy").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// NumPy dtype for an engine dtype.
pub fn descr(py: Python<'_>, d: DType) -> Bound<'_, PyArrayDescr> {
    use numpy::dtype;
    match d {
        DType::Bool => dtype::<bool>(py),
        DType::I8 => dtype::<i8>(py),
        DType::I16 => dtype::<i16>(py),
        DType::I32 => dtype::<i32>(py),
        DType::I64 => dtype::<i64>(py),
        DType::U8 => dtype::<u8>(py),
        DType::U16 => dtype::<u16>(py),
        DType::U32 => dtype::<u32>(py),
        DType::U64 => dtype::<u64>(py),
        DType::F16 => dtype::<half::f16>(py),
        DType::F32 => dtype::<f32>(py),
        DType::F64 => dtype::<f64>(py),
        DType::Complex64 => dtype::<numpy::Complex32>(py),
        DType::Complex128 => dtype::<numpy::Complex64>(py),
        // `DType` is exhaustive today; a new variant must be mapped here.
        #[allow(unreachable_patterns)]
        _ => dtype::<u8>(py),
    }
}

/// Engine dtype for a NumPy dtype, ignoring byte order; `None` if numvault
/// cannot store it.
pub fn dtype_of(d: &Bound<'_, PyArrayDescr>) -> Option<DType> {
    if d.has_fields() || d.has_subarray() {
        return None;
    }
    let t = match (d.kind(), d.itemsize()) {
        (b'b', 1) => DType::Bool,
        (b'i', 1) => DType::I8,
        (b'i', 2) => DType::I16,
        (b'i', 4) => DType::I32,
        (b'i', 8) => DType::I64,
        (b'u', 1) => DType::U8,
        (b'u', 2) => DType::U16,
        (b'u', 4) => DType::U32,
        (b'u', 8) => DType::U64,
        (b'f', 2) => DType::F16,
        (b'f', 4) => DType::F32,
        (b'f', 8) => DType::F64,
        (b'c', 8) => DType::Complex64,
        (b'c', 16) => DType::Complex128,
        _ => return None,
    };
    Some(t)
}

pub const SUPPORTED: &str = "bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, \
                             float16, float32, float64, complex64, complex128";

/// True if `obj` is a NumPy ndarray (or subclass).
#[inline]
pub fn is_ndarray(obj: &Bound<'_, PyAny>) -> bool {
    unsafe { npyffi::PyArray_Check(obj.py(), obj.as_ptr()) != 0 }
}

/// An input array ready for the engine: native byte order, C-contiguous.
pub struct Input<'py> {
    pub arr: Bound<'py, PyUntypedArray>,
    pub dtype: DType,
    pub shape: Vec<u64>,
}

impl Input<'_> {
    /// The array's bytes. Valid while `self.arr` is alive; the caller must
    /// not let Python code run that could resize it (we hold a reference, so
    /// NumPy refuses to resize it anyway).
    pub fn bytes(&self) -> &[u8] {
        let n = self.nbytes();
        if n == 0 {
            return &[];
        }
        unsafe {
            let data = (*npyffi::_PyArray_GET_ITEM_DATA(self.arr.as_array_ptr())).data;
            std::slice::from_raw_parts(data as *const u8, n)
        }
    }

    pub fn nbytes(&self) -> usize {
        self.shape.iter().map(|&d| d as usize).product::<usize>() * self.dtype.itemsize()
    }
}

/// Convert any array-like to an [`Input`]: non-native byte order is swapped,
/// Fortran-ordered and strided arrays are made C-contiguous, 0-d arrays and
/// unsupported dtypes are refused with `ValueError`.
pub fn input<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Input<'py>> {
    let py = obj.py();
    let arr: Bound<'py, PyAny> = if is_ndarray(obj) {
        obj.clone()
    } else {
        if obj.is_none() {
            return Err(PyValueError::new_err(format!(
                "{what}: expected a NumPy array, got None"
            )));
        }
        np(py)?
            .call_method1("asarray", (obj,))
            .map_err(|e| PyValueError::new_err(format!("{what}: not an array: {e}")))?
    };
    let arr = arr.cast_into::<PyUntypedArray>()?;
    let d = arr.dtype();
    let Some(dtype) = dtype_of(&d) else {
        return Err(PyValueError::new_err(format!(
            "{what}: dtype {} is not supported (numvault stores {SUPPORTED})",
            d.str()?
        )));
    };
    if arr.ndim() == 0 {
        return Err(PyValueError::new_err(format!(
            "{what}: 0-d arrays (scalars) are not supported; store at least one dimension, \
             e.g. np.atleast_1d(x)"
        )));
    }
    let native = d.is_native_byteorder().unwrap_or(true);
    let arr = if !native || !arr.is_c_contiguous() {
        let target = descr(py, dtype);
        np(py)?
            .call_method1("ascontiguousarray", (arr, target))?
            .cast_into::<PyUntypedArray>()?
    } else {
        arr
    };
    let shape = arr.shape().iter().map(|&s| s as u64).collect();
    Ok(Input { arr, dtype, shape })
}

fn dims_of(shape: &[u64]) -> PyResult<Vec<npy_intp>> {
    let mut total: u128 = 1;
    let mut dims = Vec::with_capacity(shape.len());
    for &s in shape {
        total = total.saturating_mul(u128::from(s));
        dims.push(npy_intp::try_from(s).map_err(|_| PyMemoryError::new_err("array is too large"))?);
    }
    if total > isize::MAX as u128 {
        return Err(PyMemoryError::new_err("array is too large"));
    }
    Ok(dims)
}

/// A new uninitialized C-ordered array; returns it with its data pointer.
pub fn alloc<'py>(
    py: Python<'py>,
    dtype: DType,
    shape: &[u64],
) -> PyResult<(Bound<'py, PyUntypedArray>, *mut u8)> {
    let mut dims = dims_of(shape)?;
    unsafe {
        let ptr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr(py, dtype).into_dtype_ptr(),
            dims.len() as c_int,
            dims.as_mut_ptr(),
            null_mut(),
            null_mut(),
            0,
            null_mut(),
        );
        let arr = Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked::<PyUntypedArray>();
        let data = (*npyffi::_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data as *mut u8;
        Ok((arr, data))
    }
}

/// The output buffer of a fresh array from [`alloc`] as a byte slice.
///
/// # Safety
/// `data` must come from [`alloc`] for an array of `len` bytes that no
/// other code can reach yet.
pub unsafe fn out_slice<'a>(data: *mut u8, len: usize) -> &'a mut [u8] {
    if len == 0 {
        return &mut [];
    }
    unsafe { std::slice::from_raw_parts_mut(data, len) }
}

/// An array over `len` bytes at `data`, kept alive by `owner` (which becomes
/// the array's `base`).
///
/// # Safety
/// The memory at `data` must stay valid (and, if `writable`, writable) for
/// as long as `owner` is alive.
pub unsafe fn borrowed_array<'py>(
    owner: Bound<'py, PyAny>,
    dtype: DType,
    shape: &[u64],
    data: *mut u8,
    writable: bool,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = owner.py();
    let mut dims = dims_of(shape)?;
    let flags = if writable {
        npyffi::NPY_ARRAY_WRITEABLE
    } else {
        0
    };
    unsafe {
        let ptr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr(py, dtype).into_dtype_ptr(),
            dims.len() as c_int,
            dims.as_mut_ptr(),
            null_mut(),
            data.cast(),
            flags | npyffi::NPY_ARRAY_C_CONTIGUOUS,
            null_mut(),
        );
        let arr = Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked::<PyUntypedArray>();
        // Steals the reference to `owner`.
        if PY_ARRAY_API.PyArray_SetBaseObject(py, arr.as_array_ptr(), owner.into_ptr()) != 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(arr)
    }
}

/// Set an array's WRITEABLE flag off.
pub fn make_read_only(arr: &Bound<'_, PyAny>) -> PyResult<()> {
    let flags = arr.getattr("flags")?;
    flags.setattr("writeable", false)
}

/// A dict from (key, value) pairs.
pub fn dict<'py>(
    py: Python<'py>,
    items: &[(&str, Bound<'py, PyAny>)],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in items {
        d.set_item(k, v)?;
    }
    Ok(d)
}

/// Shape as a Python tuple of ints.
pub fn shape_tuple<'py>(
    py: Python<'py>,
    shape: &[u64],
) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
    pyo3::types::PyTuple::new(py, shape.iter().copied())
}
