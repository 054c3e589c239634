//! Reading a whole array with its checksums verified, on two threads for
//! large arrays.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::rows::{patch_replaced, read_rows_into, Verifier};
use crate::data::check::{chunk_mismatch, read_chunk};
use crate::data::DataFile;
use crate::model::error::{Error, Result};
use crate::model::state::ArrayMeta;
use crate::model::sums::CHUNK_BYTES;
use crate::util::lock;

/// Run units of work on the caller and one helper thread until `claim`
/// has no more or one fails (the first error is returned). Each worker
/// passes its own scratch buffer to `run`. Without a helper thread the
/// caller does every unit.
pub(crate) fn two_workers<T>(
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
                .unwrap_or_else(|_| Err(Error::Internal("read thread panicked".into()))),
            Err(_) => Ok(()),
        };
        mine.and(theirs)
    })
}

/// Read all of an identity-mapped array with checksum verification.
///
/// Large arrays are read by two threads that take whole chunks in turn from
/// a shared queue: on an idle machine the second core halves the time, and
/// on a busy one whichever thread gets the CPU takes the next chunk, so a
/// starved helper delays the read by at most one chunk. (A helper that only
/// hashed the chunks the reader had copied was slower on small or busy
/// machines: its core had to pull every byte over again, and the reader
/// waited for it.)
fn read_identity_verified(name: &str, a: &ArrayMeta, df: &DataFile, out: &mut [u8]) -> Result<()> {
    const PARALLEL_MIN: usize = 8 << 20;
    let read_one = |c: usize, piece: &mut [u8]| -> Result<()> {
        if read_chunk(df, &a.sums, c, [piece])? {
            Ok(())
        } else {
            Err(chunk_mismatch(name, &a.sums, &df.path, c))
        }
    };
    let chunk = CHUNK_BYTES as usize;
    if out.len() < PARALLEL_MIN {
        for (c, piece) in out.chunks_mut(chunk).enumerate() {
            read_one(c, piece)?;
        }
        return Ok(());
    }
    let queue = Mutex::new(out.chunks_mut(chunk).enumerate());
    two_workers(|| lock(&queue).next(), |(c, piece), _| read_one(c, piece))
}

/// Smallest whole read of a non-identity array done by two threads.
const MAPPED_PARALLEL_MIN: u64 = 8 << 20;

/// Whether a whole read of a non-identity array (rows replaced, deleted or
/// appended after a replace) goes through [`read_mapped_verified`]: a large
/// output, most of the file's committed bytes live (it reads them all), and
/// extents within the committed slots.
pub(crate) fn mapped_read_pays(a: &ArrayMeta, out: &[u8]) -> bool {
    let n = out.len() as u64;
    n >= MAPPED_PARALLEL_MIN
        && a.row_bytes > 0
        && n == a.rows().saturating_mul(a.row_bytes)
        && a.phys_bytes() <= n.saturating_mul(2)
        && a.rowmap.end_slot() <= a.phys_slots
        && a.sums.covered <= a.phys_bytes()
}

/// Read all of a non-identity array with checksum verification, the way
/// [`read_identity_verified`] reads an identity one: two threads take the
/// file's checksum chunks in turn, read each chunk's live bytes straight to
/// their rows in `out` and its other bytes (deleted and shadow rows) into a
/// scratch buffer, checking the chunk's crc as they go. Then the replaced
/// rows are patched in from their shadow slots, whose chunks the first pass
/// verified.
fn read_mapped_verified(name: &str, a: &ArrayMeta, df: &DataFile, out: &mut [u8]) -> Result<()> {
    let phys = a.phys_bytes();
    let units = phys.div_ceil(CHUNK_BYTES) as usize;
    let out_len = out.len() as u64;
    let out_addr = out.as_mut_ptr() as usize;
    let read_unit = |c: usize, scratch: &mut Vec<u8>| -> Result<()> {
        scratch.resize(CHUNK_BYTES as usize, 0);
        let mut spare: &mut [u8] = &mut scratch[..];
        let mut dests: Vec<&mut [u8]> = Vec::with_capacity(4);
        for (len, live_at) in chunk_segments(a, c, phys) {
            match live_at {
                Some(off) => {
                    if off + len > out_len {
                        return Err(Error::corrupt(
                            &df.path,
                            format!("array '{name}': row map points past its {} rows", a.rows()),
                        ));
                    }
                    // SAFETY: in bounds (checked above). Extents are
                    // disjoint runs of file slots mapped to disjoint runs of
                    // rows, and each chunk (a disjoint file range) is read by
                    // one thread, so no two threads write the same bytes of
                    // `out`, which this function borrows mutably throughout.
                    dests.push(unsafe {
                        std::slice::from_raw_parts_mut(
                            (out_addr as *mut u8).add(off as usize),
                            len as usize,
                        )
                    });
                }
                None => {
                    let (d, rest) = std::mem::take(&mut spare).split_at_mut(len as usize);
                    spare = rest;
                    dests.push(d);
                }
            }
        }
        if read_chunk(df, &a.sums, c, dests)? {
            Ok(())
        } else {
            Err(chunk_mismatch(name, &a.sums, &df.path, c))
        }
    };
    let next = AtomicUsize::new(0);
    let claim = || {
        let c = next.fetch_add(1, Ordering::Relaxed);
        (c < units).then_some(c)
    };
    two_workers(claim, read_unit)?;
    patch_replaced(a, df, 0, a.rows(), out, None, None)
}

/// The segments of checksum chunk `c` of `a`'s file (up to `phys` bytes),
/// in file order: their length and, for live rows, their offset in the
/// array's logical bytes.
fn chunk_segments(a: &ArrayMeta, c: usize, phys: u64) -> Vec<(u64, Option<u64>)> {
    let rb = a.row_bytes;
    let ext = a.rowmap.extents();
    let starts = a.rowmap.starts();
    let fs = c as u64 * CHUNK_BYTES;
    let fe = (fs + CHUNK_BYTES).min(phys);
    let mut out = Vec::new();
    let mut pos = fs;
    // The first extent that ends after `pos`.
    let mut k = ext.partition_point(|e| (e.start + e.len) * rb <= pos);
    while pos < fe {
        let (end, live_at) = match ext.get(k) {
            Some(e) if e.start * rb <= pos => {
                let end = fe.min((e.start + e.len) * rb);
                (end, Some(starts[k] * rb + (pos - e.start * rb)))
            }
            Some(e) => (fe.min(e.start * rb), None),
            None => (fe, None),
        };
        out.push((end - pos, live_at));
        pos = end;
        if ext.get(k).is_some_and(|e| (e.start + e.len) * rb <= pos) {
            k += 1;
        }
    }
    out
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

/// Check that a caller's buffer holds exactly `rows` rows of `a`.
pub(crate) fn check_out_len(name: &str, a: &ArrayMeta, rows: u64, out: &[u8]) -> Result<()> {
    let need = rows.saturating_mul(a.row_bytes);
    if out.len() as u64 != need {
        return Err(Error::InvalidArgument(format!(
            "array '{name}': output buffer has {} bytes, {rows} rows need {need}",
            out.len()
        )));
    }
    Ok(())
}
