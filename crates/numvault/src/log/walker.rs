//! The one reader of log records: frame, CRC, decoding and hash chain.
//!
//! [`LogWalker`] yields the valid records that continue the chain from a
//! given seq and hash, and then says how the log ended ([`LogEnd`]). Two
//! scans support recovery's rules (FORMAT.md §7.4): [`durable_record_after`]
//! (the damaged-tail rule) and [`releases_after`] (records whose data went
//! with a released file).

use std::collections::HashMap;

use crate::format::codec::DecodeError;
use crate::format::record::{read_record, Record, RecordRead};
use crate::format::RECORD_HEADER_BYTES;
use crate::model::op::Op;

/// A valid record, where it is in the log and its hash.
pub(crate) struct Walked {
    pub rec: Record,
    pub hash: [u8; 32],
    /// Offset of the record's first byte in the log.
    pub offset: u64,
    pub len: u64,
}

impl Walked {
    /// Offset just past the record.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// How a walk over a log's records ended.
#[derive(Debug)]
pub(crate) enum LogEnd {
    /// At the end of the bytes, or at zeros (space preallocated under
    /// `Sync::Always`).
    Clean,
    /// Bytes that do not make a whole record (a torn tail, or a writer
    /// appending right now), from this offset.
    Incomplete(u64),
    /// A record that fails its CRC or does not decode; the error's offset
    /// counts from the start of the log.
    Damaged(DecodeError),
    /// A valid record that does not continue the chain.
    ChainBroken {
        offset: u64,
        len: u64,
        seq: u64,
        expected: u64,
    },
}

impl LogEnd {
    /// A description for reports and errors.
    pub fn describe(&self) -> String {
        match self {
            LogEnd::Clean => "end of log".into(),
            LogEnd::Incomplete(at) => format!("incomplete record at offset {at}"),
            LogEnd::Damaged(e) => e.to_string(),
            LogEnd::ChainBroken {
                offset,
                seq,
                expected,
                ..
            } => format!(
                "record at offset {offset} breaks the hash chain (seq {seq}, expected {expected})"
            ),
        }
    }
}

/// Iterates the valid records of `bytes` (a whole log file) from `start`
/// that continue the chain after record `seq` with hash `chain`.
pub(crate) struct LogWalker<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The seq and hash of the last record yielded (or the start's).
    pub seq: u64,
    pub chain: [u8; 32],
    end: Option<LogEnd>,
}

impl<'a> LogWalker<'a> {
    pub fn new(bytes: &'a [u8], start: u64, seq: u64, chain: [u8; 32]) -> Self {
        LogWalker {
            bytes,
            pos: usize::try_from(start)
                .unwrap_or(usize::MAX)
                .min(bytes.len()),
            seq,
            chain,
            end: None,
        }
    }

    /// Offset just past the last record yielded.
    pub fn pos(&self) -> u64 {
        self.pos as u64
    }

    /// How the walk ended (`Clean` until it has).
    pub fn end(&self) -> &LogEnd {
        self.end.as_ref().unwrap_or(&LogEnd::Clean)
    }

    pub fn into_end(self) -> LogEnd {
        self.end.unwrap_or(LogEnd::Clean)
    }

    fn finish(&mut self, end: LogEnd) -> Option<Walked> {
        self.end = Some(end);
        None
    }
}

impl Iterator for LogWalker<'_> {
    type Item = Walked;

    fn next(&mut self) -> Option<Walked> {
        if self.end.is_some() {
            return None;
        }
        let rest = &self.bytes[self.pos..];
        if rest.is_empty() {
            return self.finish(LogEnd::Clean);
        }
        let at = self.pos as u64;
        match read_record(rest) {
            RecordRead::Ok(rec, len, hash) => {
                let expected = self.seq.wrapping_add(1);
                if rec.seq != expected || rec.prev_hash != self.chain {
                    let seq = rec.seq;
                    return self.finish(LogEnd::ChainBroken {
                        offset: at,
                        len,
                        seq,
                        expected,
                    });
                }
                debug_assert!(len as usize >= RECORD_HEADER_BYTES && len as usize <= rest.len());
                self.seq = rec.seq;
                self.chain = hash;
                self.pos += len as usize;
                Some(Walked {
                    rec,
                    hash,
                    offset: at,
                    len,
                })
            }
            _ if rest.iter().all(|b| *b == 0) => self.finish(LogEnd::Clean),
            RecordRead::Short => self.finish(LogEnd::Incomplete(at)),
            RecordRead::Bad(e) => self.finish(LogEnd::Damaged(e.shifted(at))),
        }
    }
}

/// The Release ops of the valid records from offset `pos` of `bytes` on
/// that continue the chain after record `seq` (hash `chain`): released file
/// id -> offset of the first record releasing it.
pub(crate) fn releases_after(
    bytes: &[u8],
    pos: u64,
    seq: u64,
    chain: [u8; 32],
) -> HashMap<u64, u64> {
    let mut out = HashMap::new();
    for w in LogWalker::new(bytes, pos, seq, chain) {
        for op in &w.rec.ops {
            if let Op::Release { file_id, .. } = op {
                out.entry(*file_id).or_insert(w.offset);
            }
        }
    }
    out
}

/// Looks past a damaged or incomplete record at `pos` (expected seq
/// `expected`) for a valid later record that declares `expected` durable
/// (its `synced_seq` covers it). Such a record means synced data was damaged:
/// corruption, not a torn or reordered unsynced tail. Returns its offset.
/// Candidates are filtered by their seq field before the crc is computed, so
/// a large garbage tail costs a linear scan.
pub(crate) fn durable_record_after(bytes: &[u8], pos: u64, expected: u64) -> Option<u64> {
    let hdr = RECORD_HEADER_BYTES;
    let mut off = usize::try_from(pos).ok()?.saturating_add(1);
    while off + hdr <= bytes.len() {
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[off + 8..off + 16]);
        let seq = u64::from_le_bytes(seq);
        if seq > expected && seq - expected < 1 << 32 {
            if let RecordRead::Ok(rec, len, _) = read_record(&bytes[off..]) {
                if rec.synced_seq >= expected {
                    return Some(off as u64);
                }
                off += len as usize;
                continue;
            }
        }
        off += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::{encode_body, encode_log_header, frame_record};
    use crate::format::LOG_HEADER_BYTES;

    fn log_of(synced: &[u64]) -> (Vec<u8>, Vec<u64>) {
        let mut bytes = encode_log_header(0, crate::format::FORMAT_VERSION);
        let mut starts = Vec::new();
        let mut chain = [0u8; 32];
        for (i, s) in synced.iter().enumerate() {
            let body = encode_body(1, *s, &[Op::Drop { name: "a".into() }]);
            let (rec, h) = frame_record(i as u64 + 1, &chain, &body);
            chain = h;
            starts.push(bytes.len() as u64);
            bytes.extend_from_slice(&rec);
        }
        (bytes, starts)
    }

    #[test]
    fn damage_before_a_durable_point_is_corruption_after_it_a_tail() {
        // Record 2 is damaged. Record 3 says 2 was synced: corruption.
        let (mut bytes, starts) = log_of(&[0, 1, 2]);
        bytes[starts[1] as usize + 60] ^= 1;
        assert_eq!(durable_record_after(&bytes, starts[1], 2), Some(starts[2]));
        // Record 3 says only 1 was synced: a reordered unsynced tail.
        let (mut bytes, starts) = log_of(&[0, 1, 1]);
        bytes[starts[1] as usize + 60] ^= 1;
        assert_eq!(durable_record_after(&bytes, starts[1], 2), None);
        // A damaged length field is caught by the crc too.
        let (mut bytes, starts) = log_of(&[0, 1, 2]);
        bytes[starts[1] as usize] ^= 0x10;
        assert!(!matches!(
            read_record(&bytes[starts[1] as usize..]),
            RecordRead::Ok(..)
        ));
        assert_eq!(durable_record_after(&bytes, starts[1], 2), Some(starts[2]));
        // A torn final record with nothing after it is a tail.
        let (bytes, starts) = log_of(&[0, 1]);
        let torn = &bytes[..bytes.len() - 3];
        assert_eq!(durable_record_after(torn, starts[1], 2), None);
    }

    #[test]
    fn the_walker_stops_at_damage_a_chain_break_or_a_torn_tail() {
        let (bytes, starts) = log_of(&[0, 1, 2]);
        let all: Vec<u64> = LogWalker::new(&bytes, LOG_HEADER_BYTES, 0, [0; 32])
            .map(|w| w.rec.seq)
            .collect();
        assert_eq!(all, vec![1, 2, 3]);
        // Preallocated zeros after the last record are a clean end.
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0; 100]);
        let mut w = LogWalker::new(&padded, LOG_HEADER_BYTES, 0, [0; 32]);
        assert_eq!(w.by_ref().count(), 3);
        assert!(matches!(w.end(), LogEnd::Clean));
        // A torn tail.
        let mut w = LogWalker::new(&bytes[..bytes.len() - 1], LOG_HEADER_BYTES, 0, [0; 32]);
        assert_eq!(w.by_ref().count(), 2);
        assert!(matches!(w.end(), LogEnd::Incomplete(at) if *at == starts[2]));
        // Damage in record 2, reported at its offset or after it.
        let mut bad = bytes.clone();
        bad[starts[1] as usize + 60] ^= 1;
        let mut w = LogWalker::new(&bad, LOG_HEADER_BYTES, 0, [0; 32]);
        assert_eq!(w.by_ref().count(), 1);
        assert!(matches!(w.end(), LogEnd::Damaged(e) if e.offset >= starts[1]));
        // Starting from the wrong chain head breaks the chain at once.
        let mut w = LogWalker::new(&bytes, LOG_HEADER_BYTES, 0, [7; 32]);
        assert_eq!(w.by_ref().count(), 0);
        assert!(matches!(w.end(), LogEnd::ChainBroken { seq: 1, .. }));
        // Resuming in the middle, as a reader catching up does.
        let w = LogWalker::new(&bytes, starts[1], 1, {
            let mut w = LogWalker::new(&bytes, LOG_HEADER_BYTES, 0, [0; 32]);
            w.next().map(|r| r.hash).unwrap()
        });
        assert_eq!(w.map(|r| r.rec.seq).collect::<Vec<_>>(), vec![2, 3]);
    }
}
