//! The MANIFEST's bytes (FORMAT.md §4): a checkpoint of the whole state.

use std::collections::HashSet;
use std::sync::Arc;

use super::codec::{Dec, DecResult, DecodeError, Enc};
use super::fields::{dec_dtype, dec_name, dec_shape, dec_sums, enc_shape, enc_sums};
use super::{
    HeaderError, FORMAT_VERSION, MANIFEST_HEADER_BYTES, MANIFEST_MAGIC, MAX_MANIFEST_BODY,
    MIN_FORMAT_VERSION,
};
use crate::model::rowmap::{Extent, RowMap};
use crate::model::state::{row_bytes, ArrayMeta, Remap, State};
use crate::model::sums::ChunkSums;
use crate::model::version::{ArrayTable, FileRef, Version};

/// Bytes of a file ref in the MANIFEST (FORMAT.md §15.2).
const FILE_REF_BYTES: u64 = 8 + 4 + 8;
/// Bytes of a version ref besides its tag (FORMAT.md §15.1).
const VERSION_REF_FIXED_BYTES: u64 = 8 + 8 + 2 + 4;

/// Bytes of an array entry besides its name, row shape, extents, remap and
/// checksums: dtype, file id, slots, mtime and the three counts.
const ENTRY_FIXED_BYTES: u64 = 2 + 1 + 4 + 8 + 8 + 8 + 4 + 4 + 8 + 4;

/// The exact size of the MANIFEST [`encode_manifest`] would write for
/// `state`, without encoding it. A checkpoint checks it against the cap
/// before it writes anything, and a writer measures with it a state it
/// loads (at open, or reloading another writer's checkpoint) and one whose
/// checksums a checkpoint refreshed (FORMAT.md §2.1). Commits do not call
/// it: they keep that size up to date entry by entry ([`entry_len`]) and
/// check it, plus an upper bound of what their ops add, against the cap
/// before anything is logged (debug builds assert after each commit that
/// the size kept equals this).
pub(crate) fn manifest_len(state: &State) -> u64 {
    let header = MANIFEST_HEADER_BYTES as u64 + 8 + 8 + 32 + 8 + 8 + 4;
    let arrays = state
        .arrays
        .iter()
        .map(|(name, a)| entry_len(name, a))
        .fold(header, u64::saturating_add);
    arrays.saturating_add(versions_section_len(state))
}

/// Bytes of the file table and the version list (format 2; 0 before), in
/// O(1): the state keeps the total length of its tags.
pub(crate) fn versions_section_len(state: &State) -> u64 {
    if state.format < 2 {
        return 0;
    }
    let files = 4 + FILE_REF_BYTES * state.file_refs.len() as u64;
    let versions = 4 + VERSION_REF_FIXED_BYTES * state.versions.len() as u64;
    files + versions + state.tag_bytes
}

/// Encoded size of one array's MANIFEST entry.
pub(crate) fn entry_len(name: &str, a: &ArrayMeta) -> u64 {
    let n = |count: usize, each: u64| (count as u64).saturating_mul(each);
    ENTRY_FIXED_BYTES
        + name.len() as u64
        + n(a.row_shape.len(), 8)
        + n(a.rowmap.extents().len(), 16)
        + n(a.remap.len(), 16)
        + n(a.sums.sums.len(), 4)
}

/// Encode the MANIFEST (a checkpoint of the whole state).
pub(crate) fn encode_manifest(state: &State, created_ns: u64) -> Vec<u8> {
    let mut b = Enc::with_capacity(256 + state.arrays.len() * 128);
    b.u64(state.gen);
    b.u64(state.seq);
    b.raw(&state.chain);
    b.u64(state.next_file_id);
    b.u64(created_ns);
    b.u32(state.arrays.len() as u32);
    for (name, a) in &state.arrays {
        encode_entry(&mut b, name, a);
    }
    if state.format >= 2 {
        b.u32(state.file_refs.len() as u32);
        for (id, r) in state.file_refs.iter() {
            b.u64(*id);
            b.u32(r.versions);
            b.u64(r.end_slots);
        }
        b.u32(state.versions.len() as u32);
        for v in state.versions.values() {
            b.u64(v.id);
            b.u64(v.time_ns);
            b.str(v.tag.as_deref().unwrap_or(""));
            b.u32(v.array_count);
        }
    }
    let out = framed(MANIFEST_MAGIC, state.format, &b.buf);
    debug_assert_eq!(out.len() as u64, manifest_len(state));
    out
}

/// A header (magic, format version, flags, body length, body CRC,
/// reserved) and the body: the frame of a MANIFEST and of a version file.
pub(crate) fn framed(magic: &[u8; 8], version: u32, body: &[u8]) -> Vec<u8> {
    let mut e = Enc::with_capacity(MANIFEST_HEADER_BYTES + body.len());
    e.raw(magic);
    e.u32(version);
    e.u32(0);
    e.u64(body.len() as u64);
    e.u32(crc32c::crc32c(body));
    e.u32(0);
    e.raw(body);
    e.buf
}

pub(crate) fn encode_entry(b: &mut Enc, name: &str, a: &ArrayMeta) {
    b.str(name);
    encode_entry_fields(b, a);
}

/// An array entry after its name (FORMAT.md §4.3; a Restore op's too).
pub(crate) fn encode_entry_fields(b: &mut Enc, a: &ArrayMeta) {
    b.u8(a.dtype.code());
    enc_shape(b, &a.row_shape);
    b.u64(a.file_id);
    b.u64(a.phys_slots);
    b.u64(a.mtime_ns);
    let ext = a.rowmap.extents();
    b.u32(ext.len() as u32);
    for e in ext {
        b.u64(e.start);
        b.u64(e.len);
    }
    // In base-slot order (the map is ordered).
    b.u32(a.remap.len() as u32);
    for (k, v) in a.remap.iter() {
        b.u64(*k);
        b.u64(*v);
    }
    enc_sums(b, &a.sums);
}

/// Decode a MANIFEST into a state and its creation time. Offsets in errors
/// count from the start of the file.
pub(crate) fn decode_manifest(buf: &[u8]) -> Result<(State, u64), HeaderError> {
    let (version, body) = unframe(buf, MANIFEST_MAGIC, "manifest")?;
    let (mut st, created) = decode_manifest_body(body, version)
        .map_err(|e| HeaderError::from(e.shifted(MANIFEST_HEADER_BYTES as u64)))?;
    st.format = version;
    Ok((st, created))
}

/// Check the frame of a MANIFEST or version file; returns the format
/// version and the body.
pub(crate) fn unframe<'b>(
    buf: &'b [u8],
    magic: &[u8; 8],
    what: &str,
) -> Result<(u32, &'b [u8]), HeaderError> {
    let mut d = Dec::new(buf);
    if d.take(8, "magic")? != magic {
        return Err(DecodeError::at(0, format!("not a numvault {what} (bad magic)")).into());
    }
    let version = d.u32("version")?;
    if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(HeaderError::Version(version));
    }
    d.u32("flags")?;
    let len = d.u64("body length")?;
    let crc = d.u32("body checksum")?;
    d.u32("reserved")?;
    if len > MAX_MANIFEST_BODY || len != d.remaining() as u64 {
        return Err(DecodeError::at(
            16,
            format!(
                "body length {len} does not match the {} bytes present",
                d.remaining()
            ),
        )
        .into());
    }
    let body = d.take(len as usize, "body")?;
    if crc32c::crc32c(body) != crc {
        return Err(DecodeError::at(24, format!("{what} checksum mismatch")).into());
    }
    Ok((version, body))
}

/// Decode a MANIFEST body of format `version` (offsets in errors count
/// from its start).
pub(crate) fn decode_manifest_body(body: &[u8], version: u32) -> DecResult<(State, u64)> {
    let mut d = Dec::new(body);
    let mut st = State {
        format: version,
        gen: d.u64("generation")?,
        seq: d.u64("sequence")?,
        chain: d.array32("chain head")?,
        next_file_id: d.u64("next file id")?,
        ..State::default()
    };
    let created = d.u64("creation time")?;
    // (offset, name, file id) of each array, to check shared files once
    // the file table is known.
    let mut shared = Vec::new();
    st.arrays = decode_table(&mut d, st.next_file_id, &mut shared)?;
    if version >= 2 {
        decode_file_refs(&mut d, &mut st)?;
        decode_version_refs(&mut d, &mut st)?;
    }
    if let Some((at, name, id)) = shared
        .iter()
        .find(|(_, _, id)| !st.file_refs.contains_key(id))
    {
        return Err(DecodeError::at(
            *at,
            format!("'{name}' shares file id {id} with another array"),
        ));
    }
    if !d.is_empty() {
        return Err(d.error(format!("{} trailing bytes", d.remaining())));
    }
    Ok((st, created))
}

/// A count and that many array entries, each naming a file below
/// `next_file_id`; arrays sharing a file are noted in `shared`.
pub(crate) fn decode_table(
    d: &mut Dec,
    next_file_id: u64,
    shared: &mut Vec<(u64, String, u64)>,
) -> DecResult<ArrayTable> {
    let n = d.count(16, "array count")?;
    // File ids seen so far: a set, so that loading n arrays stays O(n).
    let mut file_ids = HashSet::new();
    let mut arrays = ArrayTable::new();
    for _ in 0..n {
        let at = d.pos();
        let (name, meta) = decode_entry(d)?;
        if meta.file_id >= next_file_id {
            return Err(DecodeError::at(
                at,
                format!("'{name}' uses file id {} beyond the next id", meta.file_id),
            ));
        }
        if !file_ids.insert(meta.file_id) {
            shared.push((at, name.clone(), meta.file_id));
        }
        if arrays.insert(name.clone(), Arc::new(meta)).is_some() {
            return Err(DecodeError::at(at, format!("array '{name}' listed twice")));
        }
    }
    Ok(arrays)
}

fn decode_file_refs(d: &mut Dec, st: &mut State) -> DecResult<()> {
    let n = d.count(FILE_REF_BYTES as usize, "file ref count")?;
    // The most slots any current array has in each file it names.
    let mut named: std::collections::HashMap<u64, u64> = Default::default();
    if n > 0 {
        for a in st.arrays.values() {
            let m = named.entry(a.file_id).or_default();
            *m = (*m).max(a.phys_slots);
        }
    }
    for _ in 0..n {
        let at = d.pos();
        let id = d.u64("file id")?;
        let r = FileRef {
            versions: d.u32("version count")?,
            end_slots: d.u64("committed end")?,
        };
        let phys = named.get(&id);
        if id >= st.next_file_id
            || (r.versions == 0 && phys.is_none())
            || phys.is_some_and(|p| *p > r.end_slots)
            || st.file_refs.insert(id, r).is_some()
        {
            return Err(DecodeError::at(
                at,
                format!("file ref of file {id} is inconsistent"),
            ));
        }
    }
    Ok(())
}

fn decode_version_refs(d: &mut Dec, st: &mut State) -> DecResult<()> {
    let n = d.count(VERSION_REF_FIXED_BYTES as usize, "version count")?;
    let mut last = None;
    for _ in 0..n {
        let at = d.pos();
        let id = d.u64("version id")?;
        if last.is_some_and(|l| l >= id) {
            return Err(DecodeError::at(
                at,
                "versions are not in ascending id order",
            ));
        }
        last = Some(id);
        let time_ns = d.u64("version time")?;
        let tag = d.str("version tag")?;
        let array_count = d.u32("version array count")?;
        let tag = match tag.is_empty() {
            true => None,
            false => Some(tag),
        };
        let dup_tag = tag
            .as_deref()
            .is_some_and(|t| st.version_by_tag(t).is_some());
        if id > st.seq || dup_tag || st.versions.contains_key(&id) {
            return Err(DecodeError::at(
                at,
                format!("version {id} is listed twice or after the MANIFEST's seq"),
            ));
        }
        let v = Version {
            id,
            tag,
            time_ns,
            array_count,
            arrays: None,
            on_disk: true,
        };
        st.tag_bytes += v.tag.as_ref().map_or(0, |t| t.len() as u64);
        st.versions.insert(id, Arc::new(v));
    }
    Ok(())
}

/// One array entry (FORMAT.md §4.3), checked for internal consistency.
fn decode_entry(d: &mut Dec) -> DecResult<(String, ArrayMeta)> {
    let name = dec_name(d, "array name")?;
    let meta = decode_entry_fields(d, &name)?;
    Ok((name, meta))
}

/// An array entry after its name (a MANIFEST's, a version file's, a
/// Restore op's).
pub(crate) fn decode_entry_fields(d: &mut Dec, name: &str) -> DecResult<ArrayMeta> {
    let name = name.to_string();
    let dtype = dec_dtype(d)?;
    let row_shape = dec_shape(d)?;
    let rb = row_bytes(dtype, &row_shape).ok_or_else(|| d.error("row size overflows"))?;
    let file_id = d.u64("file id")?;
    let phys_slots = d.u64("slots")?;
    let mtime_ns = d.u64("mtime")?;
    let rowmap = decode_extents(d, &name, phys_slots)?;
    let remap = decode_remap(d, &name, &rowmap, phys_slots)?;
    let sums: ChunkSums = dec_sums(d)?;
    if phys_slots.checked_mul(rb).is_none_or(|b| sums.covered > b) {
        return Err(d.error(format!(
            "'{name}': checksums cover more than the file holds"
        )));
    }
    let meta = ArrayMeta {
        dtype,
        row_shape,
        row_bytes: rb,
        file_id,
        phys_slots,
        rowmap: Arc::new(rowmap),
        remap,
        sums: Arc::new(sums),
        mtime_ns,
        cache: Default::default(),
    };
    Ok(meta)
}

fn decode_extents(d: &mut Dec, name: &str, phys_slots: u64) -> DecResult<RowMap> {
    let at = d.pos();
    let ne = d.count(16, "extent count")?;
    let mut extents = Vec::with_capacity(ne);
    for _ in 0..ne {
        extents.push(Extent {
            start: d.u64("extent start")?,
            len: d.u64("extent length")?,
        });
    }
    let rowmap =
        RowMap::from_extents(extents).map_err(|e| DecodeError::at(at, format!("'{name}': {e}")))?;
    if rowmap.end_slot() > phys_slots {
        return Err(DecodeError::at(
            at,
            format!("'{name}': extents reach past the file's {phys_slots} slots"),
        ));
    }
    Ok(rowmap)
}

fn decode_remap(d: &mut Dec, name: &str, rowmap: &RowMap, phys_slots: u64) -> DecResult<Remap> {
    let nr = d.count(16, "remap count")?;
    let mut remap = Remap::new();
    for _ in 0..nr {
        let at = d.pos();
        let (k, v) = (d.u64("remap from")?, d.u64("remap to")?);
        if rowmap.logical_of(k).is_none() || v >= phys_slots {
            return Err(DecodeError::at(
                at,
                format!("'{name}': remap {k}->{v} is out of range"),
            ));
        }
        remap.insert(k, v);
    }
    Ok(remap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::tests::sample_ops;

    #[test]
    fn manifest_round_trip_and_damage() {
        let mut st = State {
            gen: 2,
            ..State::default()
        };
        for (i, op) in sample_ops().iter().take(4).enumerate() {
            st.apply(op, i as u64).unwrap();
        }
        st.seq = 4;
        let bytes = encode_manifest(&st, 77);
        let (back, created) = decode_manifest(&bytes).unwrap();
        assert_eq!(created, 77);
        assert_eq!(back.gen, 2);
        assert_eq!(back.next_file_id, 4);
        let a = &back.arrays["a/b"];
        let b = &st.arrays["a/b"];
        assert_eq!(a.rowmap, b.rowmap);
        assert_eq!(a.remap, b.remap);
        assert_eq!(a.phys_slots, b.phys_slots);
        for cut in [0, 7, 20, bytes.len() - 1] {
            assert!(decode_manifest(&bytes[..cut]).is_err());
        }
        let mut v = bytes.clone();
        v[8] = 99;
        assert!(matches!(decode_manifest(&v), Err(HeaderError::Version(99))));
    }

    #[test]
    fn manifest_len_matches_the_encoding() {
        let mut st = State::default();
        assert_eq!(manifest_len(&st), encode_manifest(&st, 1).len() as u64);
        for (i, op) in sample_ops().iter().take(4).enumerate() {
            st.apply(op, i as u64).unwrap();
            let a = &st.arrays["a/b"];
            assert_eq!(manifest_len(&st), encode_manifest(&st, 1).len() as u64);
            assert!(entry_len("a/b", a) > 0);
        }
    }
}
