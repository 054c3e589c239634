//! In-memory metadata: what each array is and where its rows live.
//!
//! Data files are append-only. An array's *logical* rows (what users index,
//! `0..rows`) map to *base slots* in its data file through a sorted list of
//! extents (deletion removes slots from the extents), and a base slot whose
//! row was replaced points to a newer *shadow slot* through the remap table.
//! Lookups cost O(log extents) per index.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::codec::DecResult;
use crate::dtype::DType;

/// Data files are checksummed in chunks of this many bytes.
pub(crate) const CHUNK_BYTES: u64 = 1 << 20;

/// Checksums of a data file's bytes `0..covered`, one crc32c per chunk; the
/// last chunk may be partial. Data files are append-only, so a sum never goes
/// stale: it covers exactly bytes that can no longer change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChunkSums {
    pub covered: u64,
    pub sums: Vec<u32>,
}

impl ChunkSums {
    /// Checksums of `data`, taken as the start of a file.
    pub fn of(data: &[u8]) -> Self {
        ChunkSums {
            covered: data.len() as u64,
            sums: data
                .chunks(CHUNK_BYTES as usize)
                .map(crc32c::crc32c)
                .collect(),
        }
    }

    /// Byte range of chunk `i` that its checksum covers.
    pub fn range(&self, i: usize) -> (u64, u64) {
        let start = i as u64 * CHUNK_BYTES;
        (start, (start + CHUNK_BYTES).min(self.covered))
    }

    /// crc32c of all covered bytes, from the chunk sums.
    ///
    /// Combining costs a GF(2) operator for the length of the chunk appended;
    /// every chunk but the last is `CHUNK_BYTES` long, so that operator is
    /// built once (a `crc32c_combine` per chunk took ~50 us each).
    pub fn whole(&self) -> u32 {
        let mut crc = 0u32;
        let mut full: Option<Gf2Op> = None;
        for (i, s) in self.sums.iter().enumerate() {
            let (a, b) = self.range(i);
            crc = if i == 0 {
                *s
            } else if b - a == CHUNK_BYTES {
                full.get_or_insert_with(|| Gf2Op::zeros(CHUNK_BYTES))
                    .apply(crc)
                    ^ *s
            } else {
                crc32c::crc32c_combine(crc, *s, (b - a) as usize)
            };
        }
        crc
    }

    pub fn is_consistent(&self) -> bool {
        self.sums.len() as u64 == self.covered.div_ceil(CHUNK_BYTES)
    }
}

/// A linear operator on CRC-32C registers over GF(2): column `n` is the
/// image of bit `n`. `zeros(len)` feeds `len` zero bytes, so that
/// `crc(A ++ B) == zeros(len(B)).apply(crc(A)) ^ crc(B)` (zlib's combine).
struct Gf2Op([u32; 32]);

impl Gf2Op {
    fn apply(&self, mut v: u32) -> u32 {
        let mut sum = 0;
        let mut n = 0;
        while v != 0 {
            if v & 1 != 0 {
                sum ^= self.0[n];
            }
            v >>= 1;
            n += 1;
        }
        sum
    }

    /// `self`, then `other` (powers of one operator commute anyway).
    fn then(&self, other: &Gf2Op) -> Gf2Op {
        Gf2Op(self.0.map(|col| other.apply(col)))
    }

    fn zeros(mut len: u64) -> Gf2Op {
        // One zero bit: shift right, folding in the reflected polynomial.
        let mut op = [0u32; 32];
        op[0] = 0x82F6_3B78;
        for (n, col) in op.iter_mut().enumerate().skip(1) {
            *col = 1 << (n - 1);
        }
        let mut power = Gf2Op(op);
        // Square three times: one zero byte.
        for _ in 0..3 {
            power = power.then(&power);
        }
        let mut result = Gf2Op(std::array::from_fn(|n| 1 << n));
        while len != 0 {
            if len & 1 != 0 {
                result = result.then(&power);
            }
            len >>= 1;
            if len != 0 {
                power = power.then(&power);
            }
        }
        result
    }
}

/// Builds [`ChunkSums`] from bytes fed in order, in pieces of any size.
#[derive(Default)]
pub(crate) struct SumBuilder {
    sums: Vec<u32>,
    cur: u32,
    cur_len: u64,
    covered: u64,
}

impl SumBuilder {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (CHUNK_BYTES - self.cur_len) as usize;
            let n = room.min(data.len());
            self.cur = crc32c::crc32c_append(self.cur, &data[..n]);
            self.cur_len += n as u64;
            self.covered += n as u64;
            data = &data[n..];
            if self.cur_len == CHUNK_BYTES {
                self.sums.push(self.cur);
                self.cur = 0;
                self.cur_len = 0;
            }
        }
    }

    pub fn finish(mut self) -> ChunkSums {
        if self.cur_len > 0 {
            self.sums.push(self.cur);
        }
        ChunkSums {
            covered: self.covered,
            sums: self.sums,
        }
    }
}

/// A run of consecutive base slots.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    pub start: u64,
    pub len: u64,
}

/// Logical rows to base slots: extents sorted by `start`, disjoint, non-empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RowMap {
    extents: Vec<Extent>,
    /// Logical index of the first row of each extent.
    starts: Vec<u64>,
    rows: u64,
}

impl RowMap {
    pub fn contiguous(start: u64, len: u64) -> Self {
        let mut m = RowMap::default();
        m.push(start, len);
        m
    }

    pub fn from_extents(extents: Vec<Extent>) -> DecResult<Self> {
        let mut m = RowMap::default();
        for e in extents {
            if e.len == 0 {
                return Err("empty extent".into());
            }
            if let Some(last) = m.extents.last() {
                if e.start < last.start.saturating_add(last.len) {
                    return Err("extents overlap or are unsorted".into());
                }
            }
            if e.start.checked_add(e.len).is_none() || m.rows.checked_add(e.len).is_none() {
                return Err("extent overflows".into());
            }
            m.push(e.start, e.len);
        }
        Ok(m)
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    /// Logical index of the first row of each extent.
    pub fn starts(&self) -> &[u64] {
        &self.starts
    }

    /// The highest base slot + 1 (0 if empty).
    pub fn end_slot(&self) -> u64 {
        self.extents.last().map_or(0, |e| e.start + e.len)
    }

    /// Append a run of slots after the last extent.
    pub fn push(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        match self.extents.last_mut() {
            Some(last) if last.start + last.len == start => last.len += len,
            _ => {
                self.extents.push(Extent { start, len });
                self.starts.push(self.rows);
            }
        }
        self.rows += len;
    }

    /// Base slot of logical row `i` (`i < rows`).
    #[inline]
    pub fn base_slot(&self, i: u64) -> u64 {
        if self.extents.len() == 1 {
            return self.extents[0].start + i;
        }
        let k = self.starts.partition_point(|&s| s <= i).saturating_sub(1);
        self.extents[k].start + (i - self.starts[k])
    }

    /// Logical index of a base slot, if it is live.
    pub fn logical_of(&self, slot: u64) -> Option<u64> {
        let k = self.extents.partition_point(|e| e.start <= slot);
        let e = self.extents.get(k.checked_sub(1)?)?;
        (slot < e.start + e.len).then(|| self.starts[k - 1] + (slot - e.start))
    }

    /// Remove the given base slots (sorted, unique, all live).
    pub fn delete(&mut self, slots: &[u64]) {
        let mut out = RowMap::default();
        let mut d = slots.iter().copied().peekable();
        for e in &self.extents {
            let mut cur = e.start;
            let end = e.start + e.len;
            while let Some(&s) = d.peek() {
                if s >= end {
                    break;
                }
                d.next();
                if s >= cur {
                    out.push(cur, s - cur);
                    cur = s + 1;
                }
            }
            out.push(cur, end - cur);
        }
        *self = out;
    }
}

/// Everything known about one array.
#[derive(Clone, Debug)]
pub(crate) struct ArrayMeta {
    pub dtype: DType,
    /// Trailing dimensions (shape without the first axis).
    pub row_shape: Vec<u64>,
    pub row_bytes: u64,
    pub file_id: u64,
    /// Slots written and committed in the data file.
    pub phys_slots: u64,
    pub rowmap: Arc<RowMap>,
    /// base slot -> shadow slot holding the replaced row.
    pub remap: Arc<HashMap<u64, u64>>,
    pub sums: Arc<ChunkSums>,
    pub mtime_ns: u64,
}

impl ArrayMeta {
    pub fn rows(&self) -> u64 {
        self.rowmap.rows()
    }

    /// Full shape, first axis first.
    pub fn shape(&self) -> Vec<u64> {
        let mut s = Vec::with_capacity(self.row_shape.len() + 1);
        s.push(self.rows());
        s.extend_from_slice(&self.row_shape);
        s
    }

    /// Physical slot holding logical row `i`.
    #[inline]
    pub fn slot(&self, i: u64) -> u64 {
        let b = self.rowmap.base_slot(i);
        if self.remap.is_empty() {
            b
        } else {
            self.remap.get(&b).copied().unwrap_or(b)
        }
    }

    /// True when logical rows are exactly slots `0..rows` (zero-copy reads).
    pub fn is_identity(&self) -> bool {
        self.remap.is_empty()
            && match self.rowmap.extents() {
                [] => true,
                [e] => e.start == 0,
                _ => false,
            }
    }

    /// Rows present in the file but not visible (deleted or superseded).
    pub fn dead_slots(&self) -> u64 {
        self.phys_slots - self.rows()
    }

    pub fn phys_bytes(&self) -> u64 {
        self.phys_slots * self.row_bytes
    }
}

/// Bytes per row for a dtype and trailing shape, if it fits in u64.
pub(crate) fn row_bytes(dtype: DType, row_shape: &[u64]) -> Option<u64> {
    row_shape
        .iter()
        .try_fold(dtype.itemsize() as u64, |acc, &d| acc.checked_mul(d))
}

/// Where a mutation's new row bytes live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    /// Carried in the log record (redo): recovery rewrites them into the file.
    Inline(Vec<u8>),
    /// Only in the data file. `crc32c` covers the bytes; `synced` says they
    /// were fsynced before the record was written (else recovery checks them).
    InFile { crc32c: u32, synced: bool },
}

/// One mutation as recorded in the commit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Put {
        name: String,
        file_id: u64,
        dtype: DType,
        row_shape: Vec<u64>,
        rows: u64,
        payload: Payload,
        sums: ChunkSums,
    },
    Append {
        name: String,
        first_slot: u64,
        rows: u64,
        payload: Payload,
    },
    Replace {
        name: String,
        slots: Vec<u64>,
        first_slot: u64,
        payload: Payload,
    },
    DeleteRows {
        name: String,
        slots: Vec<u64>,
    },
    Compact {
        name: String,
        file_id: u64,
        rows: u64,
        sums: ChunkSums,
    },
    Drop {
        name: String,
    },
    Rename {
        from: String,
        to: String,
    },
    /// Replace an array's chunk checksums: empty (covered 0) when an in-place
    /// writable session starts, the fresh sums when it ends.
    SetSums {
        name: String,
        sums: ChunkSums,
    },
    /// The writer deleted data file `file_id` as soon as this record made it
    /// unreferenced, without waiting for the next checkpoint. Only files that
    /// no durable state refers to are released so (created by an unsynced
    /// Put since the last sync). Recovery accepts an earlier record whose
    /// data in that file is missing when this record follows it; `name` is
    /// the array whose change released the file. No effect on the state.
    Release {
        name: String,
        file_id: u64,
    },
}

impl Op {
    /// The array the op writes new bytes into, with the file offset and the
    /// payload, for recovery's redo and checks.
    pub fn payload(&self) -> Option<(&str, &Payload, u64)> {
        match self {
            Op::Put { name, payload, .. } => Some((name, payload, 0)),
            Op::Append {
                name,
                first_slot,
                payload,
                ..
            }
            | Op::Replace {
                name,
                first_slot,
                payload,
                ..
            } => Some((name, payload, *first_slot)),
            _ => None,
        }
    }

    /// The array the op concerns (the source of a rename).
    pub fn array_name(&self) -> &str {
        match self {
            Op::Put { name, .. }
            | Op::Append { name, .. }
            | Op::Replace { name, .. }
            | Op::DeleteRows { name, .. }
            | Op::Compact { name, .. }
            | Op::Drop { name }
            | Op::SetSums { name, .. }
            | Op::Release { name, .. } => name,
            Op::Rename { from, .. } => from,
        }
    }
}

/// The committed state of a store.
#[derive(Clone, Debug, Default)]
pub(crate) struct State {
    /// Generation of the current checkpoint and log file.
    pub gen: u64,
    /// Sequence number of the last applied log record (0: none ever).
    pub seq: u64,
    /// Hash-chain head: blake3 of the last record (zeros before the first).
    pub chain: [u8; 32],
    pub next_file_id: u64,
    pub arrays: BTreeMap<String, Arc<ArrayMeta>>,
}

impl State {
    fn get_mut(&mut self, name: &str) -> DecResult<&mut ArrayMeta> {
        self.arrays
            .get_mut(name)
            .map(Arc::make_mut)
            .ok_or_else(|| format!("record refers to unknown array '{name}'"))
    }

    /// Apply one op. Ops built by the writer always apply; ops read from
    /// disk are checked and rejected with a description if inconsistent.
    /// Returns a data file that is no longer referenced, if any.
    pub fn apply(&mut self, op: &Op, time_ns: u64) -> DecResult<Option<u64>> {
        match op {
            Op::Put {
                name,
                file_id,
                dtype,
                row_shape,
                rows,
                payload,
                sums,
            } => {
                let rb = row_bytes(*dtype, row_shape).ok_or("row size overflows")?;
                let bytes = rows.checked_mul(rb).ok_or("array size overflows")?;
                if sums.covered != bytes || !sums.is_consistent() {
                    return Err(format!(
                        "checksums of '{name}' do not cover its {bytes} bytes"
                    ));
                }
                check_payload_len(payload, bytes)?;
                if *file_id < self.next_file_id
                    && self.arrays.values().any(|a| a.file_id == *file_id)
                {
                    return Err(format!("file id {file_id} is already in use"));
                }
                self.next_file_id = self
                    .next_file_id
                    .max(file_id.checked_add(1).ok_or("file id overflows")?);
                let meta = ArrayMeta {
                    dtype: *dtype,
                    row_shape: row_shape.clone(),
                    row_bytes: rb,
                    file_id: *file_id,
                    phys_slots: *rows,
                    rowmap: Arc::new(RowMap::contiguous(0, *rows)),
                    remap: Arc::default(),
                    sums: Arc::new(sums.clone()),
                    mtime_ns: time_ns,
                };
                Ok(self
                    .arrays
                    .insert(name.clone(), Arc::new(meta))
                    .map(|old| old.file_id))
            }
            Op::Append {
                name,
                first_slot,
                rows,
                payload,
            } => {
                let a = self.get_mut(name)?;
                expect_next_slot(a, name, *first_slot)?;
                check_payload_len(payload, rows.checked_mul(a.row_bytes).ok_or("overflow")?)?;
                Arc::make_mut(&mut a.rowmap).push(*first_slot, *rows);
                a.phys_slots = a
                    .phys_slots
                    .checked_add(*rows)
                    .filter(|end| end.checked_mul(a.row_bytes).is_some())
                    .ok_or("slot range overflows")?;
                a.mtime_ns = time_ns;
                Ok(None)
            }
            Op::Replace {
                name,
                slots,
                first_slot,
                payload,
            } => {
                let a = self.get_mut(name)?;
                expect_next_slot(a, name, *first_slot)?;
                let n = slots.len() as u64;
                check_payload_len(payload, n.checked_mul(a.row_bytes).ok_or("overflow")?)?;
                for s in slots {
                    if a.rowmap.logical_of(*s).is_none() {
                        return Err(format!("replace of '{name}' names dead slot {s}"));
                    }
                }
                let end = first_slot
                    .checked_add(n)
                    .filter(|end| end.checked_mul(a.row_bytes).is_some())
                    .ok_or("slot range overflows")?;
                let remap = Arc::make_mut(&mut a.remap);
                for (j, s) in slots.iter().enumerate() {
                    remap.insert(*s, first_slot + j as u64);
                }
                a.phys_slots = end;
                a.mtime_ns = time_ns;
                Ok(None)
            }
            Op::DeleteRows { name, slots } => {
                let a = self.get_mut(name)?;
                if !slots.windows(2).all(|w| w[0] < w[1]) {
                    return Err(format!("deleted slots of '{name}' are not sorted"));
                }
                for s in slots {
                    if a.rowmap.logical_of(*s).is_none() {
                        return Err(format!("delete of '{name}' names dead slot {s}"));
                    }
                }
                Arc::make_mut(&mut a.rowmap).delete(slots);
                if !a.remap.is_empty() {
                    let remap = Arc::make_mut(&mut a.remap);
                    for s in slots {
                        remap.remove(s);
                    }
                }
                a.mtime_ns = time_ns;
                Ok(None)
            }
            Op::Compact {
                name,
                file_id,
                rows,
                sums,
            } => {
                let next = self.next_file_id;
                let in_use = self.arrays.values().any(|a| a.file_id == *file_id);
                let a = self.get_mut(name)?;
                if a.rows() != *rows {
                    return Err(format!(
                        "compaction of '{name}' has {rows} rows, array has {}",
                        a.rows()
                    ));
                }
                if Some(sums.covered) != rows.checked_mul(a.row_bytes) || !sums.is_consistent() {
                    return Err(format!("checksums of compacted '{name}' are inconsistent"));
                }
                if *file_id < next && in_use {
                    return Err(format!("file id {file_id} is already in use"));
                }
                let old = a.file_id;
                a.file_id = *file_id;
                a.phys_slots = *rows;
                a.rowmap = Arc::new(RowMap::contiguous(0, *rows));
                a.remap = Arc::default();
                a.sums = Arc::new(sums.clone());
                self.next_file_id = next.max(file_id.checked_add(1).ok_or("file id overflows")?);
                Ok(Some(old))
            }
            Op::Drop { name } => self
                .arrays
                .remove(name)
                .map(|a| Some(a.file_id))
                .ok_or_else(|| format!("drop of unknown array '{name}'")),
            Op::SetSums { name, sums } => {
                let a = self.get_mut(name)?;
                if !sums.is_consistent() || sums.covered > a.phys_bytes() {
                    return Err(format!("checksums set on '{name}' do not fit its data"));
                }
                a.sums = Arc::new(sums.clone());
                a.mtime_ns = time_ns;
                Ok(None)
            }
            Op::Rename { from, to } => {
                if self.arrays.contains_key(to) {
                    return Err(format!("rename target '{to}' exists"));
                }
                let mut a = self
                    .arrays
                    .remove(from)
                    .ok_or_else(|| format!("rename of unknown array '{from}'"))?;
                Arc::make_mut(&mut a).mtime_ns = time_ns;
                self.arrays.insert(to.clone(), a);
                Ok(None)
            }
            Op::Release { file_id, .. } => {
                if *file_id >= self.next_file_id
                    || self.arrays.values().any(|a| a.file_id == *file_id)
                {
                    return Err(format!(
                        "record releases data file {file_id}, which is in use or was never created"
                    ));
                }
                Ok(None)
            }
        }
    }
}

fn expect_next_slot(a: &ArrayMeta, name: &str, first_slot: u64) -> DecResult<()> {
    if first_slot != a.phys_slots {
        return Err(format!(
            "record writes '{name}' at slot {first_slot}, but the file holds {} slots",
            a.phys_slots
        ));
    }
    Ok(())
}

fn check_payload_len(p: &Payload, bytes: u64) -> DecResult<()> {
    match p {
        Payload::Inline(b) if b.len() as u64 != bytes => Err(format!(
            "inline payload has {} bytes, expected {bytes}",
            b.len()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rowmap_delete_and_lookup_match_a_vec_model() {
        let mut m = RowMap::contiguous(0, 20);
        m.push(25, 5); // slots 25..30 appended after a gap
        let mut model: Vec<u64> = (0..20).chain(25..30).collect();
        for del in [vec![0u64, 5, 6, 19], vec![25, 29], vec![1, 2, 3, 4]] {
            m.delete(&del);
            model.retain(|s| !del.contains(s));
            assert_eq!(m.rows(), model.len() as u64);
            for (i, s) in model.iter().enumerate() {
                assert_eq!(m.base_slot(i as u64), *s);
                assert_eq!(m.logical_of(*s), Some(i as u64));
            }
            for d in &del {
                assert_eq!(m.logical_of(*d), None);
            }
        }
        assert_eq!(m.logical_of(1000), None);
    }

    #[test]
    fn whole_crc_combines_chunks() {
        let data: Vec<u8> = (0..(3 * CHUNK_BYTES as usize + 17))
            .map(|i| (i % 253) as u8)
            .collect();
        let s = ChunkSums::of(&data);
        assert_eq!(s.sums.len(), 4);
        assert!(s.is_consistent());
        assert_eq!(s.whole(), crc32c::crc32c(&data));
        assert_eq!(ChunkSums::of(&[]).whole(), 0);
    }

    #[test]
    fn whole_crc_of_exact_and_single_chunks() {
        for len in [1usize, CHUNK_BYTES as usize, 2 * CHUNK_BYTES as usize] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            assert_eq!(ChunkSums::of(&data).whole(), crc32c::crc32c(&data), "{len}");
        }
    }

    #[test]
    fn sum_builder_matches_chunk_sums_whatever_the_piece_sizes() {
        let c = CHUNK_BYTES as usize;
        let data: Vec<u8> = (0..(2 * c + 1000)).map(|i| (i * 7 % 251) as u8).collect();
        let want = ChunkSums::of(&data);
        for pieces in [
            vec![1, 7, c - 8, 3],
            vec![c],
            vec![c + 3, c - 3],
            vec![2 * c + 1000],
        ] {
            let mut b = SumBuilder::default();
            let mut rest = &data[..];
            for n in pieces.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*n).min(rest.len());
                b.feed(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(b.finish(), want, "pieces {pieces:?}");
        }
        assert_eq!(want.range(2), (2 * CHUNK_BYTES, 2 * CHUNK_BYTES + 1000));
        assert_eq!(SumBuilder::default().finish(), ChunkSums::default());
    }

    #[test]
    fn extents_from_disk_are_checked() {
        let e = |start, len| Extent { start, len };
        assert!(RowMap::from_extents(vec![e(0, 3), e(5, 2)]).is_ok());
        assert!(RowMap::from_extents(vec![e(0, 0)]).is_err());
        assert!(RowMap::from_extents(vec![e(0, 3), e(2, 2)]).is_err());
        assert!(RowMap::from_extents(vec![e(5, 1), e(0, 1)]).is_err());
    }

    /// Ops read from a log are checked against the state before they are
    /// applied; a rejected op leaves the state as it was.
    #[test]
    fn inconsistent_ops_from_disk_are_rejected() {
        let mut st = State::default();
        let put_with = |name: &str, id: u64, payload: usize, summed: usize| Op::Put {
            name: name.into(),
            file_id: id,
            dtype: DType::U16,
            row_shape: vec![2],
            rows: 3,
            payload: Payload::Inline(vec![0; payload]),
            sums: ChunkSums::of(&vec![0; summed]),
        };
        let put = |name: &str, id: u64| put_with(name, id, 12, 12);
        st.apply(&put("a", 1), 0).unwrap();
        st.apply(&put("b", 2), 0).unwrap();
        let bad = [
            // Checksums not covering the data, payload of the wrong size.
            put_with("c", 3, 12, 11),
            put_with("c", 3, 5, 12),
            // A file id another array uses.
            put("c", 2),
            // Releasing a file in use, or one never created.
            Op::Release {
                name: "a".into(),
                file_id: 1,
            },
            Op::Release {
                name: "a".into(),
                file_id: 9,
            },
            // Rows written anywhere but at the end of the file.
            Op::Append {
                name: "a".into(),
                first_slot: 2,
                rows: 1,
                payload: Payload::Inline(vec![0; 4]),
            },
            Op::Append {
                name: "nope".into(),
                first_slot: 3,
                rows: 1,
                payload: Payload::Inline(vec![0; 4]),
            },
            // Replacing a slot that is not live.
            Op::Replace {
                name: "a".into(),
                slots: vec![7],
                first_slot: 3,
                payload: Payload::Inline(vec![0; 4]),
            },
            // Deleting unsorted, repeated or dead slots.
            Op::DeleteRows {
                name: "a".into(),
                slots: vec![2, 1],
            },
            Op::DeleteRows {
                name: "a".into(),
                slots: vec![1, 1],
            },
            Op::DeleteRows {
                name: "a".into(),
                slots: vec![9],
            },
            Op::Compact {
                name: "a".into(),
                file_id: 9,
                rows: 2,
                sums: ChunkSums::of(&[0; 8]),
            },
            Op::Drop { name: "c".into() },
            Op::Rename {
                from: "a".into(),
                to: "b".into(),
            },
            Op::Rename {
                from: "c".into(),
                to: "d".into(),
            },
        ];
        for op in bad {
            let before = format!("{:?}", st.arrays);
            assert!(st.apply(&op, 1).is_err(), "{op:?} was accepted");
            assert_eq!(
                format!("{:?}", st.arrays),
                before,
                "{op:?} changed the state"
            );
        }
    }
}
