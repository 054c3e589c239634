//! Turning a requested change into a log op: validation, then writing the
//! new row bytes to the data file (beyond the committed length, or into a
//! new file) so that the record can refer to them.

use crate::array::ArrayRef;
use crate::error::{Error, IoContext, Result};
use crate::meta::{ArrayMeta, ChunkSums, Op, Payload, State, CHUNK_BYTES};
use crate::options::Sync as SyncPolicy;
use crate::read::read_rows_into;
use crate::store::{write_with_sums, Io};
use crate::validate_name;

/// Payloads up to this size travel inside the log record (redo), so that
/// `Sync::Always` needs a single fsync per commit (100 rows of 10 float32 is
/// 4 KB). Larger ones are written once, to the data file only, and checked
/// by crc at recovery: writing them twice would halve ingest throughput.
pub(crate) const INLINE_MAX: usize = 16 << 10;

/// A change requested by the user, before validation.
pub(crate) enum Intent<'a> {
    Save {
        name: &'a str,
        array: ArrayRef<'a>,
    },
    Append {
        name: &'a str,
        array: ArrayRef<'a>,
    },
    Replace {
        name: &'a str,
        indices: &'a [i64],
        array: ArrayRef<'a>,
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
}

impl Intent<'_> {
    /// Names of existing arrays the intent would modify.
    fn names(&self) -> Vec<&str> {
        match self {
            Intent::Save { name, .. }
            | Intent::Append { name, .. }
            | Intent::Replace { name, .. }
            | Intent::DeleteRows { name, .. }
            | Intent::Drop { name }
            | Intent::Compact { name } => vec![name],
            Intent::Rename { from, to } => vec![from, to],
        }
    }
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
fn check_rows(name: &str, a: &ArrayMeta, array: &ArrayRef<'_>, rows: Option<u64>) -> Result<()> {
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

/// Normalize one index (negative from the end) and check its range.
pub(crate) fn normalize(name: &str, index: i64, rows: u64) -> Result<u64> {
    let i = if index < 0 {
        i128::from(index) + i128::from(rows)
    } else {
        i128::from(index)
    };
    if i < 0 || i >= i128::from(rows) {
        return Err(Error::IndexOutOfRange {
            array: name.to_string(),
            index,
            rows,
        });
    }
    Ok(i as u64)
}

fn payload_for(io: &Io, data: &[u8], presync: &mut bool) -> Payload {
    if data.len() <= INLINE_MAX {
        Payload::Inline(data.to_vec())
    } else {
        *presync = true;
        Payload::InFile {
            crc32c: crc32c::crc32c(data),
            synced: io.sync == SyncPolicy::Always,
        }
    }
}

/// Validate one intent against `state` and write its new bytes. Returns the
/// op to log, or `None` when the change is a no-op. Files created are pushed
/// to `created` so a failed commit can remove them.
pub(crate) fn plan(
    io: &mut Io,
    state: &State,
    intent: &Intent<'_>,
    created: &mut Vec<u64>,
) -> Result<Option<Op>> {
    let mut presync = false;
    for name in intent.names() {
        if io.busy.contains(name) {
            return Err(Error::InvalidArgument(format!(
                "array '{name}' is open for in-place writing; finish that session first"
            )));
        }
    }
    let op = match intent {
        Intent::Save { name, array } => {
            validate_name(name)?;
            array.check(name)?;
            let id = state.next_file_id;
            let df = io.create_file(id)?;
            created.push(id);
            let data = array.data;
            let (payload, sums) = if data.len() <= INLINE_MAX {
                df.file.write_all_at(data, 0).ctx(&df.path)?;
                (Payload::Inline(data.to_vec()), ChunkSums::of(data))
            } else {
                let sums = write_with_sums(&df, data, 0)?;
                presync = true;
                let p = Payload::InFile {
                    crc32c: sums.whole(),
                    synced: io.sync == SyncPolicy::Always,
                };
                (p, sums)
            };
            io.dirty_files.insert(id);
            io.payload_gen.insert(id, state.gen);
            Some(Op::Put {
                name: name.to_string(),
                file_id: id,
                dtype: array.dtype,
                row_shape: array.shape[1..].to_vec(),
                rows: array.rows(),
                payload,
                sums,
            })
        }
        Intent::Append { name, array } => {
            let a = get(state, name)?;
            check_rows(name, a, array, None)?;
            let first_slot = a.phys_slots;
            let offset = first_slot * a.row_bytes;
            let df = io.file(a.file_id)?;
            df.file.write_all_at(array.data, offset).ctx(&df.path)?;
            io.dirty_files.insert(a.file_id);
            io.payload_gen.insert(a.file_id, state.gen);
            Some(Op::Append {
                name: name.to_string(),
                first_slot,
                rows: array.rows(),
                payload: payload_for(io, array.data, &mut presync),
            })
        }
        Intent::Replace {
            name,
            indices,
            array,
        } => {
            let a = get(state, name)?;
            check_rows(name, a, array, Some(indices.len() as u64))?;
            let rows = a.rows();
            let mut pairs = Vec::with_capacity(indices.len());
            for &idx in indices.iter() {
                pairs.push((normalize(name, idx, rows)?, idx));
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
            let first_slot = a.phys_slots;
            let offset = first_slot * a.row_bytes;
            let df = io.file(a.file_id)?;
            df.file.write_all_at(array.data, offset).ctx(&df.path)?;
            io.dirty_files.insert(a.file_id);
            io.payload_gen.insert(a.file_id, state.gen);
            Some(Op::Replace {
                name: name.to_string(),
                slots,
                first_slot,
                payload: payload_for(io, array.data, &mut presync),
            })
        }
        Intent::DeleteRows { name, indices } => {
            let a = get(state, name)?;
            let rows = a.rows();
            let mut logical = Vec::with_capacity(indices.len());
            for &idx in indices.iter() {
                logical.push(normalize(name, idx, rows)?);
            }
            logical.sort_unstable();
            logical.dedup();
            if logical.is_empty() {
                return Ok(None);
            }
            // Logical order follows base-slot order, so slots come out sorted.
            let slots = logical.iter().map(|&i| a.rowmap.base_slot(i)).collect();
            Some(Op::DeleteRows {
                name: name.to_string(),
                slots,
            })
        }
        Intent::Drop { name } => {
            get(state, name)?;
            Some(Op::Drop {
                name: name.to_string(),
            })
        }
        Intent::Rename { from, to } => {
            validate_name(to)?;
            get(state, from)?;
            if from == to {
                return Ok(None);
            }
            if state.arrays.contains_key(*to) {
                return Err(Error::AlreadyExists(to.to_string()));
            }
            Some(Op::Rename {
                from: from.to_string(),
                to: to.to_string(),
            })
        }
        Intent::Compact { name } => {
            let a = get(state, name)?;
            if a.dead_slots() == 0 && a.is_identity() {
                return Ok(None);
            }
            let id = state.next_file_id;
            let src = io.file(a.file_id)?;
            let dst = io.create_file(id)?;
            created.push(id);
            let sums = copy_rows(name, a, &src, &dst)?;
            // Compaction is heavy anyway: make the new file durable before
            // the record, so recovery never has to re-check it.
            // A failed sync poisons the handle (see `Io::sync_failed`).
            if let Err(e) = dst.file.sync_data() {
                io.sync_failed = Some(dst.path.clone());
                return Err(Error::io(&dst.path, e));
            }
            if let Err(e) = io.vfs.sync_dir(&io.data_dir) {
                io.sync_failed = Some(io.data_dir.clone());
                return Err(Error::io(&io.data_dir, e));
            }
            Some(Op::Compact {
                name: name.to_string(),
                file_id: id,
                rows: a.rows(),
                sums,
            })
        }
    };
    if presync {
        io.presync = true;
    }
    Ok(op)
}

/// Copy the visible rows of `a`, in order, into the new file `dst`.
fn copy_rows(
    name: &str,
    a: &ArrayMeta,
    src: &crate::store::DataFile,
    dst: &crate::store::DataFile,
) -> Result<ChunkSums> {
    let rb = a.row_bytes.max(1);
    let block_rows = (8 * CHUNK_BYTES / rb).max(1);
    let mut buf = Vec::new();
    let mut sums = crate::meta::SumBuilder::default();
    let mut row = 0u64;
    let mut offset = 0u64;
    let mut verifier = crate::read::Verifier::new(name, a, src);
    // Many blocks: find each block's replaced rows in a sorted remap.
    let sorted =
        (a.rows() > block_rows && !a.remap.is_empty()).then(|| crate::read::sorted_remap(a));
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
            sorted.as_deref(),
        )?;
        dst.file.write_all_at(&buf, offset).ctx(&dst.path)?;
        sums.feed(&buf);
        offset += n as u64;
        row = end;
    }
    Ok(sums.finish())
}
