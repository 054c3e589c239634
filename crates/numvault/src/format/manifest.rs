//! The MANIFEST's bytes (FORMAT.md §4): a checkpoint of the whole state.

use std::collections::HashSet;
use std::sync::Arc;

use super::codec::{Dec, DecResult, DecodeError, Enc};
use super::fields::{dec_dtype, dec_name, dec_shape, dec_sums, enc_shape, enc_sums};
use super::{
    HeaderError, FORMAT_VERSION, MANIFEST_HEADER_BYTES, MANIFEST_MAGIC, MAX_MANIFEST_BODY,
};
use crate::model::rowmap::{Extent, RowMap};
use crate::model::state::{row_bytes, ArrayMeta, Remap, State};
use crate::model::sums::ChunkSums;

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
    state
        .arrays
        .iter()
        .map(|(name, a)| entry_len(name, a))
        .fold(header, u64::saturating_add)
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
    let body = b.buf;
    let mut e = Enc::with_capacity(MANIFEST_HEADER_BYTES + body.len());
    e.raw(MANIFEST_MAGIC);
    e.u32(FORMAT_VERSION);
    e.u32(0);
    e.u64(body.len() as u64);
    e.u32(crc32c::crc32c(&body));
    e.u32(0);
    e.raw(&body);
    debug_assert_eq!(e.buf.len() as u64, manifest_len(state));
    e.buf
}

fn encode_entry(b: &mut Enc, name: &str, a: &ArrayMeta) {
    b.str(name);
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
    let mut d = Dec::new(buf);
    if d.take(8, "magic")? != MANIFEST_MAGIC {
        return Err(DecodeError::at(0, "not a numvault manifest (bad magic)").into());
    }
    let version = d.u32("version")?;
    if version != FORMAT_VERSION {
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
        return Err(DecodeError::at(24, "manifest checksum mismatch").into());
    }
    decode_manifest_body(body).map_err(|e| e.shifted(MANIFEST_HEADER_BYTES as u64).into())
}

/// Decode a MANIFEST body (offsets in errors count from its start).
pub(crate) fn decode_manifest_body(body: &[u8]) -> DecResult<(State, u64)> {
    let mut d = Dec::new(body);
    let mut st = State {
        gen: d.u64("generation")?,
        seq: d.u64("sequence")?,
        chain: d.array32("chain head")?,
        next_file_id: d.u64("next file id")?,
        arrays: Default::default(),
    };
    let created = d.u64("creation time")?;
    let n = d.count(16, "array count")?;
    // File ids seen so far: a set, so that loading n arrays stays O(n).
    let mut file_ids = HashSet::new();
    for _ in 0..n {
        let at = d.pos();
        let (name, meta) = decode_entry(&mut d)?;
        if meta.file_id >= st.next_file_id {
            return Err(DecodeError::at(
                at,
                format!("'{name}' uses file id {} beyond the next id", meta.file_id),
            ));
        }
        if !file_ids.insert(meta.file_id) {
            return Err(DecodeError::at(
                at,
                format!(
                    "'{name}' shares file id {} with another array",
                    meta.file_id
                ),
            ));
        }
        if st.arrays.insert(name.clone(), Arc::new(meta)).is_some() {
            return Err(DecodeError::at(at, format!("array '{name}' listed twice")));
        }
    }
    if !d.is_empty() {
        return Err(d.error(format!("{} trailing bytes", d.remaining())));
    }
    Ok((st, created))
}

/// One array entry (FORMAT.md §4.3), checked for internal consistency.
fn decode_entry(d: &mut Dec) -> DecResult<(String, ArrayMeta)> {
    let name = dec_name(d, "array name")?;
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
    Ok((name, meta))
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
