//! Transactions that stage their changes before committing them
//! ([`Txn`]): each change is validated against the state the earlier ones
//! leave (shapes, dtypes, names, indices against the staged row counts),
//! and its rows are kept in memory up to a budget, beyond it in staging
//! files next to the data files, so that a change of any size (an import, a
//! conversion) is one atomic commit in bounded memory. Staging files are
//! visible to nothing until the commit's record lands; a transaction that
//! never commits removes them, and a crash leaves them for the next writer
//! open to remove (FORMAT.md §1, §7.4 step 6).
//!
//! At commit, the staged changes are planned again against the state they
//! are committed on. If another writer changed the store meanwhile and a
//! change no longer applies, the commit fails with `Error::Conflict` and
//! nothing is committed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::plan::{Intent, Planner, Rows, Source};
use super::Shared;
use crate::data::DataFile;
use crate::format::{DATA_DIR, STAGE_PREFIX};
use crate::io::vfs::{LockGuard, OpenMode, Vfs};
use crate::model::array::{check_shape, normalize_index, ArrayData, ArrayRef};
use crate::model::dtype::DType;
use crate::model::error::{Error, IoContext, Result};
use crate::model::state::State;
use crate::model::sums::{ChunkSums, SumBuilder, CHUNK_BYTES};
use crate::util::now_ns;

/// Rows of a staged change kept in a transaction's spill file.
pub(crate) struct SpillRef {
    pub file: Arc<DataFile>,
    pub offset: u64,
    pub len: u64,
    /// CRC-32C of the bytes.
    pub crc: u32,
}

impl SpillRef {
    /// Copy the rows to `dst` at `at`, checking them against their CRC as
    /// they go. Returns the bytes if they are at most `keep` long (for an
    /// inline payload).
    pub fn copy_to(&self, dst: &DataFile, at: u64, keep: usize) -> Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; self.len.min(CHUNK_BYTES) as usize];
        let mut kept = Vec::new();
        let mut crc = 0u32;
        let mut done = 0u64;
        while done < self.len {
            let n = (self.len - done).min(buf.len() as u64) as usize;
            let piece = &mut buf[..n];
            self.file
                .file
                .read_exact_at(piece, self.offset + done)
                .ctx(&self.file.path)?;
            crc = crc32c::crc32c_append(crc, piece);
            dst.file.write_all_at(piece, at + done).ctx(&dst.path)?;
            if self.len <= keep as u64 {
                kept.extend_from_slice(piece);
            }
            done += n as u64;
        }
        if crc != self.crc {
            return Err(Error::corrupt(
                &self.file.path,
                format!(
                    "staged rows at bytes {}..{} changed before the commit",
                    self.offset,
                    self.offset + self.len
                ),
            ));
        }
        Ok((self.len <= keep as u64).then_some(kept))
    }
}

/// A whole data file written while a transaction was staged, under a
/// staging name; a commit renames it to its data file name.
pub(crate) struct StagedFile {
    pub df: Arc<DataFile>,
    pub sums: ChunkSums,
}

/// A staging file and the lock that tells other writers it is in use.
struct TempFile {
    df: Arc<DataFile>,
    _lock: LockGuard,
}

/// The bytes of a staged change.
enum Data {
    Mem(Vec<u8>),
    Spill(SpillRef),
    Staged(StagedFile),
}

/// A staged change, owning its rows.
enum Step {
    Save {
        name: String,
        dtype: DType,
        shape: Vec<u64>,
        data: Data,
    },
    Append {
        name: String,
        dtype: DType,
        shape: Vec<u64>,
        data: Data,
    },
    Replace {
        name: String,
        indices: Vec<i64>,
        dtype: DType,
        shape: Vec<u64>,
        data: Data,
    },
    DeleteRows {
        name: String,
        indices: Vec<i64>,
    },
    Drop {
        name: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Compact {
        name: String,
    },
}

fn rows<'a>(dtype: DType, shape: &'a [u64], data: &'a Data) -> Rows<'a> {
    let src = match data {
        Data::Mem(v) => Source::Mem(v),
        Data::Spill(r) => Source::Spill(r),
        Data::Staged(f) => Source::Staged(f),
    };
    Rows { dtype, shape, src }
}

impl Step {
    fn intent(&self) -> Intent<'_> {
        match self {
            Step::Save {
                name,
                dtype,
                shape,
                data,
            } => Intent::Save {
                name,
                array: rows(*dtype, shape, data),
            },
            Step::Append {
                name,
                dtype,
                shape,
                data,
            } => Intent::Append {
                name,
                array: rows(*dtype, shape, data),
            },
            Step::Replace {
                name,
                indices,
                dtype,
                shape,
                data,
            } => Intent::Replace {
                name,
                indices,
                array: rows(*dtype, shape, data),
            },
            Step::DeleteRows { name, indices } => Intent::DeleteRows { name, indices },
            Step::Drop { name } => Intent::Drop { name },
            Step::Rename { from, to } => Intent::Rename { from, to },
            Step::Compact { name } => Intent::Compact { name },
        }
    }

    /// What the change is, for error messages.
    fn describe(&self) -> String {
        match self {
            Step::Save { name, .. } => format!("save of '{name}'"),
            Step::Append { name, .. } => format!("append to '{name}'"),
            Step::Replace { name, .. } => format!("replace in '{name}'"),
            Step::DeleteRows { name, .. } => format!("delete of rows of '{name}'"),
            Step::Drop { name } => format!("drop of '{name}'"),
            Step::Rename { from, to } => format!("rename of '{from}' to '{to}'"),
            Step::Compact { name } => format!("compaction of '{name}'"),
        }
    }
}

/// Default bytes of staged rows a transaction keeps in memory.
pub const TXN_MEMORY_BYTES: usize = 64 << 20;

/// A transaction: changes staged, validated one by one, and committed
/// atomically by [`Txn::commit`] (see the module documentation). Dropping
/// it without committing discards the changes and their staging files.
pub struct Txn {
    shared: Arc<Shared>,
    vfs: Arc<dyn Vfs>,
    data_dir: PathBuf,
    /// Seq of the state the changes were first staged against.
    base_seq: u64,
    /// The state after the staged changes (placeholder payloads).
    staged: State,
    busy: HashSet<String>,
    steps: Vec<Step>,
    spill: Option<(TempFile, u64)>,
    temps: Vec<TempFile>,
    mem_used: usize,
    mem_limit: usize,
}

fn no_stream(name: &str) -> Error {
    Error::InvalidArgument(format!(
        "array '{name}': rows of 0 bytes cannot be streamed (their count would be unknown); stage them with save or append"
    ))
}

/// A unique staging file name within this process.
fn stage_name(kind: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{STAGE_PREFIX}{}-{n}-{:x}.{kind}",
        std::process::id(),
        now_ns()
    )
}

impl Txn {
    /// A transaction on the engine behind `shared`, staging against its
    /// current state.
    pub(crate) fn begin(shared: Arc<Shared>, mem_limit: usize) -> Result<Txn> {
        let (staged, busy, vfs, data_dir) = {
            let g = shared.lock();
            g.check_writable()?;
            (
                g.state.clone(),
                g.busy.clone(),
                g.vfs.clone(),
                g.dir.join(DATA_DIR),
            )
        };
        Ok(Txn {
            shared,
            vfs,
            data_dir,
            base_seq: staged.seq,
            staged,
            busy,
            steps: Vec::new(),
            spill: None,
            temps: Vec::new(),
            mem_used: 0,
            mem_limit,
        })
    }

    /// Validate `step` against the staged state and stage it.
    fn stage(&mut self, step: Step) -> Result<()> {
        let mut planner = Planner::new(None, &self.busy, super::SyncPolicy::Never);
        let intent = step.intent();
        if let Some(name) = super::plan::needs_relocation(&self.staged, &intent) {
            let op = planner.relocate(&self.staged, name)?;
            self.staged
                .apply(&op, 0)
                .map_err(|d| Error::Internal(format!("a relocation does not apply: {d}")))?;
        }
        let op = planner.plan(&self.staged, &intent)?;
        if let Some(op) = op {
            self.staged
                .apply(&op, 0)
                .map_err(|d| Error::Internal(format!("a validated change does not apply: {d}")))?;
        }
        self.steps.push(step);
        Ok(())
    }

    /// Check a change against the staged state before its rows are copied
    /// anywhere (a dry run of the planner on borrowed rows).
    fn check(&self, intent: &Intent<'_>) -> Result<()> {
        let mut planner = Planner::new(None, &self.busy, super::SyncPolicy::Never);
        planner.plan(&self.staged, intent).map(|_| ())
    }

    /// Create a staging file, locked while this transaction holds it.
    fn temp_file(&self, kind: &str) -> Result<TempFile> {
        let path = self.data_dir.join(stage_name(kind));
        let lock = self.vfs.lock_exclusive(&path, None).ctx(&path)?;
        let file = self.vfs.open(&path, OpenMode::Create).ctx(&path)?;
        Ok(TempFile {
            df: Arc::new(DataFile::new(path, file)),
            _lock: lock,
        })
    }

    /// Keep `data` (rows of an append or replace): in memory within the
    /// budget, else in the spill file.
    fn keep_rows(&mut self, data: &[u8]) -> Result<Data> {
        if self.mem_used + data.len() <= self.mem_limit {
            self.mem_used += data.len();
            return Ok(Data::Mem(data.to_vec()));
        }
        let (file, end) = match self.spill.take() {
            Some(s) => s,
            None => (self.temp_file("spill")?, 0),
        };
        let df = file.df.clone();
        let written = df.file.write_all_at(data, end).ctx(&df.path);
        self.spill = Some((file, end + data.len() as u64));
        written?;
        Ok(Data::Spill(SpillRef {
            file: df,
            offset: end,
            len: data.len() as u64,
            crc: crc32c::crc32c(data),
        }))
    }

    /// Keep the rows of a save: small ones in memory, others written at
    /// once to a staging file that the commit renames into place.
    fn keep_array(&mut self, data: &[u8]) -> Result<Data> {
        if data.len() <= super::plan::INLINE_MAX {
            self.mem_used += data.len();
            return Ok(Data::Mem(data.to_vec()));
        }
        let temp = self.temp_file("tmp")?;
        let sums = temp.df.write_with_sums(data, 0)?;
        let df = temp.df.clone();
        self.temps.push(temp);
        Ok(Data::Staged(StagedFile { df, sums }))
    }

    /// Stage the creation or overwrite of array `name`.
    pub fn save(&mut self, name: &str, array: ArrayRef<'_>) -> Result<()> {
        self.check(&Intent::Save {
            name,
            array: array.into(),
        })?;
        let data = self.keep_array(array.data)?;
        self.stage(Step::Save {
            name: name.to_string(),
            dtype: array.dtype,
            shape: array.shape.to_vec(),
            data,
        })
    }

    /// Stage appending rows to `name` (as it is after the earlier changes).
    pub fn append(&mut self, name: &str, array: ArrayRef<'_>) -> Result<()> {
        self.check(&Intent::Append {
            name,
            array: array.into(),
        })?;
        let data = self.keep_rows(array.data)?;
        self.stage(Step::Append {
            name: name.to_string(),
            dtype: array.dtype,
            shape: array.shape.to_vec(),
            data,
        })
    }

    /// Stage replacing rows of `name`; `indices` count in the array as the
    /// earlier changes leave it (negative from its end).
    pub fn replace(&mut self, name: &str, indices: &[i64], array: ArrayRef<'_>) -> Result<()> {
        self.check(&Intent::Replace {
            name,
            indices,
            array: array.into(),
        })?;
        let data = self.keep_rows(array.data)?;
        self.stage(Step::Replace {
            name: name.to_string(),
            indices: indices.to_vec(),
            dtype: array.dtype,
            shape: array.shape.to_vec(),
            data,
        })
    }

    /// Stage deleting rows of `name` (indices as for [`Txn::replace`]).
    pub fn delete_rows(&mut self, name: &str, indices: &[i64]) -> Result<()> {
        self.stage(Step::DeleteRows {
            name: name.to_string(),
            indices: indices.to_vec(),
        })
    }

    /// Stage removing array `name`.
    pub fn drop_array(&mut self, name: &str) -> Result<()> {
        self.stage(Step::Drop {
            name: name.to_string(),
        })
    }

    /// Stage renaming `from` to `to` (which must not exist then).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.stage(Step::Rename {
            from: from.to_string(),
            to: to.to_string(),
        })
    }

    /// Stage rewriting `name` without its dead rows.
    pub fn compact(&mut self, name: &str) -> Result<()> {
        self.stage(Step::Compact {
            name: name.to_string(),
        })
    }

    /// Shape of `name` as the staged changes leave it.
    pub fn shape(&self, name: &str) -> Result<Vec<u64>> {
        self.staged
            .arrays
            .get(name)
            .map(|a| a.shape())
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// Element type of `name` as the staged changes leave it.
    pub fn dtype(&self, name: &str) -> Result<DType> {
        self.staged
            .arrays
            .get(name)
            .map(|a| a.dtype)
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// True if `name` exists once the staged changes apply.
    pub fn has(&self, name: &str) -> bool {
        self.staged.arrays.contains_key(name)
    }

    /// Names of the arrays once the staged changes apply, sorted.
    pub fn names(&self) -> Vec<String> {
        self.staged.arrays.keys().cloned().collect()
    }

    /// Number of changes staged.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True if nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Start streaming the rows of a new array `name` of `dtype` and row
    /// shape `row_shape` into a staging file; [`RowWriter::finish`] stages
    /// the save. Memory stays bounded whatever the array's size.
    pub fn save_stream(
        &mut self,
        name: &str,
        dtype: DType,
        row_shape: &[u64],
    ) -> Result<RowWriter<'_>> {
        let mut shape = vec![0];
        shape.extend_from_slice(row_shape);
        let row_bytes = check_shape(name, dtype, &shape, 0).and_then(|_| {
            self.check(&Intent::Save {
                name,
                array: ArrayRef::new(dtype, &shape, &[]).into(),
            })
            .map(|_| crate::model::state::row_bytes(dtype, row_shape).unwrap_or(0))
        })?;
        if row_bytes == 0 {
            return Err(no_stream(name));
        }
        let temp = self.temp_file("tmp")?;
        Ok(RowWriter {
            txn: self,
            name: name.to_string(),
            dtype,
            row_shape: row_shape.to_vec(),
            row_bytes,
            target: Some(Target::NewFile(temp, SumBuilder::default())),
            written: 0,
        })
    }

    /// Start streaming rows to append to `name` (as the earlier changes
    /// leave it) through the spill file; [`RowWriter::finish`] stages the
    /// append.
    pub fn append_stream(&mut self, name: &str) -> Result<RowWriter<'_>> {
        let (dtype, row_shape, row_bytes) = {
            let a = self
                .staged
                .arrays
                .get(name)
                .ok_or_else(|| Error::NotFound(name.to_string()))?;
            (a.dtype, a.row_shape.clone(), a.row_bytes)
        };
        if self.busy.contains(name) {
            return Err(Error::InUse {
                array: name.to_string(),
            });
        }
        if row_bytes == 0 {
            return Err(no_stream(name));
        }
        let (file, end) = match self.spill.take() {
            Some(s) => s,
            None => (self.temp_file("spill")?, 0),
        };
        Ok(RowWriter {
            txn: self,
            name: name.to_string(),
            dtype,
            row_shape,
            row_bytes,
            target: Some(Target::Spill(file, end, 0)),
            written: 0,
        })
    }

    /// Commit the staged changes atomically. If another writer changed the
    /// store since they were staged and one no longer applies, nothing is
    /// committed and the error is `Conflict`, naming the change.
    pub fn commit(mut self) -> Result<()> {
        let intents: Vec<Intent<'_>> = self.steps.iter().map(Step::intent).collect();
        let mut g = self.shared.lock();
        let res = g.commit_described(&intents, &|i| self.steps[i].describe());
        // After the commit: a writer by turns catches up inside it.
        let moved = g.state.seq != self.base_seq;
        drop(g);
        drop(intents);
        let res = match res {
            Err((i, e)) if moved && e.is_validation() => Err(Error::Conflict(format!(
                "the staged {} no longer applies to the store as another writer left it: {e}",
                self.steps[i].describe()
            ))),
            Err((_, e)) => Err(e),
            Ok(()) => Ok(()),
        };
        if res.is_ok() {
            // The staged files now belong to the store.
            self.temps.clear();
        }
        self.shared.cv.notify_all();
        res
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        let files = self
            .temps
            .drain(..)
            .chain(self.spill.take().map(|(f, _)| f));
        for t in files {
            let _ = self.vfs.remove_file(&t.df.path);
        }
    }
}

/// Where a [`RowWriter`] puts its rows.
enum Target {
    /// A new array's staging file, and its checksums so far.
    NewFile(TempFile, SumBuilder),
    /// The spill file, the offset the rows start at, and their CRC so far.
    Spill(TempFile, u64, u32),
}

/// Streams the rows of one staged change (see [`Txn::save_stream`],
/// [`Txn::append_stream`]). Dropping it without [`RowWriter::finish`]
/// stages nothing.
pub struct RowWriter<'t> {
    txn: &'t mut Txn,
    name: String,
    dtype: DType,
    row_shape: Vec<u64>,
    row_bytes: u64,
    /// `None` once finished.
    target: Option<Target>,
    written: u64,
}

impl RowWriter<'_> {
    /// Bytes per row.
    pub fn row_bytes(&self) -> u64 {
        self.row_bytes
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.written.checked_div(self.row_bytes).unwrap_or(0)
    }

    /// Write whole rows (C order, little-endian).
    pub fn write(&mut self, rows: &[u8]) -> Result<()> {
        if self.row_bytes > 0 && !(rows.len() as u64).is_multiple_of(self.row_bytes) {
            return Err(Error::InvalidArgument(format!(
                "array '{}': {} bytes are not whole rows of {} bytes",
                self.name,
                rows.len(),
                self.row_bytes
            )));
        }
        match &mut self.target {
            None => {}
            Some(Target::NewFile(t, sums)) => {
                t.df.file.write_all_at(rows, self.written).ctx(&t.df.path)?;
                sums.feed(rows);
            }
            Some(Target::Spill(t, start, crc)) => {
                t.df.file
                    .write_all_at(rows, *start + self.written)
                    .ctx(&t.df.path)?;
                *crc = crc32c::crc32c_append(*crc, rows);
            }
        }
        self.written += rows.len() as u64;
        Ok(())
    }

    /// Stage the change with every row written.
    pub fn finish(mut self) -> Result<()> {
        let rows = self.rows();
        let mut shape = vec![rows];
        shape.extend_from_slice(&self.row_shape);
        let (name, dtype, written) = (self.name.clone(), self.dtype, self.written);
        match self.target.take() {
            None => Ok(()),
            Some(Target::NewFile(temp, sums)) => {
                let staged = StagedFile {
                    df: temp.df.clone(),
                    sums: sums.finish(),
                };
                self.txn.temps.push(temp);
                self.txn.stage(Step::Save {
                    name,
                    dtype,
                    shape,
                    data: Data::Staged(staged),
                })
            }
            Some(Target::Spill(file, start, crc)) => {
                let spill = SpillRef {
                    file: file.df.clone(),
                    offset: start,
                    len: written,
                    crc,
                };
                self.txn.spill = Some((file, start + written));
                self.txn.stage(Step::Append {
                    name,
                    dtype,
                    shape,
                    data: Data::Spill(spill),
                })
            }
        }
    }
}

impl Drop for RowWriter<'_> {
    /// Abandoned rows: a new array's staging file is removed; rows written
    /// to the spill file become dead bytes in it.
    fn drop(&mut self) {
        match self.target.take() {
            None => {}
            Some(Target::NewFile(temp, _)) => {
                let _ = self.txn.vfs.remove_file(&temp.df.path);
            }
            Some(Target::Spill(file, start, _)) => {
                self.txn.spill = Some((file, start + self.written));
            }
        }
    }
}

/// The rows of one array while a transaction's changes are read back (see
/// [`Txn::read`]).
struct Materialized {
    dtype: DType,
    shape: Vec<u64>,
    data: Vec<u8>,
}

impl Materialized {
    fn row_bytes(&self) -> usize {
        (row_bytes_of(self.dtype, &self.shape[1..])) as usize
    }
}

fn row_bytes_of(dtype: DType, row_shape: &[u64]) -> u64 {
    crate::model::state::row_bytes(dtype, row_shape).unwrap_or(0)
}

impl Data {
    /// The staged bytes, read back (staging files checked against the CRC
    /// or checksums they were written with).
    fn bytes(&self) -> Result<Vec<u8>> {
        match self {
            Data::Mem(v) => Ok(v.clone()),
            Data::Spill(r) => {
                let mut v = vec![0u8; r.len as usize];
                let crc = crate::data::check::read_crc(&r.file, r.offset, [&mut v[..]], r.len)?;
                if crc != r.crc {
                    return Err(Error::corrupt(&r.file.path, "staged rows changed"));
                }
                Ok(v)
            }
            Data::Staged(f) => {
                let mut v = vec![0u8; f.sums.covered as usize];
                for (c, piece) in v.chunks_mut(CHUNK_BYTES as usize).enumerate() {
                    if !crate::data::check::read_chunk(&f.df, &f.sums, c, [piece])? {
                        return Err(Error::corrupt(&f.df.path, "staged rows changed"));
                    }
                }
                Ok(v)
            }
        }
    }
}

impl Txn {
    /// The names that flow into `name` through the staged renames, and
    /// `name` itself.
    fn sources_of(&self, name: &str) -> HashSet<String> {
        let mut names = HashSet::from([name.to_string()]);
        for step in self.steps.iter().rev() {
            if let Step::Rename { from, to } = step {
                if names.contains(to) {
                    names.insert(from.clone());
                }
            }
        }
        names
    }

    /// Array `name` as the staged changes leave it: the committed rows with
    /// every staged change to them applied (the one place that computes it;
    /// checksums verified). Reads the whole array into memory.
    pub fn read(&self, name: &str) -> Result<ArrayData> {
        let relevant = self.sources_of(name);
        let mut arrays: std::collections::HashMap<String, Option<Materialized>> =
            Default::default();
        for step in &self.steps {
            self.replay_step(step, &relevant, &mut arrays)?;
        }
        let m = match arrays.remove(name) {
            Some(Some(m)) => m,
            Some(None) => return Err(Error::NotFound(name.to_string())),
            None => self.committed(name)?,
        };
        Ok(ArrayData {
            dtype: m.dtype,
            shape: m.shape,
            data: m.data,
        })
    }

    /// The committed rows of `name` (as the engine has them now).
    fn committed(&self, name: &str) -> Result<Materialized> {
        let (a, df) = {
            let mut g = self.shared.lock();
            let a = g
                .state
                .arrays
                .get(name)
                .cloned()
                .ok_or_else(|| Error::NotFound(name.to_string()))?;
            let df = g.files.get(a.file_id)?;
            (a, df)
        };
        let mut data = vec![0u8; (a.rows() * a.row_bytes) as usize];
        crate::read::whole::read_all_into(name, &a, &df, &mut data)?;
        Ok(Materialized {
            dtype: a.dtype,
            shape: a.shape(),
            data,
        })
    }

    /// Apply one staged change to the arrays being read back, if it
    /// concerns one of `relevant`.
    fn replay_step(
        &self,
        step: &Step,
        relevant: &HashSet<String>,
        arrays: &mut HashMap<String, Option<Materialized>>,
    ) -> Result<()> {
        match step {
            Step::Save {
                name,
                dtype,
                shape,
                data,
            } if relevant.contains(name) => {
                let m = Materialized {
                    dtype: *dtype,
                    shape: shape.clone(),
                    data: data.bytes()?,
                };
                arrays.insert(name.clone(), Some(m));
            }
            Step::Append {
                name, shape, data, ..
            } if relevant.contains(name) => {
                let m = self.current(name, arrays)?;
                m.data.extend_from_slice(&data.bytes()?);
                m.shape[0] += shape[0];
            }
            Step::Replace {
                name,
                indices,
                data,
                ..
            } if relevant.contains(name) => {
                let bytes = data.bytes()?;
                self.current(name, arrays)?.replace(name, indices, &bytes)?;
            }
            Step::DeleteRows { name, indices } if relevant.contains(name) => {
                self.current(name, arrays)?.delete(name, indices)?;
            }
            Step::Drop { name } if relevant.contains(name) => {
                arrays.insert(name.clone(), None);
            }
            Step::Rename { from, to } if relevant.contains(from) || relevant.contains(to) => {
                self.current(from, arrays)?;
                let m = arrays.insert(from.clone(), None).flatten();
                arrays.insert(to.clone(), m);
            }
            _ => {}
        }
        Ok(())
    }

    /// The array `name` being read back, loaded from the store the first
    /// time.
    fn current<'m>(
        &self,
        name: &str,
        arrays: &'m mut HashMap<String, Option<Materialized>>,
    ) -> Result<&'m mut Materialized> {
        if !arrays.contains_key(name) {
            let m = self.committed(name)?;
            arrays.insert(name.to_string(), Some(m));
        }
        match arrays.get_mut(name) {
            Some(Some(m)) => Ok(m),
            // Staging validated every change: a dropped array is not changed.
            _ => Err(Error::NotFound(name.to_string())),
        }
    }
}

impl Materialized {
    fn replace(&mut self, name: &str, indices: &[i64], bytes: &[u8]) -> Result<()> {
        let rb = self.row_bytes();
        for (j, &i) in indices.iter().enumerate() {
            let r = normalize_index(name, i, self.shape[0])? as usize;
            self.data[r * rb..(r + 1) * rb].copy_from_slice(&bytes[j * rb..(j + 1) * rb]);
        }
        Ok(())
    }

    fn delete(&mut self, name: &str, indices: &[i64]) -> Result<()> {
        let rb = self.row_bytes();
        let mut gone = Vec::with_capacity(indices.len());
        for &i in indices {
            gone.push(normalize_index(name, i, self.shape[0])?);
        }
        gone.sort_unstable();
        gone.dedup();
        if rb > 0 {
            let mut kept = Vec::with_capacity(self.data.len());
            let mut g = gone.iter().peekable();
            for (r, row) in self.data.chunks_exact(rb).enumerate() {
                if g.peek() == Some(&&(r as u64)) {
                    g.next();
                } else {
                    kept.extend_from_slice(row);
                }
            }
            self.data = kept;
        }
        self.shape[0] -= gone.len() as u64;
        Ok(())
    }
}
