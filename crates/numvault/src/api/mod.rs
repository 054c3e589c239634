//! The store handle: the public face of the engine. [`Store`] opens and
//! closes stores, commits changes through the transaction layer, and hands
//! out snapshots for the read layer; it holds no storage logic of its own.

mod reads;
mod store;
mod versions;

pub use store::{Compaction, Store};
pub use versions::VersionInfo;
