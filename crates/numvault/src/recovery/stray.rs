//! Files a committed state does not reference: leftovers of crashes and of
//! checkpoints that did not finish cleaning up (FORMAT.md §7.4 step 6,
//! §7.5).

use std::collections::HashSet;
use std::path::Path;

use crate::format::version::{version_file_id, VERSIONS_DIR};
use crate::format::{
    data_file_id, is_log_name, log_name, DATA_DIR, DATA_EXT, LOCK, LOG_HEADER_BYTES, MANIFEST_TMP,
    STAGE_PREFIX,
};
use crate::io::vfs::{OpenMode, Vfs};
use crate::model::error::{IoContext, Result};
use crate::model::state::State;

/// Delete logs of other generations, a leftover temporary MANIFEST, staging
/// files no transaction holds and, if `folded` (the live log holds no
/// record: every file a record names is in `state`), data files that
/// `state` does not reference (leftovers of crashed uncommitted saves, of
/// drops before a crash). A live log that still holds records may name
/// superseded files that a recovery after a power loss needs, so they stay
/// until a checkpoint folds it. Creates `data/` if it is missing.
pub(crate) fn collect_stray_files(
    vfs: &dyn Vfs,
    dir: &Path,
    state: &State,
    folded: bool,
) -> Result<()> {
    let data_dir = dir.join(DATA_DIR);
    if !vfs.exists(&data_dir) {
        vfs.create_dir_all(&data_dir).ctx(&data_dir)?;
        return Ok(());
    }
    let mut live: HashSet<u64> = state.arrays.values().map(|a| a.file_id).collect();
    live.extend(state.file_refs.keys());
    let ext = format!(".{DATA_EXT}");
    let mut doomed = Vec::new();
    let mut staged = Vec::new();
    for name in vfs.list_dir(&data_dir).ctx(&data_dir)? {
        // A data file's name is that of its id (names not of that form
        // but with the extension are strays too).
        let referenced = data_file_id(&name).is_some_and(|id| live.contains(&id));
        if folded && name.ends_with(&ext) && !referenced {
            doomed.push(data_dir.join(&name));
        } else if name.starts_with(STAGE_PREFIX) {
            staged.push(data_dir.join(&name));
        }
    }
    stray_version_files(vfs, dir, state, folded, &mut doomed)?;
    let current = log_name(state.gen);
    for name in vfs.list_dir(dir).ctx(dir)? {
        if (is_log_name(&name) && name != current) || name == MANIFEST_TMP {
            doomed.push(dir.join(&name));
        }
    }
    if !doomed.is_empty() {
        // The MANIFEST that makes these files stray may have been renamed
        // into place by a writer killed before its directory fsync (in
        // this boot): make it durable before anything the previous one
        // needs is deleted, or a power loss could bring back a MANIFEST
        // naming a deleted log or data file (Appendix A.13).
        vfs.sync_dir(dir).ctx(dir)?;
    }
    for p in doomed {
        vfs.remove_file(&p).ctx(&p)?;
    }
    for p in staged {
        // A transaction's staging file: removed only if no live
        // transaction holds its lock (another writer's may).
        if let Ok(_held) = vfs.lock_exclusive(&p, None) {
            vfs.remove_file(&p).ctx(&p)?;
        }
    }
    Ok(())
}

/// Version files being written when a writer stopped, and (if `folded`:
/// `state` is the MANIFEST's) those of versions the MANIFEST no longer
/// lists (FORMAT.md §15.3). With records in the live log, a lost tail could
/// bring back a version that a logged deletion removed, so its file stays.
fn stray_version_files(
    vfs: &dyn Vfs,
    dir: &Path,
    state: &State,
    folded: bool,
    doomed: &mut Vec<std::path::PathBuf>,
) -> Result<()> {
    let vdir = dir.join(VERSIONS_DIR);
    if !vfs.exists(&vdir) {
        return Ok(());
    }
    for name in vfs.list_dir(&vdir).ctx(&vdir)? {
        let listed = version_file_id(&name).is_some_and(|id| state.versions.contains_key(&id));
        if name.ends_with(".tmp") || (folded && !listed) {
            doomed.push(vdir.join(&name));
        }
    }
    Ok(())
}

/// True if `entries` (of a directory without MANIFEST) are exactly what
/// a crash during store creation can leave: LOCK, MANIFEST.tmp, an empty
/// data directory and a generation-0 log holding at most a header.
pub(crate) fn interrupted_creation(vfs: &dyn Vfs, dir: &Path, entries: &[String]) -> bool {
    let log0 = log_name(0);
    entries.iter().all(|n| {
        if n == DATA_DIR {
            vfs.list_dir(&dir.join(DATA_DIR))
                .is_ok_and(|v| v.is_empty())
        } else if *n == log0 {
            vfs.open(&dir.join(n), OpenMode::Read)
                .and_then(|f| f.len())
                .is_ok_and(|len| len <= LOG_HEADER_BYTES)
        } else {
            n == LOCK || n == MANIFEST_TMP
        }
    })
}
