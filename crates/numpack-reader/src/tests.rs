//! Unit tests: the fixtures written by the real NumPack
//! (tests/fixtures/numpack/<version>/store) read and import; damaged copies
//! (bit flips, truncations, missing files) give errors and never panic, and
//! import nothing.

use std::fs;
use std::path::{Path, PathBuf};

use numvault::{DType, Store};

use crate::format::{parse_bitmap, parse_manifest, parse_metadata};
use crate::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/numpack")
}

/// Every fixture store checked in (one per NumPack version).
fn fixture_stores() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path().join("store");
            p.join("metadata.npkm").is_file().then_some(p)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixture stores under {:?}", fixtures());
    v
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            fs::copy(e.path(), to).unwrap();
        }
    }
}

fn i64s(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn i32s(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Open and read every array whole; the first error, if any.
fn open_and_read(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let s = NumPackStore::open(dir)?;
    let mut out = Vec::new();
    for a in &s.arrays {
        out.push((a.name.clone(), s.read_array(a)?));
    }
    Ok(out)
}

#[test]
fn fixtures_read_with_known_values() {
    for dir in fixture_stores() {
        let s = NumPackStore::open(&dir).unwrap();
        let a = s.get("appended").unwrap();
        let want: Vec<i32> = (0..30).chain(100..112).collect();
        assert_eq!(i32s(&s.read_array(a).unwrap()), want, "{dir:?}");
        assert_eq!(a.shape(), vec![42]);

        let w = s.get("wide_words").unwrap();
        let dropped: Vec<i64> = (60..140).step_by(3).chain([199]).collect();
        let want: Vec<i64> = (0..200)
            .filter(|r| !dropped.contains(r))
            .flat_map(|r| [2 * r, 2 * r + 1])
            .collect();
        assert_eq!(i64s(&s.read_array(w).unwrap()), want, "{dir:?}");
        assert_eq!(w.shape(), vec![200 - dropped.len() as u64, 2]);
        assert_eq!(w.deleted_rows(), dropped.len() as u64);

        // Every dtype: 70 rows, 5 dropped.
        for d in DType::ALL {
            let name = format!("dtype_{}", d);
            let Some(a) = s.get(&name) else {
                panic!("{dir:?}: no {name}")
            };
            assert_eq!(a.dtype, d);
            assert_eq!(a.shape(), vec![65, 3], "{name}");
            assert_eq!(s.read_array(a).unwrap().len(), 65 * 3 * d.itemsize());
        }
        // NumPack's append re-activates rows dropped in the bitmap's last
        // word; load() shows them, and so does the import.
        let dta = s.get("drop_then_append").unwrap();
        assert_eq!(dta.shape(), vec![15]);
        if let Some(seg) = s.get("segmented") {
            assert_eq!(seg.shape(), vec![124, 4]);
        }
    }
}

#[test]
fn the_070_fixture_has_a_segmented_array() {
    let dir = fixtures().join("0.7.0/store");
    if !dir.exists() {
        return;
    }
    let s = NumPackStore::open(&dir).unwrap();
    let seg = s.get("segmented").unwrap();
    assert!(seg.is_segmented());
    match &seg.layout {
        Layout::Segmented { segments, .. } => assert!(segments.len() > 2),
        Layout::Single { .. } => unreachable!(),
    }
    // 0.7 keeps a wholly dropped array with no live rows.
    assert_eq!(s.get("whole_drop").unwrap().shape(), vec![0, 2]);
}

#[test]
fn import_matches_the_reader_and_reopens() {
    for dir in fixture_stores() {
        let t = tempfile::tempdir().unwrap();
        let dst = t.path().join("vault");
        let mut bytes = 0u64;
        let opts = ImportOptions {
            chunk_bytes: 100, // many chunks per array
            ..ImportOptions::default()
        };
        let rep = import_dir(&dir, &dst, &opts, &mut |n| {
            bytes += n;
            Ok(())
        })
        .unwrap();
        assert!(rep.created);
        let np = NumPackStore::open(&dir).unwrap();
        assert_eq!(rep.arrays.len(), np.arrays.len());
        assert_eq!(bytes, rep.arrays.iter().map(|a| a.bytes).sum::<u64>());
        let st = Store::open(&dst, numvault::OpenOptions::read_only()).unwrap();
        for a in &np.arrays {
            let got = st.read(&a.name).unwrap();
            assert_eq!(got.dtype, a.dtype, "{}", a.name);
            assert_eq!(got.shape, a.shape(), "{}", a.name);
            assert_eq!(got.data, np.read_array(a).unwrap(), "{}", a.name);
        }
    }
}

#[test]
fn prefix_and_select() {
    let dir = &fixture_stores()[0];
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join("vault");
    let opts = ImportOptions {
        prefix: Some("np/".into()),
        select: Some(Box::new(|n: &str| n.starts_with("plain_"))),
        ..ImportOptions::default()
    };
    let rep = import_dir(dir, &dst, &opts, &mut |_| Ok(())).unwrap();
    assert_eq!(rep.arrays.len(), 14);
    let st = Store::open(&dst, numvault::OpenOptions::read_only()).unwrap();
    assert!(st.has("np/plain_int8"));
    assert_eq!(st.len(), 14);
}

/// Import a damaged copy: an error, never a panic; an existing target keeps
/// exactly what it had, a new one is not left behind.
fn import_fails_cleanly(bad: &Path, what: &str) -> Error {
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join("vault");
    {
        let st = Store::open(&dst, numvault::OpenOptions::default()).unwrap();
        st.save(
            "keep",
            numvault::ArrayRef::new(DType::I32, &[2], &[1, 0, 0, 0, 2, 0, 0, 0]),
        )
        .unwrap();
        st.close().unwrap();
    }
    let err = import_dir(bad, &dst, &ImportOptions::default(), &mut |_| Ok(()))
        .err()
        .unwrap_or_else(|| panic!("{what}: imported a damaged store"));
    let st = Store::open(&dst, numvault::OpenOptions::read_only()).unwrap();
    assert_eq!(st.list(""), vec!["keep".to_string()], "{what}");
    drop(st);
    let fresh = t.path().join("fresh");
    assert!(import_dir(bad, &fresh, &ImportOptions::default(), &mut |_| Ok(())).is_err());
    assert!(
        !fresh.exists(),
        "{what}: a failed import left a new store behind"
    );
    let empty = t.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert!(import_dir(bad, &empty, &ImportOptions::default(), &mut |_| Ok(())).is_err());
    assert_eq!(
        fs::read_dir(&empty).unwrap().count(),
        0,
        "{what}: empty dir not left empty"
    );
    err
}

fn damaged_copy(t: &tempfile::TempDir) -> PathBuf {
    let d = t.path().join("np");
    copy_dir(&fixture_stores()[0], &d);
    d
}

#[test]
fn truncated_data_file_is_named() {
    let t = tempfile::tempdir().unwrap();
    let d = damaged_copy(&t);
    let f = d.join("data_wide_words.npkd");
    let len = fs::metadata(&f).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let e = import_fails_cleanly(&d, "truncated data");
    let msg = e.to_string();
    assert!(e.is_corrupt(), "{msg}");
    assert!(
        msg.contains("data_wide_words.npkd") && msg.contains("wide_words"),
        "{msg}"
    );
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn every_truncation_of_metadata_is_an_error() {
    let src = fixture_stores()[0].join("metadata.npkm");
    let b = fs::read(&src).unwrap();
    parse_metadata(&b).unwrap();
    for n in 0..b.len() {
        let e = parse_metadata(&b[..n])
            .err()
            .unwrap_or_else(|| panic!("{n}"));
        assert!(e.offset <= n as u64, "{n}: {e:?}");
    }
    let t = tempfile::tempdir().unwrap();
    let d = damaged_copy(&t);
    fs::write(d.join("metadata.npkm"), &b[..b.len() / 2]).unwrap();
    let e = import_fails_cleanly(&d, "truncated metadata");
    assert!(e.to_string().contains("metadata.npkm"), "{e}");
}

#[test]
fn bit_flips_in_metadata_never_panic() {
    let b = fs::read(fixture_stores()[0].join("metadata.npkm")).unwrap();
    let mut errors = 0;
    for i in 0..b.len() {
        for bit in 0..8 {
            let mut c = b.clone();
            c[i] ^= 1 << bit;
            if parse_metadata(&c).is_err() {
                errors += 1;
            }
        }
    }
    assert!(errors > 0);
    // The whole open + read on a sample of flips.
    let t = tempfile::tempdir().unwrap();
    let d = damaged_copy(&t);
    for i in (0..b.len()).step_by(13) {
        let mut c = b.clone();
        c[i] ^= 1 << (i % 8);
        fs::write(d.join("metadata.npkm"), &c).unwrap();
        let _ = open_and_read(&d);
    }
}

#[test]
fn bad_magic_version_dtype_and_trailing_bytes() {
    let b = fs::read(fixture_stores()[0].join("metadata.npkm")).unwrap();
    let mut c = b.clone();
    c[0] ^= 0xff;
    assert!(parse_metadata(&c).unwrap_err().detail.contains("magic"));
    let mut c = b.clone();
    c[4] = 2;
    assert!(parse_metadata(&c).unwrap_err().detail.contains("version 2"));
    let mut c = b.clone();
    c.push(0);
    assert!(parse_metadata(&c).unwrap_err().detail.contains("follow"));
    // An unknown dtype code: found by the store check, naming the array.
    let m = parse_metadata(&b).unwrap();
    let a = &m.arrays[0];
    let dtype_at =
        a.offset as usize + 4 + a.name.len() + 4 + 8 * a.shape.len() + 4 + a.data_file.len() + 16;
    let t = tempfile::tempdir().unwrap();
    let d = damaged_copy(&t);
    let mut c = b.clone();
    c[dtype_at] = 99;
    fs::write(d.join("metadata.npkm"), &c).unwrap();
    let e = import_fails_cleanly(&d, "bad dtype");
    let msg = e.to_string();
    assert!(
        msg.contains("dtype code 99") && msg.contains(&a.name),
        "{msg}"
    );
}

#[test]
fn bitmaps_truncated_or_flipped() {
    let dir = &fixture_stores()[0];
    let b = fs::read(dir.join("deleted_wide_words.npkb")).unwrap();
    let bm = parse_bitmap(&b, 200).unwrap();
    assert_eq!(bm.live_rows(), 200 - 28);
    for n in 0..b.len() {
        assert!(parse_bitmap(&b[..n], 200).is_err(), "truncated to {n}");
    }
    assert!(parse_bitmap(&b, 201).is_err(), "row count mismatch");
    for i in 0..b.len() {
        for bit in 0..8 {
            let mut c = b.clone();
            c[i] ^= 1 << bit;
            if let Ok(bm) = parse_bitmap(&c, 200) {
                assert!(bm.live_rows() <= 200);
            }
        }
    }
    let t = tempfile::tempdir().unwrap();
    let d = damaged_copy(&t);
    fs::write(d.join("deleted_wide_words.npkb"), &b[..b.len() - 8]).unwrap();
    let e = import_fails_cleanly(&d, "truncated bitmap");
    assert!(e.to_string().contains("deleted_wide_words.npkb"), "{e}");
}

#[test]
fn bad_bool_bytes_and_escaping_paths() {
    let t = tempfile::tempdir().unwrap();
    let d = damaged_copy(&t);
    let f = d.join("data_plain_bool.npkd");
    let mut b = fs::read(&f).unwrap();
    b[4] = 7;
    fs::write(&f, &b).unwrap();
    let e = import_fails_cleanly(&d, "bool byte");
    assert!(e.to_string().contains("bool value is 7"), "{e}");
    assert!(crate::format::safe_relative("../x").is_err());
    assert!(crate::format::safe_relative("/etc/passwd").is_err());
    assert!(crate::format::safe_relative("data_x_segments/seg_000000.npkd").is_ok());
}

#[test]
fn segments_damaged() {
    let src = fixtures().join("0.7.0/store");
    if !src.exists() {
        return;
    }
    let m = fs::read(src.join("data_segmented.npkseg")).unwrap();
    parse_manifest(&m).unwrap();
    for n in 0..m.len() {
        let _ = parse_manifest(&m[..n]);
    }
    for i in 0..m.len() {
        let mut c = m.clone();
        c[i] ^= 1 << (i % 8);
        let _ = parse_manifest(&c);
    }
    // A segment file cut short.
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("np");
    copy_dir(&src, &d);
    let seg = d.join("data_segmented_segments/seg_000003.npkd");
    fs::write(&seg, vec![0u8; 100]).unwrap();
    let e = import_fails_cleanly(&d, "short segment");
    assert!(e.to_string().contains("seg_000003.npkd"), "{e}");
    // A segment missing.
    fs::remove_file(&seg).unwrap();
    import_fails_cleanly(&d, "missing segment");
    // Rows in the manifest not adding up.
    let d2 = t.path().join("np2");
    copy_dir(&src, &d2);
    let txt = String::from_utf8(m.clone())
        .unwrap()
        .replacen("\"rows\": 16", "\"rows\": 15", 1);
    fs::write(d2.join("data_segmented.npkseg"), txt).unwrap();
    import_fails_cleanly(&d2, "manifest rows");
}

#[test]
fn not_a_numpack_store() {
    let t = tempfile::tempdir().unwrap();
    assert!(matches!(
        NumPackStore::open(t.path()),
        Err(Error::NotNumPack { .. })
    ));
    assert!(!is_numpack_store(t.path()));
    assert!(is_numpack_store(&fixture_stores()[0]));
}

#[test]
fn replace_all_and_cancel() {
    let dir = &fixture_stores()[0];
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join("vault");
    {
        let st = Store::open(&dst, numvault::OpenOptions::default()).unwrap();
        st.save("old", numvault::ArrayRef::new(DType::U8, &[1], &[9]))
            .unwrap();
        st.close().unwrap();
    }
    // Cancelled half-way: nothing changes.
    let mut calls = 0;
    let e = import_dir(dir, &dst, &ImportOptions::default(), &mut |_| {
        calls += 1;
        if calls > 3 {
            return Err(Error::Cancelled("test".into()));
        }
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(e, Error::Cancelled(_)));
    {
        let st = Store::open(&dst, numvault::OpenOptions::read_only()).unwrap();
        assert_eq!(st.list(""), vec!["old".to_string()]);
    }
    let opts = ImportOptions {
        replace_all: true,
        ..ImportOptions::default()
    };
    let rep = import_dir(dir, &dst, &opts, &mut |_| Ok(())).unwrap();
    assert!(!rep.created);
    let st = Store::open(&dst, numvault::OpenOptions::read_only()).unwrap();
    assert!(!st.has("old"));
    assert_eq!(st.len(), rep.arrays.len());
}

#[test]
fn bit_flips_in_bitmaps_and_manifest_through_open_and_read() {
    let src = fixtures().join("0.7.0/store");
    if !src.exists() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("np");
    copy_dir(&src, &d);
    for f in [
        "deleted_cube.npkb",
        "deleted_segmented.npkb",
        "data_segmented.npkseg",
    ] {
        let p = d.join(f);
        let orig = fs::read(&p).unwrap();
        for i in 0..orig.len() {
            for bit in [0, 3, 7] {
                let mut c = orig.clone();
                c[i] ^= 1 << bit;
                fs::write(&p, &c).unwrap();
                if let Ok(arrays) = open_and_read(&d) {
                    // Whatever was accepted reads whole rows of the shape.
                    let s = NumPackStore::open(&d).unwrap();
                    for (name, bytes) in arrays {
                        let a = s.get(&name).unwrap();
                        assert_eq!(bytes.len() as u64, a.live_bytes(), "{f} {i} {bit}");
                    }
                }
            }
        }
        fs::write(&p, &orig).unwrap();
    }
}

#[test]
fn a_name_numvault_refuses_is_named() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("np");
    fs::create_dir(&d).unwrap();
    // A one-array store written by hand: name "a\tb", int8, shape (2,).
    let name = "a\tb";
    let file = format!("data_{name}.npkd");
    let mut m = Vec::new();
    m.extend_from_slice(&crate::format::MAGIC.to_le_bytes());
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&2u64.to_le_bytes());
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&(name.len() as u32).to_le_bytes());
    m.extend_from_slice(name.as_bytes());
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&2u64.to_le_bytes());
    m.extend_from_slice(&(file.len() as u32).to_le_bytes());
    m.extend_from_slice(file.as_bytes());
    m.extend_from_slice(&0u64.to_le_bytes()); // mtime
    m.extend_from_slice(&2u64.to_le_bytes()); // size
    m.push(5); // int8
    m.push(0);
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(&0u64.to_le_bytes());
    m.extend_from_slice(&0u64.to_le_bytes());
    m.push(0);
    fs::write(d.join("metadata.npkm"), &m).unwrap();
    fs::write(d.join(&file), [1u8, 2]).unwrap();
    let s = NumPackStore::open(&d).unwrap();
    assert_eq!(s.read_array(&s.arrays[0]).unwrap(), vec![1, 2]);
    let e = import_fails_cleanly(&d, "bad name");
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("--exclude"), "{e}");
    // Selected out, the rest imports.
    let opts = ImportOptions {
        select: Some(Box::new(|n: &str| n != "a\tb")),
        ..ImportOptions::default()
    };
    let rep = import_dir(&d, &t.path().join("v"), &opts, &mut |_| Ok(())).unwrap();
    assert!(rep.arrays.is_empty());
}
