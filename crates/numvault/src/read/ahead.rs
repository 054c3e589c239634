//! Streaming an array in batches with two workers.
//!
//! The array's file is cut into units, one per checksum chunk. A unit is
//! claimed by whichever worker is free (a helper thread, or the consumer
//! while it waits for its next batch), read straight into the batch buffers
//! it overlaps, in pieces that stay in the CPU cache, and checksummed piece
//! by piece right after each read. The row map says where a unit's bytes
//! go: for an identity-mapped array, to the same offset of the stream; with
//! deleted rows, base runs go to their logical rows and the bytes between
//! them (deleted rows, shadow rows of replacements) are read into scratch,
//! to be checksummed and dropped. Replaced rows are the caller's to patch
//! in (`Batches`, from its preloaded shadow rows). A batch is handed out, as the `Vec` it
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
    /// File bytes read, from offset 0.
    to: u64,
    /// Bytes streamed (rows times row bytes).
    out_len: u64,
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

    /// Stream bytes of batch `j`.
    fn batch_range(&self, j: usize) -> (u64, u64) {
        let s = (j as u64).saturating_mul(self.batch);
        (s, s.saturating_add(self.batch).min(self.out_len))
    }

    /// The last unit batch `j` needs: the one holding the last byte of its
    /// last row (base slots grow with the logical row).
    fn last_unit(&self, j: usize) -> usize {
        let (_, e) = self.batch_range(j);
        let rb = self.meta.row_bytes.max(1);
        let rows = self.meta.rows();
        if rows == 0 {
            return 0;
        }
        let slot = self
            .meta
            .rowmap
            .base_slot((e.saturating_sub(1) / rb).min(rows - 1));
        let last = (slot + 1).saturating_mul(rb).saturating_sub(1);
        (last / CHUNK_BYTES) as usize
    }

    /// Where the bytes of file range `us..ue` go, in file order: `(file
    /// start, file end, stream offset)`, the offset `None` for bytes no
    /// row is read from.
    fn segments(&self, us: u64, ue: u64) -> Vec<(u64, u64, Option<u64>)> {
        let rb = self.meta.row_bytes.max(1);
        let map = &self.meta.rowmap;
        let (ext, starts) = (map.extents(), map.starts());
        let mut k = ext.partition_point(|e| (e.start + e.len).saturating_mul(rb) <= us);
        let mut out = Vec::with_capacity(2);
        let mut pos = us;
        while pos < ue {
            match (ext.get(k), starts.get(k)) {
                (Some(e), Some(&first)) if e.start.saturating_mul(rb) <= pos => {
                    let end = ue.min((e.start + e.len).saturating_mul(rb));
                    let at = first.saturating_mul(rb) + (pos - e.start.saturating_mul(rb));
                    out.push((pos, end, Some(at)));
                    pos = end;
                    k += 1;
                }
                (Some(e), _) => {
                    let end = ue.min(e.start.saturating_mul(rb));
                    out.push((pos, end, None));
                    pos = end;
                }
                (None, _) => {
                    out.push((pos, ue, None));
                    pos = ue;
                }
            }
        }
        out
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
        for (fs, fe, at) in self.segments(us, ue) {
            let Some(at) = at else {
                dest.push((0, (fe - fs) as usize));
                continue;
            };
            // Stream bytes `at..at + (fe - fs)`, across batch buffers.
            let (mut pos, stop) = (at, at + (fe - fs));
            while pos < stop {
                let j = (pos / self.batch) as usize;
                let (bs, be) = self.batch_range(j);
                let end = stop.min(be);
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
        }
        Some(Work { unit: u, dest })
    }

    /// Read a claimed unit into its batch buffers (bytes no row is read
    /// from into scratch) and check its checksum.
    fn work(&self, w: &Work) -> Result<()> {
        let holes: usize = w.dest.iter().filter(|d| d.0 == 0).map(|d| d.1).sum();
        let mut scratch = vec![0u8; holes];
        let mut rest = &mut scratch[..];
        let mut dests: Vec<&mut [u8]> = Vec::with_capacity(w.dest.len());
        for &(addr, len) in &w.dest {
            if addr == 0 {
                let (piece, after) = std::mem::take(&mut rest).split_at_mut(len);
                rest = after;
                dests.push(piece);
            } else {
                // SAFETY: the range lies in a batch buffer held by
                // `self.st`, which keeps it until this unit is marked done;
                // no other unit writes to it, and nothing reads it before
                // then. pread only writes to it.
                dests.push(unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, len) });
            }
        }
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
    /// Stream every row in batches of `batch_rows`, from row 0: the file up
    /// to the end of the last base run or of the checksummed bytes,
    /// whichever is further (so that every chunk read is read whole
    /// enough to be checked). The caller patches replaced rows in.
    pub(crate) fn start(
        name: &str,
        meta: &Arc<ArrayMeta>,
        df: &Arc<DataFile>,
        batch_rows: u64,
    ) -> ReadAhead {
        let rb = meta.row_bytes;
        let out_len = meta.rows().saturating_mul(rb);
        let to = meta
            .rowmap
            .end_slot()
            .saturating_mul(rb)
            .max(meta.sums.covered);
        let units = to.div_ceil(CHUNK_BYTES) as usize;
        let sh = Arc::new(Shared {
            name: name.to_string(),
            meta: meta.clone(),
            df: df.clone(),
            to,
            out_len,
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
