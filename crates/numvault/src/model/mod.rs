//! The data model: element types, arrays as users pass them, the committed
//! state of a store (arrays, their row maps and checksums) and the ops that
//! change it. Pure in-memory logic: nothing here touches a file.
//!
//! Invariants kept by [`state::State::apply`] (checked on every op read from
//! disk, asserted on ops built by the writer):
//! - every array's file id is below `next_file_id`, and no two arrays share
//!   one unless the file table lists it (format 2, FORMAT.md §15.2);
//! - a file in the file table is named by a current array or by a version;
//!   its `versions` count is the number of (version, array) pairs naming it,
//!   and no entry naming it has more slots than its `end_slots`;
//! - an array's extents are sorted, disjoint, non-empty and end at or below
//!   its `phys_slots`; its remap maps live base slots to slots below
//!   `phys_slots`;
//! - `phys_slots × row_bytes` fits in `u64`, and the checksums cover at most
//!   those bytes.

pub(crate) mod array;
pub(crate) mod dtype;
pub(crate) mod error;
pub(crate) mod name;
pub(crate) mod op;
pub(crate) mod rowmap;
pub(crate) mod slot_index;
pub(crate) mod state;
pub(crate) mod sums;
pub(crate) mod version;

/// The newest format version (FORMAT.md §12): a new store's
/// (`format::FORMAT_VERSION` is this).
pub(crate) const NEWEST_FORMAT: u32 = 2;

/// Largest number of dimensions.
pub const MAX_NDIM: usize = 32;

/// The outcome of checking something read from disk or built by the writer:
/// `Err` describes the rule broken; callers wrap it into an error naming the
/// file.
pub(crate) type CheckResult<T> = std::result::Result<T, String>;
