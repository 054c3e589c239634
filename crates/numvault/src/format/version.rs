//! Version files' bytes (FORMAT.md §15.3): the array table of one version,
//! framed as a MANIFEST is.

use super::codec::{Dec, DecResult, DecodeError, Enc};
use super::manifest::{encode_entry, framed, unframe};
use super::{HeaderError, MANIFEST_HEADER_BYTES};
use crate::model::version::{ArrayTable, Version};

pub(crate) const VERSION_MAGIC: &[u8; 8] = b"NVVERS\0\0";
/// The directory of version files.
pub(crate) const VERSIONS_DIR: &str = "versions";
const VERSION_EXT: &str = "nvv";

/// `versions/<id>.nvv`'s file name.
pub(crate) fn version_file_name(id: u64) -> String {
    format!("{id:016x}.{VERSION_EXT}")
}

/// The id of a version file's name, if it is one.
pub(crate) fn version_file_id(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".nvv")?;
    if hex.len() != 16
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The bytes of `v`'s version file, given its array table.
pub(crate) fn encode_version_file(v: &Version, arrays: &ArrayTable) -> Vec<u8> {
    let mut b = Enc::with_capacity(64 + arrays.len() * 128);
    b.u64(v.id);
    b.u64(v.time_ns);
    b.str(v.tag.as_deref().unwrap_or(""));
    b.u32(arrays.len() as u32);
    for (name, a) in arrays {
        encode_entry(&mut b, name, a);
    }
    framed(VERSION_MAGIC, 2, &b.buf)
}

/// Decode the version file of version `id`: its array table, every entry
/// checked as a MANIFEST entry and naming a file below `next_file_id`.
pub(crate) fn decode_version_file(
    buf: &[u8],
    id: u64,
    next_file_id: u64,
) -> Result<ArrayTable, HeaderError> {
    let (version, body) = unframe(buf, VERSION_MAGIC, "version file")?;
    if version < 2 {
        return Err(HeaderError::Version(version));
    }
    decode_body(body, id, next_file_id)
        .map_err(|e| HeaderError::from(e.shifted(MANIFEST_HEADER_BYTES as u64)))
}

fn decode_body(body: &[u8], id: u64, next_file_id: u64) -> DecResult<ArrayTable> {
    let mut d = Dec::new(body);
    let found = d.u64("version id")?;
    if found != id {
        return Err(DecodeError::at(
            0,
            format!("holds version {found}, not {id}"),
        ));
    }
    d.u64("version time")?;
    d.str("version tag")?;
    let mut shared = Vec::new();
    let arrays = super::manifest::decode_table(&mut d, next_file_id, &mut shared)?;
    if !d.is_empty() {
        return Err(d.error(format!("{} trailing bytes", d.remaining())));
    }
    Ok(arrays)
}
