//! Tests of the formats module: shared helpers here, one file per format.

use std::path::PathBuf;

use super::npy::NPY_MAGIC;
use super::*;

mod csv;
mod npy;
mod npz;
mod parquet;

fn sample(dtype: DType, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * dtype.itemsize());
    for i in 0..n {
        let x = i as i64 * 37 - 50;
        match dtype {
            DType::Bool => out.push(u8::from(i % 3 == 0)),
            DType::I8 => out.extend((x as i8).to_le_bytes()),
            DType::I16 => out.extend((x as i16).wrapping_mul(300).to_le_bytes()),
            DType::I32 => out.extend((x as i32).wrapping_mul(70000).to_le_bytes()),
            DType::I64 => out.extend((x * 1_000_000_000_007).to_le_bytes()),
            DType::U8 => out.extend((x as u8).to_le_bytes()),
            DType::U16 => out.extend((x as u16).wrapping_mul(301).to_le_bytes()),
            DType::U32 => out.extend((x as u32).wrapping_mul(2_654_435_761).to_le_bytes()),
            DType::U64 => out.extend((x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()),
            DType::F16 => out.extend(half::f16::from_f64(x as f64 / 7.0).to_le_bytes()),
            DType::F32 => out.extend((x as f32 / 3.0).to_le_bytes()),
            DType::F64 => out.extend((x as f64 / 3.0 * 1e-5).to_le_bytes()),
            DType::Complex64 => {
                out.extend((x as f32 / 3.0).to_le_bytes());
                out.extend((-x as f32).to_le_bytes());
            }
            DType::Complex128 => {
                out.extend((x as f64 / 3.0).to_le_bytes());
                out.extend((x as f64 * 1e300).to_le_bytes());
            }
        }
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).expect("write test file");
    p
}

fn load1(path: &Path) -> Loaded {
    let mut v = load(path).expect("load");
    assert_eq!(v.len(), 1);
    v.remove(0)
}

use numvault_formats::testing::npy_bytes;

fn zip_bytes(members: &[(&str, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
    numvault_formats::testing::zip_bytes(members, method).expect("zip in memory")
}

#[test]
fn format_of_path() {
    assert_eq!(Format::of_path(Path::new("a/b.NPY")), Some(Format::Npy));
    assert_eq!(Format::of_path(Path::new("x.npz")), Some(Format::Npz));
    assert_eq!(Format::of_path(Path::new("x.Csv")), Some(Format::Csv));
    assert_eq!(
        Format::of_path(Path::new("x.parquet")),
        Some(Format::Parquet)
    );
    assert_eq!(Format::of_path(Path::new("x.pq")), Some(Format::Parquet));
    assert_eq!(Format::of_path(Path::new("x.txt")), None);
    assert_eq!(Format::of_path(Path::new("npy")), None);
    let err = load(Path::new("data.txt")).unwrap_err();
    assert!(matches!(err, FormatError::UnknownFormat { .. }), "{err}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Cross-check with NumPy / pyarrow (see tests/gen_fixtures.py):
/// `NUMVAULT_FIXTURES=DIR cargo test -p numvault-cli --lib -- --ignored fixtures`
#[test]
#[ignore = "needs files from tests/gen_fixtures.py"]
fn fixtures_from_numpy_and_pyarrow() {
    let Some(dir) = std::env::var_os("NUMVAULT_FIXTURES").map(PathBuf::from) else {
        eprintln!("NUMVAULT_FIXTURES not set; skipping");
        return;
    };
    let expected: Vec<serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut cache: std::collections::HashMap<String, Result<Vec<Loaded>, String>> =
        std::collections::HashMap::new();
    for e in &expected {
        let file = e["file"].as_str().unwrap().to_string();
        let got = cache
            .entry(file.clone())
            .or_insert_with(|| load(&dir.join(&file)).map_err(|e| e.to_string()));
        if let Some(want) = e["error"].as_str() {
            let err = got.as_ref().expect_err(&file);
            assert!(err.contains(want), "{file}: {err}");
            continue;
        }
        let arrays = got.as_ref().unwrap_or_else(|err| panic!("{file}: {err}"));
        let member = e["member"].as_str();
        let l = arrays
            .iter()
            .find(|l| l.member.as_deref() == member)
            .unwrap_or_else(|| panic!("{file}: no member {member:?}"));
        let shape: Vec<u64> = serde_json::from_value(e["shape"].clone()).unwrap();
        assert_eq!(
            l.dtype.name(),
            e["dtype"].as_str().unwrap(),
            "{file} {member:?}"
        );
        assert_eq!(l.shape, shape, "{file} {member:?}");
        assert_eq!(
            hex(&l.data),
            e["hex"].as_str().unwrap(),
            "{file} {member:?}"
        );
    }
    // Export every dtype for the Python side to read back.
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let mut exported = Vec::new();
    for dtype in DType::ALL {
        for shape in [
            vec![7u64],
            vec![4, 3],
            vec![3, 2, 2],
            vec![0, 2],
            vec![5, 1],
        ] {
            let data = sample(dtype, element_count(&shape).unwrap() as usize);
            for ext in ["npy", "parquet", "csv"] {
                let f = format!(
                    "{dtype}_{}.{ext}",
                    shape_str(&shape).replace([' ', '[', ']', ','], "_")
                );
                if export(&out.join(&f), dtype, &shape, &data).is_ok() {
                    exported.push(serde_json::json!({
                        "file": f, "dtype": dtype.name(), "shape": shape, "hex": hex(&data),
                    }));
                }
            }
        }
    }
    fs::write(
        out.join("exported.json"),
        serde_json::to_string(&exported).unwrap(),
    )
    .unwrap();
    eprintln!(
        "checked {} expectations, exported {} files",
        expected.len(),
        exported.len()
    );
}
