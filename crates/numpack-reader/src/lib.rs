//! Read NumPack store directories (NumPack 0.5, 0.6 and 0.7) and import
//! them into numvault in one atomic commit.
//!
//! A NumPack store is a directory with `metadata.npkm` (the arrays' names,
//! shapes, dtypes and data files), one `data_<name>.npkd` of raw row-major
//! little-endian rows per array (NumPack 0.7 splits large arrays over
//! `data_<name>_segments/seg_NNNNNN.npkd` listed by `data_<name>.npkseg`),
//! and a `deleted_<name>.npkb` bitmap for arrays with rows deleted by
//! `drop(name, indexes)`. See [`format`] for the byte layouts.
//!
//! [`NumPackStore::open`] checks every record against its files before any
//! row is read; [`import_dir`] / [`import_into`] stream the live rows (those
//! NumPack's `load` returns) into one numvault transaction, so a damaged
//! store imports nothing. No path reachable from file contents panics:
//! errors name the file, the array and the byte offset.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod error;
pub mod format;
mod import;
mod store;

pub use error::{Error, Result};
pub use import::{
    import_dir, import_into, plan, stage_array, target_name, ImportOptions, ImportReport,
    ImportedArray, Planned, Select, DEFAULT_CHUNK_BYTES,
};
pub use store::{is_numpack_store, Layout, NumPackArray, NumPackStore, Segment, MAX_SIDE_FILE};

#[cfg(test)]
mod tests;
