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
        let (vfs, dir, writer, count, arrays) = {
            let g = self.engine();
            g.check_open()?;
            let state = g.state.clone();
            let arrays: Option<Vec<ArrayToCheck>> = data.then(|| {
                state
                    .arrays
                    .iter()
                    .map(|(name, a)| (name.clone(), a.clone(), g.files.path(a.file_id)))
                    .collect()
            });
            let count = state.arrays.len() as u64;
            (g.vfs.clone(), g.dir.clone(), !g.read_only, count, arrays)
        };
        let mut rep = verify_store(vfs.as_ref(), &dir, writer, arrays, progress);
        rep.arrays = count;
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
