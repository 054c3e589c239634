//! A read-side index of an array snapshot's row map and remap, for
//! finding the slot of a logical row in O(1).
//!
//! The remap (base slot -> shadow slot, a persistent ordered map) makes a
//! snapshot cheap to copy and a replace cheap whatever came before, but a
//! lookup in it walks a B-tree: about 100 ns, twenty times the cost of
//! copying a 40-byte row; and finding a row's base slot is a binary search
//! over the row map's extents (one per run of rows left by deletions and
//! appends). A gather of many rows from an array with such a history paid
//! both per row. [`SlotIndex`] replaces them: a guide table from logical row
//! buckets to extents (about two buckets per extent, so a lookup looks at
//! one or two), and a bitmap of the remapped base slots with a running
//! count per 64-bit word (a rank index) and the shadow slots in base-slot
//! order: one bit test and, for a remapped slot, one popcount and one load.
//!
//! It is built per snapshot, on demand ([`SnapshotCache`]): once the rows
//! looked up in a snapshot make up for the cost of building it (proportional
//! to the remap's entries, the extents and the slots / 64), so that a
//! snapshot read once pays nothing more than before and one gathered from
//! many times pays the build once. A snapshot's cache is never copied: a
//! cloned `ArrayMeta` starts empty, and one changed in place is reset
//! (`State::get_mut`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::rowmap::RowMap;
use super::state::Remap;

/// Arrays with more slots than this are never indexed (the bitmap and rank
/// words take 12 bytes per 64 slots: 24 MiB at this size); their lookups go
/// to the remap.
const MAX_INDEXED_SLOTS: u64 = 1 << 31;

/// Remapped base slots and their shadow slots, for lookups in O(1).
#[derive(Debug)]
pub(crate) struct RemapIndex {
    /// Bit `b % 64` of word `b / 64` is set when base slot `b` is remapped.
    words: Vec<u64>,
    /// Set bits in the words before each word.
    ranks: Vec<u32>,
    /// Shadow slots, in the order of their base slots.
    shadows: Vec<u64>,
}

impl RemapIndex {
    /// Index `remap`, whose base slots are below `slots`; `None` if the
    /// array is too large to index or the remap does not fit that promise.
    pub fn build(remap: &Remap, slots: u64) -> Option<RemapIndex> {
        if slots > MAX_INDEXED_SLOTS || remap.len() as u64 > slots {
            return None;
        }
        let mut words = vec![0u64; slots.div_ceil(64) as usize];
        let mut shadows = Vec::with_capacity(remap.len());
        for (&base, &shadow) in remap.iter() {
            if base >= slots {
                return None;
            }
            *words.get_mut((base / 64) as usize)? |= 1 << (base % 64);
            shadows.push(shadow);
        }
        let mut ranks = Vec::with_capacity(words.len());
        let mut n = 0u32;
        for w in &words {
            ranks.push(n);
            n += w.count_ones();
        }
        debug_assert_eq!(n as usize, shadows.len());
        Some(RemapIndex {
            words,
            ranks,
            shadows,
        })
    }

    /// The shadow slot of base slot `base`, if it is remapped.
    #[inline]
    pub fn get(&self, base: u64) -> Option<u64> {
        let w = (base / 64) as usize;
        let word = *self.words.get(w)?;
        let bit = 1u64 << (base % 64);
        if word & bit == 0 {
            return None;
        }
        let r = *self.ranks.get(w)? as usize + (word & (bit - 1)).count_ones() as usize;
        self.shadows.get(r).copied()
    }
}

/// Logical row buckets to the row map's extents.
#[derive(Debug)]
pub(crate) struct RowGuide {
    /// Bucket `j` (rows `j << shift ..`) starts in extent `first[j]`.
    first: Vec<u32>,
    shift: u32,
}

impl RowGuide {
    /// About two buckets per extent; `None` for a map of one extent (no
    /// search to save) or of more extents than a `u32` counts.
    pub fn build(map: &RowMap) -> Option<RowGuide> {
        let starts = map.starts();
        let n = starts.len();
        if n < 2 || u32::try_from(n).is_err() {
            return None;
        }
        let rows = map.rows();
        let mut shift = 0u32;
        while shift < 63 && (rows >> shift) > 2 * n as u64 {
            shift += 1;
        }
        let buckets = (rows >> shift) as usize + 1;
        let mut first = Vec::with_capacity(buckets);
        let mut k = 0usize;
        for j in 0..buckets as u64 {
            let row = j << shift;
            while k + 1 < n && starts[k + 1] <= row {
                k += 1;
            }
            first.push(k as u32);
        }
        Some(RowGuide { first, shift })
    }

    /// The base slot of logical row `i` of `map` (`i < map.rows()`; the
    /// guide was built from `map`).
    #[inline]
    pub fn base_slot(&self, map: &RowMap, i: u64) -> u64 {
        let (starts, extents) = (map.starts(), map.extents());
        let j = (i >> self.shift) as usize;
        let lo = self.first.get(j).map_or(0, |&k| k as usize);
        let hi = self
            .first
            .get(j + 1)
            .map_or(starts.len(), |&k| k as usize + 1)
            .min(starts.len());
        let k = match starts.get(lo..hi) {
            Some(part) => lo + part.partition_point(|&s| s <= i).saturating_sub(1),
            None => return map.base_slot(i),
        };
        match (extents.get(k), starts.get(k)) {
            (Some(e), Some(&s)) => e.start + (i - s),
            _ => map.base_slot(i),
        }
    }
}

/// What [`SnapshotCache`] builds: the faster lookups an array needs.
#[derive(Debug)]
pub(crate) struct SlotIndex {
    pub guide: Option<RowGuide>,
    pub remap: Option<RemapIndex>,
}

/// Per-snapshot data derived on demand from an `ArrayMeta` (see the module
/// documentation). Cloning gives an empty cache.
#[derive(Default)]
pub(crate) struct SnapshotCache {
    index: OnceLock<SlotIndex>,
    /// Rows looked up in this snapshot so far.
    looked_up: AtomicU64,
}

impl Clone for SnapshotCache {
    fn clone(&self) -> Self {
        SnapshotCache::default()
    }
}

impl std::fmt::Debug for SnapshotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotCache")
            .field("index", &self.index.get())
            .finish()
    }
}

impl SnapshotCache {
    /// The slot index of a snapshot (its row map, remap and slots) for a
    /// read about to look up `rows` rows: built when the rows looked up in
    /// this snapshot, these included, reach a sixteenth of the remap's
    /// entries plus a quarter of the extents plus a 4096th of the slots
    /// (the build costs about as much as looking up that many rows without
    /// it); `None` before.
    pub fn slot_index(
        &self,
        map: &RowMap,
        remap: &Remap,
        slots: u64,
        rows: u64,
    ) -> Option<&SlotIndex> {
        if let Some(built) = self.index.get() {
            return Some(built);
        }
        let seen = self.looked_up.fetch_add(rows, Ordering::Relaxed) + rows;
        let cost = remap.len() as u64 / 16 + map.extents().len() as u64 / 4 + slots / 4096;
        if seen < cost {
            return None;
        }
        Some(self.index.get_or_init(|| {
            SlotIndex {
                guide: RowGuide::build(map),
                remap: (!remap.is_empty())
                    .then(|| RemapIndex::build(remap, slots))
                    .flatten(),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_match_the_remap() {
        let mut remap = Remap::new();
        let slots = 5_000u64;
        let mut x = 7u64;
        for _ in 0..700 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let base = (x >> 33) % 4_000;
            remap.insert(base, 4_000 + base % 1_000);
        }
        for b in [0u64, 63, 64, 127, 3_999] {
            remap.insert(b, b + 1);
        }
        let idx = RemapIndex::build(&remap, slots).unwrap();
        for b in 0..slots + 200 {
            assert_eq!(idx.get(b), remap.get(&b).copied(), "base slot {b}");
        }
        // A remap entry past the promised slots is refused, not indexed.
        remap.insert(slots, 1);
        assert!(RemapIndex::build(&remap, slots).is_none());
    }

    #[test]
    fn guided_lookups_match_the_row_map() {
        let mut x = 11u64;
        let mut map = RowMap::contiguous(0, 10_000);
        assert!(RowGuide::build(&map).is_none());
        for round in 0..5u64 {
            let mut del: Vec<u64> = (0..300)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    map.base_slot((x >> 33) % map.rows())
                })
                .collect();
            del.sort_unstable();
            del.dedup();
            map.delete(&del);
            map.push(20_000 + round * 100, 1 + round * 40);
            let g = RowGuide::build(&map).unwrap();
            for i in 0..map.rows() {
                assert_eq!(
                    g.base_slot(&map, i),
                    map.base_slot(i),
                    "round {round}, row {i}"
                );
            }
        }
    }

    #[test]
    fn the_cache_builds_once_enough_rows_were_looked_up_and_is_not_cloned() {
        let remap: Remap = (0..1_600u64).map(|b| (b * 3, 10_000 + b)).collect();
        let slots = 8_192u64;
        let mut map = RowMap::contiguous(0, 4_000);
        map.push(5_000, 100);
        // Threshold: 1_600 / 16 + 2 / 4 + 8_192 / 4096 = 102 rows.
        let c = SnapshotCache::default();
        assert!(c.slot_index(&map, &remap, slots, 60).is_none());
        let idx = c.slot_index(&map, &remap, slots, 60).unwrap();
        let r = idx.remap.as_ref().unwrap();
        assert_eq!(r.get(3), Some(10_001));
        assert_eq!(r.get(4), None);
        assert_eq!(idx.guide.as_ref().unwrap().base_slot(&map, 4_001), 5_001);
        assert!(c.slot_index(&map, &remap, slots, 1).is_some());
        assert!(c.clone().slot_index(&map, &remap, slots, 1).is_none());
    }
}
