//! The commit log's bytes (FORMAT.md §5): its header, the record frame
//! (length, CRC-32C, seq, previous hash), the record body and its ops.

use super::codec::{Dec, DecResult, DecodeError, Enc};
use super::fields::{
    dec_dtype, dec_name, dec_payload, dec_shape, dec_slots, dec_sums, enc_payload, enc_shape,
    enc_slots, enc_sums,
};
use super::{
    HeaderError, FORMAT_VERSION, LOG_HEADER_BYTES, LOG_MAGIC, MAX_RECORD_BODY, RECORD_HEADER_BYTES,
};
use crate::model::op::{Op, Payload};

const TAG_PUT: u8 = 1;
const TAG_APPEND: u8 = 2;
const TAG_REPLACE: u8 = 3;
const TAG_DELETE: u8 = 4;
const TAG_COMPACT: u8 = 5;
const TAG_DROP: u8 = 6;
const TAG_RENAME: u8 = 7;
const TAG_SET_SUMS: u8 = 8;
const TAG_RELEASE: u8 = 9;
const TAG_SNAPSHOT: u8 = 10;
const TAG_DELETE_VERSION: u8 = 11;
const TAG_RESTORE: u8 = 12;

fn op_tag(op: &Op) -> u8 {
    match op {
        Op::Put { .. } => TAG_PUT,
        Op::Append { .. } => TAG_APPEND,
        Op::Replace { .. } => TAG_REPLACE,
        Op::DeleteRows { .. } => TAG_DELETE,
        Op::Compact { .. } => TAG_COMPACT,
        Op::Drop { .. } => TAG_DROP,
        Op::Rename { .. } => TAG_RENAME,
        Op::SetSums { .. } => TAG_SET_SUMS,
        Op::Release { .. } => TAG_RELEASE,
        Op::Snapshot { .. } => TAG_SNAPSHOT,
        Op::DeleteVersion { .. } => TAG_DELETE_VERSION,
        Op::Restore { .. } => TAG_RESTORE,
    }
}

/// Every op starts with its tag and the array it concerns (a rename's
/// source); the fields that follow depend on the tag (FORMAT.md §5.5).
pub(crate) fn encode_op(e: &mut Enc, op: &Op) {
    e.u8(op_tag(op));
    e.str(op.array_name());
    match op {
        Op::Put {
            file_id,
            dtype,
            row_shape,
            rows,
            payload,
            sums,
            ..
        } => {
            e.u64(*file_id);
            e.u8(dtype.code());
            enc_shape(e, row_shape);
            e.u64(*rows);
            enc_sums(e, sums);
            enc_payload(e, payload);
        }
        Op::Append {
            first_slot,
            rows,
            payload,
            ..
        } => {
            e.u64(*first_slot);
            e.u64(*rows);
            enc_payload(e, payload);
        }
        Op::Replace {
            slots,
            first_slot,
            payload,
            ..
        } => {
            enc_slots(e, slots);
            e.u64(*first_slot);
            enc_payload(e, payload);
        }
        Op::DeleteRows { slots, .. } => enc_slots(e, slots),
        Op::Compact {
            file_id,
            rows,
            sums,
            ..
        } => {
            e.u64(*file_id);
            e.u64(*rows);
            enc_sums(e, sums);
        }
        Op::Drop { .. } => {}
        Op::Rename { to, .. } => e.str(to),
        Op::SetSums { sums, .. } => enc_sums(e, sums),
        Op::Release { file_id, .. } => e.u64(*file_id),
        Op::Snapshot { .. } => {}
        Op::DeleteVersion { id, files } => {
            e.u64(*id);
            enc_slots(e, files);
        }
        Op::Restore { version, entry, .. } => {
            e.u64(*version);
            super::manifest::encode_entry_fields(e, &entry.0);
        }
    }
}

pub(crate) fn decode_op(d: &mut Dec) -> DecResult<Op> {
    let tag_at = d.pos();
    let tag = d.u8("op tag")?;
    if tag == TAG_SNAPSHOT || tag == TAG_DELETE_VERSION {
        return decode_version_op(d, tag);
    }
    let name = dec_name(d, "array name")?;
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
            let to = dec_name(d, "new name")?;
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
        TAG_RESTORE => {
            let version = d.u64("version")?;
            let meta = super::manifest::decode_entry_fields(d, &name)?;
            Op::Restore {
                name,
                version,
                entry: crate::model::op::RestoreEntry(std::sync::Arc::new(meta)),
            }
        }
        t => return Err(DecodeError::at(tag_at, format!("unknown op tag {t}"))),
    })
}

/// Snapshot (its `name` is a tag, possibly empty) and DeleteVersion (its
/// `name` is empty), FORMAT.md §5.5.
fn decode_version_op(d: &mut Dec, tag: u8) -> DecResult<Op> {
    let at = d.pos();
    let name = d.str("tag")?;
    if tag == TAG_DELETE_VERSION {
        if !name.is_empty() {
            return Err(DecodeError::at(at, "a version deletion has a name"));
        }
        return Ok(Op::DeleteVersion {
            id: d.u64("version")?,
            files: dec_slots(d)?,
        });
    }
    // The id is the record's seq: `decode_record_body` sets it.
    if name.is_empty() {
        return Ok(Op::Snapshot { tag: None, id: 0 });
    }
    crate::model::name::validate_name(&name)
        .map_err(|e| DecodeError::at(at, format!("snapshot tag: {e}")))?;
    Ok(Op::Snapshot {
        tag: Some(name),
        id: 0,
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
    /// The bytes are not a valid record (bad crc or undecodable body); the
    /// error's offset counts from the start of the frame.
    Bad(DecodeError),
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
        return RecordRead::Bad(DecodeError::at(
            0,
            format!("record length {body_len} exceeds the limit"),
        ));
    }
    let total = RECORD_HEADER_BYTES + body_len as usize;
    if buf.len() < total {
        return RecordRead::Short;
    }
    let covered = &buf[8..total];
    if record_crc(&buf[..total]) != crc {
        return RecordRead::Bad(DecodeError::at(4, "record checksum mismatch"));
    }
    let hash = *blake3::hash(covered).as_bytes();
    match decode_record_body(covered) {
        Ok(r) => RecordRead::Ok(r, total as u64, hash),
        // Offsets in the body count from the seq field (byte 8 of the frame).
        Err(e) => RecordRead::Bad(e.shifted(8)),
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
        let mut op = decode_op(&mut d)?;
        if let Op::Snapshot { id, .. } = &mut op {
            // A version's id is its record's seq (not encoded in the op).
            *id = seq;
        }
        ops.push(op);
    }
    if !d.is_empty() {
        return Err(d.error(format!("{} trailing bytes after the ops", d.remaining())));
    }
    Ok(Record {
        seq,
        prev_hash,
        time_ns,
        synced_seq,
        ops,
    })
}

/// The header of a log of generation `gen` in format `version`.
pub(crate) fn encode_log_header(gen: u64, version: u32) -> Vec<u8> {
    let mut e = Enc::with_capacity(LOG_HEADER_BYTES as usize);
    e.raw(LOG_MAGIC);
    e.u32(version);
    e.u32(0);
    e.u64(gen);
    e.buf
}

/// Check a log header; returns its format version and generation.
pub(crate) fn decode_log_header(buf: &[u8]) -> Result<(u32, u64), HeaderError> {
    let mut d = Dec::new(buf);
    let magic = d.take(8, "magic")?;
    if magic != LOG_MAGIC {
        return Err(DecodeError::at(0, "not a numvault log (bad magic)").into());
    }
    let version = d.u32("version")?;
    if !(super::MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(HeaderError::Version(version));
    }
    d.u32("reserved")?;
    Ok((version, d.u64("generation")?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::dtype::DType;
    use crate::model::sums::ChunkSums;

    pub(crate) fn sample_ops() -> Vec<Op> {
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
}
