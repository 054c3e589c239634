//! Data files: the open-file table, and the one routine that reads bytes of
//! a data file while checking their chunk checksums ([`check`]). Every
//! verified read, `verify()`, recovery's payload checks and writable
//! sessions go through [`check::read_crc`] / [`check::read_chunk`].
//!
//! Data files are append-only: bytes below an array's committed length
//! never change (writable sessions are the documented exception, FORMAT.md
//! §11), so a chunk checksum, once computed, never goes stale.

pub(crate) mod check;
pub mod file;

pub(crate) use file::{DataFile, FileTable};
