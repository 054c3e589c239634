//! Appending records to the live log.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::record::{encode_log_header, frame_record};
use crate::format::{log_name, LOG_HEADER_BYTES, MAX_LOG_FILE_BYTES};
use crate::io::vfs::{OpenMode, VFile, Vfs};
use crate::model::error::{Error, IoContext};

/// A failed write to the log: `poisons` when a sync failed or a partial
/// write could not be cut off, so that the log's durable contents are
/// unknown and the handle must refuse writes until reopened.
pub(crate) struct WriteFailure {
    pub error: Error,
    pub poisons: Option<PathBuf>,
}

impl WriteFailure {
    fn plain(error: Error) -> Self {
        WriteFailure {
            error,
            poisons: None,
        }
    }

    fn poisoning(path: &Path, e: io::Error) -> Self {
        WriteFailure {
            error: Error::io(path, e),
            poisons: Some(path.to_path_buf()),
        }
    }
}

/// The live log of the current generation, open for appending.
pub(crate) struct LogWriter {
    pub file: Arc<dyn VFile>,
    pub path: PathBuf,
    /// Offset just past the last record.
    pub end: u64,
    /// Bytes of the file already written (records, then zeros that
    /// preallocate space under `Sync::Always`).
    pub alloc: u64,
    /// Records were written since the last fdatasync.
    pub dirty: bool,
}

impl LogWriter {
    /// An existing log whose valid records end at `end`; `alloc`: the
    /// bytes written (preallocated zeros included).
    pub fn resume(file: Arc<dyn VFile>, path: PathBuf, end: u64, alloc: u64) -> Self {
        LogWriter {
            file,
            path,
            end,
            alloc,
            dirty: false,
        }
    }

    /// Create the log of generation `gen` in `dir` (removing a leftover):
    /// header, fdatasync, and an fsync of `dir`, so that its entry is
    /// durable before a MANIFEST naming it can be (a file system may persist
    /// the later rename first).
    pub fn create(
        vfs: &dyn Vfs,
        dir: &Path,
        gen: u64,
        version: u32,
    ) -> std::result::Result<Self, WriteFailure> {
        let path = dir.join(log_name(gen));
        let plain = WriteFailure::plain;
        if vfs.exists(&path) {
            vfs.remove_file(&path).ctx(&path).map_err(plain)?;
        }
        let f = vfs
            .open(&path, OpenMode::CreateNew)
            .ctx(&path)
            .map_err(plain)?;
        f.write_all_at(&encode_log_header(gen, version), 0)
            .ctx(&path)
            .map_err(plain)?;
        f.sync_data()
            .map_err(|e| WriteFailure::poisoning(&path, e))?;
        vfs.sync_dir(dir)
            .map_err(|e| WriteFailure::poisoning(dir, e))?;
        Ok(LogWriter::resume(
            f,
            path,
            LOG_HEADER_BYTES,
            LOG_HEADER_BYTES,
        ))
    }

    /// Whether a record of `len` more bytes keeps the log within what
    /// readers accept.
    pub fn fits(&self, len: u64) -> bool {
        self.end.saturating_add(len) <= MAX_LOG_FILE_BYTES
    }

    /// Write one framed record (seq `seq` after the chain head `prev`) at
    /// the end. Returns the record's hash. `preallocate`: make sure the log
    /// has written, synced space for it first (`Sync::Always`).
    pub fn append(
        &mut self,
        seq: u64,
        prev: &[u8; 32],
        body: &[u8],
        preallocate: bool,
    ) -> std::result::Result<[u8; 32], WriteFailure> {
        let (bytes, hash) = frame_record(seq, prev, body);
        let len = bytes.len() as u64;
        debug_assert!(self.fits(len), "the caller checks the log cap first");
        if preallocate {
            self.preallocate(len)?;
        }
        if let Err(e) = self.file.write_all_at(&bytes, self.end) {
            // Cut off whatever part landed so the next record starts clean.
            let poisons = self.file.set_len(self.end).err().map(|_| self.path.clone());
            return Err(WriteFailure {
                error: Error::io(&self.path, e),
                poisons,
            });
        }
        self.end += len;
        self.alloc = self.alloc.max(self.end);
        self.dirty = true;
        Ok(hash)
    }

    /// fdatasync the log if records were written since the last one; a
    /// failure poisons the handle.
    pub fn sync(&mut self) -> std::result::Result<(), WriteFailure> {
        if self.dirty {
            self.file
                .sync_data()
                .map_err(|e| WriteFailure::poisoning(&self.path, e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Make sure the log has `need` bytes of written (zeroed) and synced
    /// space past its end, so that each commit is an overwrite within the
    /// file: its fdatasync then has no file size or block allocation to
    /// commit, only the data.
    fn preallocate(&mut self, need: u64) -> std::result::Result<(), WriteFailure> {
        if self.end + need <= self.alloc {
            return Ok(());
        }
        // Grow geometrically from 64 KiB to steps of 1 MiB: the first commit
        // after an open (whose log is new after the closing checkpoint) then
        // writes 128 KiB of zeros, not 2 MiB.
        let mut at = self.alloc.max(self.end);
        let step = at.clamp(64 << 10, 1 << 20);
        let target = ((self.end + need).div_ceil(step) * step + step).min(MAX_LOG_FILE_BYTES);
        let zeros = vec![0u8; step as usize];
        while at < target {
            let n = (target - at).min(step) as usize;
            self.file
                .write_all_at(&zeros[..n], at)
                .ctx(&self.path)
                .map_err(WriteFailure::plain)?;
            at += n as u64;
        }
        self.file
            .sync_data()
            .map_err(|e| WriteFailure::poisoning(&self.path, e))?;
        self.alloc = target;
        Ok(())
    }
}
