use super::*;

#[test]
fn csv_import() {
    let dir = tempfile::tempdir().unwrap();
    // Header, ints, 3 columns, CRLF and spaces.
    let p = write(dir.path(), "h.csv", b"a, b ,c\r\n1,2,3\r\n-4, 5,+6\r\n");
    let l = load1(&p);
    let want: Vec<u8> = [1i64, 2, 3, -4, 5, 6]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(
        (l.member, l.dtype, l.shape, l.data),
        (None, DType::I64, vec![2, 3], want)
    );
    // No header, floats with nan/inf, one column -> 1-D.
    let p = write(dir.path(), "f.csv", b"1\n2.5\nnan\ninf\n-inf\n1e300\n");
    let l = load1(&p);
    assert_eq!((l.dtype, &l.shape), (DType::F64, &vec![6]));
    let v: Vec<f64> = l
        .data
        .chunks(8)
        .map(|c| f64::from_le_bytes(arr(c)))
        .collect();
    assert_eq!(v[0], 1.0);
    assert_eq!(v[1], 2.5);
    assert!(v[2].is_nan());
    assert_eq!(
        (v[3], v[4], v[5]),
        (f64::INFINITY, f64::NEG_INFINITY, 1e300)
    );
    // Header with a single column; BOM.
    let p = write(dir.path(), "bom.csv", "\u{feff}x\n1\n2\n".as_bytes());
    let l = load1(&p);
    assert_eq!((l.dtype, l.shape), (DType::I64, vec![2]));
    let p = write(dir.path(), "bom2.csv", "\u{feff}7,8\n".as_bytes());
    assert_eq!(load1(&p).shape, vec![1, 2]);
    // Integers beyond i64 -> u64 when none is negative.
    let p = write(dir.path(), "u.csv", b"18446744073709551615\n1\n");
    let l = load1(&p);
    assert_eq!(
        (l.dtype, l.data[..8].to_vec()),
        (DType::U64, u64::MAX.to_le_bytes().to_vec())
    );
    // Widening: i64 -> u64 -> f64 and i64 -> f64, in any order.
    let f64s = |v: &[f64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    for (text, want) in [
        (&b"3,1.5\n"[..], f64s(&[3.0, 1.5])),
        (
            b"9223372036854775808\n2\n-1\n",
            f64s(&[9223372036854775808.0, 2.0, -1.0]),
        ),
        (
            b"-1\n9223372036854775808\n",
            f64s(&[-1.0, 9223372036854775808.0]),
        ),
        (b"1e2\n3\n", f64s(&[100.0, 3.0])),
    ] {
        let p = write(dir.path(), "w.csv", text);
        let l = load1(&p);
        assert_eq!((l.dtype, l.data), (DType::F64, want));
    }
    let p = write(dir.path(), "w.csv", b"1\n9223372036854775808\n2\n");
    let l = load1(&p);
    let want: Vec<u8> = [1u64, 1 << 63, 2]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    assert_eq!((l.dtype, l.data), (DType::U64, want));
}

#[test]
fn csv_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "ragged",
            b"a,b,c,d\n1,2,3,4\n1,2,3\n",
            "line 3 has 3 fields, expected 4",
        ),
        (
            "ragged2",
            b"1,2\n3,4,5\n",
            "line 2 has 3 fields, expected 2",
        ),
        ("empty", b"", "empty"),
        ("headeronly", b"a,b\n", "no data rows"),
        (
            "text",
            b"1,2\n3,x\n",
            "line 2, column 2: 'x' is not a number",
        ),
        ("blankfield", b"1,2\n3,\n", "line 2, column 2"),
        ("utf8", b"1,2\n\xff\xfe,3\n", "UTF-8"),
    ];
    for (name, bytes, want) in cases {
        let p = write(dir.path(), &format!("{name}.csv"), bytes);
        let err = load(&p).expect_err(name).to_string();
        assert!(
            err.contains(want) && err.contains(&format!("{name}.csv")),
            "{name}: {err}"
        );
    }
}

#[test]
fn csv_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.csv");
    // i64 and f64 come back bit-identical.
    let ints = sample(DType::I64, 12);
    export(&p, DType::I64, &[4, 3], &ints).unwrap();
    let l = load1(&p);
    assert_eq!((l.dtype, l.shape, l.data), (DType::I64, vec![4, 3], ints));
    let mut floats = sample(DType::F64, 10);
    floats.extend(f64::NAN.to_le_bytes());
    floats.extend(f64::NEG_INFINITY.to_le_bytes());
    for v in [1.0f64, -0.0, 1e16, 5e-324, f64::MAX, 0.1 + 0.2] {
        floats.extend(v.to_le_bytes());
    }
    export(&p, DType::F64, &[18], &floats).unwrap();
    let l = load1(&p);
    assert_eq!((l.dtype, &l.shape), (DType::F64, &vec![18]));
    assert_eq!(l.data, floats);
    // Other dtypes keep their values (read back as i64 / f64).
    for dtype in DType::ALL {
        let data = sample(dtype, 6);
        let r = export(&p, dtype, &[2, 3], &data);
        if matches!(dtype, DType::Complex64 | DType::Complex128) {
            assert!(r.unwrap_err().to_string().contains("complex"));
            continue;
        }
        r.unwrap();
        let l = load1(&p);
        assert_eq!(l.shape, vec![2, 3], "{dtype}");
        let as_f64 = |b: &[u8]| -> f64 {
            match dtype {
                DType::Bool => f64::from(b[0]),
                DType::I8 => f64::from(i8::from_le_bytes(arr(b))),
                DType::I16 => f64::from(i16::from_le_bytes(arr(b))),
                DType::I32 => f64::from(i32::from_le_bytes(arr(b))),
                DType::I64 => i64::from_le_bytes(arr(b)) as f64,
                DType::U8 => f64::from(b[0]),
                DType::U16 => f64::from(u16::from_le_bytes(arr(b))),
                DType::U32 => f64::from(u32::from_le_bytes(arr(b))),
                DType::U64 => u64::from_le_bytes(arr(b)) as f64,
                DType::F16 => f64::from(half::f16::from_le_bytes(arr(b))),
                DType::F32 => f64::from(f32::from_le_bytes(arr(b))),
                _ => f64::from_le_bytes(arr(b)),
            }
        };
        let want: Vec<f64> = data.chunks(dtype.itemsize()).map(as_f64).collect();
        let got: Vec<f64> = match l.dtype {
            DType::I64 => l
                .data
                .chunks(8)
                .map(|c| i64::from_le_bytes(arr(c)) as f64)
                .collect(),
            DType::U64 => l
                .data
                .chunks(8)
                .map(|c| u64::from_le_bytes(arr(c)) as f64)
                .collect(),
            _ => l
                .data
                .chunks(8)
                .map(|c| f64::from_le_bytes(arr(c)))
                .collect(),
        };
        if dtype == DType::F32 || dtype == DType::F16 {
            // Shortest f32 form: exact after casting back to f32.
            let g: Vec<f32> = got.iter().map(|&v| v as f32).collect();
            let w: Vec<f32> = want.iter().map(|&v| v as f32).collect();
            assert_eq!(g, w, "{dtype}");
        } else {
            assert_eq!(got, want, "{dtype}");
        }
    }
    // >2-D is flattened into columns; bool is 0/1.
    export(&p, DType::Bool, &[2, 2, 2], &[1, 0, 0, 1, 1, 1, 0, 0]).unwrap();
    assert_eq!(fs::read_to_string(&p).unwrap(), "1,0,0,1\n1,1,0,0\n");
}
