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
//! `finish` recomputes the checksums and logs them. Under `Sync::Always` the
//! bytes are fdatasynced before that record; otherwise they are synced with
//! the next `sync_all` (data before log, as for every commit), and recovery
//! checks the logged checksums of a session end that no later record
//! declares durable ([`session_sums_present`]).

use std::sync::Arc;

use crate::data::DataFile;
use crate::model::dtype::DType;
use crate::model::error::{Error, IoContext, Result};
use crate::model::op::Op;
use crate::model::state::ArrayMeta;
use crate::model::sums::{ChunkSums, CHUNK_BYTES};
use crate::txn::plan::Intent;
use crate::txn::{Engine, PendingSums, Shared, SyncPolicy};

enum Buf {
    Map(memmap2::MmapMut),
    /// File systems without mappings (the simulator): a copy written back.
    Copy(Vec<u8>),
}

/// A writable session on one array (see [`Store::writable`]).
pub struct Writable {
    shared: Arc<Shared>,
    name: String,
    file_id: u64,
    df: Arc<DataFile>,
    buf: Option<Buf>,
    shape: Vec<u64>,
    dtype: DType,
}

/// Start a writable session on array `name` of the engine `g` (locked from
/// `shared`). Refused if it has deleted rows that are not compacted;
/// replaced rows are compacted first (a commit). The checks, the
/// compaction and the start happen under the one lock, so no other
/// mutation comes between them (FORMAT.md §11).
pub(crate) fn begin(shared: &Arc<Shared>, g: &mut Engine, name: &str) -> Result<Writable> {
    g.check_writable()?;
    // A shared writer keeps its turn for the whole session: no other writer
    // may change the array while its bytes are mapped.
    g.take_turn()?;
    let res = start(shared, g, name);
    if res.is_err() {
        g.end_turn();
    }
    res
}

fn start(shared: &Arc<Shared>, g: &mut Engine, name: &str) -> Result<Writable> {
    if g.busy.contains(name) {
        return Err(Error::InUse {
            array: name.to_string(),
        });
    }
    let m = meta(g, name)?;
    let deleted = match m.rowmap.extents() {
        [] => false,
        [e] => e.start != 0,
        _ => true,
    } || m.rowmap.end_slot() != m.rowmap.rows();
    if deleted {
        return Err(Error::NeedsCompaction {
            array: name.to_string(),
            reason: "it has deleted rows, and in-place writing needs its rows contiguous".into(),
        });
    }
    if g.state.file_refs.contains_key(&m.file_id) {
        // A version (or another array) keeps this file: the session writes
        // into a copy of its own (FORMAT.md §15.5).
        g.commit(&[Intent::Relocate { name }])?;
    } else if !m.is_identity() {
        // Only replaced rows: fold them in first (its own atomic commit).
        g.commit(&[Intent::Compact { name }])?;
    }
    let meta = meta(g, name)?;
    if g.payload_gen.get(&meta.file_id) == Some(&g.state.gen) {
        // The log may hold records whose payloads are bytes of this file (a
        // save, append or replace since the last checkpoint). Recovery
        // checks InFile payloads and rewrites inline ones, so after the
        // session changes those bytes in place it would find them damaged
        // or put the old rows back: fold the log into the MANIFEST first.
        g.checkpoint()?;
    }
    let df = g.files.get(meta.file_id)?;
    let buf = map_rows(&df, meta.rows() * meta.row_bytes)?;
    // The data of an earlier session on this handle may still be unsynced
    // (its end was logged without a data sync): sync it first, so the start
    // record declares that end durable (its `synced_seq`) before any byte
    // changes again; recovery does not check the checksums of an end
    // declared durable.
    g.sync_all()?;
    // Durably suspend the checksums before any byte can change.
    let suspend = Op::SetSums {
        name: name.to_string(),
        sums: ChunkSums::default(),
    };
    g.commit_ops(vec![suspend], true)?;
    g.busy.insert(name.to_string());
    Ok(Writable {
        shared: shared.clone(),
        name: name.to_string(),
        file_id: meta.file_id,
        df,
        buf: Some(buf),
        shape: meta.shape(),
        dtype: meta.dtype,
    })
}

fn meta(g: &Engine, name: &str) -> Result<Arc<ArrayMeta>> {
    g.state
        .arrays
        .get(name)
        .cloned()
        .ok_or_else(|| Error::NotFound(name.to_string()))
}

/// The first `len` bytes of `df`, writable: a shared mapping, or a copy on
/// file systems without mappings.
fn map_rows(df: &DataFile, len: u64) -> Result<Buf> {
    Ok(match df.file.map_mut(len).ctx(&df.path)? {
        Some(m) => Buf::Map(m),
        None => {
            let mut v = vec![0u8; len as usize];
            df.file.read_exact_at(&mut v, 0).ctx(&df.path)?;
            Buf::Copy(v)
        }
    })
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
    pub fn dtype(&self) -> DType {
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
        let shared = self.shared.clone();
        let mut g = shared.lock_raw();
        let res = self.end_locked(&mut g, buf);
        // The session's turn (shared writers) ends with it.
        g.end_turn();
        drop(g);
        // Under Sync::Group, start the clock of the background sync.
        shared.cv.notify_all();
        res
    }

    fn end_locked(&self, g: &mut Engine, buf: Buf) -> Result<()> {
        // Another session's checksums still being computed: log them first.
        let settled = g.settle_sums();
        g.busy.remove(&self.name);
        settled?;
        if let Buf::Copy(v) = &buf {
            self.df.file.write_all_at(v, 0).ctx(&self.df.path)?;
        }
        self.df.forget_mapping();
        let sums = if g.sync == SyncPolicy::Always {
            // The record is durable when `finish` returns, so the new bytes
            // must be durable before it, or a power loss could pair new
            // checksums with old data. The fdatasync (mostly waiting for the
            // disk) runs on a helper thread while this one computes the
            // checksums; the record is written only after both are done.
            // Every byte was written before `finish`, so the sync covers all
            // the bytes the checksums are taken over.
            let (sums, synced) = sums_while_syncing(&self.df, buf.bytes());
            if let Err(e) = synced {
                g.poison(&self.df.path);
                return Err(Error::io(&self.df.path, e));
            }
            sums
        } else {
            // The record is not synced either: the file joins the dirty
            // ones, which `sync_all` syncs before the log. Should a power
            // loss keep the record but not all the bytes, recovery finds
            // that the checksums do not match and ends the log before the
            // record (FORMAT.md §7.4).
            g.files.dirty.insert(self.file_id);
            match self.sums_later(g, buf)? {
                Some(sums) => sums,
                None => return Ok(()),
            }
        };
        let end = Op::SetSums {
            name: self.name.clone(),
            sums,
        };
        g.commit_ops(vec![end], false)
    }

    /// Outside `Sync::Always`: hand the checksum pass (one read of every
    /// byte) and the unmapping to a helper thread, so that `finish` returns
    /// now; the record is written by `Engine::settle_sums` before the store
    /// does anything else (`None`). Nothing can change these bytes
    /// meanwhile: the Python array is detached from the file, appends and
    /// replaces write past them, and a new session on the array settles
    /// first. A crash before the record leaves the checksums suspended, as
    /// a crash before a synchronous end would. A shared writer computes
    /// them now: its turn ends with the session, and another writer's
    /// session could change the bytes after that.
    fn sums_later(&self, g: &mut Engine, buf: Buf) -> Result<Option<ChunkSums>> {
        if g.is_shared() {
            return Ok(Some(chunk_sums(buf.bytes())));
        }
        let len = buf.bytes().len();
        let spawned = std::thread::Builder::new()
            .name("numvault-session-sums".into())
            .spawn(move || {
                let sums = chunk_sums(buf.bytes());
                drop(buf);
                sums
            });
        match spawned {
            Ok(job) => {
                g.pending_sums = Some(PendingSums {
                    name: self.name.clone(),
                    file_id: self.file_id,
                    job,
                });
                // Under `Group` the group-commit thread logs and syncs them
                // within `max_delay` (woken by `end`), as it would a commit.
                if matches!(g.sync, SyncPolicy::Group { .. }) && g.dirty_since.is_none() {
                    g.dirty_since = Some(std::time::Instant::now());
                }
                Ok(None)
            }
            // No thread: compute them here. The buffer went with the
            // failed spawn, so read the bytes back from the file.
            Err(_) => {
                let mut v = vec![0u8; len];
                self.df.file.read_exact_at(&mut v, 0).ctx(&self.df.path)?;
                Ok(Some(chunk_sums(&v)))
            }
        }
    }
}

impl Buf {
    fn bytes(&self) -> &[u8] {
        match self {
            Buf::Map(m) => &m[..],
            Buf::Copy(v) => &v[..],
        }
    }
}

/// Chunk checksums of `bytes`, on two threads for large arrays.
fn chunk_sums(bytes: &[u8]) -> ChunkSums {
    const PARALLEL_MIN: usize = 8 << 20;
    if bytes.len() < PARALLEL_MIN {
        return ChunkSums::of(bytes);
    }
    let chunks = bytes.len().div_ceil(CHUNK_BYTES as usize);
    let (a, b) = bytes.split_at(chunks / 2 * CHUNK_BYTES as usize);
    std::thread::scope(|s| {
        let helper = std::thread::Builder::new()
            .name("numvault-sums".into())
            .spawn_scoped(s, || ChunkSums::of(b));
        let mut sums = ChunkSums::of(a);
        let rest = match helper {
            Ok(h) => h.join().unwrap_or_else(|_| ChunkSums::of(b)),
            Err(_) => ChunkSums::of(b),
        };
        sums.sums.extend(rest.sums);
        sums.covered += rest.covered;
        sums
    })
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
