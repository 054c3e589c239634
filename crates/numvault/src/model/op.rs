//! Mutations as the commit log records them.

use std::sync::Arc;

use super::dtype::DType;
use super::state::ArrayMeta;
use super::sums::ChunkSums;

/// The entry a Restore op gives an array (FORMAT.md §15.4).
#[derive(Clone, Debug)]
pub(crate) struct RestoreEntry(pub Arc<ArrayMeta>);

impl PartialEq for RestoreEntry {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_entry(&other.0)
    }
}
impl Eq for RestoreEntry {}

/// Where a mutation's new row bytes live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    /// Carried in the log record (redo): recovery rewrites them into the file.
    Inline(Vec<u8>),
    /// Only in the data file. `crc32c` covers the bytes; `synced` says they
    /// were fsynced before the record was written (else recovery checks them).
    InFile { crc32c: u32, synced: bool },
}

/// One mutation as recorded in the commit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Put {
        name: String,
        file_id: u64,
        dtype: DType,
        row_shape: Vec<u64>,
        rows: u64,
        payload: Payload,
        sums: ChunkSums,
    },
    Append {
        name: String,
        first_slot: u64,
        rows: u64,
        payload: Payload,
    },
    Replace {
        name: String,
        slots: Vec<u64>,
        first_slot: u64,
        payload: Payload,
    },
    DeleteRows {
        name: String,
        slots: Vec<u64>,
    },
    Compact {
        name: String,
        file_id: u64,
        rows: u64,
        sums: ChunkSums,
    },
    Drop {
        name: String,
    },
    Rename {
        from: String,
        to: String,
    },
    /// Replace an array's chunk checksums: empty (covered 0) when an in-place
    /// writable session starts, the fresh sums when it ends.
    SetSums {
        name: String,
        sums: ChunkSums,
    },
    /// The writer deleted data file `file_id` as soon as this record made it
    /// unreferenced, without waiting for the next checkpoint. Only files that
    /// no durable state refers to are released so (created by an unsynced
    /// Put since the last sync). Recovery accepts an earlier record whose
    /// data in that file is missing when this record follows it; `name` is
    /// the array whose change released the file. No effect on the state.
    Release {
        name: String,
        file_id: u64,
    },
    /// Pin the current state as a version whose id is this record's seq
    /// (format 2, FORMAT.md §15.4). The id is not encoded: the writer
    /// plans it as the next seq, the decoder takes the record's.
    Snapshot {
        tag: Option<String>,
        id: u64,
    },
    /// Remove version `id`; `files` lists the data file of each of its
    /// arrays, in name order.
    DeleteVersion {
        id: u64,
        files: Vec<u64>,
    },
    /// Array `name` becomes `entry`, its state in version `version`.
    Restore {
        name: String,
        version: u64,
        entry: RestoreEntry,
    },
}

impl Op {
    /// The array the op writes new bytes into, with the file offset and the
    /// payload, for recovery's redo and checks.
    pub fn payload(&self) -> Option<(&str, &Payload, u64)> {
        match self {
            Op::Put { name, payload, .. } => Some((name, payload, 0)),
            Op::Append {
                name,
                first_slot,
                payload,
                ..
            }
            | Op::Replace {
                name,
                first_slot,
                payload,
                ..
            } => Some((name, payload, *first_slot)),
            _ => None,
        }
    }

    /// True for ops whose data recovery after a power loss compares with
    /// the files unless a later record declares them durable (in-file
    /// payloads, writable sessions' ends): damage to their data is told
    /// from a lost tail only by that declaration (FORMAT.md §7.4).
    pub fn checked_at_recovery(&self) -> bool {
        match self {
            Op::SetSums { sums, .. } => sums.covered > 0,
            _ => matches!(self.payload(), Some((_, Payload::InFile { .. }, _))),
        }
    }

    /// The array the op concerns (the source of a rename).
    pub fn array_name(&self) -> &str {
        match self {
            Op::Put { name, .. }
            | Op::Append { name, .. }
            | Op::Replace { name, .. }
            | Op::DeleteRows { name, .. }
            | Op::Compact { name, .. }
            | Op::Drop { name }
            | Op::SetSums { name, .. }
            | Op::Release { name, .. }
            | Op::Restore { name, .. } => name,
            Op::Rename { from, .. } => from,
            Op::Snapshot { tag, .. } => tag.as_deref().unwrap_or(""),
            Op::DeleteVersion { .. } => "",
        }
    }
}
