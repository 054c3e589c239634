//! Reading data-file bytes with their checksums checked: one loop, used by
//! every reader of checksummed bytes.
//!
//! Bytes are read in pieces of [`PIECE`] bytes and the CRC-32C is extended
//! over each piece right after its read, while the bytes are still in the
//! CPU cache: checking costs no second pass over memory.

use std::path::Path;

use super::DataFile;
use crate::model::error::{Error, IoContext, Result};
use crate::model::sums::{ChunkSums, CHUNK_BYTES};

/// Bytes per read call: well within a core's L2 cache.
pub(crate) const PIECE: usize = 256 << 10;

/// Read the file's bytes from `start` into `dests` (consecutive file ranges,
/// in order) and return the CRC-32C of the first `crc_len` bytes read.
pub(crate) fn read_crc<'a>(
    df: &DataFile,
    start: u64,
    dests: impl IntoIterator<Item = &'a mut [u8]>,
    crc_len: u64,
) -> Result<u32> {
    extend_crc(df, start, dests, crc_len, 0)
}

/// [`read_crc`], extending `crc` (the CRC-32C of the bytes before `start`).
pub(crate) fn extend_crc<'a>(
    df: &DataFile,
    start: u64,
    dests: impl IntoIterator<Item = &'a mut [u8]>,
    crc_len: u64,
    mut crc: u32,
) -> Result<u32> {
    let mut done = 0u64;
    for dest in dests {
        for part in dest.chunks_mut(PIECE) {
            df.file.read_exact_at(part, start + done).ctx(&df.path)?;
            let take = crc_len.saturating_sub(done).min(part.len() as u64) as usize;
            if take > 0 {
                crc = crc32c::crc32c_append(crc, &part[..take]);
            }
            done += part.len() as u64;
        }
    }
    Ok(crc)
}

/// Read checksum chunk `chunk` of a file (or its first bytes) into `dests`,
/// which together span from the chunk's start; `false` if the bytes the
/// chunk's checksum covers do not match it. Bytes past the checksummed ones
/// (appended since the last checkpoint) are read unchecked, as is a chunk
/// without a checksum.
pub(crate) fn read_chunk<'a>(
    df: &DataFile,
    sums: &ChunkSums,
    chunk: usize,
    dests: impl IntoIterator<Item = &'a mut [u8]>,
) -> Result<bool> {
    let start = chunk as u64 * CHUNK_BYTES;
    let Some(&want) = sums.sums.get(chunk) else {
        read_crc(df, start, dests, 0)?;
        return Ok(true);
    };
    let (cs, ce) = sums.range(chunk);
    debug_assert_eq!(cs, start);
    let mut len = 0u64;
    let dests: Vec<&mut [u8]> = dests
        .into_iter()
        .inspect(|d| len += d.len() as u64)
        .collect();
    // Callers read at least the checksummed bytes; fewer could not be
    // checked, so they count as a mismatch (an error, never unchecked data).
    debug_assert!(
        len >= ce - cs,
        "chunk {chunk}: {len} bytes read of {}",
        ce - cs
    );
    let crc = read_crc(df, start, dests, ce - cs)?;
    Ok(len >= ce - cs && crc == want)
}

/// The error for chunk `chunk` of array `name`'s file failing its checksum.
pub(crate) fn chunk_mismatch(name: &str, sums: &ChunkSums, path: &Path, chunk: usize) -> Error {
    let (start, end) = sums.range(chunk);
    Error::ChecksumMismatch {
        array: name.to_string(),
        path: path.to_path_buf(),
        chunk: chunk as u64,
        start,
        end,
    }
}
