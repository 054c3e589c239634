//! Reads: whole arrays (checksum-verified), row ranges, gathers, lazy
//! memory-mapped views and streaming batches. A read works on a snapshot of
//! one array (its metadata and open data file) taken by the store handle,
//! and never takes the engine's lock.

use std::path::PathBuf;
use std::sync::Arc;

use crate::data::DataFile;
use crate::io::vfs::Mapping;
use crate::model::array::{normalize_index, ArrayData};
use crate::model::dtype::DType;
use crate::model::error::{Error, Result};
use crate::model::state::ArrayMeta;

pub(crate) mod ahead;
pub(crate) mod rows;
pub(crate) mod stream;
pub(crate) mod whole;

pub use stream::Batches;
use whole::{check_out_len, read_all_into};

/// A consistent snapshot of one array, to be read into a buffer the caller
/// allocates (see [`Store::reader`]).
pub struct ArrayReader {
    name: String,
    meta: Arc<ArrayMeta>,
    df: Arc<DataFile>,
}

impl ArrayReader {
    pub(crate) fn new(name: &str, meta: Arc<ArrayMeta>, df: Arc<DataFile>) -> Self {
        ArrayReader {
            name: name.to_string(),
            meta,
            df,
        }
    }

    pub fn shape(&self) -> Vec<u64> {
        self.meta.shape()
    }
    pub fn dtype(&self) -> DType {
        self.meta.dtype
    }
    /// Bytes of the whole array.
    pub fn nbytes(&self) -> u64 {
        self.meta.rows() * self.meta.row_bytes
    }
    /// Fill `out` (exactly `nbytes()` long), verifying checksums.
    pub fn read_into(&self, out: &mut [u8]) -> Result<()> {
        check_out_len(&self.name, &self.meta, self.meta.rows(), out)?;
        read_all_into(&self.name, &self.meta, &self.df, out)
    }
}

/// A lazy read-only view of one array (see [`Store::view`]).
#[derive(Clone)]
pub struct View {
    name: String,
    meta: Arc<ArrayMeta>,
    map: Arc<dyn Mapping>,
    path: PathBuf,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("name", &self.name)
            .field("dtype", &self.meta.dtype)
            .field("shape", &self.meta.shape())
            .finish()
    }
}

impl View {
    /// A view of `meta`'s rows through a mapping of its file.
    pub(crate) fn new(name: &str, meta: Arc<ArrayMeta>, df: &DataFile) -> Result<View> {
        let map = df.mapping(meta.phys_bytes())?;
        Ok(View {
            name: name.to_string(),
            meta,
            map,
            path: df.path.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn dtype(&self) -> DType {
        self.meta.dtype
    }
    /// Full shape (rows first).
    pub fn shape(&self) -> Vec<u64> {
        self.meta.shape()
    }
    pub fn rows(&self) -> u64 {
        self.meta.rows()
    }
    pub fn row_bytes(&self) -> u64 {
        self.meta.row_bytes
    }
    /// The data file behind the view.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
    /// Time of the commit that last changed the array as this snapshot
    /// shows it, ns since the epoch (`ArrayInfo::mtime_ns` of that state).
    pub fn mtime_ns(&self) -> u64 {
        self.meta.mtime_ns
    }

    /// All rows as one contiguous slice of the mapping, when the array has
    /// no deleted or replaced rows (zero-copy); `None` otherwise.
    pub fn contiguous(&self) -> Option<&[u8]> {
        if self.meta.is_identity() {
            let n = (self.meta.rows() * self.meta.row_bytes) as usize;
            Some(&self.map.bytes()[..n])
        } else {
            None
        }
    }

    /// The bytes of row `index` (negative from the end), zero-copy.
    pub fn row(&self, index: i64) -> Result<&[u8]> {
        let i = normalize_index(&self.name, index, self.meta.rows())?;
        Ok(self.slot_bytes(self.meta.slot(i)))
    }

    #[inline]
    fn slot_bytes(&self, slot: u64) -> &[u8] {
        let rb = self.meta.row_bytes as usize;
        let s = slot as usize * rb;
        &self.map.bytes()[s..s + rb]
    }

    /// Copy rows at `indices` into `out` (`indices.len() * row_bytes`).
    pub fn gather_into(&self, indices: &[i64], out: &mut [u8]) -> Result<()> {
        let rb = self.meta.row_bytes as usize;
        let rows = self.meta.rows();
        check_out_len(&self.name, &self.meta, indices.len() as u64, out)?;
        if rb == 0 {
            for &idx in indices {
                normalize_index(&self.name, idx, rows)?;
            }
            return Ok(());
        }
        let bytes = self.map.bytes();
        if self.meta.is_identity() {
            for (dst, &idx) in out.chunks_exact_mut(rb).zip(indices) {
                let i = normalize_index(&self.name, idx, rows)? as usize;
                dst.copy_from_slice(&bytes[i * rb..(i + 1) * rb]);
            }
        } else {
            let index = self.meta.slot_index(indices.len() as u64);
            for (dst, &idx) in out.chunks_exact_mut(rb).zip(indices) {
                let i = normalize_index(&self.name, idx, rows)?;
                dst.copy_from_slice(self.slot_bytes(self.meta.slot_in(i, index)));
            }
        }
        Ok(())
    }

    /// Rows at `indices` as a new array.
    pub fn gather(&self, indices: &[i64]) -> Result<ArrayData> {
        let mut data = vec![0u8; indices.len() * self.meta.row_bytes as usize];
        self.gather_into(indices, &mut data)?;
        let mut shape = self.meta.shape();
        shape[0] = indices.len() as u64;
        Ok(ArrayData {
            dtype: self.meta.dtype,
            shape,
            data,
        })
    }

    /// Copy logical rows `start..end` into `out`.
    pub fn read_range_into(&self, start: u64, end: u64, out: &mut [u8]) -> Result<()> {
        let rows = self.meta.rows();
        if start > end || end > rows {
            return Err(Error::IndexOutOfRange {
                array: self.name.clone(),
                index: i64::try_from(end.max(start)).unwrap_or(i64::MAX),
                rows,
            });
        }
        check_out_len(&self.name, &self.meta, end - start, out)?;
        let rb = self.meta.row_bytes as usize;
        if let Some(all) = self.contiguous() {
            out.copy_from_slice(&all[start as usize * rb..end as usize * rb]);
            return Ok(());
        }
        if rb == 0 {
            return Ok(());
        }
        let index = self.meta.slot_index(end - start);
        for (dst, i) in out.chunks_exact_mut(rb).zip(start..end) {
            dst.copy_from_slice(self.slot_bytes(self.meta.slot_in(i, index)));
        }
        Ok(())
    }

    /// Every visible row, copied.
    pub fn to_array(&self) -> Result<ArrayData> {
        let rows = self.meta.rows();
        let mut data = vec![0u8; (rows * self.meta.row_bytes) as usize];
        self.read_range_into(0, rows, &mut data)?;
        Ok(ArrayData {
            dtype: self.meta.dtype,
            shape: self.meta.shape(),
            data,
        })
    }
}

#[cfg(test)]
mod tests;
