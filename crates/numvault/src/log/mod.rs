//! The commit log: the writer that appends records ([`writer`]) and the one
//! walker that reads them back ([`walker`]), used by recovery, readers
//! catching up, `verify()` and `history()`. FORMAT.md §5 gives the bytes.
//!
//! Invariants (asserted by the writer, checked by the walker):
//! - records follow the header back to back; record `n + 1` names record
//!   `n`'s BLAKE3 hash as its previous hash and carries seq `n + 1`;
//! - a log never grows past `MAX_LOG_FILE_BYTES`, nor a record body past
//!   `MAX_RECORD_BODY`, so every log a writer leaves can be read back.

use std::path::Path;

use crate::io::vfs::VFile;
use crate::model::error::{Error, IoContext, Result};

pub(crate) mod walker;
pub(crate) mod writer;

/// Read a whole file of at most `max` bytes; a longer one is damaged, and is
/// `Corrupt` without being read (FORMAT.md §2.1).
pub(crate) fn read_capped(file: &dyn VFile, path: &Path, max: u64) -> Result<Vec<u8>> {
    let len = file.len().ctx(path)?;
    read_range_capped(file, path, 0, len, max)
}

/// Read bytes `from..len` of a file whose valid length is at most `max`.
pub(crate) fn read_range_capped(
    file: &dyn VFile,
    path: &Path,
    from: u64,
    len: u64,
    max: u64,
) -> Result<Vec<u8>> {
    if len > max {
        return Err(Error::corrupt(
            path,
            format!("file is {len} bytes, more than the {max} a valid one can be"),
        ));
    }
    let n = usize::try_from(len.saturating_sub(from))
        .map_err(|_| Error::corrupt(path, "file too large"))?;
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, from).ctx(path)?;
    Ok(buf)
}
