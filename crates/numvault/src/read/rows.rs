//! Reading logical rows: runs of base slots straight into the output, then
//! the replaced rows patched in from their shadow slots; optionally through
//! a [`Verifier`] that checks the chunk checksums of everything it reads.

use std::collections::HashSet;

use crate::data::check::{chunk_mismatch, read_chunk};
use crate::data::DataFile;
use crate::model::error::{Error, IoContext, Result};
use crate::model::state::ArrayMeta;
use crate::model::sums::CHUNK_BYTES;

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
        chunk_mismatch(self.name, &self.meta.sums, &self.df.path, chunk)
    }

    fn read_raw(&self, out: &mut [u8], offset: u64) -> Result<()> {
        self.df.file.read_exact_at(out, offset).ctx(&self.df.path)
    }

    /// Fill `out` with the file's bytes from `offset`, checking every
    /// checksummed chunk they belong to (bytes past `covered` are not
    /// checksummed and are read as they are).
    pub fn read(&mut self, out: &mut [u8], offset: u64) -> Result<()> {
        let sums = &self.meta.sums;
        let end = offset + out.len() as u64;
        let mut pos = offset;
        while pos < end {
            let at = (pos - offset) as usize;
            let c = (pos / CHUNK_BYTES) as usize;
            if pos >= sums.covered || c >= sums.sums.len() {
                // Past the checksummed bytes (`covered` and the sums agree,
                // checked when loaded; if not, read unchecked rather than
                // index out of bounds).
                return self.read_raw(&mut out[at..], pos);
            }
            let (cs, ce) = sums.range(c);
            let seg_end = end.min(ce);
            let dst = &mut out[at..(seg_end - offset) as usize];
            if self.st.cached == Some(c) {
                dst.copy_from_slice(&self.st.buf[(pos - cs) as usize..(seg_end - cs) as usize]);
            } else if self.st.done.contains(&c) {
                self.read_raw(dst, pos)?;
            } else if pos == cs && seg_end == ce {
                if !read_chunk(self.df, sums, c, [dst])? {
                    return Err(self.mismatch(c));
                }
                self.st.done.insert(c);
            } else {
                self.load_chunk(c, cs, ce)?;
                dst.copy_from_slice(&self.st.buf[(pos - cs) as usize..(seg_end - cs) as usize]);
            }
            pos = seg_end;
        }
        Ok(())
    }

    /// Read chunk `c` (bytes `cs..ce`) whole into the buffer and check it.
    fn load_chunk(&mut self, c: usize, cs: u64, ce: u64) -> Result<()> {
        self.st.cached = None;
        let mut buf = std::mem::take(&mut self.st.buf);
        buf.resize((ce - cs) as usize, 0);
        let checked = read_chunk(self.df, &self.meta.sums, c, [&mut buf[..]]);
        self.st.buf = buf;
        if !checked? {
            return Err(self.mismatch(c));
        }
        self.st.cached = Some(c);
        self.st.done.insert(c);
        Ok(())
    }
}

/// The replaced rows of one array snapshot, for callers that read many
/// ranges of it in order (a stream, a compaction): the remap sorted by base
/// slot and, when they fit in [`SHADOW_PRELOAD_BYTES`], the shadow rows
/// themselves, read once (in file order, through the caller's verifier).
/// Without the preload each range reads the shadow rows it needs, and
/// ranges whose replaced rows are scattered over a large shadow region
/// would read that region again and again.
pub(crate) struct ShadowRows {
    /// `(base slot, shadow slot)`, sorted by base slot.
    sorted: Vec<(u64, u64)>,
    /// Row `k` of `sorted` at `bytes[k * row_bytes..]`, if preloaded.
    bytes: Option<Vec<u8>>,
}

/// The most bytes of shadow rows [`ShadowRows::load`] keeps in memory. After
/// automatic compaction an array's dead rows stay under a sixteenth of its
/// rows, so arrays up to about 1 GiB are streamed with their shadow rows
/// preloaded.
pub(crate) const SHADOW_PRELOAD_BYTES: u64 = 64 << 20;

impl ShadowRows {
    /// Whether the shadow rows are in memory.
    #[cfg(test)]
    pub fn is_preloaded(&self) -> bool {
        self.bytes.is_some()
    }

    /// Sort `a`'s remap and preload its shadow rows if they fit in
    /// [`SHADOW_PRELOAD_BYTES`].
    pub fn load(a: &ArrayMeta, df: &DataFile, verify: Option<&mut Verifier<'_>>) -> Result<Self> {
        Self::load_within(a, df, verify, SHADOW_PRELOAD_BYTES)
    }

    /// [`ShadowRows::load`] with another preload limit (tests).
    pub fn load_within(
        a: &ArrayMeta,
        df: &DataFile,
        verify: Option<&mut Verifier<'_>>,
        limit: u64,
    ) -> Result<Self> {
        // The map is ordered by base slot.
        let sorted: Vec<(u64, u64)> = a.remap.iter().map(|(&b, &s)| (b, s)).collect();
        let rb = a.row_bytes;
        let total = (sorted.len() as u64).saturating_mul(rb);
        if sorted.is_empty() || rb == 0 || total > limit {
            return Ok(ShadowRows {
                sorted,
                bytes: None,
            });
        }
        let mut bytes = vec![0u8; total as usize];
        let (lo, hi) = sorted
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), &(_, s)| (lo.min(s), hi.max(s)));
        let span = (hi + 1 - lo).saturating_mul(rb);
        if span <= total.saturating_mul(2) && span <= limit {
            // Dense (the usual case: shadow rows are written one after
            // another): read their span in one go, no sort.
            let mut region = vec![0u8; span as usize];
            match verify {
                Some(v) => v.read(&mut region, lo * rb)?,
                None => df.file.read_exact_at(&mut region, lo * rb).ctx(&df.path)?,
            }
            let rb = rb as usize;
            for (row, &(_, shadow)) in bytes.chunks_exact_mut(rb).zip(&sorted) {
                let at = (shadow - lo) as usize * rb;
                row.copy_from_slice(&region[at..at + rb]);
            }
        } else {
            let mut wanted: Vec<(u64, u64)> = sorted
                .iter()
                .enumerate()
                .map(|(k, &(_, shadow))| (shadow, k as u64))
                .collect();
            wanted.sort_unstable();
            read_slots(rb, df, &wanted, &mut bytes, verify)?;
        }
        Ok(ShadowRows {
            sorted,
            bytes: Some(bytes),
        })
    }
}

/// Read logical rows `start..end` of `a` into `out` (exactly their bytes).
/// `shadow`: the snapshot's [`ShadowRows`], if the caller keeps them;
/// without, finding the replaced rows in the range costs a pass over the
/// remap or over the range, and their rows are read from the file.
pub(crate) fn read_rows_into(
    a: &ArrayMeta,
    df: &DataFile,
    start: u64,
    end: u64,
    out: &mut [u8],
    mut verify: Option<&mut Verifier<'_>>,
    shadow: Option<&ShadowRows>,
) -> Result<()> {
    let rb = a.row_bytes;
    debug_assert_eq!(out.len() as u64, (end - start) * rb);
    // Runs of consecutive base slots, straight into `out`.
    let mut i = start;
    while i < end {
        let slot = a.rowmap.base_slot(i);
        let run = run_len(a, i, end);
        let dst = ((i - start) * rb) as usize;
        let piece = &mut out[dst..dst + (run * rb) as usize];
        match verify.as_deref_mut() {
            Some(v) => v.read(piece, slot * rb)?,
            None => df.file.read_exact_at(piece, slot * rb).ctx(&df.path)?,
        }
        i += run;
    }
    if a.remap.is_empty() || end <= start || rb == 0 {
        return Ok(());
    }
    match shadow {
        Some(s) if patch_preloaded(a, start, end, out, s) => Ok(()),
        _ => patch_replaced(
            a,
            df,
            start,
            end,
            out,
            verify,
            shadow.map(|s| &s.sorted[..]),
        ),
    }
}

/// Overwrite the replaced rows among logical `start..end` in `out` (which
/// holds those rows as read from their base slots) with their preloaded
/// shadow rows; `false` (nothing done) if `shadow` holds no rows.
pub(crate) fn patch_preloaded(
    a: &ArrayMeta,
    start: u64,
    end: u64,
    out: &mut [u8],
    shadow: &ShadowRows,
) -> bool {
    let Some(bytes) = &shadow.bytes else {
        return false;
    };
    let rb = a.row_bytes as usize;
    if end <= start || rb == 0 || shadow.sorted.is_empty() {
        return true;
    }
    for (k, l) in replaced_in(a, start, end, Some(&shadow.sorted)) {
        let (src, dst) = (k as usize * rb, (l - start) as usize * rb);
        out[dst..dst + rb].copy_from_slice(&bytes[src..src + rb]);
    }
    true
}

/// The replaced rows among logical `start..end`, as `(key, logical row)`:
/// with `sorted` (the remap sorted by base slot), the key is the entry's
/// index in it; without, the shadow slot.
fn replaced_in(
    a: &ArrayMeta,
    start: u64,
    end: u64,
    sorted: Option<&[(u64, u64)]>,
) -> Vec<(u64, u64)> {
    let mut found: Vec<(u64, u64)> = Vec::new();
    // Bases come in ascending order: find each one's extent by walking
    // the extents along with them, not by a search each.
    let (ext, starts) = (a.rowmap.extents(), a.rowmap.starts());
    let mut e = 0usize;
    let mut add = |key: u64, base: u64| {
        if e == 0 {
            e = ext.partition_point(|x| x.start + x.len <= base);
        }
        while ext.get(e).is_some_and(|x| x.start + x.len <= base) {
            e += 1;
        }
        let l = match (ext.get(e), starts.get(e)) {
            (Some(x), Some(&first)) if x.start <= base => first + (base - x.start),
            _ => return,
        };
        debug_assert_eq!(a.rowmap.logical_of(base), Some(l));
        if l >= start && l < end {
            found.push((key, l));
        }
    };
    // Base slots grow with the logical index: the range's replaced rows
    // are the map's entries between its first and last base slots.
    let (lo, hi) = (a.rowmap.base_slot(start), a.rowmap.base_slot(end - 1));
    match sorted {
        Some(idx) => {
            let from = idx.partition_point(|&(b, _)| b < lo);
            for (k, &(base, _)) in idx.iter().enumerate().skip(from) {
                if base > hi {
                    break;
                }
                add(k as u64, base);
            }
        }
        None => {
            for (&base, &shadow) in a.remap.range(lo..=hi) {
                add(shadow, base);
            }
        }
    }
    found
}

/// Overwrite the replaced rows among logical `start..end` in `out` (which
/// holds those rows as read from their base slots) with their shadow rows,
/// read from the file; `sorted`: the remap sorted by base slot, if the
/// caller keeps it (see [`replaced_in`]).
pub(crate) fn patch_replaced(
    a: &ArrayMeta,
    df: &DataFile,
    start: u64,
    end: u64,
    out: &mut [u8],
    verify: Option<&mut Verifier<'_>>,
    sorted: Option<&[(u64, u64)]>,
) -> Result<()> {
    if a.remap.is_empty() || end <= start || a.row_bytes == 0 {
        return Ok(());
    }
    let mut patches: Vec<(u64, u64)> = replaced_in(a, start, end, sorted)
        .into_iter()
        .map(|(k, l)| {
            // With `sorted`, the key is the entry's index in it.
            let shadow = sorted.map_or(k, |idx| idx[k as usize].1);
            (shadow, l - start)
        })
        .collect();
    patches.sort_unstable();
    read_slots(a.row_bytes, df, &patches, out, verify)
}

/// Copy the rows at the given slots (`(slot, index in out)`, sorted by
/// slot) into `out`, in file order, one read per cluster of nearby slots
/// rather than one per row.
fn read_slots(
    rb: u64,
    df: &DataFile,
    patches: &[(u64, u64)],
    out: &mut [u8],
    mut verify: Option<&mut Verifier<'_>>,
) -> Result<()> {
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
        scratch.resize(((last + 1 - first) * rb) as usize, 0);
        match verify.as_deref_mut() {
            Some(v) => v.read(&mut scratch, first * rb)?,
            None => df
                .file
                .read_exact_at(&mut scratch, first * rb)
                .ctx(&df.path)?,
        }
        let rb = rb as usize;
        for &(s, d) in &patches[k..j] {
            let src = (s - first) as usize * rb;
            let dst = d as usize * rb;
            out[dst..dst + rb].copy_from_slice(&scratch[src..src + rb]);
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
