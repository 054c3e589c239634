//! Streaming an identity-mapped array in batches with two workers.
//!
//! The array's file is cut into units, one per checksum chunk. A unit is
//! claimed by whichever worker is free (a helper thread, or the consumer
//! while it waits for its next batch), read straight into the batch buffers
//! it overlaps, in pieces that stay in the CPU cache, and checksummed piece
//! by piece right after each read. A batch is handed out, as the `Vec` it
//! was read into (no copy), only when every unit it overlaps has been read
//! and its checksum matched; a damaged chunk fails the first batch that
//! touches it. So each byte is read once and checksummed once, and the two
//! cores share that work, as in the whole-array read. Workers stay at most
//! [`AHEAD`] units past the consumer's batch, which bounds the memory.

use std::collections::BTreeMap;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::data::check::{chunk_mismatch, read_chunk};
use crate::data::DataFile;
use crate::model::error::{Error, Result};
use crate::model::state::ArrayMeta;
use crate::model::sums::CHUNK_BYTES;
use crate::util::lock;

/// Units a worker may claim past the last one the consumer's batch needs.
const AHEAD: usize = 3;

/// Streams of fewer units are read by the consumer alone: a thread's start
/// and hand-offs cost more than the overlap saves. Measured (1M-row-class
/// float32 arrays of 10 columns, 10,000-row batches, against
/// np.load(mmap_mode="r")): 60,000 rows (3 units) 0.83x alone, 0.88x with
/// the helper; 100,000 rows (4 units) 0.98x alone, 0.83x with it.
pub(crate) const HELPER_MIN_UNITS: usize = 4;

/// A batch buffer being filled: the memory of a `Vec<MaybeUninit<u8>>`.
struct RawBuf {
    ptr: *mut MaybeUninit<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: plain heap memory owned by this value. Workers write to disjoint
// ranges of it through pointers taken under the state mutex, and the buffer
// is only taken or freed once no unit that writes to it is in progress (see
// `Shared::take` and `Drop for ReadAhead`).
unsafe impl Send for RawBuf {}

impl RawBuf {
    fn new(len: usize) -> RawBuf {
        let mut v = ManuallyDrop::new(Vec::<MaybeUninit<u8>>::with_capacity(len));
        // SAFETY: `MaybeUninit` needs no initialization.
        unsafe { v.set_len(len) };
        RawBuf {
            ptr: v.as_mut_ptr(),
            len,
            cap: v.capacity(),
        }
    }

    /// # Safety
    /// Every byte must have been written.
    unsafe fn into_vec(self) -> Vec<u8> {
        let me = ManuallyDrop::new(self);
        // SAFETY: the pointer, length and capacity of a Vec whose bytes are
        // all initialized (the caller's promise); u8 has the same layout.
        unsafe { Vec::from_raw_parts(me.ptr.cast::<u8>(), me.len, me.cap) }
    }
}

impl Drop for RawBuf {
    fn drop(&mut self) {
        // SAFETY: the parts of the Vec made in `new`, freed once.
        drop(unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) });
    }
}

/// A claimed unit: its index and where its bytes go, in file order, as
/// (address, length) ranges of batch buffers.
struct Work {
    unit: usize,
    dest: Vec<(usize, usize)>,
}

struct State {
    /// Next unit to claim (units are claimed in order).
    next_claim: usize,
    /// Units read and checked.
    done: Vec<bool>,
    /// Units `0..contig` are all done.
    contig: usize,
    /// Buffers of batches not yet taken, by batch index, allocated by the
    /// first claim that touches them.
    bufs: BTreeMap<usize, RawBuf>,
    /// The batch the consumer takes next.
    want: usize,
    /// The lowest unit that failed, and why.
    failed: Option<(usize, Error)>,
    /// The consumer is gone.
    stop: bool,
}

struct Shared {
    name: String,
    meta: Arc<ArrayMeta>,
    df: Arc<DataFile>,
    /// Bytes streamed (rows times row bytes), from offset 0.
    to: u64,
    /// Bytes per batch.
    batch: u64,
    units: usize,
    st: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    /// File bytes of unit `u`.
    fn unit(&self, u: usize) -> (u64, u64) {
        let s = u as u64 * CHUNK_BYTES;
        (s, (s + CHUNK_BYTES).min(self.to))
    }

    /// File bytes of batch `j`.
    fn batch_range(&self, j: usize) -> (u64, u64) {
        let s = (j as u64).saturating_mul(self.batch);
        (s, s.saturating_add(self.batch).min(self.to))
    }

    /// The last unit batch `j` overlaps.
    fn last_unit(&self, j: usize) -> usize {
        let (_, e) = self.batch_range(j);
        (e.saturating_sub(1) / CHUNK_BYTES) as usize
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.cv.wait(g).unwrap_or_else(|p| p.into_inner())
    }

    /// Claim the next unit if it is within the window.
    fn claim(&self, st: &mut State) -> Option<Work> {
        let u = st.next_claim;
        if st.stop || st.failed.is_some() || u >= self.units {
            return None;
        }
        if u > self.last_unit(st.want) + AHEAD {
            return None;
        }
        st.next_claim += 1;
        let (us, ue) = self.unit(u);
        let mut dest = Vec::with_capacity(4);
        let mut pos = us;
        while pos < ue {
            let j = (pos / self.batch) as usize;
            let (bs, be) = self.batch_range(j);
            let end = ue.min(be);
            let buf = st
                .bufs
                .entry(j)
                .or_insert_with(|| RawBuf::new((be - bs) as usize));
            // In bounds: bs <= pos < end <= be.
            dest.push((
                buf.ptr.wrapping_add((pos - bs) as usize) as usize,
                (end - pos) as usize,
            ));
            pos = end;
        }
        Some(Work { unit: u, dest })
    }

    /// Read a claimed unit into its batch buffers and check its checksum.
    fn work(&self, w: &Work) -> Result<()> {
        let dests = w.dest.iter().map(|&(addr, len)| {
            // SAFETY: the range lies in a batch buffer held by `self.st`,
            // which keeps it until this unit is marked done; no other unit
            // writes to it, and nothing reads it before then. pread only
            // writes to it.
            unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, len) }
        });
        if read_chunk(&self.df, &self.meta.sums, w.unit, dests)? {
            Ok(())
        } else {
            Err(chunk_mismatch(
                &self.name,
                &self.meta.sums,
                &self.df.path,
                w.unit,
            ))
        }
    }

    /// Record the outcome of a unit and wake the other worker.
    fn finish(&self, st: &mut State, u: usize, r: Result<()>) {
        match r {
            Ok(()) => {
                st.done[u] = true;
                while st.contig < self.units && st.done[st.contig] {
                    st.contig += 1;
                }
            }
            Err(e) => {
                if st.failed.as_ref().is_none_or(|(f, _)| u < *f) {
                    st.failed = Some((u, e));
                }
            }
        }
        self.cv.notify_all();
    }

    /// Do claimed work without the lock, then take it again.
    fn run<'a>(&'a self, st: MutexGuard<'a, State>, w: Work) -> MutexGuard<'a, State> {
        drop(st);
        let r = self.work(&w);
        let mut st = lock(&self.st);
        self.finish(&mut st, w.unit, r);
        st
    }

    /// The helper thread: claim and do units until there are none left, the
    /// stream failed or the consumer is gone.
    fn helper(&self) {
        let mut st = lock(&self.st);
        loop {
            if let Some(w) = self.claim(&mut st) {
                st = self.run(st, w);
            } else if st.stop || st.failed.is_some() || st.next_claim >= self.units {
                return;
            } else {
                st = self.wait(st);
            }
        }
    }

    /// Batch `j`, the next in order: its buffer once every unit it overlaps
    /// is done, helping with the work meanwhile.
    fn take(&self, j: usize) -> Result<Vec<u8>> {
        let last = self.last_unit(j);
        let mut st = lock(&self.st);
        if st.want != j {
            return Err(self.stopped(j));
        }
        loop {
            if st.contig > last {
                let buf = st.bufs.remove(&j).ok_or_else(|| self.stopped(j))?;
                st.want = j + 1;
                drop(st);
                // The window moved: the helper may claim more.
                self.cv.notify_all();
                // SAFETY: every unit the batch overlaps is done, and those
                // units cover every byte of it.
                return Ok(unsafe { buf.into_vec() });
            }
            if st.failed.as_ref().is_some_and(|(u, _)| *u <= last) {
                return Err(st.failed.take().map_or_else(|| self.stopped(j), |(_, e)| e));
            }
            if let Some(w) = self.claim(&mut st) {
                st = self.run(st, w);
            } else {
                st = self.wait(st);
            }
        }
    }

    fn stopped(&self, j: usize) -> Error {
        Error::Internal(format!(
            "array '{}': streaming stopped before batch {j}",
            self.name
        ))
    }
}

/// The consumer's handle; dropping it stops the helper.
pub(crate) struct ReadAhead {
    sh: Arc<Shared>,
}

impl ReadAhead {
    /// Stream the first `rows` rows in batches of `batch_rows`, from row 0.
    /// The caller checks that the array is identity-mapped and that `rows`
    /// reach every checksummed byte.
    pub(crate) fn start(
        name: &str,
        meta: &Arc<ArrayMeta>,
        df: &Arc<DataFile>,
        rows: u64,
        batch_rows: u64,
    ) -> ReadAhead {
        let to = rows.saturating_mul(meta.row_bytes);
        let units = to.div_ceil(CHUNK_BYTES) as usize;
        let sh = Arc::new(Shared {
            name: name.to_string(),
            meta: meta.clone(),
            df: df.clone(),
            to,
            batch: batch_rows.saturating_mul(meta.row_bytes).max(1),
            units,
            st: Mutex::new(State {
                next_claim: 0,
                done: vec![false; units],
                contig: 0,
                bufs: BTreeMap::new(),
                want: 0,
                failed: None,
                stop: false,
            }),
            cv: Condvar::new(),
        });
        // Without a helper thread the consumer does every unit itself.
        if units >= HELPER_MIN_UNITS {
            let helper = sh.clone();
            let _ = std::thread::Builder::new()
                .name("numvault-read-ahead".into())
                .spawn(move || helper.helper());
        }
        ReadAhead { sh }
    }

    /// The bytes of batch `j` (batches are taken in order, from 0).
    pub(crate) fn take(&self, j: usize) -> Result<Vec<u8>> {
        self.sh.take(j)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        lock(&self.sh.st).stop = true;
        self.sh.cv.notify_all();
        // The buffers are freed with `Shared`, after the helper's last unit.
    }
}
