//! The HISTORY file's bytes (FORMAT.md §5.7): a summary of every record
//! ever committed, appended before each checkpoint deletes the log that
//! holds the records. The file is an audit trail, not part of the committed
//! state: opening a store never reads it.

use super::codec::{Dec, DecResult, DecodeError, Enc};
use super::record::Record;
use crate::model::op::Op;

const FILE_MAGIC: &[u8; 8] = b"NVHIST\0\0";
pub(crate) const FILE_HEADER_BYTES: u64 = 16;
/// Start of every entry: lets a reader find the next entry after damage.
const ENTRY_MAGIC: u32 = 0x4E56_4831; // "NVH1" read as big-endian text
const ENTRY_HEADER_BYTES: usize = 12;
/// Largest entry body accepted (caps allocation when reading).
const MAX_ENTRY_BODY: u32 = 64 << 20;
/// Largest HISTORY file read.
pub(crate) const MAX_HISTORY_FILE_BYTES: u64 = 4 << 30;

/// What an op did, as shown in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Created or replaced an array (`save`).
    Save,
    Append,
    Replace,
    DeleteRows,
    Compact,
    Drop,
    Rename,
    /// Refreshed checksums at the start or end of a writable session.
    SetChecksums,
    /// Took a version (format 2; `array` is its tag, `rows` 0).
    Snapshot,
    /// Deleted a version (`array` empty, `rows` the version's id).
    DeleteSnapshot,
    /// Restored an array from a version (`rows` the version's id).
    Restore,
}

impl OpKind {
    fn code(self) -> u8 {
        match self {
            OpKind::Save => 1,
            OpKind::Append => 2,
            OpKind::Replace => 3,
            OpKind::DeleteRows => 4,
            OpKind::Compact => 5,
            OpKind::Drop => 6,
            OpKind::Rename => 7,
            OpKind::SetChecksums => 8,
            OpKind::Snapshot => 10,
            OpKind::DeleteSnapshot => 11,
            OpKind::Restore => 12,
        }
    }

    fn from_code(c: u8) -> Option<OpKind> {
        Some(match c {
            1 => OpKind::Save,
            2 => OpKind::Append,
            3 => OpKind::Replace,
            4 => OpKind::DeleteRows,
            5 => OpKind::Compact,
            6 => OpKind::Drop,
            7 => OpKind::Rename,
            8 => OpKind::SetChecksums,
            10 => OpKind::Snapshot,
            11 => OpKind::DeleteSnapshot,
            12 => OpKind::Restore,
            _ => return None,
        })
    }

    /// Lower-case name (`save`, `append`, `replace`, `delete_rows`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Save => "save",
            OpKind::Append => "append",
            OpKind::Replace => "replace",
            OpKind::DeleteRows => "delete_rows",
            OpKind::Compact => "compact",
            OpKind::Drop => "drop",
            OpKind::Rename => "rename",
            OpKind::SetChecksums => "set_checksums",
            OpKind::Snapshot => "snapshot",
            OpKind::DeleteSnapshot => "delete_snapshot",
            OpKind::Restore => "restore",
        }
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One op of a commit, summarized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSummary {
    pub kind: OpKind,
    /// The array the op concerns (the source of a rename).
    pub array: String,
    /// The new name of a rename.
    pub to: Option<String>,
    /// Rows written, replaced, deleted or kept (compact); 0 for drop, rename
    /// and checksum refreshes.
    pub rows: u64,
}

impl OpSummary {
    /// `None` for the ops that only tell recovery something (Release).
    pub(crate) fn of(op: &Op) -> Option<OpSummary> {
        let s = |kind, array: &str, to: Option<&str>, rows| OpSummary {
            kind,
            array: array.to_string(),
            to: to.map(str::to_string),
            rows,
        };
        Some(match op {
            Op::Put { name, rows, .. } => s(OpKind::Save, name, None, *rows),
            Op::Append { name, rows, .. } => s(OpKind::Append, name, None, *rows),
            Op::Replace { name, slots, .. } => s(OpKind::Replace, name, None, slots.len() as u64),
            Op::DeleteRows { name, slots } => s(OpKind::DeleteRows, name, None, slots.len() as u64),
            Op::Compact { name, rows, .. } => s(OpKind::Compact, name, None, *rows),
            Op::Drop { name } => s(OpKind::Drop, name, None, 0),
            Op::Rename { from, to } => s(OpKind::Rename, from, Some(to), 0),
            Op::SetSums { name, .. } => s(OpKind::SetChecksums, name, None, 0),
            Op::Release { .. } => return None,
            Op::Snapshot { tag, .. } => s(OpKind::Snapshot, tag.as_deref().unwrap_or(""), None, 0),
            Op::DeleteVersion { id, .. } => s(OpKind::DeleteSnapshot, "", None, *id),
            Op::Restore { name, version, .. } => s(OpKind::Restore, name, None, *version),
        })
    }
}

/// One commit (one log record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub seq: u64,
    /// Commit time, ns since the Unix epoch.
    pub time_ns: u64,
    /// BLAKE3 hash of the record (the chain head after it).
    pub hash: [u8; 32],
    /// Hash of the previous record.
    pub prev_hash: [u8; 32],
    pub ops: Vec<OpSummary>,
    /// True if the record was read from the live log (its hash recomputed
    /// from its bytes); false if from `HISTORY` (hash as recorded at its
    /// checkpoint; only its links to its neighbours are checked).
    pub in_log: bool,
}

impl CommitInfo {
    /// The summary of a record read from the log.
    pub(crate) fn of_record(rec: &Record, hash: [u8; 32]) -> CommitInfo {
        CommitInfo {
            seq: rec.seq,
            time_ns: rec.time_ns,
            hash,
            prev_hash: rec.prev_hash,
            ops: rec.ops.iter().filter_map(OpSummary::of).collect(),
            in_log: true,
        }
    }
}

pub(crate) fn encode_entry(c: &CommitInfo) -> Vec<u8> {
    let mut b = Enc::with_capacity(96 + c.ops.len() * 32);
    b.u64(c.seq);
    b.u64(c.time_ns);
    b.raw(&c.prev_hash);
    b.raw(&c.hash);
    b.u32(c.ops.len() as u32);
    for op in &c.ops {
        b.u8(op.kind.code());
        b.str(&op.array);
        if op.kind == OpKind::Rename {
            b.str(op.to.as_deref().unwrap_or(""));
        }
        b.u64(op.rows);
    }
    let body = b.buf;
    let mut out = Enc::with_capacity(ENTRY_HEADER_BYTES + body.len());
    out.u32(ENTRY_MAGIC);
    out.u32(body.len() as u32);
    out.u32(crc32c::crc32c(&body));
    out.raw(&body);
    out.buf
}

fn decode_body(body: &[u8]) -> DecResult<CommitInfo> {
    let mut d = Dec::new(body);
    let seq = d.u64("seq")?;
    let time_ns = d.u64("time")?;
    let prev_hash = d.array32("previous hash")?;
    let hash = d.array32("hash")?;
    let n = d.count(11, "op count")?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        let code = d.u8("op kind")?;
        let kind =
            OpKind::from_code(code).ok_or_else(|| d.error(format!("unknown op kind {code}")))?;
        let array = d.str("array name")?;
        let to = if kind == OpKind::Rename {
            Some(d.str("new name")?)
        } else {
            None
        };
        let rows = d.u64("rows")?;
        ops.push(OpSummary {
            kind,
            array,
            to,
            rows,
        });
    }
    if !d.is_empty() {
        return Err(d.error("bytes after the last op"));
    }
    Ok(CommitInfo {
        seq,
        time_ns,
        hash,
        prev_hash,
        ops,
        in_log: false,
    })
}

/// The header of a new HISTORY file.
pub(crate) fn file_header() -> Vec<u8> {
    let mut e = Enc::with_capacity(FILE_HEADER_BYTES as usize);
    e.raw(FILE_MAGIC);
    e.u32(super::FORMAT_VERSION);
    e.u32(0);
    e.buf
}

/// Decode a HISTORY file: the entries in file order, and the damaged byte
/// ranges that were skipped (a torn append, bit rot). Never fails: a reader
/// resynchronizes on the next entry magic with a valid CRC.
pub(crate) fn decode_file(bytes: &[u8]) -> (Vec<CommitInfo>, Vec<(u64, u64, String)>) {
    let mut entries = Vec::new();
    let mut damaged = Vec::new();
    let mut pos = 0usize;
    if bytes.len() >= FILE_HEADER_BYTES as usize && &bytes[..8] == FILE_MAGIC {
        pos = FILE_HEADER_BYTES as usize;
    } else if !bytes.is_empty() {
        damaged.push((0, 0, "bad HISTORY header".to_string()));
    }
    let mut bad_from: Option<(usize, String)> = None;
    while pos < bytes.len() {
        match entry_at(&bytes[pos..]) {
            Ok((c, len)) => {
                if let Some((from, why)) = bad_from.take() {
                    damaged.push((from as u64, pos as u64, why));
                }
                entries.push(c);
                pos += len;
            }
            Err(why) => {
                if bad_from.is_none() {
                    bad_from = Some((pos, why.what));
                }
                pos += 1;
            }
        }
    }
    if let Some((from, why)) = bad_from {
        damaged.push((from as u64, bytes.len() as u64, why));
    }
    (entries, damaged)
}

fn entry_at(buf: &[u8]) -> DecResult<(CommitInfo, usize)> {
    let mut d = Dec::new(buf);
    if d.u32("entry magic")? != ENTRY_MAGIC {
        return Err(DecodeError::at(0, "not an entry (bad magic)"));
    }
    let len = d.u32("entry length")?;
    if len > MAX_ENTRY_BODY {
        return Err(DecodeError::at(
            4,
            format!("entry length {len} exceeds the limit"),
        ));
    }
    let crc = d.u32("entry crc")?;
    let body = d.take(len as usize, "entry body")?;
    if crc32c::crc32c(body) != crc {
        return Err(DecodeError::at(8, "entry checksum mismatch"));
    }
    let c = decode_body(body)?;
    Ok((c, ENTRY_HEADER_BYTES + len as usize))
}

/// Hex of a hash.
pub fn hex(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(seq: u64) -> CommitInfo {
        CommitInfo {
            seq,
            time_ns: 1_700_000_000_000_000_000 + seq,
            hash: [seq as u8; 32],
            prev_hash: [(seq - 1) as u8; 32],
            ops: vec![
                OpSummary {
                    kind: OpKind::Append,
                    array: "a/b".into(),
                    to: None,
                    rows: 100,
                },
                OpSummary {
                    kind: OpKind::Rename,
                    array: "x".into(),
                    to: Some("y".into()),
                    rows: 0,
                },
            ],
            in_log: false,
        }
    }

    #[test]
    fn entries_round_trip_and_damage_is_skipped() {
        let mut file = file_header();
        for s in 1..=3 {
            file.extend(encode_entry(&commit(s)));
        }
        let (e, d) = decode_file(&file);
        assert_eq!(e, vec![commit(1), commit(2), commit(3)]);
        assert!(d.is_empty());
        // Flip a byte in entry 2: entries 1 and 3 survive, the damage is named.
        let second = file_header().len() + encode_entry(&commit(1)).len();
        let mut bad = file.clone();
        bad[second + 20] ^= 1;
        let (e, d) = decode_file(&bad);
        assert_eq!(e, vec![commit(1), commit(3)]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, second as u64);
        // A torn tail followed by a new entry (the next checkpoint appends
        // after the torn bytes).
        let mut torn = file[..file.len() - 5].to_vec();
        torn.extend(encode_entry(&commit(4)));
        let (e, d) = decode_file(&torn);
        assert_eq!(e.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 2, 4]);
        assert_eq!(d.len(), 1);
        // Garbage never panics.
        for n in 0..file.len() {
            let _ = decode_file(&file[..n]);
        }
    }
}
