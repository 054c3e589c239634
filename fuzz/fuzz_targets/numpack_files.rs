#![no_main]
//! NumPack's files as numpack-reader parses them: `metadata.npkm`, a
//! deletion bitmap (for a row count taken from the input) and a segment
//! manifest. The first byte picks the parser. Errors are fine; panics,
//! hangs and huge allocations are not.
use libfuzzer_sys::fuzz_target;
use numpack_reader::format::{dtype_of, parse_bitmap, parse_manifest, parse_metadata, safe_relative};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            if let Ok(m) = parse_metadata(rest) {
                for a in &m.arrays {
                    let _ = safe_relative(&a.data_file);
                    let _ = dtype_of(a.dtype_code);
                }
            }
        }
        1 => {
            if rest.len() >= 8 {
                let mut n = [0u8; 8];
                n.copy_from_slice(&rest[..8]);
                let rows = u64::from_le_bytes(n) % (1 << 20);
                if let Ok(b) = parse_bitmap(&rest[8..], rows) {
                    assert!(b.live_rows() <= rows);
                    let live = (0..rows).filter(|&r| b.is_live(r)).count() as u64;
                    assert_eq!(live, b.live_rows());
                }
            }
        }
        _ => {
            if let Ok(m) = parse_manifest(rest) {
                for s in &m.segments {
                    let _ = safe_relative(&s.file);
                }
            }
        }
    }
});
