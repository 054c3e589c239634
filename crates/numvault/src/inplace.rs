//! In-place writable sessions (NumPack's `writable_batch_mode`).
//!
//! This is the one deliberate exception to "data files are never rewritten
//! in place": the caller gets a writable mapping of an array's rows and
//! changes them directly. Crash semantics (docs/FORMAT.md, "Writable
//! sessions"): the session start is logged durably and suspends the array's
//! checksums; after a crash mid-session each page of the array holds either
//! its old or its new contents (a process crash keeps every write made; a
//! power loss keeps an arbitrary subset of unsynced pages), the rest of the
//! store is untouched, and checksums are recomputed at the next checkpoint.
//! `finish` recomputes the checksums and logs them.

use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::meta::{ChunkSums, Op};
use crate::store::{DataFile, Shared, Store};
use crate::write::Intent;

enum Buf {
    Map(memmap2::MmapMut),
    /// File systems without mappings (the simulator): a copy written back.
    Copy(Vec<u8>),
}

/// A writable session on one array (see [`Store::writable`]).
pub struct Writable {
    shared: Arc<Shared>,
    name: String,
    df: Arc<DataFile>,
    buf: Option<Buf>,
    shape: Vec<u64>,
    dtype: crate::DType,
}

impl Store {
    /// Open array `name` for in-place writing. Refused if it has deleted rows
    /// that are not compacted; replaced rows are compacted first (a commit).
    pub fn writable(&self, name: &str) -> Result<Writable> {
        let mut g = self.inner();
        g.check_writable()?;
        if g.io.busy.contains(name) {
            return Err(Error::InvalidArgument(format!(
                "array '{name}' is already open for in-place writing"
            )));
        }
        let meta = |g: &crate::store::Inner| {
            g.state
                .arrays
                .get(name)
                .cloned()
                .ok_or_else(|| Error::NotFound(name.to_string()))
        };
        let m = meta(&g)?;
        let deleted = match m.rowmap.extents() {
            [] => false,
            [e] => e.start != 0,
            _ => true,
        } || m.rowmap.end_slot() != m.rowmap.rows();
        if deleted {
            return Err(Error::InvalidArgument(format!(
                "array '{name}' has deleted rows that are not compacted; compact it before writing in place"
            )));
        }
        if !m.is_identity() {
            // Only replaced rows: fold them in first (its own atomic commit).
            g.commit(&[Intent::Compact { name }])?;
        }
        let meta = meta(&g)?;
        if g.io.payload_gen.get(&meta.file_id) == Some(&g.state.gen) {
            // The log may hold records whose payloads are bytes of this
            // file (a save, append or replace since the last checkpoint).
            // Recovery checks InFile payloads and rewrites inline ones, so
            // after the session changes those bytes in place it would find
            // them damaged or put the old rows back: fold the log into the
            // MANIFEST first.
            g.checkpoint()?;
        }
        let df = g.io.file(meta.file_id)?;
        let len = meta.rows() * meta.row_bytes;
        let buf = match df.file.map_mut(len).ctx(&df.path)? {
            Some(m) => Buf::Map(m),
            None => {
                let mut v = vec![0u8; len as usize];
                df.file.read_exact_at(&mut v, 0).ctx(&df.path)?;
                Buf::Copy(v)
            }
        };
        // Durably suspend the checksums before any byte can change.
        g.commit_ops(
            vec![Op::SetSums {
                name: name.to_string(),
                sums: ChunkSums::default(),
            }],
            true,
        )?;
        g.io.busy.insert(name.to_string());
        Ok(Writable {
            shared: self.shared.clone(),
            name: name.to_string(),
            df,
            buf: Some(buf),
            shape: meta.shape(),
            dtype: meta.dtype,
        })
    }
}

impl std::fmt::Debug for Writable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writable")
            .field("name", &self.name)
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl Writable {
    /// The array's bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.buf {
            Some(Buf::Map(m)) => &mut m[..],
            Some(Buf::Copy(v)) => &mut v[..],
            None => &mut [],
        }
    }
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }
    pub fn dtype(&self) -> crate::DType {
        self.dtype
    }
    pub fn name(&self) -> &str {
        &self.name
    }

    /// End the session: recompute and log the checksums. The changes are
    /// durable per the store's sync policy (at the next flush by default).
    pub fn finish(mut self) -> Result<()> {
        self.end()
    }

    fn end(&mut self) -> Result<()> {
        let Some(buf) = self.buf.take() else {
            return Ok(());
        };
        let mut g = crate::store::lock(&self.shared.inner);
        g.io.busy.remove(&self.name);
        let bytes: &[u8] = match &buf {
            Buf::Map(m) => &m[..],
            Buf::Copy(v) => {
                self.df.file.write_all_at(v, 0).ctx(&self.df.path)?;
                &v[..]
            }
        };
        self.df.forget_mapping();
        // The new bytes must be durable before the record that vouches for
        // them, or a power loss could pair new checksums with old data. The
        // fdatasync (mostly waiting for the disk) runs on a helper thread
        // while this one computes the checksums; the record is written only
        // after both are done. Every byte was written before `finish`, so
        // the sync covers all the bytes the checksums are taken over.
        let (sums, synced) = sums_while_syncing(&self.df, bytes);
        if let Err(e) = synced {
            g.poison(&self.df.path);
            return Err(Error::io(&self.df.path, e));
        }
        let res = g.commit_ops(
            vec![Op::SetSums {
                name: self.name.clone(),
                sums,
            }],
            false,
        );
        drop(g);
        // Under Sync::Group, start the clock of the background sync.
        self.shared.cv.notify_all();
        res
    }
}

/// Chunk checksums of `bytes` (the session's data) computed while `df` is
/// fdatasynced on a helper thread (inline if no thread can be started).
fn sums_while_syncing(df: &DataFile, bytes: &[u8]) -> (ChunkSums, std::io::Result<()>) {
    /// Below this the thread costs more than the overlap saves.
    const PARALLEL_MIN: usize = 1 << 20;
    if bytes.len() < PARALLEL_MIN {
        let sums = ChunkSums::of(bytes);
        return (sums, df.file.sync_data());
    }
    std::thread::scope(|s| {
        let helper = std::thread::Builder::new()
            .name("numvault-sync".into())
            .spawn_scoped(s, || df.file.sync_data());
        let sums = ChunkSums::of(bytes);
        let synced = match helper {
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("sync thread panicked"))),
            Err(_) => df.file.sync_data(),
        };
        (sums, synced)
    })
}

impl Drop for Writable {
    fn drop(&mut self) {
        let _ = self.end();
    }
}
