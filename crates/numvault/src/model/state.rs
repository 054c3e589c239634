//! The committed state of a store and how ops change it.
//!
//! A base slot whose row was replaced points to a newer *shadow slot*
//! through an array's remap table; see [`super::rowmap`] for the mapping of
//! logical rows to base slots.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::dtype::DType;
use super::op::{Op, Payload, RestoreEntry};
use super::rowmap::RowMap;
use super::slot_index::{SlotIndex, SnapshotCache};
use super::sums::ChunkSums;
use super::version::{ArrayTable, FileRefs, Version, Versions};
use super::CheckResult;

/// Replaced rows: base slot -> the shadow slot holding the row now.
pub(crate) type Remap = imbl::OrdMap<u64, u64>;

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
    /// base slot -> shadow slot holding the replaced row. A persistent map:
    /// copying a state (for a transaction, a snapshot a reader holds) costs
    /// nothing, and a replace costs O(log n) whatever the rows replaced
    /// before.
    pub remap: Remap,
    pub sums: Arc<ChunkSums>,
    pub mtime_ns: u64,
    /// Derived on demand from this snapshot (the remap's lookup index);
    /// empty in a clone, reset when the meta is changed in place.
    pub cache: SnapshotCache,
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
        self.slot_in(i, None)
    }

    /// [`ArrayMeta::slot`], through this snapshot's slot index if given
    /// (see [`ArrayMeta::slot_index`]).
    #[inline]
    pub fn slot_in(&self, i: u64, index: Option<&SlotIndex>) -> u64 {
        let Some(x) = index else {
            let b = self.rowmap.base_slot(i);
            return match self.remap.is_empty() {
                true => b,
                false => self.remap.get(&b).copied().unwrap_or(b),
            };
        };
        let b = match &x.guide {
            Some(g) => g.base_slot(&self.rowmap, i),
            None => self.rowmap.base_slot(i),
        };
        match &x.remap {
            Some(r) => r.get(b).unwrap_or(b),
            None if self.remap.is_empty() => b,
            None => self.remap.get(&b).copied().unwrap_or(b),
        }
    }

    /// The slot index of this snapshot, for a read about to look up `rows`
    /// rows: built once the lookups in this snapshot make up for its cost
    /// ([`SnapshotCache::slot_index`]); `None` before, and for an
    /// identity-mapped array (nothing to look up).
    pub fn slot_index(&self, rows: u64) -> Option<&SlotIndex> {
        if self.is_identity() {
            return None;
        }
        self.cache
            .slot_index(&self.rowmap, &self.remap, self.phys_slots, rows)
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

    /// The same MANIFEST entry (everything but the derived cache).
    pub fn same_entry(&self, o: &ArrayMeta) -> bool {
        self.same_rows(o) && self.sums == o.sums && self.mtime_ns == o.mtime_ns
    }

    /// The same rows: dtype, shape, file, slots, row map and remap (a
    /// restore of such an array changes nothing).
    pub fn same_rows(&self, o: &ArrayMeta) -> bool {
        self.dtype == o.dtype
            && self.row_shape == o.row_shape
            && self.file_id == o.file_id
            && self.phys_slots == o.phys_slots
            && self.rowmap.extents() == o.rowmap.extents()
            && self.remap == o.remap
    }
}

/// Bytes per row for a dtype and trailing shape, if it fits in u64.
pub(crate) fn row_bytes(dtype: DType, row_shape: &[u64]) -> Option<u64> {
    row_shape
        .iter()
        .try_fold(dtype.itemsize() as u64, |acc, &d| acc.checked_mul(d))
}

/// The committed state of a store.
#[derive(Clone, Debug)]
pub(crate) struct State {
    /// The store's format version (1 or 2, FORMAT.md §12).
    pub format: u32,
    /// Generation of the current checkpoint and log file.
    pub gen: u64,
    /// Sequence number of the last applied log record (0: none ever).
    pub seq: u64,
    /// Hash-chain head: blake3 of the last record (zeros before the first).
    pub chain: [u8; 32],
    pub next_file_id: u64,
    pub arrays: ArrayTable,
    /// Versions by id (format 2, FORMAT.md §15.1).
    pub versions: Versions,
    /// The file table (FORMAT.md §15.2).
    pub file_refs: FileRefs,
    /// Total bytes of the versions' tags (the MANIFEST's size in O(1)).
    pub tag_bytes: u64,
}

impl Default for State {
    /// The state of a new store, in the newest format.
    fn default() -> Self {
        State {
            format: super::NEWEST_FORMAT,
            gen: 0,
            seq: 0,
            chain: [0; 32],
            next_file_id: 0,
            arrays: BTreeMap::new(),
            versions: Versions::new(),
            file_refs: FileRefs::new(),
            tag_bytes: 0,
        }
    }
}

impl State {
    /// Check the invariants listed in the module documentation of
    /// `model`: every file id below `next_file_id` and used once; extents
    /// within the file's slots; remap targets within them; checksums
    /// consistent and covering at most the file's bytes. The engine asserts
    /// it (debug builds) after every state it builds or reads.
    pub fn check_invariants(&self) -> CheckResult<()> {
        let mut ids = std::collections::HashSet::new();
        for (name, a) in &self.arrays {
            let shared_ok = self.file_refs.contains_key(&a.file_id);
            if a.file_id >= self.next_file_id || (!ids.insert(a.file_id) && !shared_ok) {
                return Err(format!(
                    "'{name}': file id {} reused or unallocated",
                    a.file_id
                ));
            }
            if a.rowmap.end_slot() > a.phys_slots {
                return Err(format!("'{name}': extents past the file's slots"));
            }
            if a.remap.values().any(|&v| v >= a.phys_slots) {
                return Err(format!("'{name}': remap past the file's slots"));
            }
            let bytes = a.phys_slots.checked_mul(a.row_bytes);
            if !a.sums.is_consistent() || bytes.is_none_or(|b| a.sums.covered > b) {
                return Err(format!("'{name}': checksums do not fit the file"));
            }
            if self
                .file_refs
                .get(&a.file_id)
                .is_some_and(|r| a.phys_slots > r.end_slots)
            {
                return Err(format!("'{name}': slots past its file's committed end"));
            }
        }
        self.check_versions()
    }

    /// The file table agrees with the versions whose tables are in memory
    /// (all of them, when none was loaded from a MANIFEST).
    fn check_versions(&self) -> CheckResult<()> {
        if self.format < 2 && !(self.versions.is_empty() && self.file_refs.is_empty()) {
            return Err("a format-1 state has versions".into());
        }
        let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
        let mut complete = true;
        for v in self.versions.values() {
            let Some(t) = &v.arrays else {
                complete = false;
                continue;
            };
            for (name, a) in t.iter() {
                *counts.entry(a.file_id).or_default() += 1;
                let r = self.file_refs.get(&a.file_id).copied().unwrap_or_default();
                if r.versions == 0 || a.phys_slots > r.end_slots {
                    return Err(format!(
                        "version {}: '{name}' names file {} beyond the file table",
                        v.id, a.file_id
                    ));
                }
            }
        }
        for (id, r) in self.file_refs.iter() {
            if r.versions == 0 && !self.arrays.values().any(|a| a.file_id == *id) {
                return Err(format!("file {id} is in the file table but unreferenced"));
            }
            if complete && counts.get(id).copied().unwrap_or(0) != r.versions {
                return Err(format!("file {id}: version count {} is wrong", r.versions));
            }
        }
        Ok(())
    }

    fn get_mut(&mut self, name: &str) -> CheckResult<&mut ArrayMeta> {
        let a = self
            .arrays
            .get_mut(name)
            .map(Arc::make_mut)
            .ok_or_else(|| format!("record refers to unknown array '{name}'"))?;
        // What was derived from the array as it was is stale now.
        a.cache = SnapshotCache::default();
        Ok(a)
    }

    /// True if some array's data lives in file `file_id`, or a version
    /// keeps it (FORMAT.md §15.2).
    pub fn file_in_use(&self, file_id: u64) -> bool {
        self.file_refs.contains_key(&file_id) || self.arrays.values().any(|a| a.file_id == file_id)
    }

    /// `file_id` is no longer named by the array that named it: garbage
    /// unless another array names it or a version keeps it (then it stays;
    /// a file ref with no version and no array leaves the table).
    ///
    /// O(1) for a file outside the file table (no other array can name it:
    /// arrays share only files the table lists); the arrays are scanned
    /// only for a shared file no version keeps.
    fn unreferenced(&mut self, file_id: u64) -> Vec<u64> {
        match self.file_refs.get(&file_id) {
            None => vec![file_id],
            Some(r) if r.versions > 0 => Vec::new(),
            Some(_) if self.arrays.values().any(|a| a.file_id == file_id) => Vec::new(),
            Some(_) => {
                self.file_refs.remove(&file_id);
                vec![file_id]
            }
        }
    }

    /// Version-ops need format 2 (FORMAT.md §15.4).
    fn check_format2(&self, what: &str) -> CheckResult<()> {
        if self.format < 2 {
            return Err(format!("{what} in a format-{} store", self.format));
        }
        Ok(())
    }

    /// The tail rule (FORMAT.md §15.2): new slots of `a` may be written
    /// only at its file's committed end.
    fn check_tail(&self, name: &str, a: &ArrayMeta) -> CheckResult<()> {
        match self.file_refs.get(&a.file_id) {
            Some(r) if a.phys_slots != r.end_slots => Err(format!(
                "'{name}' writes at slot {} of file {}, whose committed end is {}",
                a.phys_slots, a.file_id, r.end_slots
            )),
            _ => Ok(()),
        }
    }

    /// After new slots were written into `file_id`: its committed end.
    fn moved_tail(&mut self, file_id: u64, phys_slots: u64) {
        if let Some(r) = self.file_refs.get_mut(&file_id) {
            r.end_slots = r.end_slots.max(phys_slots);
        }
    }

    /// Apply one op. Ops built by the writer always apply; ops read from
    /// disk are checked and rejected with a description if inconsistent,
    /// leaving the state as it was. Returns the data files that are no
    /// longer referenced (garbage).
    pub fn apply(&mut self, op: &Op, time_ns: u64) -> CheckResult<Vec<u64>> {
        match op {
            Op::Put { .. } => self.apply_put(op, time_ns),
            Op::Append {
                name,
                first_slot,
                rows,
                payload,
            } => self
                .apply_append(name, *first_slot, *rows, payload, time_ns)
                .map(|_| Vec::new()),
            Op::Replace {
                name,
                slots,
                first_slot,
                payload,
            } => self
                .apply_replace(name, slots, *first_slot, payload, time_ns)
                .map(|_| Vec::new()),
            Op::DeleteRows { name, slots } => {
                self.apply_delete(name, slots, time_ns).map(|_| Vec::new())
            }
            Op::Compact {
                name,
                file_id,
                rows,
                sums,
            } => {
                let old = self.apply_compact(name, *file_id, *rows, sums)?;
                Ok(self.unreferenced(old))
            }
            Op::Drop { name } => {
                let a = self
                    .arrays
                    .remove(name)
                    .ok_or_else(|| format!("drop of unknown array '{name}'"))?;
                Ok(self.unreferenced(a.file_id))
            }
            Op::SetSums { name, sums } => {
                let a = self.get_mut(name)?;
                if !sums.is_consistent() || sums.covered > a.phys_bytes() {
                    return Err(format!("checksums set on '{name}' do not fit its data"));
                }
                a.sums = Arc::new(sums.clone());
                a.mtime_ns = time_ns;
                Ok(Vec::new())
            }
            Op::Rename { from, to } => self.apply_rename(from, to, time_ns).map(|_| Vec::new()),
            Op::Release { file_id, .. } => {
                if *file_id >= self.next_file_id || self.file_in_use(*file_id) {
                    return Err(format!(
                        "record releases data file {file_id}, which is in use or was never created"
                    ));
                }
                Ok(Vec::new())
            }
            Op::Snapshot { tag, id } => self.apply_snapshot(tag.as_deref(), *id, time_ns),
            Op::DeleteVersion { id, files } => self.apply_delete_version(*id, files),
            Op::Restore {
                name,
                version,
                entry,
            } => self.apply_restore(name, *version, entry, time_ns),
        }
    }

    /// The version taken by the record being applied (its id is that
    /// record's seq, FORMAT.md §15.4).
    fn apply_snapshot(
        &mut self,
        tag: Option<&str>,
        id: u64,
        time_ns: u64,
    ) -> CheckResult<Vec<u64>> {
        self.check_format2("a snapshot")?;
        if let Some(t) = tag {
            crate::model::name::validate_name(t).map_err(|e| e.to_string())?;
            if self.version_by_tag(t).is_some() {
                return Err(format!("snapshot tag '{t}' is already used"));
            }
        }
        if id < self.seq || self.versions.contains_key(&id) {
            return Err(format!("version {id} exists or precedes the state"));
        }
        for a in self.arrays.values() {
            let r = self.file_refs.entry(a.file_id).or_default();
            r.versions = r.versions.checked_add(1).ok_or("version count overflows")?;
            r.end_slots = r.end_slots.max(a.phys_slots);
        }
        let v = Version {
            id,
            tag: tag.map(str::to_string),
            time_ns,
            array_count: self.arrays.len() as u32,
            arrays: Some(Arc::new(self.arrays.clone())),
            on_disk: false,
        };
        self.tag_bytes += tag.map_or(0, |t| t.len() as u64);
        self.versions.insert(id, Arc::new(v));
        Ok(Vec::new())
    }

    fn apply_delete_version(&mut self, id: u64, files: &[u64]) -> CheckResult<Vec<u64>> {
        self.check_format2("a version deletion")?;
        let v = self
            .versions
            .get(&id)
            .ok_or_else(|| format!("deletion of unknown version {id}"))?;
        if v.files().is_some_and(|f| f != files) || v.array_count as usize != files.len() {
            return Err(format!(
                "deletion of version {id} lists other files than it has"
            ));
        }
        let mut refs = self.file_refs.clone();
        for f in files {
            match refs.get_mut(f) {
                Some(r) if r.versions > 0 => r.versions -= 1,
                _ => {
                    return Err(format!(
                        "version {id} names file {f}, which no version keeps"
                    ))
                }
            }
        }
        self.file_refs = refs;
        if let Some(v) = self.versions.remove(&id) {
            self.tag_bytes -= v.tag.as_ref().map_or(0, |t| t.len() as u64);
        }
        let mut freed = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for f in files {
            if seen.insert(*f) && self.file_refs.get(f).is_some_and(|r| r.versions == 0) {
                freed.extend(self.unreferenced(*f));
            }
        }
        Ok(freed)
    }

    fn apply_restore(
        &mut self,
        name: &str,
        version: u64,
        entry: &RestoreEntry,
        time_ns: u64,
    ) -> CheckResult<Vec<u64>> {
        self.check_format2("a restore")?;
        if !self.versions.contains_key(&version) {
            return Err(format!(
                "restore of '{name}' from unknown version {version}"
            ));
        }
        let e = &entry.0;
        match self.file_refs.get(&e.file_id) {
            Some(r) if e.phys_slots <= r.end_slots => {}
            _ => {
                return Err(format!(
                    "restore of '{name}' names file {}, which no version keeps",
                    e.file_id
                ))
            }
        }
        let mut meta = (**e).clone();
        meta.mtime_ns = time_ns;
        meta.cache = SnapshotCache::default();
        match self.arrays.insert(name.to_string(), Arc::new(meta)) {
            Some(old) if old.file_id != e.file_id => Ok(self.unreferenced(old.file_id)),
            _ => Ok(Vec::new()),
        }
    }

    /// The version with this tag.
    pub fn version_by_tag(&self, tag: &str) -> Option<&Arc<Version>> {
        self.versions
            .values()
            .find(|v| v.tag.as_deref() == Some(tag))
    }

    /// Claim `file_id` for a new file: it must not be in use (ids below
    /// `next_file_id` may be reused only if free), and `next_file_id` moves
    /// past it.
    fn claim_file_id(&mut self, file_id: u64) -> CheckResult<()> {
        if file_id < self.next_file_id && self.file_in_use(file_id) {
            return Err(format!("file id {file_id} is already in use"));
        }
        let next = file_id.checked_add(1).ok_or("file id overflows")?;
        self.next_file_id = self.next_file_id.max(next);
        Ok(())
    }

    fn apply_put(&mut self, op: &Op, time_ns: u64) -> CheckResult<Vec<u64>> {
        let Op::Put {
            name,
            file_id,
            dtype,
            row_shape,
            rows,
            payload,
            sums,
        } = op
        else {
            return Err("not a put".into());
        };
        let rb = row_bytes(*dtype, row_shape).ok_or("row size overflows")?;
        let bytes = rows.checked_mul(rb).ok_or("array size overflows")?;
        if sums.covered != bytes || !sums.is_consistent() {
            return Err(format!(
                "checksums of '{name}' do not cover its {bytes} bytes"
            ));
        }
        check_payload_len(payload, bytes)?;
        self.claim_file_id(*file_id)?;
        let meta = ArrayMeta {
            dtype: *dtype,
            row_shape: row_shape.clone(),
            row_bytes: rb,
            file_id: *file_id,
            phys_slots: *rows,
            rowmap: Arc::new(RowMap::contiguous(0, *rows)),
            remap: Remap::new(),
            sums: Arc::new(sums.clone()),
            mtime_ns: time_ns,
            cache: SnapshotCache::default(),
        };
        match self.arrays.insert(name.clone(), Arc::new(meta)) {
            Some(old) => Ok(self.unreferenced(old.file_id)),
            None => Ok(Vec::new()),
        }
    }

    fn apply_append(
        &mut self,
        name: &str,
        first_slot: u64,
        rows: u64,
        payload: &Payload,
        time_ns: u64,
    ) -> CheckResult<()> {
        if rows > 0 {
            self.check_tail_of(name)?;
        }
        let a = self.get_mut(name)?;
        let end = new_rows_end(a, name, first_slot, rows, payload)?;
        Arc::make_mut(&mut a.rowmap).push(first_slot, rows);
        extend_sums(a, payload);
        a.phys_slots = end;
        a.mtime_ns = time_ns;
        let file_id = a.file_id;
        self.moved_tail(file_id, end);
        Ok(())
    }

    fn check_tail_of(&self, name: &str) -> CheckResult<()> {
        match self.arrays.get(name) {
            Some(a) => self.check_tail(name, a),
            None => Ok(()),
        }
    }

    fn apply_replace(
        &mut self,
        name: &str,
        slots: &[u64],
        first_slot: u64,
        payload: &Payload,
        time_ns: u64,
    ) -> CheckResult<()> {
        if !slots.is_empty() {
            self.check_tail_of(name)?;
        }
        let a = self.get_mut(name)?;
        let end = new_rows_end(a, name, first_slot, slots.len() as u64, payload)?;
        if let Some(s) = slots.iter().find(|s| a.rowmap.logical_of(**s).is_none()) {
            return Err(format!("replace of '{name}' names dead slot {s}"));
        }
        for (j, s) in slots.iter().enumerate() {
            a.remap.insert(*s, first_slot + j as u64);
        }
        extend_sums(a, payload);
        a.phys_slots = end;
        a.mtime_ns = time_ns;
        let file_id = a.file_id;
        self.moved_tail(file_id, end);
        Ok(())
    }

    fn apply_delete(&mut self, name: &str, slots: &[u64], time_ns: u64) -> CheckResult<()> {
        let a = self.get_mut(name)?;
        if !slots.windows(2).all(|w| w[0] < w[1]) {
            return Err(format!("deleted slots of '{name}' are not sorted"));
        }
        if let Some(s) = slots.iter().find(|s| a.rowmap.logical_of(**s).is_none()) {
            return Err(format!("delete of '{name}' names dead slot {s}"));
        }
        Arc::make_mut(&mut a.rowmap).delete(slots);
        if !a.remap.is_empty() {
            for s in slots {
                a.remap.remove(s);
            }
        }
        a.mtime_ns = time_ns;
        Ok(())
    }

    fn apply_compact(
        &mut self,
        name: &str,
        file_id: u64,
        rows: u64,
        sums: &ChunkSums,
    ) -> CheckResult<u64> {
        let in_use = self.file_in_use(file_id);
        let next = self.next_file_id;
        let a = self.get_mut(name)?;
        if a.rows() != rows {
            return Err(format!(
                "compaction of '{name}' has {rows} rows, array has {}",
                a.rows()
            ));
        }
        if Some(sums.covered) != rows.checked_mul(a.row_bytes) || !sums.is_consistent() {
            return Err(format!("checksums of compacted '{name}' are inconsistent"));
        }
        if file_id < next && in_use {
            return Err(format!("file id {file_id} is already in use"));
        }
        let next = next.max(file_id.checked_add(1).ok_or("file id overflows")?);
        let old = a.file_id;
        a.file_id = file_id;
        a.phys_slots = rows;
        a.rowmap = Arc::new(RowMap::contiguous(0, rows));
        a.remap = Remap::new();
        a.sums = Arc::new(sums.clone());
        self.next_file_id = next;
        Ok(old)
    }

    fn apply_rename(&mut self, from: &str, to: &str, time_ns: u64) -> CheckResult<()> {
        if self.arrays.contains_key(to) {
            return Err(format!("rename target '{to}' exists"));
        }
        let mut a = self
            .arrays
            .remove(from)
            .ok_or_else(|| format!("rename of unknown array '{from}'"))?;
        Arc::make_mut(&mut a).mtime_ns = time_ns;
        self.arrays.insert(to.to_string(), a);
        Ok(())
    }
}

/// New rows carried inline (in the record) extend the array's checksums
/// at once, when they cover everything before them: so writer and replay
/// alike verify them without reading the file. Rows in the file wait for a
/// checkpoint's refresh (it reads them).
fn extend_sums(a: &mut ArrayMeta, payload: &Payload) {
    if let Payload::Inline(bytes) = payload {
        if a.sums.covered == a.phys_bytes() {
            Arc::make_mut(&mut a.sums).extend(bytes);
        }
    }
}

/// Check `rows` new rows written at `first_slot` of `a`'s file with
/// `payload`: right after the file's slots, of the right length, within
/// the addressable bytes. Returns the file's new slot count.
fn new_rows_end(
    a: &ArrayMeta,
    name: &str,
    first_slot: u64,
    rows: u64,
    payload: &Payload,
) -> CheckResult<u64> {
    if first_slot != a.phys_slots {
        return Err(format!(
            "record writes '{name}' at slot {first_slot}, but the file holds {} slots",
            a.phys_slots
        ));
    }
    check_payload_len(payload, rows.checked_mul(a.row_bytes).ok_or("overflow")?)?;
    first_slot
        .checked_add(rows)
        .filter(|end| end.checked_mul(a.row_bytes).is_some())
        .ok_or_else(|| "slot range overflows".to_string())
}

fn check_payload_len(p: &Payload, bytes: u64) -> CheckResult<()> {
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
