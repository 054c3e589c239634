//! [`Store`]'s reads, audits and writable sessions: each takes a snapshot
//! under the engine's lock, then works without it.

use std::sync::Arc;

use super::Store;
use crate::audit::history::{read_history, HistoryReport};
use crate::audit::verify::{verify_store, ArrayToCheck, VerifyReport};
use crate::data::DataFile;
use crate::inplace::{self, Writable};
use crate::model::array::ArrayData;
use crate::model::error::{Error, Result};
use crate::model::state::ArrayMeta;
use crate::read::rows::read_rows_into;
use crate::read::whole::{check_out_len, read_all_into};
use crate::read::{ArrayReader, Batches, View};

impl Store {
    /// Snapshot an array's metadata and its open data file.
    pub(crate) fn array_snapshot(&self, name: &str) -> Result<(Arc<ArrayMeta>, Arc<DataFile>)> {
        let mut g = self.engine();
        g.check_open()?;
        let get = |state: &crate::model::state::State| {
            state
                .arrays
                .get(name)
                .cloned()
                .ok_or_else(|| Error::NotFound(name.to_string()))
        };
        let a = get(&g.state)?;
        match g.files.get(a.file_id) {
            // A reader's state can name a file that the writer's latest
            // checkpoint removed (compaction, overwrite): load the newest
            // committed state and try once more.
            Err(Error::Io { source, .. })
                if g.read_only && source.kind() == std::io::ErrorKind::NotFound =>
            {
                g.reader_refresh()?;
                let a = get(&g.state)?;
                let df = g.files.get(a.file_id)?;
                Ok((a, df))
            }
            other => Ok((a, other?)),
        }
    }

    /// Read a whole array, verifying its checksums.
    pub fn read(&self, name: &str) -> Result<ArrayData> {
        let (a, df) = self.array_snapshot(name)?;
        let mut data = vec![0u8; (a.rows() * a.row_bytes) as usize];
        read_all_into(name, &a, &df, &mut data)?;
        Ok(ArrayData {
            dtype: a.dtype,
            shape: a.shape(),
            data,
        })
    }

    /// Read a whole array into `out` (exactly `rows * row_bytes` long, as
    /// given by [`Store::shape`] at the time of the call), verifying checksums.
    /// Returns the shape read.
    pub fn read_into(&self, name: &str, out: &mut [u8]) -> Result<Vec<u64>> {
        let (a, df) = self.array_snapshot(name)?;
        check_out_len(name, &a, a.rows(), out)?;
        read_all_into(name, &a, &df, out)?;
        Ok(a.shape())
    }

    /// Snapshot an array for reading into a caller-allocated buffer: learn
    /// the shape and dtype first, then fill exactly `nbytes()` bytes.
    pub fn reader(&self, name: &str) -> Result<ArrayReader> {
        let (meta, df) = self.array_snapshot(name)?;
        Ok(ArrayReader::new(name, meta, df))
    }

    /// Read logical rows `start..end` (clamped like a Python slice).
    pub fn read_rows(&self, name: &str, start: u64, end: u64) -> Result<ArrayData> {
        let (a, df) = self.array_snapshot(name)?;
        let end = end.min(a.rows());
        let start = start.min(end);
        let mut data = vec![0u8; ((end - start) * a.row_bytes) as usize];
        read_rows_into(&a, &df, start, end, &mut data, None, None)?;
        let mut shape = a.shape();
        shape[0] = end - start;
        Ok(ArrayData {
            dtype: a.dtype,
            shape,
            data,
        })
    }

    /// Read rows at arbitrary indices (any order, repeats allowed, negative
    /// from the end).
    pub fn read_indices(&self, name: &str, indices: &[i64]) -> Result<ArrayData> {
        self.view(name)?.gather(indices)
    }

    /// A lazy, zero-copy, read-only view backed by a memory map. It shows the
    /// array as of this call and stays valid whatever the writer does later.
    pub fn view(&self, name: &str) -> Result<View> {
        let (a, df) = self.array_snapshot(name)?;
        View::new(name, a, &df)
    }

    /// Stream the array in batches of `batch_rows` rows, verifying checksums.
    pub fn batches(&self, name: &str, batch_rows: u64) -> Result<Batches> {
        if batch_rows == 0 {
            return Err(Error::InvalidArgument(format!(
                "array '{name}': batch size must be at least 1 row"
            )));
        }
        let (a, df) = self.array_snapshot(name)?;
        Ok(Batches::new(name, a, df, batch_rows))
    }

    /// Check every data chunk, every log record and the hash chain.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with(true, &mut |_, _| {})
    }

    /// Like [`Store::verify`]; `data`: also check data chunks (else only the
    /// MANIFEST and the log); `progress(done_bytes, total_bytes)` is called
    /// as data is checked.
    pub fn verify_with(
        &self,
        data: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        let (vfs, dir, writer, count, arrays, version_problems) = {
            let mut g = self.engine();
            g.check_open()?;
            let state = g.state.clone();
            let mut arrays: Option<Vec<ArrayToCheck>> = data.then(|| {
                state
                    .arrays
                    .iter()
                    .map(|(name, a)| (name.clone(), a.clone(), g.files.path(a.file_id)))
                    .collect()
            });
            let problems = match g.frozen {
                Some(_) => Vec::new(),
                None => version_arrays(&mut g, arrays.as_mut()),
            };
            let count = state.arrays.len() as u64;
            (
                g.vfs.clone(),
                g.dir.clone(),
                !g.read_only,
                count,
                arrays,
                problems,
            )
        };
        let mut rep = verify_store(vfs.as_ref(), &dir, writer, arrays, progress);
        rep.arrays = count;
        rep.problems.extend(version_problems);
        Ok(rep)
    }

    /// The commit history: every commit summarized in `HISTORY` plus the
    /// records of the live log, in seq order, with the hash chain checked
    /// from seq 1 to the head (each commit's `prev_hash` equals the previous
    /// commit's hash; the live log's hashes are recomputed from its bytes;
    /// the checkpointed head matches the MANIFEST).
    pub fn history(&self) -> Result<HistoryReport> {
        let (vfs, dir) = {
            let g = self.engine();
            g.check_open()?;
            (g.vfs.clone(), g.dir.clone())
        };
        read_history(vfs.as_ref(), &dir)
    }

    /// Open array `name` for in-place writing (docs/FORMAT.md §11). Refused
    /// if it has deleted rows that are not compacted (`NeedsCompaction`);
    /// replaced rows are compacted first (a commit).
    pub fn writable(&self, name: &str) -> Result<Writable> {
        let mut g = self.engine();
        inplace::begin(&self.shared, &mut g, name)
    }
}

/// Every retained version's arrays, added to `arrays` (named
/// `name@<version id>`) where their rows are not checked already (an
/// unchanged array is the same entry in many versions: it is checked once);
/// and the file table checked against the versions' tables (FORMAT.md
/// §15.2, §14). Returns the problems found: a version file that does not
/// load, a file count or committed end that does not match.
fn version_arrays(
    g: &mut crate::txn::Engine,
    mut arrays: Option<&mut Vec<ArrayToCheck>>,
) -> Vec<crate::audit::Problem> {
    use std::collections::{BTreeMap, HashSet};
    let mut problems = Vec::new();
    let mut counts: BTreeMap<u64, (u32, u64)> = BTreeMap::new();
    let mut seen: HashSet<(u64, u64, Vec<u32>)> = HashSet::new();
    if let Some(list) = arrays.as_deref() {
        for (_, a, _) in list {
            seen.insert((a.file_id, a.sums.covered, a.sums.sums.clone()));
        }
    }
    let ids: Vec<u64> = g.state.versions.keys().copied().collect();
    let mut complete = true;
    for id in ids {
        let table = match g.load_table(id) {
            Ok(t) => t,
            Err(e) => {
                complete = false;
                let file = g.dir.join(crate::format::version::VERSIONS_DIR);
                problems.push(crate::audit::Problem::in_file(
                    &file,
                    format!("version {id}: {e}"),
                ));
                continue;
            }
        };
        for (name, a) in table.iter() {
            let c = counts.entry(a.file_id).or_default();
            c.0 += 1;
            c.1 = c.1.max(a.phys_slots);
            let key = (a.file_id, a.sums.covered, a.sums.sums.clone());
            if let Some(list) = arrays.as_deref_mut() {
                if seen.insert(key) {
                    list.push((format!("{name}@{id}"), a.clone(), g.files.path(a.file_id)));
                }
            }
        }
    }
    let manifest = g.dir.join(crate::format::MANIFEST);
    for (fid, r) in g.state.file_refs.iter() {
        let (n, end) = counts.get(fid).copied().unwrap_or_default();
        if complete && n != r.versions {
            problems.push(crate::audit::Problem::in_file(
                &manifest,
                format!(
                    "file table: data file {fid} is named {n} times by versions, the table says {}",
                    r.versions
                ),
            ));
        }
        if end > r.end_slots {
            problems.push(crate::audit::Problem::in_file(
                &manifest,
                format!("file table: a version has {end} slots of data file {fid}, past its committed end {}", r.end_slots),
            ));
        }
    }
    for fid in counts
        .keys()
        .filter(|f| !g.state.file_refs.contains_key(*f))
    {
        problems.push(crate::audit::Problem::in_file(
            &manifest,
            format!("file table: data file {fid}, which a version names, is missing from it"),
        ));
    }
    problems
}
