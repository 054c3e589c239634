//! Versions (FORMAT.md §15): pinned committed states, and the file table
//! that keeps the data files they name alive (§15.2).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::state::ArrayMeta;

/// An array table: name -> entry, as a state or a version holds it.
pub(crate) type ArrayTable = BTreeMap<String, Arc<ArrayMeta>>;

/// One version of a store (FORMAT.md §15.1).
#[derive(Clone, Debug)]
pub(crate) struct Version {
    /// The seq of the record holding its Snapshot op.
    pub id: u64,
    pub tag: Option<String>,
    pub time_ns: u64,
    pub array_count: u32,
    /// The array table, when in memory: taken since the last checkpoint
    /// (no version file yet), or loaded from its version file.
    pub arrays: Option<Arc<ArrayTable>>,
    /// Its version file is durable: the MANIFEST this state was read from
    /// lists it, or a checkpoint of this handle wrote it.
    pub on_disk: bool,
}

impl Version {
    /// The data file ids its arrays name, one per array, in name order
    /// (what a DeleteVersion op lists), if its table is in memory.
    pub fn files(&self) -> Option<Vec<u64>> {
        self.arrays
            .as_ref()
            .map(|t| t.values().map(|a| a.file_id).collect())
    }
}

/// A data file that versions reference or have referenced (FORMAT.md
/// §15.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileRef {
    /// (version, array) pairs naming the file.
    pub versions: u32,
    /// The file's committed end: only writes at and past this slot are
    /// allowed (the tail rule).
    pub end_slots: u64,
}

/// Versions by id.
pub(crate) type Versions = imbl::OrdMap<u64, Arc<Version>>;
/// The file table, by file id.
pub(crate) type FileRefs = imbl::OrdMap<u64, FileRef>;
