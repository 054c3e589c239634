//! Reads: whole arrays (checksum-verified), row ranges, gathers, lazy
//! memory-mapped views and streaming batches.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::array::ArrayData;
use crate::dtype::DType;
use crate::error::{Error, IoContext, Result};
use crate::meta::{ArrayMeta, CHUNK_BYTES};
use crate::store::{lock, DataFile, Store};
use crate::vfs::Mapping;
use crate::write::normalize;

/// Checks chunk checksums of bytes read from an array's data file, reading
/// a whole chunk when a read covered only part of it. Each chunk is checked
/// at most once.
pub(crate) struct Verifier<'a> {
    name: &'a str,
    meta: &'a ArrayMeta,
    df: &'a DataFile,
    done: HashSet<usize>,
}

impl<'a> Verifier<'a> {
    pub fn new(name: &'a str, meta: &'a ArrayMeta, df: &'a DataFile) -> Self {
        Verifier {
            name,
            meta,
            df,
            done: HashSet::new(),
        }
    }

    fn mismatch(&self, chunk: usize) -> Error {
        let (start, end) = self.meta.sums.range(chunk);
        Error::ChecksumMismatch {
            array: self.name.to_string(),
            path: self.df.path.clone(),
            chunk: chunk as u64,
            start,
            end,
        }
    }

    /// `bytes` were read from file offset `offset`.
    pub fn check(&mut self, bytes: &[u8], offset: u64) -> Result<()> {
        let sums = &self.meta.sums;
        if bytes.is_empty() || offset >= sums.covered {
            return Ok(());
        }
        let end = offset + bytes.len() as u64;
        let first = (offset / CHUNK_BYTES) as usize;
        let last = ((end - 1) / CHUNK_BYTES) as usize;
        for c in first..=last.min(sums.sums.len().saturating_sub(1)) {
            if self.done.contains(&c) {
                continue;
            }
            let (cs, ce) = sums.range(c);
            let crc = if cs >= offset && ce <= end {
                crc32c::crc32c(&bytes[(cs - offset) as usize..(ce - offset) as usize])
            } else {
                let mut buf = vec![0u8; (ce - cs) as usize];
                self.df
                    .file
                    .read_exact_at(&mut buf, cs)
                    .ctx(&self.df.path)?;
                crc32c::crc32c(&buf)
            };
            if crc != sums.sums[c] {
                return Err(self.mismatch(c));
            }
            self.done.insert(c);
        }
        Ok(())
    }
}

/// Read logical rows `start..end` of `a` into `out` (exactly their bytes).
pub(crate) fn read_rows_into(
    a: &ArrayMeta,
    df: &DataFile,
    start: u64,
    end: u64,
    out: &mut [u8],
    mut verify: Option<&mut Verifier<'_>>,
) -> Result<()> {
    let rb = a.row_bytes;
    // Runs of consecutive base slots, straight into `out`.
    let mut i = start;
    while i < end {
        let slot = a.rowmap.base_slot(i);
        // Length of the run: to the end of this extent or of the range.
        let run = run_len(a, i, end);
        let dst = ((i - start) * rb) as usize;
        let n = (run * rb) as usize;
        let piece = &mut out[dst..dst + n];
        df.file.read_exact_at(piece, slot * rb).ctx(&df.path)?;
        if let Some(v) = verify.as_deref_mut() {
            v.check(piece, slot * rb)?;
        }
        i += run;
    }
    // Rows replaced since: patch from their shadow slots.
    if !a.remap.is_empty() {
        let mut patch = |logical: u64, shadow: u64| -> Result<()> {
            let dst = ((logical - start) * rb) as usize;
            let piece = &mut out[dst..dst + rb as usize];
            df.file.read_exact_at(piece, shadow * rb).ctx(&df.path)?;
            if let Some(v) = verify.as_deref_mut() {
                v.check(piece, shadow * rb)?;
            }
            Ok(())
        };
        if (a.remap.len() as u64) < end - start {
            for (&base, &shadow) in a.remap.iter() {
                if let Some(l) = a.rowmap.logical_of(base) {
                    if l >= start && l < end {
                        patch(l, shadow)?;
                    }
                }
            }
        } else {
            for l in start..end {
                if let Some(&shadow) = a.remap.get(&a.rowmap.base_slot(l)) {
                    patch(l, shadow)?;
                }
            }
        }
    }
    Ok(())
}

/// Rows from logical `i` that sit in consecutive base slots, up to `end`.
fn run_len(a: &ArrayMeta, i: u64, end: u64) -> u64 {
    let ext = a.rowmap.extents();
    if ext.len() == 1 {
        return end - i;
    }
    let slot = a.rowmap.base_slot(i);
    let k = ext.partition_point(|e| e.start <= slot) - 1;
    let left_in_extent = ext[k].start + ext[k].len - slot;
    left_in_extent.min(end - i)
}

/// Read all of an identity-mapped array with checksum verification.
///
/// Each checksum chunk is read in pieces small enough to stay in the CPU
/// cache, and its crc is extended over each piece right after the read, so
/// verifying adds no second pass over memory. Large arrays are read by two
/// threads that take whole chunks in turn from a shared queue: on an idle
/// machine the second core halves the time, and on a busy one whichever
/// thread gets the CPU takes the next chunk, so a starved helper delays the
/// read by at most one chunk. (A helper that only hashed the chunks the
/// reader had copied was slower on small or busy machines: its core had to
/// pull every byte over again, and the reader waited for it.)
fn read_identity_verified(name: &str, a: &ArrayMeta, df: &DataFile, out: &mut [u8]) -> Result<()> {
    /// Bytes per read call: well within a core's L2 cache.
    const PIECE: usize = 256 << 10;
    const PARALLEL_MIN: usize = 8 << 20;
    let sums = &a.sums;
    let chunk = CHUNK_BYTES as usize;
    let read_chunk = |c: usize, piece: &mut [u8]| -> Result<()> {
        let base = (c * chunk) as u64;
        // The chunk's checksum and how many of its bytes it covers (none
        // past `covered`: rows appended since the last refresh).
        let expected = sums.sums.get(c).map(|&crc| {
            let (cs, ce) = sums.range(c);
            (crc, (ce - cs) as usize)
        });
        let mut crc = 0u32;
        let mut done = 0usize;
        for part in piece.chunks_mut(PIECE) {
            df.file
                .read_exact_at(part, base + done as u64)
                .ctx(&df.path)?;
            if let Some((_, n)) = expected {
                let take = n.saturating_sub(done).min(part.len());
                crc = crc32c::crc32c_append(crc, &part[..take]);
            }
            done += part.len();
        }
        match expected {
            Some((want, _)) if crc != want => {
                let (start, end) = sums.range(c);
                Err(Error::ChecksumMismatch {
                    array: name.to_string(),
                    path: df.path.clone(),
                    chunk: c as u64,
                    start,
                    end,
                })
            }
            _ => Ok(()),
        }
    };
    if out.len() < PARALLEL_MIN {
        for (c, piece) in out.chunks_mut(chunk).enumerate() {
            read_chunk(c, piece)?;
        }
        return Ok(());
    }
    let queue = Mutex::new(out.chunks_mut(chunk).enumerate());
    let failed = AtomicBool::new(false);
    let work = || -> Result<()> {
        while !failed.load(Ordering::Relaxed) {
            let next = lock(&queue).next();
            let Some((c, piece)) = next else {
                break;
            };
            if let Err(e) = read_chunk(c, piece) {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    };
    std::thread::scope(|s| {
        let helper = std::thread::Builder::new()
            .name("numvault-read".into())
            .spawn_scoped(s, work);
        // Without a helper thread the caller simply reads every chunk.
        let mine = work();
        let theirs = match helper {
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| Err(Error::InvalidArgument("read thread panicked".into()))),
            Err(_) => Ok(()),
        };
        mine.and(theirs)
    })
}

/// Read every visible row of `a`, verifying checksums.
pub(crate) fn read_all_into(
    name: &str,
    a: &ArrayMeta,
    df: &DataFile,
    out: &mut [u8],
) -> Result<()> {
    // The fast path checks chunks against `out` alone, so it needs `out` to
    // span every checksummed byte; rows deleted from the end of an identity
    // array leave checksummed bytes past it (the verifier reads whole chunks).
    if a.is_identity() && out.len() as u64 >= a.sums.covered {
        return read_identity_verified(name, a, df, out);
    }
    let mut v = Verifier::new(name, a, df);
    read_rows_into(a, df, 0, a.rows(), out, Some(&mut v))
}

fn out_len(name: &str, a: &ArrayMeta, rows: u64, out: &[u8]) -> Result<()> {
    let need = rows.saturating_mul(a.row_bytes);
    if out.len() as u64 != need {
        return Err(Error::InvalidArgument(format!(
            "array '{name}': output buffer has {} bytes, {rows} rows need {need}",
            out.len()
        )));
    }
    Ok(())
}

impl Store {
    /// Snapshot an array's metadata and its open data file.
    pub(crate) fn snapshot(&self, name: &str) -> Result<(Arc<ArrayMeta>, Arc<DataFile>)> {
        let mut g = self.inner();
        g.check_open()?;
        let a = g
            .state
            .arrays
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        let df = match g.io.file(a.file_id) {
            // A reader's state can name a file that the writer's latest
            // checkpoint removed (compaction, overwrite): load the newest
            // committed state and try once more.
            Err(Error::Io { source, .. })
                if g.io.read_only && source.kind() == std::io::ErrorKind::NotFound =>
            {
                g.reader_refresh()?;
                let a = g
                    .state
                    .arrays
                    .get(name)
                    .cloned()
                    .ok_or_else(|| Error::NotFound(name.to_string()))?;
                let df = g.io.file(a.file_id)?;
                return Ok((a, df));
            }
            other => other?,
        };
        Ok((a, df))
    }

    /// Read a whole array, verifying its checksums.
    pub fn read(&self, name: &str) -> Result<ArrayData> {
        let (a, df) = self.snapshot(name)?;
        let mut data = vec![0u8; (a.rows() * a.row_bytes) as usize];
        read_all_into(name, &a, &df, &mut data)?;
        Ok(ArrayData {
            dtype: a.dtype,
            shape: a.shape(),
            data,
        })
    }

    /// Read a whole array into `out` (exactly `rows * row_bytes` long, as
    /// given by [`Store::shape`] at the time of the call), verifying checksums.
    /// Returns the shape read.
    pub fn read_into(&self, name: &str, out: &mut [u8]) -> Result<Vec<u64>> {
        let (a, df) = self.snapshot(name)?;
        out_len(name, &a, a.rows(), out)?;
        read_all_into(name, &a, &df, out)?;
        Ok(a.shape())
    }

    /// Snapshot an array for reading into a caller-allocated buffer: learn
    /// the shape and dtype first, then fill exactly `nbytes()` bytes.
    pub fn reader(&self, name: &str) -> Result<ArrayReader> {
        let (meta, df) = self.snapshot(name)?;
        Ok(ArrayReader {
            name: name.to_string(),
            meta,
            df,
        })
    }

    /// Read logical rows `start..end` (clamped like a Python slice).
    pub fn read_rows(&self, name: &str, start: u64, end: u64) -> Result<ArrayData> {
        let (a, df) = self.snapshot(name)?;
        let end = end.min(a.rows());
        let start = start.min(end);
        let mut data = vec![0u8; ((end - start) * a.row_bytes) as usize];
        read_rows_into(&a, &df, start, end, &mut data, None)?;
        let mut shape = a.shape();
        shape[0] = end - start;
        Ok(ArrayData {
            dtype: a.dtype,
            shape,
            data,
        })
    }

    /// Read rows at arbitrary indices (any order, repeats allowed, negative
    /// from the end).
    pub fn read_indices(&self, name: &str, indices: &[i64]) -> Result<ArrayData> {
        self.view(name)?.gather(indices)
    }

    /// A lazy, zero-copy, read-only view backed by a memory map. It shows the
    /// array as of this call and stays valid whatever the writer does later.
    pub fn view(&self, name: &str) -> Result<View> {
        let (a, df) = self.snapshot(name)?;
        let map = df.mapping(a.phys_bytes())?;
        Ok(View {
            name: name.to_string(),
            meta: a,
            map,
            path: df.path.clone(),
        })
    }

    /// Stream the array in batches of `batch_rows` rows, verifying checksums.
    pub fn batches(&self, name: &str, batch_rows: u64) -> Result<Batches> {
        if batch_rows == 0 {
            return Err(Error::InvalidArgument(format!(
                "array '{name}': batch size must be at least 1 row"
            )));
        }
        let (a, df) = self.snapshot(name)?;
        Ok(Batches {
            name: name.to_string(),
            meta: a,
            df,
            next: 0,
            batch_rows,
            verified: HashSet::new(),
        })
    }
}

/// A consistent snapshot of one array, to be read into a buffer the caller
/// allocates (see [`Store::reader`]).
pub struct ArrayReader {
    name: String,
    meta: Arc<ArrayMeta>,
    df: Arc<DataFile>,
}

impl ArrayReader {
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
        out_len(&self.name, &self.meta, self.meta.rows(), out)?;
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
        let i = normalize(&self.name, index, self.meta.rows())?;
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
        out_len(&self.name, &self.meta, indices.len() as u64, out)?;
        if rb == 0 {
            for &idx in indices {
                normalize(&self.name, idx, rows)?;
            }
            return Ok(());
        }
        let bytes = self.map.bytes();
        if self.meta.is_identity() {
            for (dst, &idx) in out.chunks_exact_mut(rb).zip(indices) {
                let i = normalize(&self.name, idx, rows)? as usize;
                dst.copy_from_slice(&bytes[i * rb..(i + 1) * rb]);
            }
        } else {
            for (dst, &idx) in out.chunks_exact_mut(rb).zip(indices) {
                let i = normalize(&self.name, idx, rows)?;
                dst.copy_from_slice(self.slot_bytes(self.meta.slot(i)));
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
        out_len(&self.name, &self.meta, end - start, out)?;
        let rb = self.meta.row_bytes as usize;
        if let Some(all) = self.contiguous() {
            out.copy_from_slice(&all[start as usize * rb..end as usize * rb]);
            return Ok(());
        }
        if rb == 0 {
            return Ok(());
        }
        for (dst, i) in out.chunks_exact_mut(rb).zip(start..end) {
            dst.copy_from_slice(self.slot_bytes(self.meta.slot(i)));
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

/// Streaming iterator over row batches (see [`Store::batches`]).
pub struct Batches {
    name: String,
    meta: Arc<ArrayMeta>,
    df: Arc<DataFile>,
    next: u64,
    batch_rows: u64,
    verified: HashSet<usize>,
}

impl Batches {
    /// Rows in the array being streamed.
    pub fn rows(&self) -> u64 {
        self.meta.rows()
    }
}

impl Iterator for Batches {
    type Item = Result<ArrayData>;

    fn next(&mut self) -> Option<Self::Item> {
        let rows = self.meta.rows();
        if self.next >= rows {
            return None;
        }
        let start = self.next;
        let end = (start + self.batch_rows).min(rows);
        self.next = end;
        let mut data = vec![0u8; ((end - start) * self.meta.row_bytes) as usize];
        let mut v = Verifier::new(&self.name, &self.meta, &self.df);
        v.done = std::mem::take(&mut self.verified);
        let res = read_rows_into(&self.meta, &self.df, start, end, &mut data, Some(&mut v));
        self.verified = std::mem::take(&mut v.done);
        if let Err(e) = res {
            self.next = rows;
            return Some(Err(e));
        }
        let mut shape = self.meta.shape();
        shape[0] = end - start;
        Some(Ok(ArrayData {
            dtype: self.meta.dtype,
            shape,
            data,
        }))
    }
}
