//! Field encodings shared by the MANIFEST and log records: dtypes, row
//! shapes, chunk checksums, payloads and slot lists (FORMAT.md §4.3, §5.5).

use super::codec::{Dec, DecResult, DecodeError, Enc};
use crate::model::dtype::DType;
use crate::model::op::Payload;
use crate::model::sums::ChunkSums;
use crate::model::MAX_NDIM;

const PAYLOAD_INLINE: u8 = 0;
const PAYLOAD_IN_FILE: u8 = 1;

pub(super) fn enc_shape(e: &mut Enc, row_shape: &[u64]) {
    e.u32(row_shape.len() as u32);
    for d in row_shape {
        e.u64(*d);
    }
}

pub(super) fn dec_shape(d: &mut Dec) -> DecResult<Vec<u64>> {
    let n = d.count(8, "row shape")?;
    if n > MAX_NDIM - 1 {
        return Err(d.error(format!("{n} trailing dimensions exceed the limit")));
    }
    (0..n).map(|_| d.u64("dimension")).collect()
}

pub(super) fn dec_dtype(d: &mut Dec) -> DecResult<DType> {
    let at = d.pos();
    let c = d.u8("dtype")?;
    DType::from_code(c).ok_or_else(|| DecodeError::at(at, format!("unknown dtype code {c}")))
}

pub(super) fn enc_sums(e: &mut Enc, s: &ChunkSums) {
    e.u64(s.covered);
    e.u32(s.sums.len() as u32);
    for x in &s.sums {
        e.u32(*x);
    }
}

pub(crate) fn dec_sums(d: &mut Dec) -> DecResult<ChunkSums> {
    let covered = d.u64("checksum coverage")?;
    let n = d.count(4, "checksum count")?;
    let sums = (0..n)
        .map(|_| d.u32("checksum"))
        .collect::<DecResult<Vec<_>>>()?;
    let s = ChunkSums { covered, sums };
    if !s.is_consistent() {
        return Err(d.error(format!("{n} chunk checksums cannot cover {covered} bytes")));
    }
    Ok(s)
}

pub(super) fn enc_payload(e: &mut Enc, p: &Payload) {
    match p {
        Payload::Inline(b) => {
            e.u8(PAYLOAD_INLINE);
            e.bytes(b);
        }
        Payload::InFile { crc32c, synced } => {
            e.u8(PAYLOAD_IN_FILE);
            e.u32(*crc32c);
            e.u8(u8::from(*synced));
        }
    }
}

pub(super) fn dec_payload(d: &mut Dec) -> DecResult<Payload> {
    let at = d.pos();
    match d.u8("payload kind")? {
        PAYLOAD_INLINE => Ok(Payload::Inline(d.bytes("inline payload")?.to_vec())),
        PAYLOAD_IN_FILE => Ok(Payload::InFile {
            crc32c: d.u32("payload crc")?,
            synced: d.u8("payload synced flag")? != 0,
        }),
        k => Err(DecodeError::at(at, format!("unknown payload kind {k}"))),
    }
}

pub(super) fn dec_slots(d: &mut Dec) -> DecResult<Vec<u64>> {
    let n = d.count(8, "slot count")?;
    (0..n).map(|_| d.u64("slot")).collect()
}

pub(super) fn enc_slots(e: &mut Enc, slots: &[u64]) {
    e.u32(slots.len() as u32);
    for s in slots {
        e.u64(*s);
    }
}

/// An array name, checked as `validate_name` does.
pub(super) fn dec_name(d: &mut Dec, what: &str) -> DecResult<String> {
    let at = d.pos();
    let name = d.str(what)?;
    crate::model::name::validate_name(&name).map_err(|e| DecodeError::at(at, e.to_string()))?;
    Ok(name)
}
