//! Unit tests of the shared readers and writers: streaming in chunks,
//! bad headers, truncation at every length, bad CSV rows. Every bad input
//! must be an error naming the file (never a panic). The command's tests
//! (crates/numvault-cli/src/formats/tests) exercise the same code through
//! `numvault import` / `export`.

use std::fs;
use std::path::{Path, PathBuf};

use numvault::DType;

use crate::npy::{npy_header, read_npy, NpyReader};
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

use crate::testing::npy_bytes;

fn zip_bytes(members: &[(&str, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
    crate::testing::zip_bytes(members, method).expect("zip in memory")
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

fn rows_of(text: &str, opts: &csv::CsvOptions) -> Result<Vec<(u64, Vec<csv::Num>)>, crate::Fail> {
    let mut r = csv::CsvReader::new(text.as_bytes(), opts)?;
    let mut out = Vec::new();
    let mut row = Vec::new();
    while let Some(line) = r.next_row(&mut row)? {
        out.push((line, row.clone()));
    }
    Ok(out)
}

fn fail_text(f: crate::Fail) -> String {
    match f {
        crate::Fail::Invalid(m) | crate::Fail::Unsupported(m) => m,
        crate::Fail::Io(e) => e.to_string(),
    }
}

#[test]
fn csv_reader_options_and_line_numbers() {
    use csv::{CsvOptions, Header, Num};
    let text = "# junk\na;b\n1;2\n3;4.5\n5;6\n";
    let opts = CsvOptions {
        delimiter: Some(b';'),
        skiprows: 1,
        header: Header::Line(0),
        max_rows: Some(2),
    };
    let rows = rows_of(text, &opts).unwrap();
    assert_eq!(
        rows,
        vec![
            (3, vec![Num::I(1), Num::I(2)]),
            (4, vec![Num::I(3), Num::F(4.5)])
        ]
    );
    // Whitespace-separated text: runs of spaces and tabs, blank lines
    // skipped, line numbers counted from the top of the file.
    let opts = CsvOptions {
        delimiter: None,
        skiprows: 0,
        header: Header::None,
        max_rows: None,
    };
    let rows = rows_of("1  2\t3\n\n  4 5 6\n", &opts).unwrap();
    assert_eq!(rows[1].0, 3);
    let err = fail_text(rows_of("1 2\n\n3 x\n", &opts).unwrap_err());
    assert!(
        err.contains("line 3, column 2: 'x' is not a number"),
        "{err}"
    );
    let err = fail_text(rows_of("1 2\n3\n", &opts).unwrap_err());
    assert!(err.contains("line 2 has 1 fields, expected 2"), "{err}");
    // Errors after skipped lines name the line in the file.
    let opts = CsvOptions {
        skiprows: 2,
        header: Header::None,
        ..CsvOptions::default()
    };
    let err = fail_text(rows_of("x\ny\n1,2\n3,oops\n", &opts).unwrap_err());
    assert!(err.contains("line 4, column 2"), "{err}");
    // A header line past the end of the file.
    let opts = CsvOptions {
        header: Header::Line(5),
        ..CsvOptions::default()
    };
    let err = fail_text(rows_of("1,2\n", &opts).map(|_| ()).unwrap_err());
    assert!(err.contains("no header"), "{err}");
    // Auto: a numeric first row is data.
    let rows = rows_of("1,2\n3,4\n", &CsvOptions::default()).unwrap();
    assert_eq!(rows.len(), 2);
    // Every truncation of a small file, every mode: rows or an error.
    let good = "h1,h2\n1,2.5\n-3,4e3\n\"5\",6\n";
    for cut in 0..good.len() {
        for header in [Header::Auto, Header::None, Header::Line(1)] {
            for delimiter in [Some(b','), None] {
                let opts = CsvOptions {
                    delimiter,
                    skiprows: (cut % 3) as u64,
                    header,
                    max_rows: None,
                };
                let _ = rows_of(&good[..cut], &opts);
            }
        }
    }
}

#[test]
fn csv_values_convert_exactly_or_not_at_all() {
    use csv::{push_exact, widen, Num};
    let fits = |d: DType, v: Num| {
        let mut out = Vec::new();
        let ok = push_exact(d, v, &mut out);
        assert_eq!(out.len(), if ok { d.itemsize() } else { 0 }, "{d} {v:?}");
        ok
    };
    assert!(fits(DType::I8, Num::I(-128)) && !fits(DType::I8, Num::I(128)));
    assert!(fits(DType::U8, Num::F(255.0)) && !fits(DType::U8, Num::F(1.5)));
    assert!(!fits(DType::U8, Num::I(-1)) && !fits(DType::I32, Num::F(f64::NAN)));
    assert!(fits(DType::Bool, Num::I(1)) && !fits(DType::Bool, Num::I(2)));
    assert!(fits(DType::I64, Num::I(i64::MIN)) && !fits(DType::I64, Num::U(1 << 63)));
    assert!(!fits(DType::I64, Num::F(9_223_372_036_854_775_808.0)));
    assert!(fits(DType::U64, Num::U(u64::MAX)) && !fits(DType::U64, Num::F(1.8446744073709552e19)));
    assert!(fits(DType::F64, Num::I(1 << 53)) && !fits(DType::F64, Num::I((1 << 53) + 1)));
    assert!(!fits(DType::F64, Num::I(i64::MAX)) && !fits(DType::F64, Num::U(u64::MAX)));
    assert!(fits(DType::F32, Num::F(0.5)) && !fits(DType::F32, Num::F(0.1)));
    assert!(fits(DType::F32, Num::F(f64::NAN)) && fits(DType::F16, Num::F(f64::INFINITY)));
    assert!(fits(DType::F16, Num::I(2048)) && !fits(DType::F16, Num::I(2049)));
    assert!(fits(DType::Complex128, Num::F(-2.5)));
    assert_eq!(widen(DType::I64, Num::U(u64::MAX)), DType::U64);
    assert_eq!(widen(DType::I64, Num::F(0.5)), DType::F64);
    assert_eq!(widen(DType::U64, Num::I(-1)), DType::F64);
}

/// Cases generated from Python's `%` operator (what NumPy's savetxt uses);
/// None where Python raises.
#[test]
fn printf_matches_python() {
    use crate::printf::{Printf, Value};
    let cases: &[(&str, Value, Option<&str>)] = &[
        (
            "%.18e",
            Value::Float(0.0_f64),
            Some("0.000000000000000000e+00"),
        ),
        (
            "%.18e",
            Value::Float(-0.0_f64),
            Some("-0.000000000000000000e+00"),
        ),
        (
            "%.18e",
            Value::Float(1.5_f64),
            Some("1.500000000000000000e+00"),
        ),
        (
            "%.18e",
            Value::Float(-2.25_f64),
            Some("-2.250000000000000000e+00"),
        ),
        (
            "%.18e",
            Value::Float(123456789.125_f64),
            Some("1.234567891250000000e+08"),
        ),
        (
            "%.18e",
            Value::Float(1e-07_f64),
            Some("9.999999999999999547e-08"),
        ),
        (
            "%.18e",
            Value::Float(0.1_f64),
            Some("1.000000000000000056e-01"),
        ),
        (
            "%.18e",
            Value::Float(1e+22_f64),
            Some("1.000000000000000000e+22"),
        ),
        ("%.18e", Value::Float(f64::INFINITY), Some("inf")),
        ("%.18e", Value::Float(f64::NEG_INFINITY), Some("-inf")),
        ("%.18e", Value::Float(f64::NAN), Some("nan")),
        (
            "%.18e",
            Value::Float(9.5_f64),
            Some("9.500000000000000000e+00"),
        ),
        (
            "%.18e",
            Value::Float(0.0001_f64),
            Some("1.000000000000000048e-04"),
        ),
        (
            "%.18e",
            Value::Float(99999.95_f64),
            Some("9.999994999999999709e+04"),
        ),
        ("%.18e", Value::Int(0), Some("0.000000000000000000e+00")),
        ("%.18e", Value::Int(-7), Some("-7.000000000000000000e+00")),
        (
            "%.18e",
            Value::Int(123456789012),
            Some("1.234567890120000000e+11"),
        ),
        (
            "%.18e",
            Value::Int(18446744073709551615),
            Some("1.844674407370955162e+19"),
        ),
        ("%d", Value::Float(0.0_f64), Some("0")),
        ("%d", Value::Float(-0.0_f64), Some("0")),
        ("%d", Value::Float(1.5_f64), Some("1")),
        ("%d", Value::Float(-2.25_f64), Some("-2")),
        ("%d", Value::Float(123456789.125_f64), Some("123456789")),
        ("%d", Value::Float(1e-07_f64), Some("0")),
        ("%d", Value::Float(0.1_f64), Some("0")),
        (
            "%d",
            Value::Float(1e+22_f64),
            Some("10000000000000000000000"),
        ),
        ("%d", Value::Float(f64::INFINITY), None),
        ("%d", Value::Float(f64::NEG_INFINITY), None),
        ("%d", Value::Float(f64::NAN), None),
        ("%d", Value::Float(9.5_f64), Some("9")),
        ("%d", Value::Float(0.0001_f64), Some("0")),
        ("%d", Value::Float(99999.95_f64), Some("99999")),
        ("%d", Value::Int(0), Some("0")),
        ("%d", Value::Int(-7), Some("-7")),
        ("%d", Value::Int(123456789012), Some("123456789012")),
        (
            "%d",
            Value::Int(18446744073709551615),
            Some("18446744073709551615"),
        ),
        ("%g", Value::Float(0.0_f64), Some("0")),
        ("%g", Value::Float(-0.0_f64), Some("-0")),
        ("%g", Value::Float(1.5_f64), Some("1.5")),
        ("%g", Value::Float(-2.25_f64), Some("-2.25")),
        ("%g", Value::Float(123456789.125_f64), Some("1.23457e+08")),
        ("%g", Value::Float(1e-07_f64), Some("1e-07")),
        ("%g", Value::Float(0.1_f64), Some("0.1")),
        ("%g", Value::Float(1e+22_f64), Some("1e+22")),
        ("%g", Value::Float(f64::INFINITY), Some("inf")),
        ("%g", Value::Float(f64::NEG_INFINITY), Some("-inf")),
        ("%g", Value::Float(f64::NAN), Some("nan")),
        ("%g", Value::Float(9.5_f64), Some("9.5")),
        ("%g", Value::Float(0.0001_f64), Some("0.0001")),
        ("%g", Value::Float(99999.95_f64), Some("99999.9")),
        ("%g", Value::Int(0), Some("0")),
        ("%g", Value::Int(-7), Some("-7")),
        ("%g", Value::Int(123456789012), Some("1.23457e+11")),
        ("%g", Value::Int(18446744073709551615), Some("1.84467e+19")),
        ("%.17g", Value::Float(0.0_f64), Some("0")),
        ("%.17g", Value::Float(-0.0_f64), Some("-0")),
        ("%.17g", Value::Float(1.5_f64), Some("1.5")),
        ("%.17g", Value::Float(-2.25_f64), Some("-2.25")),
        (
            "%.17g",
            Value::Float(123456789.125_f64),
            Some("123456789.125"),
        ),
        (
            "%.17g",
            Value::Float(1e-07_f64),
            Some("9.9999999999999995e-08"),
        ),
        ("%.17g", Value::Float(0.1_f64), Some("0.10000000000000001")),
        ("%.17g", Value::Float(1e+22_f64), Some("1e+22")),
        ("%.17g", Value::Float(f64::INFINITY), Some("inf")),
        ("%.17g", Value::Float(f64::NEG_INFINITY), Some("-inf")),
        ("%.17g", Value::Float(f64::NAN), Some("nan")),
        ("%.17g", Value::Float(9.5_f64), Some("9.5")),
        ("%.17g", Value::Float(0.0001_f64), Some("0.0001")),
        (
            "%.17g",
            Value::Float(99999.95_f64),
            Some("99999.949999999997"),
        ),
        ("%.17g", Value::Int(0), Some("0")),
        ("%.17g", Value::Int(-7), Some("-7")),
        ("%.17g", Value::Int(123456789012), Some("123456789012")),
        (
            "%.17g",
            Value::Int(18446744073709551615),
            Some("1.8446744073709552e+19"),
        ),
        ("%10.4f", Value::Float(0.0_f64), Some("    0.0000")),
        ("%10.4f", Value::Float(-0.0_f64), Some("   -0.0000")),
        ("%10.4f", Value::Float(1.5_f64), Some("    1.5000")),
        ("%10.4f", Value::Float(-2.25_f64), Some("   -2.2500")),
        (
            "%10.4f",
            Value::Float(123456789.125_f64),
            Some("123456789.1250"),
        ),
        ("%10.4f", Value::Float(1e-07_f64), Some("    0.0000")),
        ("%10.4f", Value::Float(0.1_f64), Some("    0.1000")),
        (
            "%10.4f",
            Value::Float(1e+22_f64),
            Some("10000000000000000000000.0000"),
        ),
        ("%10.4f", Value::Float(f64::INFINITY), Some("       inf")),
        (
            "%10.4f",
            Value::Float(f64::NEG_INFINITY),
            Some("      -inf"),
        ),
        ("%10.4f", Value::Float(f64::NAN), Some("       nan")),
        ("%10.4f", Value::Float(9.5_f64), Some("    9.5000")),
        ("%10.4f", Value::Float(0.0001_f64), Some("    0.0001")),
        ("%10.4f", Value::Float(99999.95_f64), Some("99999.9500")),
        ("%10.4f", Value::Int(0), Some("    0.0000")),
        ("%10.4f", Value::Int(-7), Some("   -7.0000")),
        (
            "%10.4f",
            Value::Int(123456789012),
            Some("123456789012.0000"),
        ),
        (
            "%10.4f",
            Value::Int(18446744073709551615),
            Some("18446744073709551616.0000"),
        ),
        ("%-8.2e|", Value::Float(0.0_f64), Some("0.00e+00|")),
        ("%-8.2e|", Value::Float(-0.0_f64), Some("-0.00e+00|")),
        ("%-8.2e|", Value::Float(1.5_f64), Some("1.50e+00|")),
        ("%-8.2e|", Value::Float(-2.25_f64), Some("-2.25e+00|")),
        (
            "%-8.2e|",
            Value::Float(123456789.125_f64),
            Some("1.23e+08|"),
        ),
        ("%-8.2e|", Value::Float(1e-07_f64), Some("1.00e-07|")),
        ("%-8.2e|", Value::Float(0.1_f64), Some("1.00e-01|")),
        ("%-8.2e|", Value::Float(1e+22_f64), Some("1.00e+22|")),
        ("%-8.2e|", Value::Float(f64::INFINITY), Some("inf     |")),
        (
            "%-8.2e|",
            Value::Float(f64::NEG_INFINITY),
            Some("-inf    |"),
        ),
        ("%-8.2e|", Value::Float(f64::NAN), Some("nan     |")),
        ("%-8.2e|", Value::Float(9.5_f64), Some("9.50e+00|")),
        ("%-8.2e|", Value::Float(0.0001_f64), Some("1.00e-04|")),
        ("%-8.2e|", Value::Float(99999.95_f64), Some("1.00e+05|")),
        ("%-8.2e|", Value::Int(0), Some("0.00e+00|")),
        ("%-8.2e|", Value::Int(-7), Some("-7.00e+00|")),
        ("%-8.2e|", Value::Int(123456789012), Some("1.23e+11|")),
        (
            "%-8.2e|",
            Value::Int(18446744073709551615),
            Some("1.84e+19|"),
        ),
        ("%+.3E", Value::Float(0.0_f64), Some("+0.000E+00")),
        ("%+.3E", Value::Float(-0.0_f64), Some("-0.000E+00")),
        ("%+.3E", Value::Float(1.5_f64), Some("+1.500E+00")),
        ("%+.3E", Value::Float(-2.25_f64), Some("-2.250E+00")),
        ("%+.3E", Value::Float(123456789.125_f64), Some("+1.235E+08")),
        ("%+.3E", Value::Float(1e-07_f64), Some("+1.000E-07")),
        ("%+.3E", Value::Float(0.1_f64), Some("+1.000E-01")),
        ("%+.3E", Value::Float(1e+22_f64), Some("+1.000E+22")),
        ("%+.3E", Value::Float(f64::INFINITY), Some("+INF")),
        ("%+.3E", Value::Float(f64::NEG_INFINITY), Some("-INF")),
        ("%+.3E", Value::Float(f64::NAN), Some("+NAN")),
        ("%+.3E", Value::Float(9.5_f64), Some("+9.500E+00")),
        ("%+.3E", Value::Float(0.0001_f64), Some("+1.000E-04")),
        ("%+.3E", Value::Float(99999.95_f64), Some("+1.000E+05")),
        ("%+.3E", Value::Int(0), Some("+0.000E+00")),
        ("%+.3E", Value::Int(-7), Some("-7.000E+00")),
        ("%+.3E", Value::Int(123456789012), Some("+1.235E+11")),
        (
            "%+.3E",
            Value::Int(18446744073709551615),
            Some("+1.845E+19"),
        ),
        ("%05d", Value::Float(0.0_f64), Some("00000")),
        ("%05d", Value::Float(-0.0_f64), Some("00000")),
        ("%05d", Value::Float(1.5_f64), Some("00001")),
        ("%05d", Value::Float(-2.25_f64), Some("-0002")),
        ("%05d", Value::Float(123456789.125_f64), Some("123456789")),
        ("%05d", Value::Float(1e-07_f64), Some("00000")),
        ("%05d", Value::Float(0.1_f64), Some("00000")),
        (
            "%05d",
            Value::Float(1e+22_f64),
            Some("10000000000000000000000"),
        ),
        ("%05d", Value::Float(f64::INFINITY), None),
        ("%05d", Value::Float(f64::NEG_INFINITY), None),
        ("%05d", Value::Float(f64::NAN), None),
        ("%05d", Value::Float(9.5_f64), Some("00009")),
        ("%05d", Value::Float(0.0001_f64), Some("00000")),
        ("%05d", Value::Float(99999.95_f64), Some("99999")),
        ("%05d", Value::Int(0), Some("00000")),
        ("%05d", Value::Int(-7), Some("-0007")),
        ("%05d", Value::Int(123456789012), Some("123456789012")),
        (
            "%05d",
            Value::Int(18446744073709551615),
            Some("18446744073709551615"),
        ),
        ("% .2f", Value::Float(0.0_f64), Some(" 0.00")),
        ("% .2f", Value::Float(-0.0_f64), Some("-0.00")),
        ("% .2f", Value::Float(1.5_f64), Some(" 1.50")),
        ("% .2f", Value::Float(-2.25_f64), Some("-2.25")),
        (
            "% .2f",
            Value::Float(123456789.125_f64),
            Some(" 123456789.12"),
        ),
        ("% .2f", Value::Float(1e-07_f64), Some(" 0.00")),
        ("% .2f", Value::Float(0.1_f64), Some(" 0.10")),
        (
            "% .2f",
            Value::Float(1e+22_f64),
            Some(" 10000000000000000000000.00"),
        ),
        ("% .2f", Value::Float(f64::INFINITY), Some(" inf")),
        ("% .2f", Value::Float(f64::NEG_INFINITY), Some("-inf")),
        ("% .2f", Value::Float(f64::NAN), Some(" nan")),
        ("% .2f", Value::Float(9.5_f64), Some(" 9.50")),
        ("% .2f", Value::Float(0.0001_f64), Some(" 0.00")),
        ("% .2f", Value::Float(99999.95_f64), Some(" 99999.95")),
        ("% .2f", Value::Int(0), Some(" 0.00")),
        ("% .2f", Value::Int(-7), Some("-7.00")),
        ("% .2f", Value::Int(123456789012), Some(" 123456789012.00")),
        (
            "% .2f",
            Value::Int(18446744073709551615),
            Some(" 18446744073709551616.00"),
        ),
        ("%#.0f", Value::Float(0.0_f64), Some("0.")),
        ("%#.0f", Value::Float(-0.0_f64), Some("-0.")),
        ("%#.0f", Value::Float(1.5_f64), Some("2.")),
        ("%#.0f", Value::Float(-2.25_f64), Some("-2.")),
        ("%#.0f", Value::Float(123456789.125_f64), Some("123456789.")),
        ("%#.0f", Value::Float(1e-07_f64), Some("0.")),
        ("%#.0f", Value::Float(0.1_f64), Some("0.")),
        (
            "%#.0f",
            Value::Float(1e+22_f64),
            Some("10000000000000000000000."),
        ),
        ("%#.0f", Value::Float(f64::INFINITY), Some("inf")),
        ("%#.0f", Value::Float(f64::NEG_INFINITY), Some("-inf")),
        ("%#.0f", Value::Float(f64::NAN), Some("nan")),
        ("%#.0f", Value::Float(9.5_f64), Some("10.")),
        ("%#.0f", Value::Float(0.0001_f64), Some("0.")),
        ("%#.0f", Value::Float(99999.95_f64), Some("100000.")),
        ("%#.0f", Value::Int(0), Some("0.")),
        ("%#.0f", Value::Int(-7), Some("-7.")),
        ("%#.0f", Value::Int(123456789012), Some("123456789012.")),
        (
            "%#.0f",
            Value::Int(18446744073709551615),
            Some("18446744073709551616."),
        ),
        ("%#g", Value::Float(0.0_f64), Some("0.00000")),
        ("%#g", Value::Float(-0.0_f64), Some("-0.00000")),
        ("%#g", Value::Float(1.5_f64), Some("1.50000")),
        ("%#g", Value::Float(-2.25_f64), Some("-2.25000")),
        ("%#g", Value::Float(123456789.125_f64), Some("1.23457e+08")),
        ("%#g", Value::Float(1e-07_f64), Some("1.00000e-07")),
        ("%#g", Value::Float(0.1_f64), Some("0.100000")),
        ("%#g", Value::Float(1e+22_f64), Some("1.00000e+22")),
        ("%#g", Value::Float(f64::INFINITY), Some("inf")),
        ("%#g", Value::Float(f64::NEG_INFINITY), Some("-inf")),
        ("%#g", Value::Float(f64::NAN), Some("nan")),
        ("%#g", Value::Float(9.5_f64), Some("9.50000")),
        ("%#g", Value::Float(0.0001_f64), Some("0.000100000")),
        ("%#g", Value::Float(99999.95_f64), Some("99999.9")),
        ("%#g", Value::Int(0), Some("0.00000")),
        ("%#g", Value::Int(-7), Some("-7.00000")),
        ("%#g", Value::Int(123456789012), Some("1.23457e+11")),
        ("%#g", Value::Int(18446744073709551615), Some("1.84467e+19")),
        ("%.0e", Value::Float(0.0_f64), Some("0e+00")),
        ("%.0e", Value::Float(-0.0_f64), Some("-0e+00")),
        ("%.0e", Value::Float(1.5_f64), Some("2e+00")),
        ("%.0e", Value::Float(-2.25_f64), Some("-2e+00")),
        ("%.0e", Value::Float(123456789.125_f64), Some("1e+08")),
        ("%.0e", Value::Float(1e-07_f64), Some("1e-07")),
        ("%.0e", Value::Float(0.1_f64), Some("1e-01")),
        ("%.0e", Value::Float(1e+22_f64), Some("1e+22")),
        ("%.0e", Value::Float(f64::INFINITY), Some("inf")),
        ("%.0e", Value::Float(f64::NEG_INFINITY), Some("-inf")),
        ("%.0e", Value::Float(f64::NAN), Some("nan")),
        ("%.0e", Value::Float(9.5_f64), Some("1e+01")),
        ("%.0e", Value::Float(0.0001_f64), Some("1e-04")),
        ("%.0e", Value::Float(99999.95_f64), Some("1e+05")),
        ("%.0e", Value::Int(0), Some("0e+00")),
        ("%.0e", Value::Int(-7), Some("-7e+00")),
        ("%.0e", Value::Int(123456789012), Some("1e+11")),
        ("%.0e", Value::Int(18446744073709551615), Some("2e+19")),
        ("x%3ix", Value::Float(0.0_f64), Some("x  0x")),
        ("x%3ix", Value::Float(-0.0_f64), Some("x  0x")),
        ("x%3ix", Value::Float(1.5_f64), Some("x  1x")),
        ("x%3ix", Value::Float(-2.25_f64), Some("x -2x")),
        (
            "x%3ix",
            Value::Float(123456789.125_f64),
            Some("x123456789x"),
        ),
        ("x%3ix", Value::Float(1e-07_f64), Some("x  0x")),
        ("x%3ix", Value::Float(0.1_f64), Some("x  0x")),
        (
            "x%3ix",
            Value::Float(1e+22_f64),
            Some("x10000000000000000000000x"),
        ),
        ("x%3ix", Value::Float(f64::INFINITY), None),
        ("x%3ix", Value::Float(f64::NEG_INFINITY), None),
        ("x%3ix", Value::Float(f64::NAN), None),
        ("x%3ix", Value::Float(9.5_f64), Some("x  9x")),
        ("x%3ix", Value::Float(0.0001_f64), Some("x  0x")),
        ("x%3ix", Value::Float(99999.95_f64), Some("x99999x")),
        ("x%3ix", Value::Int(0), Some("x  0x")),
        ("x%3ix", Value::Int(-7), Some("x -7x")),
        ("x%3ix", Value::Int(123456789012), Some("x123456789012x")),
        (
            "x%3ix",
            Value::Int(18446744073709551615),
            Some("x18446744073709551615x"),
        ),
        ("%G", Value::Float(0.0_f64), Some("0")),
        ("%G", Value::Float(-0.0_f64), Some("-0")),
        ("%G", Value::Float(1.5_f64), Some("1.5")),
        ("%G", Value::Float(-2.25_f64), Some("-2.25")),
        ("%G", Value::Float(123456789.125_f64), Some("1.23457E+08")),
        ("%G", Value::Float(1e-07_f64), Some("1E-07")),
        ("%G", Value::Float(0.1_f64), Some("0.1")),
        ("%G", Value::Float(1e+22_f64), Some("1E+22")),
        ("%G", Value::Float(f64::INFINITY), Some("INF")),
        ("%G", Value::Float(f64::NEG_INFINITY), Some("-INF")),
        ("%G", Value::Float(f64::NAN), Some("NAN")),
        ("%G", Value::Float(9.5_f64), Some("9.5")),
        ("%G", Value::Float(0.0001_f64), Some("0.0001")),
        ("%G", Value::Float(99999.95_f64), Some("99999.9")),
        ("%G", Value::Int(0), Some("0")),
        ("%G", Value::Int(-7), Some("-7")),
        ("%G", Value::Int(123456789012), Some("1.23457E+11")),
        ("%G", Value::Int(18446744073709551615), Some("1.84467E+19")),
        ("%.3g", Value::Float(0.0_f64), Some("0")),
        ("%.3g", Value::Float(-0.0_f64), Some("-0")),
        ("%.3g", Value::Float(1.5_f64), Some("1.5")),
        ("%.3g", Value::Float(-2.25_f64), Some("-2.25")),
        ("%.3g", Value::Float(123456789.125_f64), Some("1.23e+08")),
        ("%.3g", Value::Float(1e-07_f64), Some("1e-07")),
        ("%.3g", Value::Float(0.1_f64), Some("0.1")),
        ("%.3g", Value::Float(1e+22_f64), Some("1e+22")),
        ("%.3g", Value::Float(f64::INFINITY), Some("inf")),
        ("%.3g", Value::Float(f64::NEG_INFINITY), Some("-inf")),
        ("%.3g", Value::Float(f64::NAN), Some("nan")),
        ("%.3g", Value::Float(9.5_f64), Some("9.5")),
        ("%.3g", Value::Float(0.0001_f64), Some("0.0001")),
        ("%.3g", Value::Float(99999.95_f64), Some("1e+05")),
        ("%.3g", Value::Int(0), Some("0")),
        ("%.3g", Value::Int(-7), Some("-7")),
        ("%.3g", Value::Int(123456789012), Some("1.23e+11")),
        ("%.3g", Value::Int(18446744073709551615), Some("1.84e+19")),
        ("%.10e", Value::Float(0.0_f64), Some("0.0000000000e+00")),
        ("%.10e", Value::Float(-0.0_f64), Some("-0.0000000000e+00")),
        ("%.10e", Value::Float(1.5_f64), Some("1.5000000000e+00")),
        ("%.10e", Value::Float(-2.25_f64), Some("-2.2500000000e+00")),
        (
            "%.10e",
            Value::Float(123456789.125_f64),
            Some("1.2345678912e+08"),
        ),
        ("%.10e", Value::Float(1e-07_f64), Some("1.0000000000e-07")),
        ("%.10e", Value::Float(0.1_f64), Some("1.0000000000e-01")),
        ("%.10e", Value::Float(1e+22_f64), Some("1.0000000000e+22")),
        ("%.10e", Value::Float(f64::INFINITY), Some("inf")),
        ("%.10e", Value::Float(f64::NEG_INFINITY), Some("-inf")),
        ("%.10e", Value::Float(f64::NAN), Some("nan")),
        ("%.10e", Value::Float(9.5_f64), Some("9.5000000000e+00")),
        ("%.10e", Value::Float(0.0001_f64), Some("1.0000000000e-04")),
        (
            "%.10e",
            Value::Float(99999.95_f64),
            Some("9.9999950000e+04"),
        ),
        ("%.10e", Value::Int(0), Some("0.0000000000e+00")),
        ("%.10e", Value::Int(-7), Some("-7.0000000000e+00")),
        ("%.10e", Value::Int(123456789012), Some("1.2345678901e+11")),
        (
            "%.10e",
            Value::Int(18446744073709551615),
            Some("1.8446744074e+19"),
        ),
        ("%lf", Value::Float(0.0_f64), Some("0.000000")),
        ("%lf", Value::Float(-0.0_f64), Some("-0.000000")),
        ("%lf", Value::Float(1.5_f64), Some("1.500000")),
        ("%lf", Value::Float(-2.25_f64), Some("-2.250000")),
        (
            "%lf",
            Value::Float(123456789.125_f64),
            Some("123456789.125000"),
        ),
        ("%lf", Value::Float(1e-07_f64), Some("0.000000")),
        ("%lf", Value::Float(0.1_f64), Some("0.100000")),
        (
            "%lf",
            Value::Float(1e+22_f64),
            Some("10000000000000000000000.000000"),
        ),
        ("%lf", Value::Float(f64::INFINITY), Some("inf")),
        ("%lf", Value::Float(f64::NEG_INFINITY), Some("-inf")),
        ("%lf", Value::Float(f64::NAN), Some("nan")),
        ("%lf", Value::Float(9.5_f64), Some("9.500000")),
        ("%lf", Value::Float(0.0001_f64), Some("0.000100")),
        ("%lf", Value::Float(99999.95_f64), Some("99999.950000")),
        ("%lf", Value::Int(0), Some("0.000000")),
        ("%lf", Value::Int(-7), Some("-7.000000")),
        ("%lf", Value::Int(123456789012), Some("123456789012.000000")),
        (
            "%lf",
            Value::Int(18446744073709551615),
            Some("18446744073709551616.000000"),
        ),
        ("%%%.1f%%", Value::Float(0.0_f64), Some("%0.0%")),
        ("%%%.1f%%", Value::Float(-0.0_f64), Some("%-0.0%")),
        ("%%%.1f%%", Value::Float(1.5_f64), Some("%1.5%")),
        ("%%%.1f%%", Value::Float(-2.25_f64), Some("%-2.2%")),
        (
            "%%%.1f%%",
            Value::Float(123456789.125_f64),
            Some("%123456789.1%"),
        ),
        ("%%%.1f%%", Value::Float(1e-07_f64), Some("%0.0%")),
        ("%%%.1f%%", Value::Float(0.1_f64), Some("%0.1%")),
        (
            "%%%.1f%%",
            Value::Float(1e+22_f64),
            Some("%10000000000000000000000.0%"),
        ),
        ("%%%.1f%%", Value::Float(f64::INFINITY), Some("%inf%")),
        ("%%%.1f%%", Value::Float(f64::NEG_INFINITY), Some("%-inf%")),
        ("%%%.1f%%", Value::Float(f64::NAN), Some("%nan%")),
        ("%%%.1f%%", Value::Float(9.5_f64), Some("%9.5%")),
        ("%%%.1f%%", Value::Float(0.0001_f64), Some("%0.0%")),
        ("%%%.1f%%", Value::Float(99999.95_f64), Some("%99999.9%")),
        ("%%%.1f%%", Value::Int(0), Some("%0.0%")),
        ("%%%.1f%%", Value::Int(-7), Some("%-7.0%")),
        (
            "%%%.1f%%",
            Value::Int(123456789012),
            Some("%123456789012.0%"),
        ),
        (
            "%%%.1f%%",
            Value::Int(18446744073709551615),
            Some("%18446744073709551616.0%"),
        ),
        ("%08.3f", Value::Float(0.0_f64), Some("0000.000")),
        ("%08.3f", Value::Float(-0.0_f64), Some("-000.000")),
        ("%08.3f", Value::Float(1.5_f64), Some("0001.500")),
        ("%08.3f", Value::Float(-2.25_f64), Some("-002.250")),
        (
            "%08.3f",
            Value::Float(123456789.125_f64),
            Some("123456789.125"),
        ),
        ("%08.3f", Value::Float(1e-07_f64), Some("0000.000")),
        ("%08.3f", Value::Float(0.1_f64), Some("0000.100")),
        (
            "%08.3f",
            Value::Float(1e+22_f64),
            Some("10000000000000000000000.000"),
        ),
        ("%08.3f", Value::Float(f64::INFINITY), Some("00000inf")),
        ("%08.3f", Value::Float(f64::NEG_INFINITY), Some("-0000inf")),
        ("%08.3f", Value::Float(f64::NAN), Some("00000nan")),
        ("%08.3f", Value::Float(9.5_f64), Some("0009.500")),
        ("%08.3f", Value::Float(0.0001_f64), Some("0000.000")),
        ("%08.3f", Value::Float(99999.95_f64), Some("99999.950")),
        ("%08.3f", Value::Int(0), Some("0000.000")),
        ("%08.3f", Value::Int(-7), Some("-007.000")),
        ("%08.3f", Value::Int(123456789012), Some("123456789012.000")),
        (
            "%08.3f",
            Value::Int(18446744073709551615),
            Some("18446744073709551616.000"),
        ),
        ("%.5d", Value::Float(0.0_f64), Some("00000")),
        ("%.5d", Value::Float(-0.0_f64), Some("00000")),
        ("%.5d", Value::Float(1.5_f64), Some("00001")),
        ("%.5d", Value::Float(-2.25_f64), Some("-00002")),
        ("%.5d", Value::Float(123456789.125_f64), Some("123456789")),
        ("%.5d", Value::Float(1e-07_f64), Some("00000")),
        ("%.5d", Value::Float(0.1_f64), Some("00000")),
        (
            "%.5d",
            Value::Float(1e+22_f64),
            Some("10000000000000000000000"),
        ),
        ("%.5d", Value::Float(f64::INFINITY), None),
        ("%.5d", Value::Float(f64::NEG_INFINITY), None),
        ("%.5d", Value::Float(f64::NAN), None),
        ("%.5d", Value::Float(9.5_f64), Some("00009")),
        ("%.5d", Value::Float(0.0001_f64), Some("00000")),
        ("%.5d", Value::Float(99999.95_f64), Some("99999")),
        ("%.5d", Value::Int(0), Some("00000")),
        ("%.5d", Value::Int(-7), Some("-00007")),
        ("%.5d", Value::Int(123456789012), Some("123456789012")),
        (
            "%.5d",
            Value::Int(18446744073709551615),
            Some("18446744073709551615"),
        ),
        ("%u", Value::Float(0.0_f64), Some("0")),
        ("%u", Value::Float(-0.0_f64), Some("0")),
        ("%u", Value::Float(1.5_f64), Some("1")),
        ("%u", Value::Float(-2.25_f64), Some("-2")),
        ("%u", Value::Float(123456789.125_f64), Some("123456789")),
        ("%u", Value::Float(1e-07_f64), Some("0")),
        ("%u", Value::Float(0.1_f64), Some("0")),
        (
            "%u",
            Value::Float(1e+22_f64),
            Some("10000000000000000000000"),
        ),
        ("%u", Value::Float(f64::INFINITY), None),
        ("%u", Value::Float(f64::NEG_INFINITY), None),
        ("%u", Value::Float(f64::NAN), None),
        ("%u", Value::Float(9.5_f64), Some("9")),
        ("%u", Value::Float(0.0001_f64), Some("0")),
        ("%u", Value::Float(99999.95_f64), Some("99999")),
        ("%u", Value::Int(0), Some("0")),
        ("%u", Value::Int(-7), Some("-7")),
        ("%u", Value::Int(123456789012), Some("123456789012")),
        (
            "%u",
            Value::Int(18446744073709551615),
            Some("18446744073709551615"),
        ),
    ];
    let mut bad = Vec::new();
    for (fmt, v, want) in cases {
        let p = Printf::parse(fmt).unwrap_or_else(|e| panic!("{fmt}: {e}"));
        let mut got = String::new();
        let r = p.write(*v, &mut got).map(|_| got);
        if r.as_deref().ok() != *want {
            bad.push(format!("{fmt} {v:?}: got {r:?}, want {want:?}"));
        }
    }
    // %d of floats beyond i128: the exact decimal, as Python prints it.
    for (v, want) in [
        (1e300, "1000000000000000052504760255204420248704468581108159154915854115511802457988908195786371375080447864043704443832883878176942523235360430575644792184786706982848387200926575803737830233794788090059368953234970799945081119038967640880074652742780142494579258788820056842838115669472196386865459400540160"),
        (-2.5e20, "-250000000000000000000"),
        (-0.5, "0"),
    ] {
        let mut got = String::new();
        Printf::parse("%d").unwrap().write(Value::Float(v), &mut got).unwrap();
        if got != want {
            bad.push(format!("%d {v}: got {got}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    for fmt in ["%d,%d", "%s", "%x", "no conversion", "%*d", "%.d%", "%5"] {
        assert!(Printf::parse(fmt).is_err(), "{fmt}");
    }
}

#[test]
fn csv_rows_written_with_a_format() {
    use crate::printf::Printf;
    let p = Printf::parse("%.3e").unwrap();
    let style = csv::CsvStyle {
        delimiter: ";",
        fmt: Some(&p),
        newline: "\r\n",
    };
    let data: Vec<u8> = [1.5f32, -2.0, 0.25, 8.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut out = Vec::new();
    csv::write_rows(&mut out, DType::F32, 2, &data, &style).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "1.500e+00;-2.000e+00\r\n2.500e-01;8.000e+00\r\n"
    );
    // NaN with %d: an error naming the row and column.
    let p = Printf::parse("%d").unwrap();
    let style = csv::CsvStyle {
        fmt: Some(&p),
        ..csv::CsvStyle::default()
    };
    let data: Vec<u8> = [1.0f64, f64::NAN]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let err =
        fail_text(csv::write_rows(&mut Vec::new(), DType::F64, 2, &data, &style).unwrap_err());
    assert!(err.contains("row 0, column 2"), "{err}");
}
