//! numvault: a crash-safe embedded storage engine for numeric arrays.
//!
//! A store is a directory of named arrays of fixed-size elements; the first
//! axis is rows. Every mutation is atomic and goes through a checksummed,
//! hash-chained commit log; data files are append-only and covered by
//! per-chunk checksums. See `docs/FORMAT.md` for the on-disk format and the
//! durability guarantees of each [`Sync`] policy.
//!
//! ```
//! use numvault::{ArrayRef, Store, OpenOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), OpenOptions::default()).unwrap();
//! let rows: Vec<f32> = (0..30).map(|i| i as f32).collect();
//! store.save("features", ArrayRef::of(&[10, 3], &rows)).unwrap();
//! store.append("features", ArrayRef::of(&[1, 3], &[1.0f32, 2.0, 3.0])).unwrap();
//! store.replace("features", &[-1], ArrayRef::of(&[1, 3], &[0.0f32; 3])).unwrap();
//! store.delete_rows("features", &[0]).unwrap();
//! assert_eq!(store.shape("features").unwrap(), vec![10, 3]);
//! let view = store.view("features").unwrap();
//! assert_eq!(view.row(0).unwrap(), bytemuck::cast_slice::<f32, u8>(&[3.0, 4.0, 5.0]));
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

// The layers, top to bottom, as tests/layers.rs enforces them: `fuzzing`;
// `api`; `inplace` and `audit` (one layer: neither uses the other); `txn`;
// `read`; `recovery`; `log`; `data`; `format`; `model`; `io`; `util`. A
// module imports only from layers below its own.
mod api;
mod audit;
mod data;
mod format;
mod inplace;
mod io;
mod log;
mod model;
mod read;
mod recovery;
mod txn;
mod util;

#[doc(hidden)]
pub mod fuzzing;

pub use api::{Compaction, Store, VersionInfo};
pub use audit::diff::{ArrayDiff, DiffKind};
pub use audit::history::HistoryReport;
pub use audit::{Problem, VerifyReport};
pub use data::file::DEFAULT_MAX_OPEN_FILES;
pub use format::history::{hex as hash_hex, CommitInfo, OpKind, OpSummary};
pub use format::{FORMAT_VERSION, MAX_NDIM};
pub use inplace::Writable;
pub use io::{sim, vfs};
pub use model::array::{ArrayData, ArrayInfo, ArrayRef, Element};
pub use model::dtype::DType;
pub use model::error::{Error, Result};
pub use model::name::{validate_name, MAX_NAME_BYTES};
pub use read::{ArrayReader, Batches, View};
pub use txn::batch::Batch;
pub use txn::options::{OpenOptions, Sync};
pub use txn::stage::{RowWriter, Txn, TXN_MEMORY_BYTES};
pub use txn::versions::VersionRef;
