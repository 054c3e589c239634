//! Logical rows to base slots.
//!
//! Data files are append-only. An array's *logical* rows (what users index,
//! `0..rows`) map to *base slots* in its data file through a sorted list of
//! extents (deletion removes slots from the extents). Lookups cost
//! O(log extents) per index.

use super::CheckResult;

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

    pub fn from_extents(extents: Vec<Extent>) -> CheckResult<Self> {
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
    fn extents_from_disk_are_checked() {
        let e = |start, len| Extent { start, len };
        assert!(RowMap::from_extents(vec![e(0, 3), e(5, 2)]).is_ok());
        assert!(RowMap::from_extents(vec![e(0, 0)]).is_err());
        assert!(RowMap::from_extents(vec![e(0, 3), e(2, 2)]).is_err());
        assert!(RowMap::from_extents(vec![e(5, 1), e(0, 1)]).is_err());
    }
}
