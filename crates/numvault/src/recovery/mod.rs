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
