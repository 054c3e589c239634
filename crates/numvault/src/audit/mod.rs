//! Audits that read a store and report what they find, never repairing:
//! [`verify`] (every data chunk, the MANIFEST, every log record and the hash
//! chain; FORMAT.md §14) and [`history`] (the commit history from HISTORY
//! and the live log, chain-checked end to end; §5.7).

use std::path::{Path, PathBuf};

use crate::format::manifest::decode_manifest;
use crate::format::{log_name, MANIFEST, MAX_LOG_FILE_BYTES, MAX_MANIFEST_FILE_BYTES};
use crate::io::vfs::{OpenMode, Vfs};
use crate::log::read_capped;
use crate::model::error::{IoContext, Result};

pub(crate) mod diff;
pub(crate) mod history;
pub(crate) mod verify;

pub use verify::{Problem, VerifyReport};

/// The MANIFEST on disk and the live log it names, as read together.
pub(crate) struct DiskPair {
    pub manifest_path: PathBuf,
    pub manifest: Result<Vec<u8>>,
    /// The log named by the MANIFEST (None if the MANIFEST is unreadable).
    pub log: Option<(PathBuf, Result<Vec<u8>>)>,
}

/// Read a consistent MANIFEST and live-log pair from disk: a writer's
/// checkpoint may replace the MANIFEST and delete the log it named between
/// the two reads; retry then. Both reads are capped (FORMAT.md §2.1).
pub(crate) fn read_disk_pair(vfs: &dyn Vfs, dir: &Path) -> DiskPair {
    let mpath = dir.join(MANIFEST);
    let mut tries = 0;
    loop {
        tries += 1;
        let m = vfs
            .open(&mpath, OpenMode::Read)
            .ctx(&mpath)
            .and_then(|f| read_capped(f.as_ref(), &mpath, MAX_MANIFEST_FILE_BYTES));
        let gen = m
            .as_ref()
            .ok()
            .and_then(|b| decode_manifest(b).ok())
            .map(|(s, _)| s.gen);
        let Some(gen) = gen else {
            return DiskPair {
                manifest_path: mpath,
                manifest: m,
                log: None,
            };
        };
        let lpath = dir.join(log_name(gen));
        let log = vfs
            .open(&lpath, OpenMode::Read)
            .ctx(&lpath)
            .and_then(|f| read_capped(f.as_ref(), &lpath, MAX_LOG_FILE_BYTES));
        if log.is_err() && tries < 16 && !vfs.exists(&lpath) {
            continue;
        }
        return DiskPair {
            manifest_path: mpath,
            manifest: m,
            log: Some((lpath, log)),
        };
    }
}
