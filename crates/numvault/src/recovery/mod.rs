//! Opening a store's files: reading the MANIFEST, replaying the log in
//! phases (walk, payload checks, redo, tail cut), and removing stray files
//! (FORMAT.md §7.4, §7.5). This layer reads and repairs; it never commits:
//! the checkpoint that ends a writer's recovery is the caller's.

use std::path::Path;

use crate::format::manifest::decode_manifest;
use crate::format::{HeaderError, FORMAT_VERSION, MANIFEST, MAX_MANIFEST_FILE_BYTES};
use crate::io::vfs::{OpenMode, Vfs};
use crate::log::read_capped;
use crate::model::error::{Error, IoContext, Result};
use crate::model::state::State;

mod payload;
mod replay;
mod stray;

pub(crate) use payload::{file_written, payload_region};
pub(crate) use replay::{apply_new_records, replay_log, Mode, Replayed};
pub(crate) use stray::{collect_stray_files, interrupted_creation};

/// The error for a header that is malformed or of another version.
pub(crate) fn header_err(path: &Path, e: HeaderError) -> Error {
    match e {
        HeaderError::Bad(d) => d.in_file(path),
        HeaderError::Version(found) => Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        },
    }
}

/// Read and decode the MANIFEST of the store in `dir`: its state and
/// creation time. A file longer than the cap is not read.
pub(crate) fn load_manifest(vfs: &dyn Vfs, dir: &Path) -> Result<(State, u64)> {
    let path = dir.join(MANIFEST);
    let f = vfs.open(&path, OpenMode::Read).ctx(&path)?;
    let bytes = read_capped(f.as_ref(), &path, MAX_MANIFEST_FILE_BYTES)?;
    decode_manifest(&bytes).map_err(|e| header_err(&path, e))
}

/// The array table of version `id` of `state` (FORMAT.md §15.6): from
/// memory if its Snapshot record was replayed, else read from its version
/// file. An unknown version is `NoSuchVersion`.
pub(crate) fn load_version_table(
    vfs: &dyn Vfs,
    dir: &Path,
    state: &State,
    id: u64,
) -> Result<std::sync::Arc<crate::model::version::ArrayTable>> {
    use crate::format::version::{decode_version_file, version_file_name, VERSIONS_DIR};
    let v = state
        .versions
        .get(&id)
        .ok_or_else(|| Error::NoSuchVersion {
            path: dir.to_path_buf(),
            version: id.to_string(),
        })?;
    if let Some(t) = &v.arrays {
        return Ok(t.clone());
    }
    let path = dir.join(VERSIONS_DIR).join(version_file_name(id));
    let f = vfs.open(&path, OpenMode::Read).ctx(&path)?;
    let bytes = read_capped(f.as_ref(), &path, MAX_MANIFEST_FILE_BYTES)?;
    let table =
        decode_version_file(&bytes, id, state.next_file_id).map_err(|e| header_err(&path, e))?;
    if let Some((name, a)) = table.iter().find(|(_, a)| {
        state
            .file_refs
            .get(&a.file_id)
            .is_none_or(|r| r.versions == 0 || a.phys_slots > r.end_slots)
    }) {
        return Err(Error::corrupt(
            &path,
            format!(
                "'{name}' names data file {}, which the file table does not keep",
                a.file_id
            ),
        ));
    }
    Ok(std::sync::Arc::new(table))
}
