use std::sync::Arc;

use super::*;
use crate::formats::parquet::{stored_shape, SHAPE_KEY};

#[test]
fn parquet_round_trip_every_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.parquet");
    for dtype in DType::ALL {
        for shape in [
            vec![9u64],
            vec![4, 3],
            vec![3, 2, 2],
            vec![5, 1],
            vec![0],
            vec![0, 3],
            vec![2, 0],
        ] {
            let data = sample(dtype, element_count(&shape).unwrap() as usize);
            let r = export(&p, dtype, &shape, &data);
            if matches!(dtype, DType::Complex64 | DType::Complex128) {
                let e = r.unwrap_err();
                assert!(matches!(e, FormatError::Unsupported { .. }), "{e}");
                continue;
            }
            r.unwrap_or_else(|e| panic!("{dtype} {shape:?}: {e}"));
            let l = load1(&p);
            assert_eq!(
                (l.member, l.dtype, &l.shape),
                (None, dtype, &shape),
                "{dtype}"
            );
            assert_eq!(l.data, data, "{dtype} {shape:?}");
        }
    }
    // A failed export leaves no file and no temp file behind.
    let q = dir.path().join("c.pq");
    assert!(export(&q, DType::Complex64, &[1], &[0; 8]).is_err());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    // Data length mismatch is refused.
    assert!(export(&q, DType::I32, &[3], &[0; 8]).is_err());
}

/// Write a parquet file without numvault metadata, with the given columns.
fn parquet_file(path: &Path, cols: &[(&str, &str)], rows: usize, nulls: bool) {
    use ::parquet::data_type::{DoubleType, Int32Type, Int64Type};
    use ::parquet::file::properties::WriterProperties;
    use ::parquet::file::writer::SerializedFileWriter;
    let msg = format!(
        "message schema {{ {} }}",
        cols.iter()
            .map(|(n, t)| {
                let (ty, ann) = t.split_once(' ').unwrap_or((t, ""));
                format!(
                    "{} {ty} {n} {ann};",
                    if nulls { "optional" } else { "required" }
                )
            })
            .collect::<String>()
    );
    let schema = Arc::new(::parquet::schema::parser::parse_message_type(&msg).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(::parquet::basic::Compression::ZSTD(Default::default()))
            .build(),
    );
    let mut w = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let def: Vec<i16> = (0..rows).map(|r| i16::from(!(nulls && r == 1))).collect();
    let defs = nulls.then_some(&def[..]);
    let nv = if nulls { rows - 1 } else { rows };
    while let Some(mut c) = rg.next_column().unwrap() {
        match c.untyped() {
            ::parquet::column::writer::ColumnWriter::Int32ColumnWriter(_) => {
                let v: Vec<i32> = (0..nv as i32).collect();
                c.typed::<Int32Type>().write_batch(&v, defs, None).unwrap();
            }
            ::parquet::column::writer::ColumnWriter::Int64ColumnWriter(_) => {
                let v: Vec<i64> = (0..nv as i64).map(|x| -x).collect();
                c.typed::<Int64Type>().write_batch(&v, defs, None).unwrap();
            }
            _ => {
                let v: Vec<f64> = (0..nv).map(|x| x as f64 / 2.0).collect();
                c.typed::<DoubleType>().write_batch(&v, defs, None).unwrap();
            }
        }
        c.close().unwrap();
    }
    rg.close().unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_import_shapes_types_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Same type, no metadata: [rows, k] in file order.
    let p = dir.path().join("same.parquet");
    parquet_file(&p, &[("x", "int64"), ("y", "int64")], 3, false);
    let l = load1(&p);
    let want: Vec<u8> = [0i64, 0, -1, -1, -2, -2]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!((l.dtype, l.shape, l.data), (DType::I64, vec![3, 2], want));
    // Optional columns without nulls are fine; one column -> 1-D.
    let p = dir.path().join("opt.parquet");
    parquet_file(&p, &[("d", "double")], 4, false);
    assert_eq!(load1(&p).shape, vec![4]);
    // Mixed types: one array per column.
    let p = dir.path().join("mixed.parquet");
    parquet_file(
        &p,
        &[
            ("a", "int32 (INTEGER(8,false))"),
            ("b", "double"),
            ("c", "int64 (INTEGER(64,false))"),
        ],
        3,
        false,
    );
    let got = load(&p).unwrap();
    let summary: Vec<_> = got
        .iter()
        .map(|l| (l.member.clone().unwrap(), l.dtype, l.shape.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a".to_string(), DType::U8, vec![3]),
            ("b".to_string(), DType::F64, vec![3]),
            ("c".to_string(), DType::U64, vec![3]),
        ]
    );
    assert_eq!(got[0].data, vec![0, 1, 2]);
    // Nulls are an error naming the column.
    let p = dir.path().join("nulls.parquet");
    parquet_file(&p, &[("v", "double")], 3, true);
    let err = load(&p).unwrap_err().to_string();
    assert!(
        err.contains("column 'v'") && err.contains("null values (the first at row 1 "),
        "{err}"
    );
    // Unsupported logical types name the column.
    let p = dir.path().join("ts.parquet");
    parquet_file(&p, &[("t", "int64 (TIMESTAMP(MILLIS,true))")], 2, false);
    let err = load(&p).unwrap_err().to_string();
    assert!(
        err.contains("column 't'") && err.contains("unsupported type"),
        "{err}"
    );
    // Out-of-range value for an INT(8) column.
    let p = dir.path().join("range.parquet");
    parquet_file(&p, &[("r", "int32 (INTEGER(8,true))")], 200, false);
    assert!(load(&p)
        .unwrap_err()
        .to_string()
        .contains("out of range for int8"));
}

#[test]
fn parquet_encodings_and_page_versions() {
    use ::parquet::basic::Encoding;
    use ::parquet::data_type::{DoubleType, FloatType};
    use ::parquet::file::properties::{WriterProperties, WriterVersion};
    use ::parquet::file::writer::SerializedFileWriter;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("enc.parquet");
    let msg = "message schema { required double d; optional float f; }";
    let schema = Arc::new(::parquet::schema::parser::parse_message_type(msg).unwrap());
    let d: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.25).collect();
    let f: Vec<f32> = (0..1000).map(|i| i as f32 - 3.5).collect();
    let def = vec![1i16; 1000];
    for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
        for enc in [Encoding::PLAIN, Encoding::BYTE_STREAM_SPLIT] {
            for dict in [false, true] {
                let props = WriterProperties::builder()
                    .set_writer_version(version)
                    .set_dictionary_enabled(dict)
                    .set_encoding(enc)
                    .set_data_page_row_count_limit(100)
                    .set_write_batch_size(50)
                    .build();
                let file = File::create(&p).unwrap();
                let mut w =
                    SerializedFileWriter::new(file, schema.clone(), Arc::new(props)).unwrap();
                for _ in 0..2 {
                    let mut rg = w.next_row_group().unwrap();
                    let mut c = rg.next_column().unwrap().unwrap();
                    c.typed::<DoubleType>().write_batch(&d, None, None).unwrap();
                    c.close().unwrap();
                    let mut c = rg.next_column().unwrap().unwrap();
                    c.typed::<FloatType>()
                        .write_batch(&f, Some(&def), None)
                        .unwrap();
                    c.close().unwrap();
                    rg.close().unwrap();
                }
                w.close().unwrap();
                let got = load(&p).unwrap_or_else(|e| panic!("{version:?} {enc} {dict}: {e}"));
                assert_eq!(got.len(), 2);
                let wd: Vec<u8> = d.iter().chain(&d).flat_map(|v| v.to_le_bytes()).collect();
                let wf: Vec<u8> = f.iter().chain(&f).flat_map(|v| v.to_le_bytes()).collect();
                assert_eq!(
                    (got[0].dtype, &got[0].shape, &got[0].data),
                    (DType::F64, &vec![2000], &wd)
                );
                assert_eq!(
                    (got[1].dtype, &got[1].shape, &got[1].data),
                    (DType::F32, &vec![2000], &wf)
                );
            }
        }
    }
}

#[test]
fn parquet_inconsistent_shape_metadata_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.parquet");
    export(&p, DType::I32, &[4, 2], &sample(DType::I32, 8)).unwrap();
    assert_eq!(load1(&p).shape, vec![4, 2]);
    assert_eq!(stored_shape(None), None);
    let kv = |v: &str| {
        Some(vec![::parquet::file::metadata::KeyValue::new(
            SHAPE_KEY.into(),
            v.to_string(),
        )])
    };
    assert_eq!(stored_shape(kv("[3,4]").as_ref()), Some(vec![3, 4]));
    assert_eq!(stored_shape(kv("[3,-4]").as_ref()), None);
    assert_eq!(stored_shape(kv("garbage").as_ref()), None);
    assert_eq!(stored_shape(kv("[]").as_ref()), None);
}

#[test]
fn parquet_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ok.parquet");
    export(&p, DType::F64, &[50, 3], &sample(DType::F64, 150)).unwrap();
    let good = fs::read(&p).unwrap();
    for cut in (0..good.len()).step_by(11) {
        let q = write(dir.path(), "cut.parquet", &good[..cut]);
        assert!(load(&q).is_err(), "cut at {cut}");
    }
    for i in 0..good.len() {
        let mut d = good.clone();
        d[i] ^= 0xa5;
        let q = write(dir.path(), "flip.parquet", &d);
        let _ = load(&q); // must not panic out of load()
    }
    let q = write(
        dir.path(),
        "garbage.parquet",
        b"PAR1 garbage garbage garbage PAR1",
    );
    let err = load(&q).unwrap_err().to_string();
    assert!(err.contains("garbage.parquet"), "{err}");
}

#[test]
fn parquet_huge_row_count_is_refused() {
    // Patch the thrift footer of a tiny valid file so that its row counts
    // claim 10^15 rows: load must refuse it up front, not try to allocate.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.parquet");
    export(&p, DType::I64, &[3], &sample(DType::I64, 3)).unwrap();
    let bytes = fs::read(&p).unwrap();
    // Thrift compact encoding of num_rows=3 in the footer (field 3 of
    // FileMetaData and field 3 of RowGroup): 0x16 0x06 = i64 zigzag(3).
    let mut patched = bytes.clone();
    let huge: i64 = 1_000_000_000_000_000;
    let mut zz = ((huge << 1) ^ (huge >> 63)) as u64;
    let mut varint = Vec::new();
    while zz >= 0x80 {
        varint.push((zz as u8) | 0x80);
        zz >>= 7;
    }
    varint.push(zz as u8);
    // Replace every "i64 field, value 3" occurrence after the data pages
    // (in the footer) with the huge varint, fixing up the footer length.
    let footer_len = u32::from_le_bytes(arr(&bytes[bytes.len() - 8..bytes.len() - 4])) as usize;
    let footer_start = bytes.len() - 8 - footer_len;
    let mut footer = Vec::new();
    let f = &bytes[footer_start..bytes.len() - 8];
    let mut i = 0;
    let mut replaced = 0;
    while i < f.len() {
        if i + 1 < f.len() && f[i + 1] == 0x06 && (f[i] & 0x0f) == 0x06 {
            footer.push(f[i]);
            footer.extend(&varint);
            i += 2;
            replaced += 1;
        } else {
            footer.push(f[i]);
            i += 1;
        }
    }
    assert!(replaced >= 1);
    patched.truncate(footer_start);
    patched.extend(&footer);
    patched.extend((footer.len() as u32).to_le_bytes());
    patched.extend(b"PAR1");
    let q = write(dir.path(), "huge.parquet", &patched);
    let err = load(&q).unwrap_err().to_string();
    assert!(err.contains("implausible"), "{err}");
}
