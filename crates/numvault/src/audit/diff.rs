//! What changed between two array tables (a version and a later version,
//! or the current state), from their metadata alone (FORMAT.md §15.6):
//! no data is read.

use crate::model::dtype::DType;
use crate::model::state::ArrayMeta;
use crate::model::version::ArrayTable;

/// How an array differs between the older table and the newer one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffKind {
    /// Only in the newer table.
    Added,
    /// Only in the older table.
    Dropped,
    /// Moved to a new name (same data file); rows may have changed too.
    Renamed,
    /// Another dtype or row shape (saved anew).
    Retyped,
    /// Same name and shape, a new data file (saved anew or compacted): the
    /// rows that changed are not known without reading data.
    Rewritten,
    /// Same data file: the row ranges say what changed.
    Modified,
}

impl DiffKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Added => "added",
            DiffKind::Dropped => "dropped",
            DiffKind::Renamed => "renamed",
            DiffKind::Retyped => "retyped",
            DiffKind::Rewritten => "rewritten",
            DiffKind::Modified => "modified",
        }
    }
}

/// One array's difference. Row ranges are half-open `(start, end)`:
/// deleted rows in the older table's numbering, appended and replaced rows
/// in the newer one's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayDiff {
    /// The array's name in the newer table (the older one's if dropped).
    pub name: String,
    pub kind: DiffKind,
    /// The name in the older table, for a rename.
    pub renamed_from: Option<String>,
    /// Shape and dtype before and after (None where absent).
    pub before: Option<(DType, Vec<u64>)>,
    pub after: Option<(DType, Vec<u64>)>,
    pub deleted: Vec<(u64, u64)>,
    pub appended: Vec<(u64, u64)>,
    pub replaced: Vec<(u64, u64)>,
}

/// The differences from `old` to `new`, by name; unchanged arrays are left
/// out.
pub(crate) fn diff_tables(old: &ArrayTable, new: &ArrayTable) -> Vec<ArrayDiff> {
    let mut out = Vec::new();
    // Older arrays gone from the newer table, by data file: renames.
    let gone: std::collections::HashMap<u64, &str> = old
        .iter()
        .filter(|(n, _)| !new.contains_key(*n))
        .map(|(n, a)| (a.file_id, n.as_str()))
        .collect();
    let mut renamed = std::collections::HashSet::new();
    for (name, b) in new {
        let d = match (old.get(name), gone.get(&b.file_id)) {
            (Some(a), _) => compare(name, a, b),
            (None, Some(from)) if old[*from].dtype == b.dtype => {
                renamed.insert(*from);
                let mut d =
                    compare(name, &old[*from], b).unwrap_or_else(|| base(name, &old[*from], b));
                d.kind = DiffKind::Renamed;
                d.renamed_from = Some(from.to_string());
                Some(d)
            }
            (None, _) => Some(ArrayDiff {
                kind: DiffKind::Added,
                before: None,
                ..base(name, b, b)
            }),
        };
        out.extend(d);
    }
    for (name, a) in old {
        if !new.contains_key(name) && !renamed.contains(name.as_str()) {
            out.push(ArrayDiff {
                kind: DiffKind::Dropped,
                after: None,
                ..base(name, a, a)
            });
        }
    }
    out.sort_by(|x, y| x.name.cmp(&y.name));
    out
}

fn base(name: &str, a: &ArrayMeta, b: &ArrayMeta) -> ArrayDiff {
    ArrayDiff {
        name: name.to_string(),
        kind: DiffKind::Modified,
        renamed_from: None,
        before: Some((a.dtype, a.shape())),
        after: Some((b.dtype, b.shape())),
        deleted: Vec::new(),
        appended: Vec::new(),
        replaced: Vec::new(),
    }
}

/// `None` if the entries hold the same rows.
fn compare(name: &str, a: &ArrayMeta, b: &ArrayMeta) -> Option<ArrayDiff> {
    if a.same_rows(b) {
        return None;
    }
    let mut d = base(name, a, b);
    if a.dtype != b.dtype || a.row_shape != b.row_shape {
        d.kind = DiffKind::Retyped;
        return Some(d);
    }
    if a.file_id != b.file_id {
        d.kind = DiffKind::Rewritten;
        return Some(d);
    }
    d.deleted = deleted_rows(a, b);
    d.appended = appended_rows(a, b);
    d.replaced = replaced_rows(a, b);
    Some(d)
}

/// Rows of `a` (its numbering) whose base slot `b` does not have.
fn deleted_rows(a: &ArrayMeta, b: &ArrayMeta) -> Vec<(u64, u64)> {
    let mut out = Ranges::default();
    let bx = b.rowmap.extents();
    let mut j = 0;
    let mut logical = 0u64;
    for e in a.rowmap.extents() {
        let (mut s, end) = (e.start, e.start + e.len);
        while s < end {
            while j < bx.len() && bx[j].start + bx[j].len <= s {
                j += 1;
            }
            // [s, next) is kept by b if inside bx[j], else deleted.
            let (kept, next) = match bx.get(j) {
                Some(x) if x.start <= s => (true, (x.start + x.len).min(end)),
                Some(x) => (false, x.start.min(end)),
                None => (false, end),
            };
            if !kept {
                out.push(logical + (s - e.start), logical + (next - e.start));
            }
            s = next;
        }
        logical += e.len;
    }
    out.0
}

/// Rows of `b` (its numbering) that `a` does not have: base slots `a`'s
/// extents lack (written after `a` was taken, or brought back by a
/// restore).
fn appended_rows(a: &ArrayMeta, b: &ArrayMeta) -> Vec<(u64, u64)> {
    deleted_rows(b, a)
}

/// Rows of `b` that `a` had too (same base slot) whose content is now in
/// another slot.
fn replaced_rows(a: &ArrayMeta, b: &ArrayMeta) -> Vec<(u64, u64)> {
    let mut rows: Vec<u64> = b
        .remap
        .iter()
        .filter(|(base, shadow)| {
            *base < &a.phys_slots
                && a.rowmap.logical_of(**base).is_some()
                && a.remap.get(*base) != Some(*shadow)
        })
        .filter_map(|(base, _)| b.rowmap.logical_of(*base))
        .collect();
    rows.sort_unstable();
    let mut out = Ranges::default();
    for r in rows {
        out.push(r, r + 1);
    }
    out.0
}

/// Half-open ranges, merged as they are pushed in ascending order.
#[derive(Default)]
struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    fn push(&mut self, s: u64, e: u64) {
        match self.0.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => self.0.push((s, e)),
        }
    }
}
