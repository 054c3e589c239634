use super::*;
use crate::formats::npy::{npy_header, read_npy};

#[test]
fn npy_round_trip_every_dtype_and_shape() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in DType::ALL {
        for shape in [vec![7u64], vec![3, 4], vec![2, 3, 2], vec![0], vec![0, 5]] {
            let n = element_count(&shape).unwrap() as usize;
            let data = sample(dtype, n);
            let p = dir.path().join(format!("{dtype}.npy"));
            export(&p, dtype, &shape, &data).unwrap();
            let l = load1(&p);
            assert_eq!((l.member, l.dtype, &l.shape), (None, dtype, &shape));
            assert_eq!(l.data, data, "{dtype} {shape:?}");
            // Header is 64-byte aligned and version 1.0.
            let raw = fs::read(&p).unwrap();
            let hl = u16::from_le_bytes([raw[8], raw[9]]) as usize;
            assert_eq!((raw[6], (10 + hl) % 64), (1, 0));
        }
    }
    // 0-d array: written with shape (), read back as [1].
    let p = dir.path().join("scalar.npy");
    export(&p, DType::F64, &[], &2.5f64.to_le_bytes()).unwrap();
    assert!(String::from_utf8_lossy(&fs::read(&p).unwrap()).contains("'shape': ()"));
    let l = load1(&p);
    assert_eq!((l.shape, l.data), (vec![1], 2.5f64.to_le_bytes().to_vec()));
    // No temp files left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")),
        "{names:?}"
    );
}

#[test]
fn npy_header_versions() {
    // Version 1.0 normally; 2.0 once the header no longer fits in u16.
    let h = npy_header(DType::U8, &[1; 64]).unwrap();
    assert_eq!((h[6], h.len() % 64), (1, 0));
    let h = npy_header(DType::U8, &vec![1; 30000]).unwrap();
    let hl = u32::from_le_bytes(arr(&h[8..12])) as usize;
    assert_eq!((h[6], h.len() % 64, 12 + hl), (2, 0, h.len()));
    // The reader takes 2.0 and 3.0 headers.
    let dict = "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }";
    for major in [2u8, 3] {
        let mut raw = NPY_MAGIC.to_vec();
        raw.extend([major, 0]);
        let mut hb = dict.as_bytes().to_vec();
        hb.resize(128 - 12 - 1, b' ');
        hb.push(b'\n');
        raw.extend((hb.len() as u32).to_le_bytes());
        raw.extend(&hb);
        raw.extend([1, 0, 2, 0]);
        let (d, s, data) = read_npy(&mut raw.as_slice(), raw.len() as u64).unwrap();
        assert_eq!((d, s, data), (DType::I16, vec![2], vec![1, 0, 2, 0]));
    }
}

#[test]
fn npy_big_endian_and_fortran() {
    let dir = tempfile::tempdir().unwrap();
    // >i4, shape (2, 3), C order: 0..6
    let mut be = Vec::new();
    for v in 0..6i32 {
        be.extend((v * 1000 - 1).to_be_bytes());
    }
    let p = write(
        dir.path(),
        "be.npy",
        &npy_bytes(
            "{'descr': '>i4', 'fortran_order': False, 'shape': (2, 3), }",
            &be,
        ),
    );
    let l = load1(&p);
    let want: Vec<u8> = (0..6i32)
        .flat_map(|v| (v * 1000 - 1).to_le_bytes())
        .collect();
    assert_eq!((l.dtype, l.shape, l.data), (DType::I32, vec![2, 3], want));

    // >c8 scalar components are swapped one by one.
    let mut c = Vec::new();
    c.extend(1.5f32.to_be_bytes());
    c.extend((-2.25f32).to_be_bytes());
    let p = write(
        dir.path(),
        "c.npy",
        &npy_bytes(
            "{'descr': '>c8', 'fortran_order': False, 'shape': (1,), }",
            &c,
        ),
    );
    let l = load1(&p);
    let want: Vec<u8> = [1.5f32, -2.25]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!((l.dtype, l.data), (DType::Complex64, want));

    // >f2 and >u8
    let p = write(
        dir.path(),
        "h.npy",
        &npy_bytes(
            "{'descr': '>f2', 'fortran_order': False, 'shape': (1,), }",
            &half::f16::from_f32(0.5).to_be_bytes(),
        ),
    );
    assert_eq!(load1(&p).data, half::f16::from_f32(0.5).to_le_bytes());

    // Fortran order, shape (2, 3, 2): element (i,j,k) = 100i + 10j + k,
    // stored with i fastest.
    let mut f = Vec::new();
    for k in 0..2u16 {
        for j in 0..3u16 {
            for i in 0..2u16 {
                f.extend((100 * i + 10 * j + k).to_le_bytes());
            }
        }
    }
    let p = write(
        dir.path(),
        "f.npy",
        &npy_bytes(
            "{'descr': '<u2', 'fortran_order': True, 'shape': (2, 3, 2), }",
            &f,
        ),
    );
    let l = load1(&p);
    let mut want = Vec::new();
    for i in 0..2u16 {
        for j in 0..3u16 {
            for k in 0..2u16 {
                want.extend((100 * i + 10 * j + k).to_le_bytes());
            }
        }
    }
    assert_eq!((l.shape, l.data), (vec![2, 3, 2], want));

    // Big-endian and Fortran together, plus Python-2 style "3L" dims and
    // double quotes.
    let mut bf = Vec::new();
    for j in 0..3i64 {
        for i in 0..2i64 {
            bf.extend((10 * i + j).to_be_bytes());
        }
    }
    let p = write(
        dir.path(),
        "bf.npy",
        &npy_bytes(
            "{\"descr\": \">i8\", \"fortran_order\": True, \"shape\": (2L, 3L)}",
            &bf,
        ),
    );
    let l = load1(&p);
    let want: Vec<u8> = [0i64, 1, 2, 10, 11, 12]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!((l.shape, l.data), (vec![2, 3], want));

    // Bool: any non-zero byte is True.
    let p = write(
        dir.path(),
        "b.npy",
        &npy_bytes(
            "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
            &[0, 1, 7],
        ),
    );
    assert_eq!(load1(&p).data, vec![0, 1, 1]);
}

#[test]
fn npy_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = npy_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }",
        &[0; 32],
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "truncated"),
        ("magic", b"PK\x03\x04 not npy at all".to_vec(), "bad magic"),
        ("version", {
            let mut g = good.clone();
            g[6] = 4;
            g
        }, "version 4.0"),
        ("short", good[..good.len() - 1].to_vec(), "truncated"),
        ("long", [good.clone(), vec![0]].concat(), "unexpected bytes"),
        ("header-cut", good[..40].to_vec(), "truncated"),
        (
            "unicode",
            npy_bytes("{'descr': '<U10', 'fortran_order': False, 'shape': (1,), }", &[0; 40]),
            "'<U10'",
        ),
        (
            "object",
            npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", &[0; 8]),
            "'|O'",
        ),
        (
            "record",
            npy_bytes(
                "{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (1,), }",
                &[0; 12],
            ),
            "structured",
        ),
        (
            "huge",
            npy_bytes(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000000,), }",
                &[0; 8],
            ),
            "truncated",
        ),
        (
            "overflow",
            npy_bytes(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
                &[],
            ),
            "overflows",
        ),
        (
            "bytes-overflow",
            npy_bytes(
                "{'descr': '<c16', 'fortran_order': False, 'shape': (4611686018427387904,), }",
                &[],
            ),
            "more than 2^64",
        ),
        (
            "missing-key",
            npy_bytes("{'descr': '<f8', 'shape': (4,), }", &[0; 32]),
            "needs",
        ),
        (
            "extra-key",
            npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), 'x': 1}", &[0; 32]),
            "unexpected key",
        ),
        (
            "bad-dim",
            npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (-4,), }", &[0; 32]),
            "bad dimension",
        ),
        (
            "garbage-header",
            npy_bytes("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (4,), }", &[0; 32]),
            "fortran_order",
        ),
        ("unterminated", npy_bytes("{'descr: ", &[]), "unterminated"),
        ("longdouble", npy_bytes("{'descr': '<f16', 'fortran_order': False, 'shape': (1,), }", &[0; 16]), "'<f16'"),
        ("datetime", npy_bytes("{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (1,), }", &[0; 8]), "'<M8[ns]'"),
    ];
    for (name, bytes, want) in cases {
        let p = write(dir.path(), &format!("{name}.npy"), &bytes);
        let err = load(&p).expect_err(name).to_string();
        assert!(
            err.contains(want) && err.contains(&format!("{name}.npy")),
            "{name}: {err}"
        );
    }
    // Huge header length field.
    let mut h = NPY_MAGIC.to_vec();
    h.extend([2, 0]);
    h.extend(u32::MAX.to_le_bytes());
    let p = write(dir.path(), "hl.npy", &h);
    assert!(load(&p)
        .unwrap_err()
        .to_string()
        .contains("exceeds the limit"));
    // Every truncation of a valid file fails cleanly.
    for cut in 0..good.len() {
        let p = write(dir.path(), "cut.npy", &good[..cut]);
        assert!(load(&p).is_err(), "cut at {cut}");
    }
    // A missing file is an I/O error naming the path.
    let err = load(&dir.path().join("nope.npy")).unwrap_err();
    assert!(matches!(err, FormatError::Io { .. }) && err.to_string().contains("nope.npy"));
}

#[test]
fn npy_header_text_clean_up() {
    let dir = tempfile::tempdir().unwrap();
    // Line breaks between tokens, '?' and '=' (native order) descr strings.
    let p = write(
        dir.path(),
        "nl.npy",
        &npy_bytes(
            "{'descr': '?',\n 'fortran_order': False,\r\n 'shape': (2,)}",
            &[0, 3],
        ),
    );
    let l = load1(&p);
    assert_eq!(
        (l.dtype, l.shape, l.data),
        (DType::Bool, vec![2], vec![0, 1])
    );
    let p = write(
        dir.path(),
        "eq.npy",
        &npy_bytes(
            "{'descr': '=f4', 'fortran_order': False, 'shape': (1,), }",
            &1.5f32.to_ne_bytes(),
        ),
    );
    assert_eq!(load1(&p).data, 1.5f32.to_le_bytes());
    // Deep nesting is refused before the parser sees it (the parser would
    // take hours), quickly; strings may hold brackets and 'L's.
    let deep = format!(
        "{{'descr': {}0{}, 'fortran_order': False, 'shape': (1,), }}",
        "[".repeat(40),
        "]".repeat(40)
    );
    let p = write(dir.path(), "deep.npy", &npy_bytes(&deep, &[0; 8]));
    let t = std::time::Instant::now();
    let err = load(&p).unwrap_err().to_string();
    assert!(err.contains("nested more than"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    let p = write(
        dir.path(),
        "str.npy",
        &npy_bytes(
            "{'descr': '<U3L[[[[[[[[', 'fortran_order': False, 'shape': (1,), }",
            &[0; 12],
        ),
    );
    let err = load(&p).unwrap_err().to_string();
    assert!(err.contains("'<U3L[[[[[[[['"), "{err}");
    // A header longer than the 64 KiB limit.
    let long = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': (1,), {}}}",
        " ".repeat(70_000)
    );
    let mut raw = NPY_MAGIC.to_vec();
    raw.extend([2, 0]);
    raw.extend((long.len() as u32 + 1).to_le_bytes());
    raw.extend(long.as_bytes());
    raw.push(b'\n');
    raw.extend([0; 8]);
    let p = write(dir.path(), "long.npy", &raw);
    assert!(load(&p)
        .unwrap_err()
        .to_string()
        .contains("exceeds the limit"));
}
