//! Entry points for the fuzz targets in `fuzz/` (not a stable API).
//!
//! Each function runs one decoder of on-disk bytes, and what follows it when
//! the bytes decode (applying ops to a state, re-encoding, combining
//! checksums), on arbitrary input. None may panic, hang or allocate more
//! than the input justifies; errors are the expected outcome.

use std::path::PathBuf;
use std::sync::Arc;

use crate::format::codec::Dec;
use crate::format::record::{self, RecordRead};
use crate::format::{data_name, log_name, manifest};
use crate::io::sim::SimVfs;
use crate::io::vfs::Vfs;
use crate::log::walker::LogWalker;
use crate::model::state::State;
use crate::txn::options::OpenOptions;
use crate::Store;

/// Apply decoded ops to an empty state and to `state` (as replay would).
fn apply_all(state: &State, ops: &[crate::model::op::Op]) {
    for base in [State::default(), state.clone()] {
        let mut s = base;
        for op in ops {
            if s.apply(op, 0).is_err() {
                break;
            }
        }
    }
}

/// A framed log record (length, crc, body) at the start of `bytes`.
pub fn log_record(bytes: &[u8]) {
    if let RecordRead::Ok(rec, len, _) = record::read_record(bytes) {
        assert!(len as usize <= bytes.len());
        apply_all(&State::default(), &rec.ops);
    }
}

/// A record body (the part covered by the crc), without the crc check, so
/// the op decoder sees mutated bodies; decoded ops are applied to a state.
pub fn log_record_body(bytes: &[u8]) {
    if let Ok(rec) = record::decode_record_body(bytes) {
        apply_all(&State::default(), &rec.ops);
    }
}

/// A whole log file after one mode byte: every record the walker accepts,
/// applied to a state; the damaged-tail and release scans run over it too.
/// Mode byte even: the walk starts from the chain head the first record
/// names (so real logs are walked through); odd: from seq 0 and the zero
/// hash.
pub fn log_walk(bytes: &[u8]) {
    let Some((&mode, log)) = bytes.split_first() else {
        return;
    };
    let start = crate::format::LOG_HEADER_BYTES;
    let first = start as usize;
    let (seq, chain) = match log.get(first + 8..first + 48) {
        Some(head) if mode % 2 == 0 => {
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&head[..8]);
            let mut chain = [0u8; 32];
            chain.copy_from_slice(&head[8..40]);
            (u64::from_le_bytes(seq).wrapping_sub(1), chain)
        }
        _ => (0, [0u8; 32]),
    };
    let mut state = State::default();
    let mut walker = LogWalker::new(log, start, seq, chain);
    for w in walker.by_ref() {
        assert!(w.end() <= log.len() as u64 && w.offset >= start);
        for op in &w.rec.ops {
            if state.apply(op, 0).is_err() {
                break;
            }
        }
    }
    let at = walker.pos();
    let _ = walker.end().describe();
    let _ = crate::log::walker::durable_record_after(log, at, walker.seq.wrapping_add(1));
    let _ = crate::log::walker::releases_after(log, start, seq, chain);
}

/// A log file header.
pub fn log_header(bytes: &[u8]) {
    let _ = record::decode_log_header(bytes);
}

/// A whole MANIFEST (header, crc, body); a decoded state is re-encoded and
/// must decode to the same state.
pub fn manifest(bytes: &[u8]) {
    if let Ok((state, created)) = manifest::decode_manifest(bytes) {
        let again = manifest::encode_manifest(&state, created);
        let redecoded = manifest::decode_manifest(&again);
        assert!(redecoded.is_ok(), "a decoded manifest does not re-decode");
        if let Ok((s2, c2)) = redecoded {
            assert_eq!(c2, created);
            assert_eq!(s2.seq, state.seq);
            assert_eq!(s2.arrays.len(), state.arrays.len());
        }
    }
}

/// A version file (FORMAT.md §15.3): the first 8 bytes are the id it is
/// expected to hold, the rest the file. A decoded table re-encodes to a
/// file that decodes to the same table.
pub fn version_file(bytes: &[u8]) {
    let Some((id, file)) = bytes.split_first_chunk::<8>() else {
        return;
    };
    let id = u64::from_le_bytes(*id);
    if let Ok(table) = crate::format::version::decode_version_file(file, id, u64::MAX) {
        let v = crate::model::version::Version {
            id,
            tag: None,
            time_ns: 0,
            array_count: table.len() as u32,
            arrays: None,
            on_disk: true,
        };
        let again = crate::format::version::encode_version_file(&v, &table);
        let back = crate::format::version::decode_version_file(&again, id, u64::MAX);
        assert!(
            back.is_ok_and(|t| t.len() == table.len()),
            "a decoded version file does not re-decode"
        );
    }
}

/// A MANIFEST body without the crc check, then records applied to it.
pub fn manifest_body(bytes: &[u8]) {
    let split = bytes.len() / 2;
    if let Ok((state, _)) =
        manifest::decode_manifest_body(&bytes[..split], crate::format::FORMAT_VERSION)
    {
        if let Ok(rec) = record::decode_record_body(&bytes[split..]) {
            apply_all(&state, &rec.ops);
        }
    }
}

/// A chunk-checksum table.
pub fn checksum_table(bytes: &[u8]) {
    let mut d = Dec::new(bytes);
    if let Ok(sums) = crate::format::fields::dec_sums(&mut d) {
        for i in 0..sums.sums.len() {
            let (a, b) = sums.range(i);
            assert!(a <= b || sums.covered < a);
        }
        let _ = sums.whole();
    }
}

/// Separates the files of a store image in [`store_image`] input.
pub const FILE_SEPARATOR: &[u8] = b"\0NVFILE\0";

/// Open a store whose files hold arbitrary bytes: the input split at
/// [`FILE_SEPARATOR`] gives MANIFEST, the generation 0..=2 logs and data
/// files 1.. in order. The store is opened read-only and for writing, every
/// array is read, viewed and verified, then written to. Errors are fine.
pub fn store_image(bytes: &[u8]) {
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut rest = bytes;
    while let Some(p) = find(rest, FILE_SEPARATOR) {
        parts.push(&rest[..p]);
        rest = &rest[p + FILE_SEPARATOR.len()..];
    }
    parts.push(rest);
    let sim = SimVfs::new();
    let dir = PathBuf::from("/s");
    let data = dir.join("data");
    if sim.create_dir_all(&data).is_err() {
        return;
    }
    for (i, part) in parts.iter().enumerate().take(16) {
        let path = match i {
            0 => dir.join("MANIFEST"),
            1..=3 => dir.join(log_name(i as u64 - 1)),
            n => data.join(data_name(n as u64 - 3)),
        };
        sim.write_file(&path, part.to_vec());
    }
    let vfs: Arc<dyn Vfs> = Arc::new(sim.clone());
    let exercise = |s: &Store| {
        for name in s.list("") {
            let _ = s.read(&name);
            let _ = s.read_rows(&name, 0, 3);
            let _ = s.read_indices(&name, &[0, -1]);
            if let Ok(v) = s.view(&name) {
                let _ = v.row(0);
                let _ = v.to_array();
            }
        }
        let _ = s.verify();
    };
    let ro = OpenOptions {
        vfs: vfs.clone(),
        ..OpenOptions::read_only()
    };
    if let Ok(s) = Store::open(&dir, ro) {
        exercise(&s);
    }
    let rw = OpenOptions {
        vfs,
        create: false,
        ..OpenOptions::default()
    };
    if let Ok(s) = Store::open(&dir, rw) {
        exercise(&s);
        let _ = s.save("fuzz", crate::ArrayRef::of(&[2], &[1u8, 2]));
        let _ = s.append("fuzz", crate::ArrayRef::of(&[1], &[3u8]));
        for name in s.list("") {
            let _ = s.compact(&name);
        }
        let _ = s.checkpoint();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
