//! Borrowed input arrays and owned results.

use super::dtype::DType;
use super::error::{Error, Result};

/// A plain element type with a fixed little-endian layout.
pub trait Element: bytemuck::Pod {
    /// The matching dtype.
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(impl Element for $t { const DTYPE: DType = DType::$d; })*};
}
element!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32,
         u64 => U64, f32 => F32, f64 => F64);

#[cfg(target_endian = "big")]
compile_error!("numvault stores little-endian bytes and only supports little-endian hosts");

/// A borrowed array: dtype, full shape (first axis = rows) and its
/// C-ordered little-endian bytes.
#[derive(Copy, Clone, Debug)]
pub struct ArrayRef<'a> {
    pub dtype: DType,
    pub shape: &'a [u64],
    pub data: &'a [u8],
}

impl<'a> ArrayRef<'a> {
    /// From raw parts; the length is checked when the array is used.
    pub fn new(dtype: DType, shape: &'a [u64], data: &'a [u8]) -> Self {
        ArrayRef { dtype, shape, data }
    }

    /// From a typed slice.
    pub fn of<T: Element>(shape: &'a [u64], data: &'a [T]) -> Self {
        ArrayRef {
            dtype: T::DTYPE,
            shape,
            data: bytemuck::cast_slice(data),
        }
    }

    /// Rows (first dimension).
    pub fn rows(&self) -> u64 {
        self.shape.first().copied().unwrap_or(0)
    }
}

/// Check that `shape` (rows first) of `dtype` can be stored and describes
/// exactly `len` bytes; returns the number of bytes per row.
pub(crate) fn check_shape(name: &str, dtype: DType, shape: &[u64], len: u64) -> Result<u64> {
    if shape.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "array '{name}': 0-d arrays are not supported; store at least one dimension"
        )));
    }
    if shape.len() > super::MAX_NDIM {
        return Err(Error::LimitExceeded {
            what: format!("array '{name}' has {} dimensions", shape.len()),
            limit: super::MAX_NDIM as u64,
        });
    }
    let too_large = || Error::LimitExceeded {
        what: format!("array '{name}': shape {shape:?} of {dtype} is larger than 2^64 bytes"),
        limit: u64::MAX,
    };
    let rb = super::state::row_bytes(dtype, &shape[1..]).ok_or_else(too_large)?;
    let total = rb.checked_mul(shape[0]).ok_or_else(too_large)?;
    if total != len {
        return Err(Error::InvalidArgument(format!(
            "array '{name}': shape {shape:?} of {dtype} needs {total} bytes, got {len}"
        )));
    }
    Ok(rb)
}

/// An owned array read from a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayData {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

impl ArrayData {
    /// Borrow as an [`ArrayRef`].
    pub fn as_ref(&self) -> ArrayRef<'_> {
        ArrayRef::new(self.dtype, &self.shape, &self.data)
    }

    /// Copy the elements out as `T`, if `T` matches the dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype {
            return Err(Error::InvalidArgument(format!(
                "cannot read {} data as {}",
                self.dtype,
                T::DTYPE
            )));
        }
        let n = std::mem::size_of::<T>();
        Ok(self
            .data
            .chunks_exact(n)
            .map(bytemuck::pod_read_unaligned)
            .collect())
    }
}

/// Facts about one array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    pub name: String,
    pub dtype: DType,
    /// Full shape; `shape[0]` is the number of visible rows.
    pub shape: Vec<u64>,
    /// Row slots in the data file that are not visible (deleted rows and
    /// superseded copies of replaced rows); `compact` reclaims them.
    pub dead_rows: u64,
    /// Bytes of row data in the data file (visible + dead).
    pub data_bytes: u64,
    /// Time of the last commit that changed the array, ns since the epoch.
    pub mtime_ns: u64,
    /// Bytes not yet covered by chunk checksums (refreshed at the next checkpoint).
    pub unchecksummed_bytes: u64,
    /// The array's data file, relative to the store directory.
    pub file: std::path::PathBuf,
}

/// Normalize one index (negative from the end) and check its range.
pub(crate) fn normalize_index(name: &str, index: i64, rows: u64) -> Result<u64> {
    let i = if index < 0 {
        i128::from(index) + i128::from(rows)
    } else {
        i128::from(index)
    };
    if i < 0 || i >= i128::from(rows) {
        return Err(Error::IndexOutOfRange {
            array: name.to_string(),
            index,
            rows,
        });
    }
    Ok(i as u64)
}
