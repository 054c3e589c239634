//! Row selections from Python index objects, with NumPy's meaning:
//! int (negative from the end), slice (open-ended, stepped, reversed),
//! int list / int array of any shape, bool mask, Ellipsis.

use numpy::npyffi;
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyEllipsis, PyInt, PyList, PySlice, PySliceMethods, PyTuple};

use crate::conv::{is_ndarray, np};

/// Integer row indices, borrowed from an int64 array when possible.
pub enum Indices<'py> {
    Owned(Vec<i64>),
    /// A C-contiguous, aligned, native int64 array and its element count.
    Borrowed(Bound<'py, PyUntypedArray>, usize),
}

impl Indices<'_> {
    pub fn as_slice(&self) -> &[i64] {
        match self {
            Indices::Owned(v) => v,
            Indices::Borrowed(a, n) => {
                if *n == 0 {
                    return &[];
                }
                unsafe {
                    let data = (*npyffi::_PyArray_GET_ITEM_DATA(a.as_array_ptr())).data;
                    std::slice::from_raw_parts(data as *const i64, *n)
                }
            }
        }
    }
}

/// A selection of rows along the first axis.
pub enum Rows<'py> {
    /// One row (normalized); the axis is dropped from results.
    One(u64),
    /// Rows `start..start + len`, in order.
    Range { start: u64, len: u64 },
    /// Arbitrary rows (raw, possibly negative, unchecked); results take the
    /// index's own shape in place of the first axis.
    List { idx: Indices<'py>, shape: Vec<u64> },
}

impl Rows<'_> {
    /// Number of rows selected.
    pub fn count(&self) -> u64 {
        match self {
            Rows::One(_) => 1,
            Rows::Range { len, .. } => *len,
            Rows::List { idx, .. } => idx.as_slice().len() as u64,
        }
    }

    /// Rows as an explicit index vector (raw for `List`).
    pub fn to_vec(&self) -> Vec<i64> {
        match self {
            Rows::One(i) => vec![*i as i64],
            Rows::Range { start, len } => (*start as i64..(*start + *len) as i64).collect(),
            Rows::List { idx, .. } => idx.as_slice().to_vec(),
        }
    }
}

pub fn out_of_bounds(index: i64, rows: u64) -> PyErr {
    PyIndexError::new_err(format!(
        "index {index} is out of bounds for axis 0 with size {rows}"
    ))
}

/// Normalize one index (negative from the end) against `rows`.
#[inline]
pub fn normalize(index: i64, rows: u64) -> PyResult<u64> {
    let i = if index < 0 {
        i128::from(index) + i128::from(rows)
    } else {
        i128::from(index)
    };
    if i < 0 || i >= i128::from(rows) {
        return Err(out_of_bounds(index, rows));
    }
    Ok(i as u64)
}

fn bad_index() -> PyErr {
    PyIndexError::new_err(
        "only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or \
         boolean arrays are valid indices",
    )
}

fn mask_to_rows<'py>(mask: &[u8], rows: u64) -> PyResult<Rows<'py>> {
    if mask.len() as u64 != rows {
        return Err(PyIndexError::new_err(format!(
            "boolean index did not match indexed array along axis 0; size of axis is {rows} \
             but size of corresponding boolean axis is {}",
            mask.len()
        )));
    }
    let idx: Vec<i64> = mask
        .iter()
        .enumerate()
        .filter(|(_, &b)| b != 0)
        .map(|(i, _)| i as i64)
        .collect();
    let n = idx.len() as u64;
    Ok(Rows::List {
        idx: Indices::Owned(idx),
        shape: vec![n],
    })
}

/// Read an integer array's values as i64 (values beyond i64 saturate and
/// are then out of range).
fn int_values(arr: &Bound<'_, PyUntypedArray>) -> PyResult<Vec<i64>> {
    let py = arr.py();
    let d = arr.dtype();
    let (kind, size) = (d.kind(), d.itemsize());
    let native = d.is_native_byteorder().unwrap_or(true);
    let arr = if !arr.is_c_contiguous() || !native {
        let nd = d.call_method1("newbyteorder", ("=",))?;
        np(py)?
            .call_method1("ascontiguousarray", (arr, nd))?
            .cast_into::<PyUntypedArray>()?
    } else {
        arr.clone()
    };
    let n = arr.len_total();
    if n == 0 {
        return Ok(Vec::new());
    }
    let data = unsafe { (*npyffi::_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data as *const u8 };
    let bytes = unsafe { std::slice::from_raw_parts(data, n * size) };
    macro_rules! read {
        ($t:ty) => {
            bytes
                .chunks_exact(size)
                .map(|c| {
                    let v = <$t>::from_ne_bytes(c.try_into().unwrap_or_default());
                    i64::try_from(v).unwrap_or(i64::MAX)
                })
                .collect()
        };
    }
    let v: Vec<i64> = match (kind, size) {
        (b'i', 1) => read!(i8),
        (b'i', 2) => read!(i16),
        (b'i', 4) => read!(i32),
        (b'i', 8) => read!(i64),
        (b'u', 1) => read!(u8),
        (b'u', 2) => read!(u16),
        (b'u', 4) => read!(u32),
        (b'u', 8) => read!(u64),
        _ => return Err(bad_index()),
    };
    Ok(v)
}

trait LenTotal {
    fn len_total(&self) -> usize;
}

impl LenTotal for Bound<'_, PyUntypedArray> {
    fn len_total(&self) -> usize {
        self.shape().iter().product()
    }
}

fn from_ndarray<'py>(arr: Bound<'py, PyUntypedArray>, rows: u64) -> PyResult<Option<Rows<'py>>> {
    let d = arr.dtype();
    match d.kind() {
        b'b' => {
            if arr.ndim() != 1 {
                // A multi-dimensional mask selects elements, not rows.
                return Ok(None);
            }
            let arr = if arr.is_c_contiguous() {
                arr
            } else {
                np(arr.py())?
                    .call_method1("ascontiguousarray", (arr,))?
                    .cast_into::<PyUntypedArray>()?
            };
            let n = arr.len_total();
            let mask: &[u8] = if n == 0 {
                &[]
            } else {
                unsafe {
                    let data = (*npyffi::_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data;
                    std::slice::from_raw_parts(data as *const u8, n)
                }
            };
            mask_to_rows(mask, rows).map(Some)
        }
        b'i' | b'u' => {
            let shape: Vec<u64> = arr.shape().iter().map(|&s| s as u64).collect();
            if shape.is_empty() {
                let v = int_values(&arr)?;
                let i = v.first().copied().unwrap_or(0);
                return normalize(i, rows).map(|i| Some(Rows::One(i)));
            }
            let n = arr.len_total();
            let fast = d.kind() == b'i'
                && d.itemsize() == 8
                && d.is_native_byteorder().unwrap_or(true)
                && arr.is_c_contiguous()
                && arr.is_aligned();
            let idx = if fast {
                Indices::Borrowed(arr, n)
            } else {
                Indices::Owned(int_values(&arr)?)
            };
            Ok(Some(Rows::List { idx, shape }))
        }
        _ => Err(PyIndexError::new_err(
            "arrays used as indices must be of integer (or boolean) type",
        )),
    }
}

fn from_sequence<'py>(seq: &Bound<'py, PyAny>, rows: u64) -> PyResult<Option<Rows<'py>>> {
    let py = seq.py();
    let n = seq.len()?;
    if n == 0 {
        return Ok(Some(Rows::List {
            idx: Indices::Owned(Vec::new()),
            shape: vec![0],
        }));
    }
    // Fast path: a flat list of Python ints.
    if let Ok(list) = seq.cast::<PyList>() {
        let mut v = Vec::with_capacity(n);
        let mut all_int = true;
        for item in list.iter() {
            if item.is_instance_of::<PyInt>() && !item.is_instance_of::<PyBool>() {
                match item.extract::<i64>() {
                    Ok(i) => v.push(i),
                    Err(_) => v.push(i64::MAX),
                }
            } else {
                all_int = false;
                break;
            }
        }
        if all_int {
            return Ok(Some(Rows::List {
                idx: Indices::Owned(v),
                shape: vec![n as u64],
            }));
        }
    }
    let arr = np(py)?
        .call_method1("asarray", (seq,))
        .map_err(|_| bad_index())?;
    let arr = arr.cast_into::<PyUntypedArray>().map_err(|_| bad_index())?;
    from_ndarray(arr, rows)
}

/// Parse `key` as a selection of rows of an array with `rows` rows.
/// `Ok(None)`: a valid index that is not a pure row selection (None, a bool
/// scalar, a multi-dimensional mask); the caller falls back to NumPy.
/// Tuples are taken as lists of indices when `tuple_is_list`.
pub fn parse_rows<'py>(
    key: &Bound<'py, PyAny>,
    rows: u64,
    tuple_is_list: bool,
) -> PyResult<Option<Rows<'py>>> {
    if key.is_instance_of::<PyInt>() {
        if key.is_instance_of::<PyBool>() {
            return Ok(None);
        }
        let i = key.extract::<i64>().map_err(|_| {
            PyIndexError::new_err(format!(
                "index {} is out of bounds for axis 0 with size {rows}",
                key.str().map(|s| s.to_string()).unwrap_or_default()
            ))
        })?;
        return normalize(i, rows).map(|i| Some(Rows::One(i)));
    }
    if let Ok(s) = key.cast::<PySlice>() {
        let len = isize::try_from(rows).map_err(|_| bad_index())?;
        let ix = s.indices(len)?;
        let n = ix.slicelength as u64;
        if ix.step == 1 || n <= 1 {
            let start = if n == 0 { 0 } else { ix.start as u64 };
            return Ok(Some(Rows::Range { start, len: n }));
        }
        let v: Vec<i64> = (0..n as i64)
            .map(|k| ix.start as i64 + k * ix.step as i64)
            .collect();
        return Ok(Some(Rows::List {
            idx: Indices::Owned(v),
            shape: vec![n],
        }));
    }
    if is_ndarray(key) {
        let arr = key.clone().cast_into::<PyUntypedArray>()?;
        return from_ndarray(arr, rows);
    }
    if key.is_instance_of::<PyList>() {
        return from_sequence(key, rows);
    }
    if key.is_instance_of::<PyTuple>() {
        if tuple_is_list {
            return from_sequence(key, rows);
        }
        return Err(PyTypeError::new_err("tuple index: use LazyArray indexing"));
    }
    if key.is_instance_of::<PyEllipsis>() {
        return Ok(Some(Rows::Range {
            start: 0,
            len: rows,
        }));
    }
    if key.is_none() {
        return Ok(None);
    }
    // NumPy scalars and other objects with a dtype.
    if key.hasattr("dtype")? {
        let arr = np(key.py())?.call_method1("asarray", (key,))?;
        let arr = arr.cast_into::<PyUntypedArray>()?;
        if arr.dtype().kind() == b'b' && arr.ndim() == 0 {
            return Ok(None);
        }
        return from_ndarray(arr, rows);
    }
    // Objects implementing __index__.
    if let Ok(i) = key
        .py()
        .import("operator")
        .and_then(|op| op.call_method1("index", (key,)))
    {
        let i = i.extract::<i64>().map_err(|_| bad_index())?;
        return normalize(i, rows).map(|i| Some(Rows::One(i)));
    }
    Err(bad_index())
}

/// Parse an index used to modify rows (replace, delete): like
/// [`parse_rows`] but tuples are lists and every form must select rows.
pub fn parse_target<'py>(key: &Bound<'py, PyAny>, rows: u64) -> PyResult<Rows<'py>> {
    match parse_rows(key, rows, true)? {
        Some(r) => Ok(r),
        None => Err(PyIndexError::new_err(
            "this index does not select rows: use an int, slice, int list/array or a \
             1-d boolean mask",
        )),
    }
}

/// Normalize every index; `IndexError` on the first out of range.
pub fn normalize_all(idx: &[i64], rows: u64) -> PyResult<Vec<u64>> {
    idx.iter().map(|&i| normalize(i, rows)).collect()
}

/// The indices of a 1-d integer array or a list of Python ints, without
/// knowing the row count (the engine normalizes and bounds-checks them);
/// `None` for every other form.
pub fn quick_indices<'py>(key: &Bound<'py, PyAny>) -> PyResult<Option<Indices<'py>>> {
    if is_ndarray(key) {
        let arr = key.clone().cast_into::<PyUntypedArray>()?;
        let d = arr.dtype();
        if arr.ndim() != 1 || !matches!(d.kind(), b'i' | b'u') {
            return Ok(None);
        }
        let n = arr.len_total();
        let fast = d.kind() == b'i'
            && d.itemsize() == 8
            && d.is_native_byteorder().unwrap_or(true)
            && arr.is_c_contiguous()
            && arr.is_aligned();
        return Ok(Some(if fast {
            Indices::Borrowed(arr, n)
        } else {
            Indices::Owned(int_values(&arr)?)
        }));
    }
    if let Ok(list) = key.cast::<PyList>() {
        let mut v = Vec::with_capacity(list.len());
        for item in list.iter() {
            if !item.is_instance_of::<PyInt>() || item.is_instance_of::<PyBool>() {
                return Ok(None);
            }
            v.push(item.extract::<i64>().unwrap_or(i64::MAX));
        }
        return Ok(Some(Indices::Owned(v)));
    }
    Ok(None)
}
