//! Reads: whole arrays (checksum-verified), row ranges, gathers, lazy
//! memory-mapped views and streaming batches.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::array::ArrayData;
use crate::dtype::DType;
use crate::error::{Error, IoContext, Result};
use crate::meta::{ArrayMeta, CHUNK_BYTES};
use crate::read_ahead::ReadAhead;
use crate::store::{lock, DataFile, Store};
use crate::vfs::Mapping;
use crate::write::normalize;

/// What a [`Verifier`] remembers between reads: the chunks already checked
/// and the last chunk read whole.
#[derive(Default)]
pub(crate) struct VerifyState {
    /// Chunks whose checksum was checked.
    done: HashSet<usize>,
    /// Index of the chunk whose checked bytes are in `buf`.
    cached: Option<usize>,
    buf: Vec<u8>,
}

/// Reads an array's data file and checks the chunk checksum of every chunk
/// a read touches before the bytes are handed out. A chunk read whole into
/// the output is checked as it is read (one pass); a chunk the output only
/// partly covers is read whole into a reused buffer, checked, and kept, so
/// the next read of its other rows is served from memory. Reading an array
/// in order, in pieces of any size, therefore reads and checksums each byte
/// once. Each chunk is checked at most once per verifier.
pub(crate) struct Verifier<'a> {
    name: &'a str,
    meta: &'a ArrayMeta,
    df: &'a DataFile,
    st: VerifyState,
}

impl<'a> Verifier<'a> {
    pub fn new(name: &'a str, meta: &'a ArrayMeta, df: &'a DataFile) -> Self {
        Self::with_state(name, meta, df, VerifyState::default())
    }

    /// A verifier that continues from an earlier one's state (same array
    /// snapshot).
    pub fn with_state(
        name: &'a str,
        meta: &'a ArrayMeta,
        df: &'a DataFile,
        st: VerifyState,
    ) -> Self {
        Verifier { name, meta, df, st }
    }

    pub fn into_state(self) -> VerifyState {
        self.st
    }

    fn mismatch(&self, chunk: usize) -> Error {
        chunk_mismatch(self.name, self.meta, self.df, chunk)
    }

    fn read_raw(&self, out: &mut [u8], offset: u64) -> Result<()> {
        self.df.file.read_exact_at(out, offset).ctx(&self.df.path)
    }

    /// Fill `out` with the file's bytes from `offset`, checking every
    /// checksummed chunk they belong to (bytes past `covered` are not
    /// checksummed and are read as they are).
    pub fn read(&mut self, out: &mut [u8], offset: u64) -> Result<()> {
        /// Bytes per read call of a whole chunk, checksummed right after
        /// the read while they are still in the CPU cache.
        const PIECE: usize = 256 << 10;
        let sums = &self.meta.sums;
        let end = offset + out.len() as u64;
        let mut pos = offset;
        while pos < end {
            let at = (pos - offset) as usize;
            if pos >= sums.covered {
                return self.read_raw(&mut out[at..], pos);
            }
            let c = (pos / CHUNK_BYTES) as usize;
            let Some(&want) = sums.sums.get(c) else {
                // `covered` and the sums agree (checked when loaded); if not,
                // read unchecked rather than index out of bounds.
                return self.read_raw(&mut out[at..], pos);
            };
            let (cs, ce) = sums.range(c);
            let seg_end = end.min(ce);
            let dst = &mut out[at..(seg_end - offset) as usize];
            if self.st.cached == Some(c) {
                dst.copy_from_slice(&self.st.buf[(pos - cs) as usize..(seg_end - cs) as usize]);
            } else if self.st.done.contains(&c) {
                self.read_raw(dst, pos)?;
            } else if pos == cs && seg_end == ce {
                let mut crc = 0u32;
                let mut done = 0usize;
                for part in dst.chunks_mut(PIECE) {
                    self.read_raw(part, cs + done as u64)?;
                    crc = crc32c::crc32c_append(crc, part);
                    done += part.len();
                }
                if crc != want {
                    return Err(self.mismatch(c));
                }
                self.st.done.insert(c);
            } else {
                let n = (ce - cs) as usize;
                self.st.cached = None;
                let mut buf = std::mem::take(&mut self.st.buf);
                buf.resize(n, 0);
                let res = self.read_raw(&mut buf, cs);
                self.st.buf = buf;
                res?;
                if crc32c::crc32c(&self.st.buf) != want {
                    return Err(self.mismatch(c));
                }
                self.st.cached = Some(c);
                self.st.done.insert(c);
                dst.copy_from_slice(&self.st.buf[(pos - cs) as usize..(seg_end - cs) as usize]);
            }
            pos = seg_end;
        }
        Ok(())
    }
}

/// The remap of `a` as `(base slot, shadow slot)` pairs sorted by base slot,
/// for callers that read many ranges of one snapshot (see
/// [`read_rows_into`]).
pub(crate) fn sorted_remap(a: &ArrayMeta) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = a.remap.iter().map(|(&b, &s)| (b, s)).collect();
    v.sort_unstable();
    v
}

/// Read logical rows `start..end` of `a` into `out` (exactly their bytes).
/// `sorted`: the array's [`sorted_remap`], if the caller keeps one; without
/// it, finding the replaced rows in the range costs a pass over the remap
/// or over the range.
pub(crate) fn read_rows_into(
    a: &ArrayMeta,
    df: &DataFile,
    start: u64,
    end: u64,
    out: &mut [u8],
    mut verify: Option<&mut Verifier<'_>>,
    sorted: Option<&[(u64, u64)]>,
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
        match verify.as_deref_mut() {
            Some(v) => v.read(piece, slot * rb)?,
            None => df.file.read_exact_at(piece, slot * rb).ctx(&df.path)?,
        }
        i += run;
    }
    patch_replaced(a, df, start, end, out, verify, sorted)
}

/// Overwrite the replaced rows among logical `start..end` in `out` (which
/// holds those rows as read from their base slots) with their shadow rows.
fn patch_replaced(
    a: &ArrayMeta,
    df: &DataFile,
    start: u64,
    end: u64,
    out: &mut [u8],
    mut verify: Option<&mut Verifier<'_>>,
    sorted: Option<&[(u64, u64)]>,
) -> Result<()> {
    let rb = a.row_bytes;
    if a.remap.is_empty() || end <= start || rb == 0 {
        return Ok(());
    }
    // Rows replaced since: (shadow slot, logical row) of those in range.
    let mut patches: Vec<(u64, u64)> = Vec::new();
    let mut add = |base: u64, shadow: u64| {
        if let Some(l) = a.rowmap.logical_of(base) {
            if l >= start && l < end {
                patches.push((shadow, l));
            }
        }
    };
    match sorted {
        Some(idx) => {
            // Base slots grow with the logical index.
            let (lo, hi) = (a.rowmap.base_slot(start), a.rowmap.base_slot(end - 1));
            let from = idx.partition_point(|&(b, _)| b < lo);
            for &(base, shadow) in idx[from..].iter().take_while(|&&(b, _)| b <= hi) {
                add(base, shadow);
            }
        }
        None if (a.remap.len() as u64) < end - start => {
            for (&base, &shadow) in a.remap.iter() {
                add(base, shadow);
            }
        }
        None => {
            for l in start..end {
                if let Some(&shadow) = a.remap.get(&a.rowmap.base_slot(l)) {
                    patches.push((shadow, l));
                }
            }
        }
    }
    // Patch them in file order, one read per cluster of nearby shadow rows
    // rather than one per row.
    patches.sort_unstable();
    /// Unwanted bytes worth reading to save a read call.
    const GAP: u64 = 8 << 10;
    const SPAN_MAX: u64 = CHUNK_BYTES;
    let mut scratch = Vec::new();
    let mut k = 0;
    while k < patches.len() {
        let first = patches[k].0;
        let mut last = first;
        let mut j = k + 1;
        while let Some(&(s, _)) = patches.get(j) {
            let gap = s.saturating_sub(last + 1).saturating_mul(rb);
            if gap > GAP || (s + 1 - first).saturating_mul(rb) > SPAN_MAX {
                break;
            }
            last = s;
            j += 1;
        }
        let n = ((last + 1 - first) * rb) as usize;
        scratch.resize(n, 0);
        match verify.as_deref_mut() {
            Some(v) => v.read(&mut scratch, first * rb)?,
            None => df
                .file
                .read_exact_at(&mut scratch, first * rb)
                .ctx(&df.path)?,
        }
        for &(s, l) in &patches[k..j] {
            let src = ((s - first) * rb) as usize;
            let dst = ((l - start) * rb) as usize;
            out[dst..dst + rb as usize].copy_from_slice(&scratch[src..src + rb as usize]);
        }
        k = j;
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

/// The error for chunk `chunk` of `a`'s file failing its checksum.
pub(crate) fn chunk_mismatch(name: &str, a: &ArrayMeta, df: &DataFile, chunk: usize) -> Error {
    let (start, end) = a.sums.range(chunk);
    Error::ChecksumMismatch {
        array: name.to_string(),
        path: df.path.clone(),
        chunk: chunk as u64,
        start,
        end,
    }
}

/// Run units of work on the caller and one helper thread until `claim`
/// has no more or one fails (the first error is returned). Each worker
/// passes its own scratch buffer to `run`. Without a helper thread the
/// caller does every unit.
fn two_workers<T>(
    claim: impl Fn() -> Option<T> + Sync,
    run: impl Fn(T, &mut Vec<u8>) -> Result<()> + Sync,
) -> Result<()> {
    let failed = AtomicBool::new(false);
    let work = || -> Result<()> {
        let mut scratch = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let Some(unit) = claim() else {
                break;
            };
            if let Err(e) = run(unit, &mut scratch) {
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
            Some((want, _)) if crc != want => Err(chunk_mismatch(name, a, df, c)),
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
    two_workers(|| lock(&queue).next(), |(c, piece), _| read_chunk(c, piece))
}

/// Whether a whole read of a non-identity array (rows replaced, deleted or
/// appended after a replace) goes through [`read_mapped_verified`]: a large
/// output, most of the file's committed bytes live (it reads them all), and
/// extents within the committed slots.
fn mapped_read_pays(a: &ArrayMeta, out: &[u8]) -> bool {
    let n = out.len() as u64;
    n >= MAPPED_PARALLEL_MIN
        && a.row_bytes > 0
        && n == a.rows().saturating_mul(a.row_bytes)
        && a.phys_bytes() <= n.saturating_mul(2)
        && a.rowmap.end_slot() <= a.phys_slots
        && a.sums.covered <= a.phys_bytes()
}

/// Smallest whole read of a non-identity array done by two threads.
const MAPPED_PARALLEL_MIN: u64 = 8 << 20;

/// Read all of a non-identity array with checksum verification, the way
/// [`read_identity_verified`] reads an identity one: two threads take the
/// file's checksum chunks in turn, read each chunk's live bytes straight to
/// their rows in `out` and its other bytes (deleted and shadow rows) into a
/// small buffer, extending the chunk's crc over each piece right after the
/// read. Then the replaced rows are patched in from their shadow slots,
/// whose chunks were verified by the first pass.
fn read_mapped_verified(name: &str, a: &ArrayMeta, df: &DataFile, out: &mut [u8]) -> Result<()> {
    /// Bytes per read call: well within a core's L2 cache.
    const PIECE: u64 = 256 << 10;
    let rb = a.row_bytes;
    let sums = &a.sums;
    let ext = a.rowmap.extents();
    let starts = a.rowmap.starts();
    let phys = a.phys_bytes();
    let out_len = out.len() as u64;
    let out_addr = out.as_mut_ptr() as usize;
    let units = phys.div_ceil(CHUNK_BYTES) as usize;
    let read_unit = |c: usize, scratch: &mut Vec<u8>| -> Result<()> {
        let fs = c as u64 * CHUNK_BYTES;
        let fe = (fs + CHUNK_BYTES).min(phys);
        let expected = sums.sums.get(c).map(|&crc| {
            let (cs, ce) = sums.range(c);
            (crc, ce - cs)
        });
        let mut crc = 0u32;
        let mut pos = fs;
        // The first extent that ends after `pos`.
        let mut k = ext.partition_point(|e| (e.start + e.len) * rb <= pos);
        while pos < fe {
            let in_extent = ext.get(k).is_some_and(|e| e.start * rb <= pos);
            let end = match ext.get(k) {
                Some(e) if in_extent => fe.min((e.start + e.len) * rb),
                Some(e) => fe.min(e.start * rb),
                None => fe,
            }
            .min(pos + PIECE);
            let len = (end - pos) as usize;
            let buf: &mut [u8] = if in_extent {
                let e = ext[k];
                let off = starts[k] * rb + (pos - e.start * rb);
                if off + len as u64 > out_len {
                    return Err(Error::corrupt(
                        &df.path,
                        format!("array '{name}': row map points past its {} rows", a.rows()),
                    ));
                }
                // SAFETY: in bounds (checked above). Extents are disjoint
                // runs of file slots mapped to disjoint runs of rows, and
                // each chunk (a disjoint file range) is read by one thread,
                // so no two threads write the same bytes of `out`, which
                // this function borrows mutably throughout.
                unsafe {
                    std::slice::from_raw_parts_mut((out_addr as *mut u8).add(off as usize), len)
                }
            } else {
                scratch.resize(len, 0);
                &mut scratch[..len]
            };
            df.file.read_exact_at(buf, pos).ctx(&df.path)?;
            if let Some((_, n)) = expected {
                let take = (fs + n).saturating_sub(pos).min(len as u64) as usize;
                crc = crc32c::crc32c_append(crc, &buf[..take]);
            }
            pos = end;
            if ext.get(k).is_some_and(|e| (e.start + e.len) * rb <= pos) {
                k += 1;
            }
        }
        match expected {
            Some((want, _)) if crc != want => Err(chunk_mismatch(name, a, df, c)),
            _ => Ok(()),
        }
    };
    let next = AtomicUsize::new(0);
    two_workers(
        || {
            let c = next.fetch_add(1, Ordering::Relaxed);
            (c < units).then_some(c)
        },
        read_unit,
    )?;
    patch_replaced(a, df, 0, a.rows(), out, None, None)
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
    if mapped_read_pays(a, out) {
        return read_mapped_verified(name, a, df, out);
    }
    let mut v = Verifier::new(name, a, df);
    read_rows_into(a, df, 0, a.rows(), out, Some(&mut v), None)
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
        read_rows_into(&a, &df, start, end, &mut data, None, None)?;
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
            verify: VerifyState::default(),
            sorted_remap: None,
            ahead: None,
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
///
/// Besides iterating (each batch a new [`ArrayData`]), a caller that
/// allocates its own buffers can ask [`Batches::next_rows`] and fill one
/// with [`Batches::read_next_into`]. Checksums are verified chunk by chunk
/// as the rows are read, and each byte is read once.
pub struct Batches {
    name: String,
    meta: Arc<ArrayMeta>,
    df: Arc<DataFile>,
    next: u64,
    batch_rows: u64,
    verify: VerifyState,
    /// The snapshot's remap sorted by base slot, built at the first batch.
    sorted_remap: Option<Vec<(u64, u64)>>,
    /// Large identity-mapped arrays: chunks read and checked ahead.
    ahead: Option<ReadAhead>,
}

impl Batches {
    /// Rows in the array being streamed.
    pub fn rows(&self) -> u64 {
        self.meta.rows()
    }

    /// Element type of the array.
    pub fn dtype(&self) -> DType {
        self.meta.dtype
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> u64 {
        self.meta.row_bytes
    }

    /// Shape of the next batch (rows first), `None` at the end.
    pub fn next_shape(&self) -> Option<Vec<u64>> {
        let n = self.next_rows();
        (n > 0).then(|| {
            let mut shape = self.meta.shape();
            shape[0] = n;
            shape
        })
    }

    /// Rows of the next batch (0 at the end of the stream).
    pub fn next_rows(&self) -> u64 {
        let rows = self.meta.rows();
        self.batch_rows.min(rows.saturating_sub(self.next))
    }

    /// Logical index of the first row of the next batch.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Read the next batch into `out`, which must be exactly
    /// `next_rows() * row_bytes()` bytes; returns the rows read (0 at the
    /// end). After an error the stream ends.
    pub fn read_next_into(&mut self, out: &mut [u8]) -> Result<u64> {
        let n = self.next_rows();
        out_len(&self.name, &self.meta, n, out)?;
        if n == 0 {
            return Ok(0);
        }
        if self.reads_ahead() {
            let data = self.take_ahead()?;
            out.copy_from_slice(&data);
            return Ok(n);
        }
        let start = self.next;
        let end = start + n;
        let mut v = Verifier::with_state(
            &self.name,
            &self.meta,
            &self.df,
            std::mem::take(&mut self.verify),
        );
        if self.sorted_remap.is_none() && !self.meta.remap.is_empty() {
            self.sorted_remap = Some(sorted_remap(&self.meta));
        }
        let res = read_rows_into(
            &self.meta,
            &self.df,
            start,
            end,
            out,
            Some(&mut v),
            self.sorted_remap.as_deref(),
        );
        self.verify = v.into_state();
        if let Err(e) = res {
            self.next = self.meta.rows();
            return Err(e);
        }
        self.next = end;
        Ok(n)
    }
}

impl Batches {
    /// Whether batches come from the read-ahead workers: an identity-mapped
    /// array (file bytes at the row offsets) whose rows reach every
    /// checksummed byte, streamed from its first row. Such batches are
    /// read straight into buffers the iterator hands out (see
    /// [`ReadAhead`]), so iterating costs no copy; [`Batches::read_next_into`]
    /// copies them once into the caller's buffer.
    pub fn reads_ahead(&self) -> bool {
        let m = &self.meta;
        m.is_identity()
            && m.row_bytes > 0
            && m.rows().saturating_mul(m.row_bytes) >= m.sums.covered
            && (self.ahead.is_some() || self.next == 0)
    }

    /// The next batch from the read-ahead workers (the caller checked
    /// [`Batches::reads_ahead`] and that a batch is left).
    fn take_ahead(&mut self) -> Result<Vec<u8>> {
        let n = self.next_rows();
        let ahead = self.ahead.get_or_insert_with(|| {
            ReadAhead::start(
                &self.name,
                &self.meta,
                &self.df,
                self.meta.rows(),
                self.batch_rows,
            )
        });
        match ahead.take((self.next / self.batch_rows) as usize) {
            Ok(data) => {
                self.next += n;
                Ok(data)
            }
            Err(e) => {
                self.next = self.meta.rows();
                self.ahead = None;
                Err(e)
            }
        }
    }
}

impl Iterator for Batches {
    type Item = Result<ArrayData>;

    fn next(&mut self) -> Option<Self::Item> {
        let shape = self.next_shape()?;
        if self.reads_ahead() {
            return Some(self.take_ahead().map(|data| ArrayData {
                dtype: self.meta.dtype,
                shape,
                data,
            }));
        }
        let mut data = vec![0u8; (shape[0] * self.meta.row_bytes) as usize];
        if let Err(e) = self.read_next_into(&mut data) {
            return Some(Err(e));
        }
        Some(Ok(ArrayData {
            dtype: self.meta.dtype,
            shape,
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    use super::*;
    use crate::read_ahead::HELPER_MIN_UNITS;
    use crate::sim::{FaultPlan, SimVfs};
    use crate::vfs::{LockGuard, OpenMode, VFile, Vfs};
    use crate::{ArrayRef, OpenOptions};

    /// A file system that counts the bytes read from data files.
    #[derive(Clone)]
    struct Counting {
        inner: SimVfs,
        bytes: Arc<AtomicU64>,
    }

    struct CountingFile {
        inner: Arc<dyn VFile>,
        bytes: Option<Arc<AtomicU64>>,
    }

    impl VFile for CountingFile {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
            if let Some(b) = &self.bytes {
                b.fetch_add(buf.len() as u64, Ordering::SeqCst);
            }
            self.inner.read_exact_at(buf, offset)
        }
        fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
            self.inner.write_all_at(buf, offset)
        }
        fn len(&self) -> std::io::Result<u64> {
            self.inner.len()
        }
        fn sync_data(&self) -> std::io::Result<()> {
            self.inner.sync_data()
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.inner.set_len(len)
        }
        fn map(&self, len: u64) -> std::io::Result<Arc<dyn Mapping>> {
            self.inner.map(len)
        }
        fn map_mut(&self, len: u64) -> std::io::Result<Option<memmap2::MmapMut>> {
            self.inner.map_mut(len)
        }
    }

    impl Vfs for Counting {
        fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<Arc<dyn VFile>> {
            let data = path.extension().is_some_and(|e| e == "nvd");
            Ok(Arc::new(CountingFile {
                inner: self.inner.open(path, mode)?,
                bytes: data.then(|| self.bytes.clone()),
            }))
        }
        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            self.inner.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> std::io::Result<()> {
            self.inner.remove_file(path)
        }
        fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
            self.inner.create_dir_all(path)
        }
        fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
            self.inner.list_dir(path)
        }
        fn exists(&self, path: &Path) -> bool {
            self.inner.exists(path)
        }
        fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
            self.inner.sync_dir(path)
        }
        fn lock_exclusive(
            &self,
            path: &Path,
            wait: Option<Duration>,
        ) -> std::io::Result<LockGuard> {
            self.inner.lock_exclusive(path, wait)
        }
    }

    /// An empty store on a counting file system.
    fn counting_store() -> (Counting, Store) {
        let fs = Counting {
            inner: SimVfs::new(),
            bytes: Arc::default(),
        };
        let opts = OpenOptions::default().vfs(Arc::new(fs.clone()));
        let s = Store::open(Path::new("/s"), opts).unwrap();
        (fs, s)
    }

    /// A counting store holding "a": 2.5 chunks of u32 rows of 3 (12 bytes:
    /// rows straddle chunk ends); also its bytes. Streamed by the consumer
    /// alone (no helper thread below `HELPER_MIN_UNITS`).
    fn saved() -> (Counting, Store, Vec<u8>) {
        saved_halves(5)
    }

    /// The same with 10.5 chunks: streamed with the helper thread.
    fn saved_large() -> (Counting, Store, Vec<u8>) {
        saved_halves(21)
    }

    fn saved_halves(halves: u32) -> (Counting, Store, Vec<u8>) {
        assert!(halves.div_ceil(2) < HELPER_MIN_UNITS as u32 || halves / 2 >= 10);
        let (fs, s) = counting_store();
        let vals: Vec<u32> = (0..(halves * CHUNK_BYTES as u32 / 8)).collect();
        let rows = vals.len() as u64 / 3;
        let vals = &vals[..rows as usize * 3];
        s.save("a", ArrayRef::of(&[rows, 3], vals)).unwrap();
        let bytes = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        (fs, s, bytes)
    }

    #[test]
    fn streaming_reads_and_checks_each_byte_once_whatever_the_batch_size() {
        for (fs, s, want) in [saved(), saved_large()] {
            let rows = want.len() as u64 / 12;
            for batch in [
                1u64,
                7,
                1000,
                30_000,
                87_381,
                87_382,
                200_000,
                rows,
                u64::MAX,
            ] {
                fs.bytes.store(0, Ordering::SeqCst);
                let mut got = Vec::with_capacity(want.len());
                for b in s.batches("a", batch).unwrap() {
                    got.extend_from_slice(&b.unwrap().data);
                }
                assert!(got == want, "batch {batch}: wrong data");
                assert_eq!(
                    fs.bytes.load(Ordering::SeqCst),
                    want.len() as u64,
                    "batch {batch}: bytes read"
                );
            }
        }
    }

    /// Up to `n` distinct random row indices below `len`, sorted.
    fn random_rows(x: &mut u64, n: usize, len: usize) -> Vec<i64> {
        let mut idx: Vec<i64> = (0..n)
            .map(|_| {
                *x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((*x >> 33) % len as u64) as i64
            })
            .collect();
        idx.sort_unstable();
        idx.dedup();
        idx
    }

    #[test]
    fn streaming_with_replaced_and_deleted_rows_matches_a_model() {
        let (_, s) = counting_store();
        let rows = 300_000u64;
        let mut model: Vec<u64> = (0..rows).collect();
        s.save("a", ArrayRef::of(&[rows], &model)).unwrap();
        // Scattered replacements (several commits, so shadow rows of one
        // batch lie in several places), a re-replacement and deletions.
        let mut x = 12345u64;
        for round in 0..6u64 {
            let idx = random_rows(&mut x, 2000, model.len());
            let vals: Vec<u64> = idx
                .iter()
                .map(|&i| 1_000_000 * (round + 1) + i as u64)
                .collect();
            s.replace("a", &idx, ArrayRef::of(&[idx.len() as u64], &vals))
                .unwrap();
            for (i, v) in idx.iter().zip(&vals) {
                model[*i as usize] = *v;
            }
            let del = [round as i64 * 7, 100_000 + round as i64];
            s.delete_rows("a", &del).unwrap();
            for d in del.iter().rev() {
                model.remove(*d as usize);
            }
        }
        s.checkpoint().unwrap();
        let want: Vec<u8> = model.iter().flat_map(|v| v.to_le_bytes()).collect();
        for batch in [1u64, 999, 10_000, 65_536, rows] {
            let mut got = Vec::with_capacity(want.len());
            for b in s.batches("a", batch).unwrap() {
                got.extend_from_slice(&b.unwrap().data);
            }
            assert!(got == want, "batch {batch}: wrong data");
        }
        assert!(s.read("a").unwrap().data == want, "read");
    }

    #[test]
    fn read_ahead_streams_an_unchecksummed_tail_and_stops_when_dropped() {
        let (fs, s, mut want) = saved_large();
        // Appended rows are past the checksummed bytes until a checkpoint.
        let extra: Vec<u32> = (0..3000u32).map(|v| v ^ 0xdead_beef).collect();
        s.append("a", ArrayRef::of(&[1000, 3], &extra)).unwrap();
        want.extend(extra.iter().flat_map(|v| v.to_le_bytes()));
        for batch in [1000u64, 10_000, 333_333] {
            fs.bytes.store(0, Ordering::SeqCst);
            let mut got = Vec::with_capacity(want.len());
            for b in s.batches("a", batch).unwrap() {
                got.extend_from_slice(&b.unwrap().data);
            }
            assert!(got == want, "batch {batch}: wrong data");
            assert_eq!(fs.bytes.load(Ordering::SeqCst), want.len() as u64);
        }
        // Streams dropped early, many times: the helpers stop, and the
        // store goes on working.
        for _ in 0..50 {
            let mut it = s.batches("a", 1000).unwrap();
            assert!(it.next().unwrap().is_ok());
        }
        s.append("a", ArrayRef::of(&[1000, 3], &extra)).unwrap();
        s.checkpoint().unwrap();
        assert!(s.verify().unwrap().is_clean());
    }

    #[test]
    fn a_damaged_chunk_fails_the_first_batch_that_touches_it() {
        for (fs, s, _) in [saved(), saved_large()] {
            let file = s.view("a").unwrap().path().to_path_buf();
            // Damage the last byte of chunk 1: a batch ending inside chunk 1
            // must already fail, although it does not return that byte.
            let mut bytes = fs.inner.read_file(&file).unwrap();
            bytes[2 * CHUNK_BYTES as usize - 1] ^= 1;
            fs.inner.write_file(&file, bytes);
            let first_row_in_chunk_1 = CHUNK_BYTES / 12 + 1;
            let mut it = s.batches("a", first_row_in_chunk_1 + 10).unwrap();
            assert!(it.next().unwrap().is_err());
            assert!(it.next().is_none(), "the stream ends after an error");
            // A batch within chunk 0 is fine.
            let mut it = s.batches("a", 1000).unwrap();
            assert!(it.next().unwrap().is_ok());
        }
    }

    /// Stream "a" with `batch` rows through `next`, or through
    /// `read_next_into` on odd batches when `mixed`: the bytes of the
    /// batches that came, and the first error (after which the stream must
    /// be over).
    fn stream_all(s: &Store, batch: u64, mixed: bool) -> (Vec<u8>, Option<Error>) {
        let mut it = s.batches("a", batch).unwrap();
        let mut got = Vec::new();
        let mut k = 0u64;
        loop {
            let step = if mixed && k % 2 == 1 {
                let n = it.next_rows();
                if n == 0 {
                    None
                } else {
                    let mut buf = vec![0u8; (n * it.row_bytes()) as usize];
                    Some(it.read_next_into(&mut buf).map(|_| buf))
                }
            } else {
                it.next().map(|r| r.map(|d| d.data))
            };
            match step {
                None => return (got, None),
                Some(Ok(b)) => got.extend_from_slice(&b),
                Some(Err(e)) => {
                    assert!(it.next().is_none(), "the stream ends after an error");
                    return (got, Some(e));
                }
            }
            k += 1;
        }
    }

    #[test]
    fn read_ahead_hands_out_every_batch_before_a_damaged_chunk_then_fails() {
        let (fs, s, want) = saved_large();
        assert!(s.batches("a", 1000).unwrap().reads_ahead());
        let file = s.view("a").unwrap().path().to_path_buf();
        let mut bytes = fs.inner.read_file(&file).unwrap();
        let bad = 7 * CHUNK_BYTES as usize + 12_345;
        bytes[bad] ^= 0x40;
        fs.inner.write_file(&file, bytes);
        for batch in [1u64, 1000, 10_000, 87_382, 300_000] {
            for mixed in [false, true] {
                let (got, err) = stream_all(&s, batch, mixed);
                let e = err.unwrap_or_else(|| panic!("batch {batch}: no error"));
                assert!(
                    matches!(e, Error::ChecksumMismatch { chunk: 7, .. }),
                    "batch {batch}: {e}"
                );
                // Every batch that ends before chunk 7 came, and right.
                let bb = batch as usize * 12;
                let whole = (7 * CHUNK_BYTES as usize) / bb * bb;
                assert_eq!(got.len(), whole, "batch {batch}: bytes before the error");
                assert!(got == want[..whole], "batch {batch}: wrong data");
            }
        }
    }

    #[test]
    fn read_ahead_serves_next_and_read_next_into_alike() {
        let (_, s, want) = saved_large();
        for batch in [7u64, 4096, 87_381, 1 << 20] {
            let (got, err) = stream_all(&s, batch, true);
            assert!(err.is_none(), "batch {batch}: {err:?}");
            assert!(got == want, "batch {batch}: wrong data");
        }
        // Rows deleted from the end leave checksummed bytes past the rows:
        // streamed without the workers, still right.
        let rows = want.len() as u64 / 12;
        let last: Vec<i64> = (rows as i64 - 5..rows as i64).collect();
        s.delete_rows("a", &last).unwrap();
        s.checkpoint().unwrap();
        assert!(!s.batches("a", 1000).unwrap().reads_ahead());
        let (got, err) = stream_all(&s, 1000, false);
        assert!(err.is_none());
        assert!(got == want[..want.len() - 60]);
    }

    #[test]
    fn read_ahead_turns_a_failed_read_into_an_error_never_wrong_data() {
        let (fs, s, want) = saved_large();
        let mut failures = 0;
        for n in [0u64, 1, 3, 10, 25, 39, 41, 42] {
            for batch in [1000u64, 50_000] {
                fs.inner.set_plan(FaultPlan {
                    fail_read_at: Some(n),
                    ..FaultPlan::default()
                });
                let (got, err) = stream_all(&s, batch, false);
                fs.inner.set_plan(FaultPlan::default());
                assert!(
                    got == want[..got.len()],
                    "read {n}, batch {batch}: wrong data"
                );
                match err {
                    Some(e) => {
                        failures += 1;
                        assert!(e.to_string().contains("/s/"), "read {n}: {e}");
                    }
                    None => assert_eq!(got.len(), want.len(), "read {n}: short stream"),
                }
            }
        }
        assert!(
            failures >= 14,
            "only {failures} streams saw the failed read"
        );
        // Streams dropped at every point while the helper works ahead.
        for stop in [0usize, 1, 2, 5, 17, 40] {
            let mut it = s.batches("a", 7000).unwrap();
            for _ in 0..stop {
                assert!(it.next().unwrap().is_ok());
            }
        }
        assert!(s.verify().unwrap().is_clean());
    }

    /// A 12 MB array of u64 with rows replaced over several commits (shadow
    /// rows in several places), deleted at the start, middle and end, and
    /// appended after the replacements (several extents), and its model.
    fn mapped_array() -> (Counting, Store, Vec<u64>) {
        let (fs, s) = counting_store();
        let rows = 1_500_000u64;
        let mut model: Vec<u64> = (0..rows).map(|i| i * 3).collect();
        s.save("a", ArrayRef::of(&[rows], &model)).unwrap();
        let mut x = 99u64;
        for round in 0..5u64 {
            let idx = random_rows(&mut x, 3000, model.len());
            let vals: Vec<u64> = idx.iter().map(|&i| (round + 1) << 40 | i as u64).collect();
            s.replace("a", &idx, ArrayRef::of(&[idx.len() as u64], &vals))
                .unwrap();
            for (i, v) in idx.iter().zip(&vals) {
                model[*i as usize] = *v;
            }
            let extra: Vec<u64> = (0..20_000u64).map(|v| v | round << 50).collect();
            s.append("a", ArrayRef::of(&[extra.len() as u64], &extra))
                .unwrap();
            model.extend_from_slice(&extra);
            let n = model.len() as i64;
            let del = [0, 1, 700_000 + round as i64, n - 1];
            s.delete_rows("a", &del).unwrap();
            for d in del.iter().rev() {
                model.remove(*d as usize);
            }
        }
        (fs, s, model)
    }

    #[test]
    fn whole_reads_of_a_mapped_array_match_the_model_and_check_every_chunk() {
        let (fs, s, model) = mapped_array();
        let want: Vec<u8> = model.iter().flat_map(|v| v.to_le_bytes()).collect();
        for checkpoint in [false, true] {
            if checkpoint {
                s.checkpoint().unwrap();
            }
            let (meta, _) = s.snapshot("a").unwrap();
            assert!(!meta.is_identity() && meta.rowmap.extents().len() > 3);
            assert!(
                mapped_read_pays(&meta, &want),
                "the two-thread path is taken"
            );
            assert!(s.read("a").unwrap().data == want, "checkpoint {checkpoint}");
            let mut buf = vec![7u8; want.len()];
            s.reader("a").unwrap().read_into(&mut buf).unwrap();
            assert!(buf == want);
        }
        // Damage one byte of each kind of region: a live row, a deleted row
        // (row 0's slot) and a shadow row: every whole read fails naming
        // the chunk, and the store's file is restored after each.
        let file = s.view("a").unwrap().path().to_path_buf();
        let (meta, _) = s.snapshot("a").unwrap();
        let shadow = *meta.remap.values().max().unwrap();
        for at in [8 * 900_000 + 3, 5, shadow * 8 + 1] {
            let orig = fs.inner.read_file(&file).unwrap();
            let mut bad = orig.clone();
            bad[at as usize] ^= 0x10;
            fs.inner.write_file(&file, bad);
            match s.read("a") {
                Err(Error::ChecksumMismatch { chunk, .. }) => {
                    assert_eq!(chunk, at / CHUNK_BYTES, "byte {at}")
                }
                other => panic!("byte {at}: {:?}", other.map(|d| d.data.len())),
            }
            fs.inner.write_file(&file, orig);
        }
        assert!(s.read("a").unwrap().data == want);
        // A failed read at every point: an error, never wrong data.
        for n in [0u64, 2, 9, 30, 47] {
            fs.inner.set_plan(FaultPlan {
                fail_read_at: Some(n),
                ..FaultPlan::default()
            });
            let r = s.read("a");
            fs.inner.set_plan(FaultPlan::default());
            match r {
                Ok(d) => assert!(d.data == want, "read {n}: wrong data"),
                Err(e) => assert!(e.to_string().contains("/s/"), "read {n}: {e}"),
            }
        }
    }
}
