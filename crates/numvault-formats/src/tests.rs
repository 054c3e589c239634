//! Unit tests of the shared readers and writers: streaming in chunks,
//! bad headers, truncation at every length, bad CSV rows. Every bad input
//! must be an error naming the file (never a panic). The command's tests
//! (crates/numvault-cli/src/formats/tests) exercise the same code through
//! `numvault import` / `export`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use numvault::DType;

use crate::npy::{npy_header, read_npy, NpyReader, NPY_MAGIC};
use crate::npz::{load_npz, NpzReader};
use crate::{csv, FormatError};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).expect("write test file");
    p
}

/// A .npy file written by the shared writer.
fn npy_file(dtype: DType, shape: &[u64], data: &[u8]) -> Vec<u8> {
    let mut b = npy_header(dtype, shape).expect("header");
    b.extend_from_slice(data);
    b
}

/// A .npy file with a hand-written header.
fn npy_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    let unpadded = 10 + h.len() + 1;
    h.resize(h.len() + (64 - unpadded % 64) % 64, b' ');
    h.push(b'\n');
    let mut out = NPY_MAGIC.to_vec();
    out.extend([1, 0]);
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h);
    out.extend(data);
    out
}

fn zip_bytes(members: &[(&str, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in members {
        w.start_file(*name, opts).expect("start_file");
        w.write_all(bytes).expect("write member");
    }
    w.finish().expect("finish").into_inner()
}

fn iota(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn npy_streams_in_bounded_chunks() {
    // 10 rows of 3 int32: 12 bytes a row.
    let data = iota(120);
    let file = npy_file(DType::I32, &[10, 3], &data);
    let mut r = NpyReader::new(file.as_slice(), file.len() as u64).unwrap();
    assert_eq!((r.rows(), r.row_bytes(), r.row_shape()), (10, 12, vec![3]));
    assert_eq!(r.rows_per_chunk(30), 2);
    assert_eq!(r.rows_per_chunk(1), 1);
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    while let Some(c) = r.next_chunk(40).unwrap() {
        sizes.push(c.len());
        got.extend(c);
    }
    assert_eq!(sizes, vec![36, 36, 36, 12]);
    assert_eq!(got, data);
    assert!(r.next_chunk(40).unwrap().is_none());
}

#[test]
fn npy_big_endian_bool_and_fortran() {
    // Big-endian int16 is swapped chunk by chunk.
    let be: Vec<u8> = [1u16, 2, 0x0304]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let file = npy_bytes(
        "{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }",
        &be,
    );
    let mut r = NpyReader::new(file.as_slice(), file.len() as u64).unwrap();
    let mut out = Vec::new();
    while let Some(c) = r.next_chunk(2).unwrap() {
        out.extend(c);
    }
    assert_eq!(out, vec![1, 0, 2, 0, 4, 3]);
    // Booleans become 0/1.
    let file = npy_bytes(
        "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
        &[0, 9, 1],
    );
    let (_, _, d) = read_npy(&mut file.as_slice(), file.len() as u64).unwrap();
    assert_eq!(d, vec![0, 1, 1]);
    // Fortran order, 2-D: one chunk, whatever the size asked, in C order.
    let f: Vec<u8> = vec![1, 4, 2, 5, 3, 6]; // [[1,2,3],[4,5,6]] column-major
    let file = npy_bytes(
        "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }",
        &f,
    );
    let mut r = NpyReader::new(file.as_slice(), file.len() as u64).unwrap();
    assert!(r.whole());
    assert_eq!(r.next_chunk(1).unwrap(), Some(vec![1, 2, 3, 4, 5, 6]));
    assert_eq!(r.next_chunk(1).unwrap(), None);
    // 0-d: one row of shape [].
    let file = npy_file(DType::F64, &[], &2.5f64.to_le_bytes());
    let r = NpyReader::new(file.as_slice(), file.len() as u64).unwrap();
    assert_eq!(
        (r.header().shape.len(), r.shape(), r.rows()),
        (0, vec![1], 1)
    );
}

#[test]
fn npy_truncated_at_every_length_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for (dtype, shape) in [
        (DType::F64, vec![4u64]),
        (DType::I16, vec![3, 2]),
        (DType::U8, vec![0, 4]),
    ] {
        let n = crate::element_count(&shape).unwrap() as usize * dtype.itemsize();
        let good = npy_file(dtype, &shape, &iota(n));
        for cut in 0..good.len() {
            let bytes = &good[..cut];
            // In memory, with the length the stream claims (the file's
            // real length) ...
            let r = NpyReader::new(bytes, bytes.len() as u64).and_then(|r| r.read_all());
            assert!(r.is_err(), "{dtype} cut at {cut}");
            // ... with a length the stream does not have (an npz member
            // whose declared size lies): still an error, not a panic.
            let r = NpyReader::new(bytes, good.len() as u64).and_then(|r| r.read_all());
            assert!(r.is_err(), "{dtype} cut at {cut}, claimed full length");
            // From a file: the message names the file and says truncated.
            let p = write(dir.path(), "cut.npy", bytes);
            let err = crate::npy::load_npy(&p).unwrap_err().to_string();
            assert!(
                err.contains("cut.npy") && err.contains("truncated"),
                "{cut}: {err}"
            );
        }
        let p = write(dir.path(), "ok.npy", &good);
        assert_eq!(crate::npy::load_npy(&p).unwrap().data, iota(n));
    }
    // A truncated data part names the byte offset where the file ends.
    let good = npy_file(DType::F64, &[100], &iota(800));
    let p = write(dir.path(), "t.npy", &good[..good.len() - 10]);
    let err = crate::npy::load_npy(&p).unwrap_err().to_string();
    assert!(
        err.contains(&format!("byte offset {}", good.len() - 10)),
        "{err}"
    );
}

#[test]
fn npy_bad_headers_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("magic", b"\x93NUMPZ\x01\x00\x10\x00{}".to_vec(), "bad magic"),
        ("version", {
            let mut g = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (0,), }", &[]);
            g[6] = 9;
            g
        }, "version 9.0"),
        ("not-dict", npy_bytes("[1, 2, 3]", &[]), "not a dictionary"),
        ("syntax", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (0,", &[]), "syntax error"),
        ("no-shape", npy_bytes("{'descr': '<f8', 'fortran_order': False}", &[]), "needs"),
        ("neg-dim", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", &[]), "bad dimension"),
        ("descr-int", npy_bytes("{'descr': 8, 'fortran_order': False, 'shape': (0,), }", &[]), "descr"),
        ("descr-str", npy_bytes("{'descr': '<U4', 'fortran_order': False, 'shape': (1,), }", &[0; 16]), "'<U4'"),
        ("record", npy_bytes("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }", &[0; 4]), "structured"),
        ("order", npy_bytes("{'descr': '<f8', 'fortran_order': 1, 'shape': (0,), }", &[]), "fortran_order"),
        ("deep", npy_bytes(&format!("{{'descr': {}1{}, }}", "(".repeat(30), ")".repeat(30)), &[]), "nested"),
        ("quote", npy_bytes("{'descr: '<f8', }", &[]), "unterminated"),
        ("ndim", npy_bytes(&format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({}), }}", "1, ".repeat(65)), &[0; 8]), "dimensions"),
        ("utf8", {
            let mut g = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (0,), }", &[]);
            g[12] = 0xff;
            g
        }, "not valid text"),
        ("overflow", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", &[]), "overflows"),
        ("extra", npy_bytes("{'descr': '<u1', 'fortran_order': False, 'shape': (2,), }", &[1, 2, 3]), "unexpected bytes"),
    ];
    for (name, bytes, want) in cases {
        let p = write(dir.path(), &format!("{name}.npy"), &bytes);
        let err = crate::npy::load_npy(&p).expect_err(name).to_string();
        assert!(
            err.contains(want) && err.contains(&format!("{name}.npy")),
            "{name}: {err}"
        );
    }
    // Every single-byte corruption of a small file's header: an error or a
    // (different) valid array, never a panic.
    let good = npy_file(DType::I32, &[2, 2], &iota(16));
    let hl = good.len() - 16;
    for i in 0..hl {
        for b in [0u8, b'(', b'[', b'{', b'\'', b'L', 0xff, b'9'] {
            let mut g = good.clone();
            g[i] = b;
            let _ = NpyReader::new(g.as_slice(), g.len() as u64).and_then(|r| r.read_all());
        }
    }
    // A missing file: an I/O error naming it.
    let err = crate::npy::load_npy(&dir.path().join("nope.npy")).unwrap_err();
    assert!(matches!(err, FormatError::Io { .. }) && err.to_string().contains("nope.npy"));
}

#[test]
fn npz_streams_members_and_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let a = npy_file(DType::U16, &[50, 2], &iota(200));
    let b = npy_file(DType::F32, &[3], &iota(12));
    for method in [
        zip::CompressionMethod::Stored,
        zip::CompressionMethod::Deflated,
    ] {
        let p = write(
            dir.path(),
            "x.npz",
            &zip_bytes(&[("a.npy", a.clone()), ("sub/b.npy", b.clone())], method),
        );
        let mut seen = Vec::new();
        NpzReader::open(&p)
            .unwrap()
            .for_each(|m| -> Result<(), FormatError> {
                let mut chunks = 0;
                let mut data = Vec::new();
                while let Some(c) = m.next_chunk(32)? {
                    assert!(c.len() <= 32);
                    chunks += 1;
                    data.extend(c);
                }
                seen.push((m.key().to_string(), m.dtype(), m.shape(), chunks, data));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            (seen[0].0.as_str(), seen[0].3, &seen[0].4),
            ("a", 7, &iota(200))
        );
        assert_eq!((seen[1].0.as_str(), seen[1].2.clone()), ("sub/b", vec![3]));
        // A visitor that reads nothing: the rest is still read and checked.
        NpzReader::open(&p)
            .unwrap()
            .for_each(|_| Ok::<(), FormatError>(()))
            .unwrap();
        let all = load_npz(&p).unwrap();
        assert_eq!(all[0].data, iota(200));
    }
    // Damaged data (CRC), truncation at every length, an empty archive,
    // a member that is not a .npy: errors naming the archive.
    let good = zip_bytes(&[("a.npy", a.clone())], zip::CompressionMethod::Stored);
    let mut bad = good.clone();
    let at = 30 + "a.npy".len() + a.len() - 5; // inside the member's data
    bad[at] ^= 0x55;
    let p = write(dir.path(), "crc.npz", &bad);
    let err = load_npz(&p).unwrap_err().to_string();
    assert!(
        err.contains("crc.npz") && err.contains("member 'a.npy'"),
        "{err}"
    );
    for cut in 0..good.len() {
        let p = write(dir.path(), "cut.npz", &good[..cut]);
        let err = load_npz(&p).expect_err("truncated npz").to_string();
        assert!(err.contains("cut.npz"), "{cut}: {err}");
    }
    let p = write(
        dir.path(),
        "empty.npz",
        &zip_bytes(&[], zip::CompressionMethod::Stored),
    );
    assert!(load_npz(&p).unwrap_err().to_string().contains("no arrays"));
    let p = write(
        dir.path(),
        "junk.npz",
        &zip_bytes(
            &[("j.npy", b"not npy".to_vec())],
            zip::CompressionMethod::Deflated,
        ),
    );
    let err = load_npz(&p).unwrap_err().to_string();
    assert!(
        err.contains("member 'j.npy'") && err.contains("junk.npz"),
        "{err}"
    );
}

#[test]
fn csv_bad_rows_are_errors_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("ragged", "1,2\n3,4\n5\n", "line 3 has 1 fields, expected 2"),
        (
            "word",
            "1,2\n3,x\n",
            "line 2, column 2: 'x' is not a number",
        ),
        ("empty-cell", "1,2\n3,\n", "line 2, column 2"),
        ("empty", "", "empty"),
        ("header-only", "a,b\n", "no data rows"),
    ];
    for (name, text, want) in cases {
        let p = write(dir.path(), &format!("{name}.csv"), text.as_bytes());
        let err = csv::load_csv(&p).expect_err(name).to_string();
        assert!(
            err.contains(want) && err.contains(&format!("{name}.csv")),
            "{name}: {err}"
        );
    }
    let p = write(dir.path(), "utf8.csv", b"1,2\n\xff,3\n");
    assert!(csv::load_csv(&p)
        .unwrap_err()
        .to_string()
        .contains("utf8.csv"));
    // Every truncation of a small file: a value or an error, never a panic.
    let good = b"x,y\n1,2.5\n-3,4e3\n18446744073709551615,0\n";
    for cut in 0..good.len() {
        let p = write(dir.path(), "cut.csv", &good[..cut]);
        let _ = csv::load_csv(&p);
    }
    let p = write(dir.path(), "ok.csv", good);
    let l = csv::load_csv(&p).unwrap();
    assert_eq!((l.dtype, l.shape), (DType::F64, vec![3, 2]));
}
