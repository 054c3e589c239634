//! Turning a requested change into a log op: validation against the staged
//! state, then writing the new row bytes to the data file (beyond the
//! committed length, or into a new file) so that the record can refer to
//! them (FORMAT.md §6.3, §7.1 steps 1–2).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::stage::{SpillRef, StagedFile};
use super::SyncPolicy;
use crate::data::{DataFile, FileTable};
use crate::model::array::{check_shape, normalize_index, ArrayRef};
use crate::model::dtype::DType;
use crate::model::error::{Error, IoContext, Result};
use crate::model::name::validate_name;
use crate::model::op::{Op, Payload};
use crate::model::state::{ArrayMeta, State};
use crate::model::sums::{ChunkSums, SumBuilder, CHUNK_BYTES};
use crate::read::rows::{read_rows_into, ShadowRows, Verifier};

/// Payloads up to this size travel inside the log record (redo), so that
/// `Sync::Always` needs a single fsync per commit (100 rows of 10 float32 is
/// 4 KB). Larger ones are written once, to the data file only, and checked
/// by crc at recovery: writing them twice would halve ingest throughput.
pub(crate) const INLINE_MAX: usize = 16 << 10;

/// New rows for a change: their dtype and full shape (rows first), and
/// where their bytes are.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub dtype: DType,
    pub shape: &'a [u64],
    pub src: Source<'a>,
}

/// Where the bytes of new rows are.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// In the caller's memory.
    Mem(&'a [u8]),
    /// In a transaction's spill file (FORMAT.md §1, staging files).
    Spill(&'a SpillRef),
    /// A whole data file written while a transaction was staged (saves).
    Staged(&'a StagedFile),
}

impl<'a> From<ArrayRef<'a>> for Rows<'a> {
    fn from(a: ArrayRef<'a>) -> Self {
        Rows {
            dtype: a.dtype,
            shape: a.shape,
            src: Source::Mem(a.data),
        }
    }
}

impl Rows<'_> {
    /// Bytes of the rows.
    pub fn len(&self) -> u64 {
        match self.src {
            Source::Mem(d) => d.len() as u64,
            Source::Spill(r) => r.len,
            Source::Staged(f) => f.sums.covered,
        }
    }

    /// Number of rows (first dimension).
    pub fn rows(&self) -> u64 {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Check ndim and that the byte length matches the shape; returns the
    /// number of bytes per row.
    pub fn check(&self, name: &str) -> Result<u64> {
        check_shape(name, self.dtype, self.shape, self.len())
    }
}

/// A change requested by the user, before validation.
pub(crate) enum Intent<'a> {
    Save {
        name: &'a str,
        array: Rows<'a>,
    },
    Append {
        name: &'a str,
        array: Rows<'a>,
    },
    Replace {
        name: &'a str,
        indices: &'a [i64],
        array: Rows<'a>,
    },
    DeleteRows {
        name: &'a str,
        indices: &'a [i64],
    },
    Drop {
        name: &'a str,
    },
    Rename {
        from: &'a str,
        to: &'a str,
    },
    Compact {
        name: &'a str,
    },
    /// Copy the array's live rows into a new file even if it has no dead
    /// rows (FORMAT.md §15.5: before a writable session on a file a
    /// version keeps).
    Relocate {
        name: &'a str,
    },
    /// Pin the current state as a version (FORMAT.md §15).
    Snapshot {
        tag: Option<&'a str>,
    },
    /// Delete a version (its table must be in memory).
    DeleteVersion {
        id: u64,
    },
    /// Give array `name` its entry in `version` (its table in memory).
    Restore {
        name: &'a str,
        version: u64,
    },
}

impl Intent<'_> {
    /// Names of the arrays the intent would modify or create.
    fn names(&self) -> Vec<&str> {
        match self {
            Intent::Save { name, .. }
            | Intent::Append { name, .. }
            | Intent::Replace { name, .. }
            | Intent::DeleteRows { name, .. }
            | Intent::Drop { name }
            | Intent::Compact { name }
            | Intent::Relocate { name }
            | Intent::Restore { name, .. } => vec![name],
            Intent::Rename { from, to } => vec![from, to],
            Intent::Snapshot { .. } | Intent::DeleteVersion { .. } => vec![],
        }
    }

    /// The array an append or replace writes new slots for (none when it
    /// writes no row).
    fn writes_slots(&self) -> Option<&str> {
        match self {
            Intent::Append { name, array } if array.rows() > 0 => Some(name),
            Intent::Replace { name, indices, .. } if !indices.is_empty() => Some(name),
            _ => None,
        }
    }
}

/// The array `intent` writes slots for, if its file is shared and its
/// slots end below the file's committed end: the tail rule (FORMAT.md
/// §15.2) needs it relocated first ([`Planner::relocate`]).
pub(crate) fn needs_relocation<'i>(state: &State, intent: &'i Intent<'_>) -> Option<&'i str> {
    let name = intent.writes_slots()?;
    let a = state.arrays.get(name)?;
    let r = state.file_refs.get(&a.file_id)?;
    (a.phys_slots < r.end_slots).then_some(name)
}

/// The handle's files, for a planner that writes (`None`: a dry run that
/// only validates, for a transaction staging its changes).
pub(crate) struct PlanIo<'e> {
    pub files: &'e mut FileTable,
    pub payload_gen: &'e mut HashMap<u64, u64>,
}

/// Plans the intents of one commit; remembers what the commit must do
/// besides logging its ops.
pub(crate) struct Planner<'e> {
    pub io: Option<PlanIo<'e>>,
    pub busy: &'e HashSet<String>,
    pub sync: SyncPolicy,
    /// Files created, removed again if the commit fails.
    pub created: Vec<u64>,
    /// Data not carried inline was written: under `Sync::Always` it is
    /// synced before the record.
    pub presync: bool,
    /// A sync inside planning failed: the commit poisons the handle.
    pub sync_failed: Option<PathBuf>,
}

impl<'e> Planner<'e> {
    pub fn new(io: Option<PlanIo<'e>>, busy: &'e HashSet<String>, sync: SyncPolicy) -> Self {
        Planner {
            io,
            busy,
            sync,
            created: Vec::new(),
            presync: false,
            sync_failed: None,
        }
    }

    /// Validate one intent against `state` and write its new bytes. Returns
    /// the op to log, or `None` when the change is a no-op. A dry run
    /// writes nothing and gives placeholder payloads and checksums.
    pub fn plan(&mut self, state: &State, intent: &Intent<'_>) -> Result<Option<Op>> {
        if let Some(name) = intent.names().into_iter().find(|n| self.busy.contains(*n)) {
            return Err(Error::InUse {
                array: name.to_string(),
            });
        }
        match intent {
            Intent::Save { name, array } => match self.unchanged_rows(state, name, array)? {
                Resave::Same => Ok(None),
                Resave::Rows(idx) => {
                    let rows = changed_rows(array, &idx);
                    let shape = [&[idx.len() as u64][..], &array.shape[1..]].concat();
                    let r = Rows {
                        dtype: array.dtype,
                        shape: &shape,
                        src: Source::Mem(&rows),
                    };
                    self.replace(state, name, &idx, &r).map(Some)
                }
                Resave::All => self.save(state, name, array).map(Some),
            },
            Intent::Append { name, array } => {
                let a = get(state, name)?;
                check_rows(name, a, array, None)?;
                let (first_slot, payload) = self.write_rows(state, a, array)?;
                Ok(Some(Op::Append {
                    name: name.to_string(),
                    first_slot,
                    rows: array.rows(),
                    payload,
                }))
            }
            Intent::Replace {
                name,
                indices,
                array,
            } => self.replace(state, name, indices, array).map(Some),
            Intent::DeleteRows { name, indices } => delete_rows(state, name, indices),
            Intent::Drop { name } => {
                get(state, name)?;
                Ok(Some(Op::Drop {
                    name: name.to_string(),
                }))
            }
            Intent::Rename { from, to } => rename(state, from, to),
            Intent::Compact { name } => self.compact(state, name),
            Intent::Relocate { name } => self.relocate(state, name).map(Some),
            Intent::Snapshot { tag } => snapshot(state, *tag).map(Some),
            Intent::DeleteVersion { id } => Ok(Some(Op::DeleteVersion {
                id: *id,
                files: version_table(state, *id)?
                    .values()
                    .map(|a| a.file_id)
                    .collect(),
            })),
            Intent::Restore { name, version } => restore(state, name, *version),
        }
    }

    /// Copy the live rows of `name` into a new file even if it has no dead
    /// rows: the tail rule's relocation, and a writable session's on a
    /// file that a version keeps (FORMAT.md §15.2, §15.5).
    pub fn relocate(&mut self, state: &State, name: &str) -> Result<Op> {
        let a = get(state, name)?;
        self.copy_to_new_file(state, name, a)
    }

    /// Content dedupe of a save over an array of the same dtype and shape
    /// (FORMAT.md §15.9): compare the new rows with the stored ones. All
    /// equal: nothing to write. At most a quarter of them differ: a
    /// replace of those rows (the rest stays where it is, and a version
    /// keeping the old rows shares them). Else, or when the stored rows are
    /// not one contiguous run of the file (deleted or replaced rows), or
    /// the rows are not in memory: a new file.
    fn unchanged_rows(&mut self, state: &State, name: &str, array: &Rows<'_>) -> Result<Resave> {
        let (Some(io), Source::Mem(data)) = (self.io.as_mut(), array.src) else {
            return Ok(Resave::All);
        };
        let Some(a) = state.arrays.get(name) else {
            return Ok(Resave::All);
        };
        let same_shape = a.dtype == array.dtype
            && array.shape.len() == a.row_shape.len() + 1
            && array.shape[1..] == a.row_shape[..]
            && array.rows() == a.rows();
        let bytes = a.rows() * a.row_bytes;
        if !same_shape || !a.is_identity() || a.row_bytes == 0 || bytes != data.len() as u64 {
            return Ok(Resave::All);
        }
        let df = io.files.get(a.file_id)?;
        let map = df.mapping(bytes)?;
        let stored = &map.bytes()[..bytes as usize];
        let limit = (a.rows() / 4) as usize;
        let rb = a.row_bytes as usize;
        let mut idx = Vec::new();
        // Blocks of whole rows: equal blocks (the common case) cost one
        // comparison each.
        let block = rb * (64 * 1024 / rb).max(1);
        for (i, (s, d)) in stored.chunks(block).zip(data.chunks(block)).enumerate() {
            if s == d {
                continue;
            }
            let first = i * (block / rb);
            for (j, (sr, dr)) in s.chunks(rb).zip(d.chunks(rb)).enumerate() {
                if sr != dr {
                    idx.push((first + j) as i64);
                }
            }
            if idx.len() > limit {
                return Ok(Resave::All);
            }
        }
        let tail_ok = state
            .file_refs
            .get(&a.file_id)
            .is_none_or(|r| r.end_slots == a.phys_slots);
        Ok(match idx.is_empty() {
            true => Resave::Same,
            false if tail_ok => Resave::Rows(idx),
            false => Resave::All,
        })
    }

    fn in_file(&mut self, crc32c: u32) -> Payload {
        self.presync = true;
        Payload::InFile {
            crc32c,
            synced: self.sync == SyncPolicy::Always,
        }
    }

    fn save(&mut self, state: &State, name: &str, array: &Rows<'_>) -> Result<Op> {
        validate_name(name)?;
        array.check(name)?;
        let id = state.next_file_id;
        let (payload, sums) = match (self.io.as_mut(), array.src) {
            (None, _) => (placeholder_payload(), placeholder_sums(array.len())),
            (Some(io), Source::Mem(data)) => {
                let df = io.files.create(id)?;
                self.created.push(id);
                if data.len() <= INLINE_MAX {
                    df.file.write_all_at(data, 0).ctx(&df.path)?;
                    (Payload::Inline(data.to_vec()), ChunkSums::of(data))
                } else {
                    let sums = df.write_with_sums(data, 0)?;
                    (self.in_file(sums.whole()), sums)
                }
            }
            (Some(io), Source::Staged(staged)) => {
                io.files.adopt(id, &staged.df)?;
                self.created.push(id);
                (self.in_file(staged.sums.whole()), staged.sums.clone())
            }
            (Some(_), Source::Spill(_)) => {
                return Err(Error::Internal("a save staged in a spill file".into()))
            }
        };
        if let Some(io) = self.io.as_mut() {
            io.files
                .mark_written(id, matches!(payload, Payload::Inline(_)));
            io.payload_gen.insert(id, state.gen);
        }
        Ok(Op::Put {
            name: name.to_string(),
            file_id: id,
            dtype: array.dtype,
            row_shape: array.shape[1..].to_vec(),
            rows: array.rows(),
            payload,
            sums,
        })
    }

    fn replace(
        &mut self,
        state: &State,
        name: &str,
        indices: &[i64],
        array: &Rows<'_>,
    ) -> Result<Op> {
        let a = get(state, name)?;
        check_rows(name, a, array, Some(indices.len() as u64))?;
        let rows = a.rows();
        let mut pairs = Vec::with_capacity(indices.len());
        for &idx in indices {
            pairs.push((normalize_index(name, idx, rows)?, idx));
        }
        let mut sorted = pairs.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::DuplicateIndex {
                array: name.to_string(),
                index: w[1].1,
            });
        }
        let slots: Vec<u64> = pairs.iter().map(|(i, _)| a.rowmap.base_slot(*i)).collect();
        let (first_slot, payload) = self.write_rows(state, a, array)?;
        Ok(Op::Replace {
            name: name.to_string(),
            slots,
            first_slot,
            payload,
        })
    }

    /// Write new rows after the committed slots of `a`'s file; returns the
    /// first slot written and the payload describing the bytes.
    fn write_rows(
        &mut self,
        state: &State,
        a: &ArrayMeta,
        rows: &Rows<'_>,
    ) -> Result<(u64, Payload)> {
        let first_slot = a.phys_slots;
        let Some(io) = self.io.as_mut() else {
            return Ok((first_slot, placeholder_payload()));
        };
        let df = io.files.get(a.file_id)?;
        io.payload_gen.insert(a.file_id, state.gen);
        let offset = first_slot * a.row_bytes;
        let payload = match rows.src {
            Source::Mem(data) => {
                df.file.write_all_at(data, offset).ctx(&df.path)?;
                if data.len() <= INLINE_MAX {
                    Payload::Inline(data.to_vec())
                } else {
                    self.in_file(crc32c::crc32c(data))
                }
            }
            Source::Spill(r) => match r.copy_to(&df, offset, INLINE_MAX)? {
                Some(bytes) => Payload::Inline(bytes),
                None => self.in_file(r.crc),
            },
            Source::Staged(_) => return Err(Error::Internal("rows staged as a whole file".into())),
        };
        if let Some(io) = self.io.as_mut() {
            io.files
                .mark_written(a.file_id, matches!(payload, Payload::Inline(_)));
        }
        Ok((first_slot, payload))
    }

    fn compact(&mut self, state: &State, name: &str) -> Result<Option<Op>> {
        let a = get(state, name)?;
        if a.dead_slots() == 0 && a.is_identity() {
            return Ok(None);
        }
        self.copy_to_new_file(state, name, a).map(Some)
    }

    fn copy_to_new_file(&mut self, state: &State, name: &str, a: &ArrayMeta) -> Result<Op> {
        let id = state.next_file_id;
        let sums = match self.io.as_mut() {
            None => placeholder_sums(a.rows() * a.row_bytes),
            Some(io) => {
                let src = io.files.get(a.file_id)?;
                let dst = io.files.create(id)?;
                self.created.push(id);
                let sums = copy_rows(name, a, &src, &dst)?;
                // Compaction is heavy anyway: make the new file durable
                // before the record, so recovery never has to re-check it.
                // A failed sync poisons the handle.
                if let Err(e) = dst.file.sync_data() {
                    self.sync_failed = Some(dst.path.clone());
                    return Err(Error::io(&dst.path, e));
                }
                let data_dir = io.files.data_dir.clone();
                if let Err(e) = io.files.vfs.sync_dir(&data_dir) {
                    self.sync_failed = Some(data_dir.clone());
                    return Err(Error::io(&data_dir, e));
                }
                sums
            }
        };
        Ok(Op::Compact {
            name: name.to_string(),
            file_id: id,
            rows: a.rows(),
            sums,
        })
    }
}

fn snapshot(state: &State, tag: Option<&str>) -> Result<Op> {
    if let Some(t) = tag {
        validate_name(t)?;
        if let Some(v) = state.version_by_tag(t) {
            return Err(Error::InvalidArgument(format!(
                "snapshot tag '{t}' is already used by version {}",
                v.id
            )));
        }
    }
    Ok(Op::Snapshot {
        tag: tag.map(str::to_string),
        // The record this op will be in.
        id: state.seq + 1,
    })
}

/// The array table of a version, which the engine loaded before planning.
fn version_table(state: &State, id: u64) -> Result<&crate::model::version::ArrayTable> {
    let v = state
        .versions
        .get(&id)
        .ok_or_else(|| Error::Internal(format!("version {id} vanished while planning")))?;
    v.arrays
        .as_deref()
        .ok_or_else(|| Error::Internal(format!("version {id}'s table was not loaded")))
}

fn restore(state: &State, name: &str, version: u64) -> Result<Option<Op>> {
    let table = version_table(state, version)?;
    let entry = table.get(name).ok_or_else(|| Error::NotInVersion {
        array: name.to_string(),
        version,
    })?;
    if state.arrays.get(name).is_some_and(|a| a.same_rows(entry)) {
        return Ok(None);
    }
    Ok(Some(Op::Restore {
        name: name.to_string(),
        version,
        entry: crate::model::op::RestoreEntry(entry.clone()),
    }))
}

/// What a save over an array of the same shape must write.
enum Resave {
    /// Nothing: the rows are the stored ones.
    Same,
    /// These rows (logical indices, ascending) differ.
    Rows(Vec<i64>),
    /// A new file.
    All,
}

/// The rows `idx` of `array` (in memory), back to back.
fn changed_rows(array: &Rows<'_>, idx: &[i64]) -> Vec<u8> {
    let Source::Mem(data) = array.src else {
        return Vec::new();
    };
    let rb = data.len() / array.rows().max(1) as usize;
    let mut out = Vec::with_capacity(idx.len() * rb);
    for &i in idx {
        out.extend_from_slice(&data[i as usize * rb..(i as usize + 1) * rb]);
    }
    out
}

/// The payload of a dry run's op (never logged).
fn placeholder_payload() -> Payload {
    Payload::InFile {
        crc32c: 0,
        synced: false,
    }
}

/// Checksums of the right shape for `len` bytes (a dry run's; never logged).
fn placeholder_sums(len: u64) -> ChunkSums {
    ChunkSums {
        covered: len,
        sums: vec![0; len.div_ceil(CHUNK_BYTES) as usize],
    }
}

fn delete_rows(state: &State, name: &str, indices: &[i64]) -> Result<Option<Op>> {
    let a = get(state, name)?;
    let rows = a.rows();
    let mut logical = Vec::with_capacity(indices.len());
    for &idx in indices {
        logical.push(normalize_index(name, idx, rows)?);
    }
    logical.sort_unstable();
    logical.dedup();
    if logical.is_empty() {
        return Ok(None);
    }
    // Logical order follows base-slot order, so slots come out sorted.
    let slots = logical.iter().map(|&i| a.rowmap.base_slot(i)).collect();
    Ok(Some(Op::DeleteRows {
        name: name.to_string(),
        slots,
    }))
}

fn rename(state: &State, from: &str, to: &str) -> Result<Option<Op>> {
    validate_name(to)?;
    get(state, from)?;
    if from == to {
        return Ok(None);
    }
    if state.arrays.contains_key(to) {
        return Err(Error::AlreadyExists(to.to_string()));
    }
    Ok(Some(Op::Rename {
        from: from.to_string(),
        to: to.to_string(),
    }))
}

fn shape_str(s: &[u64]) -> String {
    let parts: Vec<String> = s.iter().map(u64::to_string).collect();
    format!("({})", parts.join(", "))
}

fn get<'s>(state: &'s State, name: &str) -> Result<&'s ArrayMeta> {
    state
        .arrays
        .get(name)
        .map(AsRef::as_ref)
        .ok_or_else(|| Error::NotFound(name.to_string()))
}

/// Check that `array` holds whole rows of array `name`; `rows`: the row
/// count it must have, if fixed.
fn check_rows(name: &str, a: &ArrayMeta, array: &Rows<'_>, rows: Option<u64>) -> Result<()> {
    if array.dtype != a.dtype {
        return Err(Error::DTypeMismatch {
            array: name.to_string(),
            stored: a.dtype,
            got: array.dtype,
        });
    }
    let trailing_ok =
        array.shape.len() == a.row_shape.len() + 1 && array.shape[1..] == a.row_shape[..];
    if !trailing_ok || rows.is_some_and(|r| r != array.rows()) {
        let first = rows.map_or("n".to_string(), |r| r.to_string());
        let rest: Vec<String> = a.row_shape.iter().map(u64::to_string).collect();
        let expected = if rest.is_empty() {
            format!("({first},)")
        } else {
            format!("({first}, {})", rest.join(", "))
        };
        return Err(Error::ShapeMismatch {
            array: name.to_string(),
            expected,
            got: shape_str(array.shape),
        });
    }
    array.check(name)?;
    Ok(())
}

/// Copy the visible rows of `a`, in order, into the new file `dst`,
/// verifying the checksums of every chunk read.
fn copy_rows(name: &str, a: &ArrayMeta, src: &DataFile, dst: &DataFile) -> Result<ChunkSums> {
    let rb = a.row_bytes.max(1);
    let block_rows = (8 * CHUNK_BYTES / rb).max(1);
    let mut buf = Vec::new();
    let mut sums = SumBuilder::default();
    let mut row = 0u64;
    let mut offset = 0u64;
    let mut verifier = Verifier::new(name, a, src);
    // Many blocks: the replaced rows are loaded once, not for each block.
    let shadow = if a.rows() > block_rows && !a.remap.is_empty() {
        Some(ShadowRows::load(a, src, Some(&mut verifier))?)
    } else {
        None
    };
    while row < a.rows() {
        let end = (row + block_rows).min(a.rows());
        let n = ((end - row) * a.row_bytes) as usize;
        buf.resize(n, 0);
        read_rows_into(
            a,
            src,
            row,
            end,
            &mut buf,
            Some(&mut verifier),
            shadow.as_ref(),
        )?;
        dst.file.write_all_at(&buf, offset).ctx(&dst.path)?;
        sums.feed(&buf);
        offset += n as u64;
        row = end;
    }
    Ok(sums.finish())
}
