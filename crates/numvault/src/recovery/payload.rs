//! Recovery's checks of the data a log record refers to (FORMAT.md §7.4):
//! inline payloads are redone into their data files, in-file payloads and
//! the checksums of a writable session's end are compared with the file.

use std::io;
use std::path::Path;

use crate::data::check::{extend_crc, read_chunk};
use crate::data::{DataFile, FileTable};
use crate::io::vfs::OpenMode;
use crate::model::error::{Error, IoContext, Result};
use crate::model::op::{Op, Payload};
use crate::model::state::{row_bytes, State};

/// The data file whose bytes `op` vouches for: the file its payload is
/// written to, or the file a writable session wrote (a `SetSums` that covers
/// rows). Those bytes are durable only once the op's record is.
pub(crate) fn file_written(state: &State, op: &Op) -> Option<u64> {
    if let Some((fid, _, _)) = payload_region(state, op) {
        return Some(fid);
    }
    match op {
        Op::SetSums { name, sums } if sums.covered > 0 => state.arrays.get(name).map(|a| a.file_id),
        _ => None,
    }
}

/// What recovery found of the data an op refers to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Presence {
    /// The data is there (or the op carries none).
    Present,
    /// Unsynced data that did not survive (or a file deleted early).
    Missing,
}

/// The data file an op with a payload writes to, and the byte offset and
/// length of the payload in it. `state` is the state just before `op`.
pub(crate) fn payload_region(state: &State, op: &Op) -> Option<(u64, u64, u64)> {
    let (name, _, first_slot) = op.payload()?;
    let (file_id, rb) = match op {
        Op::Put {
            file_id,
            dtype,
            row_shape,
            ..
        } => (*file_id, row_bytes(*dtype, row_shape).unwrap_or(0)),
        // An unknown array: `State::apply` reports it.
        _ => state.arrays.get(name).map(|a| (a.file_id, a.row_bytes))?,
    };
    let len = match op {
        Op::Put { sums, .. } => sums.covered,
        Op::Append { rows, .. } => rows.saturating_mul(rb),
        Op::Replace { slots, .. } => (slots.len() as u64).saturating_mul(rb),
        _ => 0,
    };
    Some((file_id, first_slot.saturating_mul(rb), len))
}

/// Check that the data `op` refers to is present, and (`redo`, the writer)
/// rewrite an inline payload into its file. A synced in-file payload that
/// is missing or damaged is `Corrupt`.
pub(crate) fn check_payload(
    files: &mut FileTable,
    state: &State,
    op: &Op,
    redo: bool,
) -> Result<Presence> {
    let (Some((_, payload, _)), Some((file_id, offset, len))) =
        (op.payload(), payload_region(state, op))
    else {
        return Ok(Presence::Present);
    };
    let path = files.path(file_id);
    match payload {
        Payload::Inline(bytes) => {
            if redo {
                let df = files.redo(file_id)?;
                df.file.write_all_at(bytes, offset).ctx(&df.path)?;
                files.mark_written(file_id, true);
                files.dir_dirty = true;
            }
            Ok(Presence::Present)
        }
        Payload::InFile { crc32c, synced } => {
            if region_matches(files, &path, offset, len, *crc32c)? {
                return Ok(Presence::Present);
            }
            if *synced {
                return Err(Error::corrupt(
                    &path,
                    format!(
                        "data synced before commit is missing or damaged at bytes {offset}..{}",
                        offset.saturating_add(len)
                    ),
                ));
            }
            Ok(Presence::Missing)
        }
    }
}

/// Open `path` for reading; `None` if it does not exist.
fn open_existing(files: &FileTable, path: &Path) -> Result<Option<DataFile>> {
    match files.vfs.open(path, OpenMode::Read) {
        Ok(f) => Ok(Some(DataFile::new(path.to_path_buf(), f))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Whether bytes `offset..offset+len` of `path` exist and have CRC-32C `crc`.
fn region_matches(files: &FileTable, path: &Path, offset: u64, len: u64, crc: u32) -> Result<bool> {
    let Some(df) = open_existing(files, path)? else {
        return Ok(false);
    };
    if df.file.len().ctx(path)? < offset.saturating_add(len) {
        return Ok(false);
    }
    let mut buf = vec![0u8; len.min(crate::model::sums::CHUNK_BYTES) as usize];
    let mut c = 0u32;
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        c = extend_crc(&df, offset + done, [&mut buf[..n]], n as u64, c)?;
        done += n as u64;
    }
    Ok(c == crc)
}

/// Recovery (writer only): the checksums a session end logged (a `SetSums`
/// covering bytes) must match the data file, unless a later record declares
/// that end durable (`vouched`; evaluated only when needed). Outside
/// `Sync::Always` the end is logged before its bytes are synced, so a power
/// loss can keep the record and lose some of the bytes: `Missing` then, and
/// the log ends before the record, as for unsynced `InFile` data that did
/// not survive. Nothing changes the bytes a session wrote until the next
/// session on the file starts, and that start syncs them and declares the
/// end durable first, so the check compares the bytes the sums were taken
/// over. Ops other than a session end are always `Present`.
pub(crate) fn session_sums_present(
    files: &FileTable,
    state: &State,
    op: &Op,
    vouched: impl FnOnce() -> bool,
) -> Result<Presence> {
    let Op::SetSums { name, sums } = op else {
        return Ok(Presence::Present);
    };
    // An unknown array or inconsistent sums: `State::apply` reports them.
    let Some(a) = state.arrays.get(name) else {
        return Ok(Presence::Present);
    };
    if sums.covered == 0 || !sums.is_consistent() || vouched() {
        return Ok(Presence::Present);
    }
    let path = files.path(a.file_id);
    let Some(df) = open_existing(files, &path)? else {
        return Ok(Presence::Missing);
    };
    if df.file.len().ctx(&path)? < sums.covered {
        return Ok(Presence::Missing);
    }
    let mut buf = vec![0u8; crate::model::sums::CHUNK_BYTES.min(sums.covered) as usize];
    for i in 0..sums.sums.len() {
        let (start, end) = sums.range(i);
        if !read_chunk(&df, sums, i, [&mut buf[..(end - start) as usize]])? {
            return Ok(Presence::Missing);
        }
    }
    Ok(Presence::Present)
}
