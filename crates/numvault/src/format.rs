//! Byte layouts of the MANIFEST (checkpoint), the commit log and its
//! records. docs/FORMAT.md is the normative description; keep them in step.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::codec::{Dec, DecResult, Enc};
use crate::dtype::DType;
use crate::meta::{row_bytes, ArrayMeta, ChunkSums, Extent, Op, Payload, RowMap, State};

pub(crate) const MANIFEST_MAGIC: &[u8; 8] = b"NVMANIF\0";
pub(crate) const LOG_MAGIC: &[u8; 8] = b"NVLOG\0\0\0";
/// Version of every file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Manifest header: magic, version, flags, body length, body crc32c, reserved.
pub(crate) const MANIFEST_HEADER_BYTES: usize = 8 + 4 + 4 + 8 + 4 + 4;
/// Log header: magic, version, reserved, generation.
pub(crate) const LOG_HEADER_BYTES: u64 = 8 + 4 + 4 + 8;
/// Record frame before the body: body length, crc32c, seq, previous hash.
pub(crate) const RECORD_HEADER_BYTES: usize = 4 + 4 + 8 + 32;
/// Largest record body accepted (caps allocation when reading a log).
pub(crate) const MAX_RECORD_BODY: u32 = 256 << 20;
/// Largest manifest body accepted.
pub(crate) const MAX_MANIFEST_BODY: u64 = 1 << 30;
/// Largest number of dimensions.
pub const MAX_NDIM: usize = 32;

const TAG_PUT: u8 = 1;
const TAG_APPEND: u8 = 2;
const TAG_REPLACE: u8 = 3;
const TAG_DELETE: u8 = 4;
const TAG_COMPACT: u8 = 5;
const TAG_DROP: u8 = 6;
const TAG_RENAME: u8 = 7;
const TAG_SET_SUMS: u8 = 8;
const TAG_RELEASE: u8 = 9;

const PAYLOAD_INLINE: u8 = 0;
const PAYLOAD_IN_FILE: u8 = 1;

fn enc_shape(e: &mut Enc, row_shape: &[u64]) {
    e.u32(row_shape.len() as u32);
    for d in row_shape {
        e.u64(*d);
    }
}

fn dec_shape(d: &mut Dec) -> DecResult<Vec<u64>> {
    let n = d.count(8, "row shape")?;
    if n > MAX_NDIM - 1 {
        return Err(format!("{} trailing dimensions exceed the limit", n));
    }
    (0..n).map(|_| d.u64("dimension")).collect()
}

fn dec_dtype(d: &mut Dec) -> DecResult<DType> {
    let c = d.u8("dtype")?;
    DType::from_code(c).ok_or_else(|| format!("unknown dtype code {c}"))
}

fn enc_sums(e: &mut Enc, s: &ChunkSums) {
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
        return Err(format!("{n} chunk checksums cannot cover {covered} bytes"));
    }
    Ok(s)
}

fn enc_payload(e: &mut Enc, p: &Payload) {
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

fn dec_payload(d: &mut Dec) -> DecResult<Payload> {
    match d.u8("payload kind")? {
        PAYLOAD_INLINE => Ok(Payload::Inline(d.bytes("inline payload")?.to_vec())),
        PAYLOAD_IN_FILE => Ok(Payload::InFile {
            crc32c: d.u32("payload crc")?,
            synced: d.u8("payload synced flag")? != 0,
        }),
        k => Err(format!("unknown payload kind {k}")),
    }
}

fn dec_slots(d: &mut Dec) -> DecResult<Vec<u64>> {
    let n = d.count(8, "slot count")?;
    (0..n).map(|_| d.u64("slot")).collect()
}

fn enc_slots(e: &mut Enc, slots: &[u64]) {
    e.u32(slots.len() as u32);
    for s in slots {
        e.u64(*s);
    }
}

pub(crate) fn encode_op(e: &mut Enc, op: &Op) {
    match op {
        Op::Put {
            name,
            file_id,
            dtype,
            row_shape,
            rows,
            payload,
            sums,
        } => {
            e.u8(TAG_PUT);
            e.str(name);
            e.u64(*file_id);
            e.u8(dtype.code());
            enc_shape(e, row_shape);
            e.u64(*rows);
            enc_sums(e, sums);
            enc_payload(e, payload);
        }
        Op::Append {
            name,
            first_slot,
            rows,
            payload,
        } => {
            e.u8(TAG_APPEND);
            e.str(name);
            e.u64(*first_slot);
            e.u64(*rows);
            enc_payload(e, payload);
        }
        Op::Replace {
            name,
            slots,
            first_slot,
            payload,
        } => {
            e.u8(TAG_REPLACE);
            e.str(name);
            enc_slots(e, slots);
            e.u64(*first_slot);
            enc_payload(e, payload);
        }
        Op::DeleteRows { name, slots } => {
            e.u8(TAG_DELETE);
            e.str(name);
            enc_slots(e, slots);
        }
        Op::Compact {
            name,
            file_id,
            rows,
            sums,
        } => {
            e.u8(TAG_COMPACT);
            e.str(name);
            e.u64(*file_id);
            e.u64(*rows);
            enc_sums(e, sums);
        }
        Op::Drop { name } => {
            e.u8(TAG_DROP);
            e.str(name);
        }
        Op::Rename { from, to } => {
            e.u8(TAG_RENAME);
            e.str(from);
            e.str(to);
        }
        Op::SetSums { name, sums } => {
            e.u8(TAG_SET_SUMS);
            e.str(name);
            enc_sums(e, sums);
        }
        Op::Release { name, file_id } => {
            e.u8(TAG_RELEASE);
            e.str(name);
            e.u64(*file_id);
        }
    }
}

pub(crate) fn decode_op(d: &mut Dec) -> DecResult<Op> {
    let tag = d.u8("op tag")?;
    let name = d.str("array name")?;
    crate::validate_name(&name).map_err(|e| e.to_string())?;
    Ok(match tag {
        TAG_PUT => {
            let file_id = d.u64("file id")?;
            let dtype = dec_dtype(d)?;
            let row_shape = dec_shape(d)?;
            let rows = d.u64("rows")?;
            let sums = dec_sums(d)?;
            let payload = dec_payload(d)?;
            Op::Put {
                name,
                file_id,
                dtype,
                row_shape,
                rows,
                payload,
                sums,
            }
        }
        TAG_APPEND => Op::Append {
            name,
            first_slot: d.u64("first slot")?,
            rows: d.u64("rows")?,
            payload: dec_payload(d)?,
        },
        TAG_REPLACE => Op::Replace {
            name,
            slots: dec_slots(d)?,
            first_slot: d.u64("first slot")?,
            payload: dec_payload(d)?,
        },
        TAG_DELETE => Op::DeleteRows {
            name,
            slots: dec_slots(d)?,
        },
        TAG_COMPACT => Op::Compact {
            name,
            file_id: d.u64("file id")?,
            rows: d.u64("rows")?,
            sums: dec_sums(d)?,
        },
        TAG_DROP => Op::Drop { name },
        TAG_RENAME => {
            let to = d.str("new name")?;
            crate::validate_name(&to).map_err(|e| e.to_string())?;
            Op::Rename { from: name, to }
        }
        TAG_SET_SUMS => Op::SetSums {
            name,
            sums: dec_sums(d)?,
        },
        TAG_RELEASE => Op::Release {
            name,
            file_id: d.u64("file id")?,
        },
        t => return Err(format!("unknown op tag {t}")),
    })
}

/// A decoded log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub seq: u64,
    pub prev_hash: [u8; 32],
    pub time_ns: u64,
    /// Every record with a seq up to this one had been fsynced when this
    /// record was written. Recovery uses it to tell a damaged durable record
    /// (corruption: refuse to open) from a damaged unsynced tail (writes
    /// reordered or torn by a power loss: the log ends there).
    pub synced_seq: u64,
    pub ops: Vec<Op>,
}

/// Encode a record's body (time, synced seq, ops).
pub(crate) fn encode_body(time_ns: u64, synced_seq: u64, ops: &[Op]) -> Vec<u8> {
    let inline: usize = ops
        .iter()
        .filter_map(|o| match o.payload() {
            Some((_, Payload::Inline(b), _)) => Some(b.len()),
            _ => None,
        })
        .sum();
    let mut e = Enc::with_capacity(64 + inline + 64 * ops.len());
    e.u64(time_ns);
    e.u64(synced_seq);
    e.u32(ops.len() as u32);
    for op in ops {
        encode_op(&mut e, op);
    }
    e.buf
}

/// Frame a body into a full record; returns the bytes and the record's hash
/// (the new chain head).
pub(crate) fn frame_record(seq: u64, prev_hash: &[u8; 32], body: &[u8]) -> (Vec<u8>, [u8; 32]) {
    let mut out = Vec::with_capacity(RECORD_HEADER_BYTES + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(prev_hash);
    out.extend_from_slice(body);
    let crc = record_crc(&out);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    let hash = *blake3::hash(&out[8..]).as_bytes();
    (out, hash)
}

/// crc32c over a framed record's length field and everything after the crc
/// field (so a damaged length is detected too).
fn record_crc(frame: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&frame[0..4]), &frame[8..])
}

/// Outcome of reading one record at some offset of a log.
pub(crate) enum RecordRead {
    /// A valid record, its total length in bytes and its hash.
    Ok(Record, u64, [u8; 32]),
    /// Fewer bytes remain than a record needs (a clean end or a torn tail).
    Short,
    /// The bytes are not a valid record (bad crc or undecodable body).
    Bad(String),
}

/// Parse the record at the start of `buf`.
pub(crate) fn read_record(buf: &[u8]) -> RecordRead {
    if buf.len() < RECORD_HEADER_BYTES {
        return RecordRead::Short;
    }
    let mut d = Dec::new(buf);
    let (body_len, crc) = match (d.u32("len"), d.u32("crc")) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return RecordRead::Short,
    };
    if body_len > MAX_RECORD_BODY {
        return RecordRead::Bad(format!("record length {body_len} exceeds the limit"));
    }
    let total = RECORD_HEADER_BYTES + body_len as usize;
    if buf.len() < total {
        return RecordRead::Short;
    }
    let covered = &buf[8..total];
    if record_crc(&buf[..total]) != crc {
        return RecordRead::Bad("record checksum mismatch".into());
    }
    let hash = *blake3::hash(covered).as_bytes();
    match decode_record_body(covered) {
        Ok(r) => RecordRead::Ok(r, total as u64, hash),
        Err(e) => RecordRead::Bad(e),
    }
}

/// Parse a record's checksummed part (everything after the crc field).
pub(crate) fn decode_record_body(covered: &[u8]) -> DecResult<Record> {
    let mut d = Dec::new(covered);
    let seq = d.u64("seq")?;
    let prev_hash = d.array32("previous hash")?;
    let time_ns = d.u64("time")?;
    let synced_seq = d.u64("synced seq")?;
    let n = d.count(3, "op count")?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        ops.push(decode_op(&mut d)?);
    }
    if !d.is_empty() {
        return Err(format!("{} trailing bytes after the ops", d.remaining()));
    }
    Ok(Record {
        seq,
        prev_hash,
        time_ns,
        synced_seq,
        ops,
    })
}

pub(crate) fn encode_log_header(gen: u64) -> Vec<u8> {
    let mut e = Enc::with_capacity(LOG_HEADER_BYTES as usize);
    e.raw(LOG_MAGIC);
    e.u32(FORMAT_VERSION);
    e.u32(0);
    e.u64(gen);
    e.buf
}

/// Check a log header; returns its generation.
pub(crate) fn decode_log_header(buf: &[u8]) -> Result<u64, HeaderError> {
    let mut d = Dec::new(buf);
    let magic = d.take(8, "magic").map_err(HeaderError::Bad)?;
    if magic != LOG_MAGIC {
        return Err(HeaderError::Bad("not a numvault log (bad magic)".into()));
    }
    let version = d.u32("version").map_err(HeaderError::Bad)?;
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    d.u32("reserved").map_err(HeaderError::Bad)?;
    d.u64("generation").map_err(HeaderError::Bad)
}

/// A header that is either malformed or of another version.
#[derive(Debug)]
pub(crate) enum HeaderError {
    Bad(String),
    Version(u32),
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
        b.str(name);
        b.u8(a.dtype.code());
        enc_shape(&mut b, &a.row_shape);
        b.u64(a.file_id);
        b.u64(a.phys_slots);
        b.u64(a.mtime_ns);
        let ext = a.rowmap.extents();
        b.u32(ext.len() as u32);
        for e in ext {
            b.u64(e.start);
            b.u64(e.len);
        }
        let mut remap: Vec<(u64, u64)> = a.remap.iter().map(|(k, v)| (*k, *v)).collect();
        remap.sort_unstable();
        b.u32(remap.len() as u32);
        for (k, v) in remap {
            b.u64(k);
            b.u64(v);
        }
        enc_sums(&mut b, &a.sums);
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
    e.buf
}

/// Decode a MANIFEST into a state and its creation time.
pub(crate) fn decode_manifest(buf: &[u8]) -> Result<(State, u64), HeaderError> {
    let bad = HeaderError::Bad;
    let mut d = Dec::new(buf);
    if d.take(8, "magic").map_err(bad)? != MANIFEST_MAGIC {
        return Err(HeaderError::Bad(
            "not a numvault manifest (bad magic)".into(),
        ));
    }
    let version = d.u32("version").map_err(bad)?;
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    d.u32("flags").map_err(bad)?;
    let len = d.u64("body length").map_err(bad)?;
    let crc = d.u32("body checksum").map_err(bad)?;
    d.u32("reserved").map_err(bad)?;
    if len > MAX_MANIFEST_BODY || len != d.remaining() as u64 {
        return Err(HeaderError::Bad(format!(
            "body length {len} does not match the {} bytes present",
            d.remaining()
        )));
    }
    let body = d.take(len as usize, "body").map_err(bad)?;
    if crc32c::crc32c(body) != crc {
        return Err(HeaderError::Bad("manifest checksum mismatch".into()));
    }
    decode_manifest_body(body).map_err(bad)
}

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
        let name = d.str("array name")?;
        crate::validate_name(&name).map_err(|e| e.to_string())?;
        let dtype = dec_dtype(&mut d)?;
        let row_shape = dec_shape(&mut d)?;
        let rb = row_bytes(dtype, &row_shape).ok_or("row size overflows")?;
        let file_id = d.u64("file id")?;
        if file_id >= st.next_file_id {
            return Err(format!(
                "'{name}' uses file id {file_id} beyond the next id"
            ));
        }
        if !file_ids.insert(file_id) {
            return Err(format!(
                "'{name}' shares file id {file_id} with another array"
            ));
        }
        let phys_slots = d.u64("slots")?;
        let mtime_ns = d.u64("mtime")?;
        let ne = d.count(16, "extent count")?;
        let mut extents = Vec::with_capacity(ne);
        for _ in 0..ne {
            extents.push(Extent {
                start: d.u64("extent start")?,
                len: d.u64("extent length")?,
            });
        }
        let rowmap = RowMap::from_extents(extents).map_err(|e| format!("'{name}': {e}"))?;
        if rowmap.end_slot() > phys_slots {
            return Err(format!(
                "'{name}': extents reach past the file's {phys_slots} slots"
            ));
        }
        let nr = d.count(16, "remap count")?;
        let mut remap = HashMap::with_capacity(nr);
        for _ in 0..nr {
            let (k, v) = (d.u64("remap from")?, d.u64("remap to")?);
            if rowmap.logical_of(k).is_none() || v >= phys_slots {
                return Err(format!("'{name}': remap {k}->{v} is out of range"));
            }
            remap.insert(k, v);
        }
        let sums = dec_sums(&mut d)?;
        if phys_slots.checked_mul(rb).is_none_or(|b| sums.covered > b) {
            return Err(format!(
                "'{name}': checksums cover more than the file holds"
            ));
        }
        let meta = ArrayMeta {
            dtype,
            row_shape,
            row_bytes: rb,
            file_id,
            phys_slots,
            rowmap: Arc::new(rowmap),
            remap: Arc::new(remap),
            sums: Arc::new(sums),
            mtime_ns,
        };
        if st.arrays.insert(name.clone(), Arc::new(meta)).is_some() {
            return Err(format!("array '{name}' listed twice"));
        }
    }
    if !d.is_empty() {
        return Err(format!("{} trailing bytes", d.remaining()));
    }
    Ok((st, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_ops() -> Vec<Op> {
        vec![
            Op::Put {
                name: "a/b".into(),
                file_id: 3,
                dtype: DType::F32,
                row_shape: vec![2],
                rows: 2,
                payload: Payload::Inline(vec![0; 16]),
                sums: ChunkSums::of(&[0; 16]),
            },
            Op::Append {
                name: "a/b".into(),
                first_slot: 2,
                rows: 1,
                payload: Payload::InFile {
                    crc32c: 7,
                    synced: true,
                },
            },
            Op::Replace {
                name: "a/b".into(),
                slots: vec![1, 0],
                first_slot: 3,
                payload: Payload::Inline(vec![1; 16]),
            },
            Op::DeleteRows {
                name: "a/b".into(),
                slots: vec![0],
            },
            Op::Compact {
                name: "a/b".into(),
                file_id: 4,
                rows: 2,
                sums: ChunkSums::of(&[2; 16]),
            },
            Op::Rename {
                from: "a/b".into(),
                to: "c".into(),
            },
            Op::SetSums {
                name: "c".into(),
                sums: ChunkSums::default(),
            },
            Op::Drop { name: "c".into() },
            Op::Release {
                name: "c".into(),
                file_id: 1,
            },
        ]
    }

    #[test]
    fn record_round_trip_and_chain() {
        let ops = sample_ops();
        let body = encode_body(42, 3, &ops);
        let (bytes, hash) = frame_record(9, &[5; 32], &body);
        match read_record(&bytes) {
            RecordRead::Ok(r, len, h) => {
                assert_eq!(len as usize, bytes.len());
                assert_eq!(h, hash);
                assert_eq!(r.seq, 9);
                assert_eq!(r.prev_hash, [5; 32]);
                assert_eq!(r.time_ns, 42);
                assert_eq!(r.synced_seq, 3);
                assert_eq!(r.ops, ops);
            }
            _ => panic!("record did not decode"),
        }
        assert!(matches!(
            read_record(&bytes[..bytes.len() - 1]),
            RecordRead::Short
        ));
        let mut flipped = bytes.clone();
        flipped[60] ^= 1;
        assert!(matches!(read_record(&flipped), RecordRead::Bad(_)));
    }

    #[test]
    fn every_single_byte_flip_of_a_record_is_detected() {
        let body = encode_body(1, 0, &sample_ops());
        let (bytes, _) = frame_record(1, &[0; 32], &body);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(
                !matches!(read_record(&b), RecordRead::Ok(..)),
                "flip at byte {i} went unnoticed"
            );
        }
    }

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
}
