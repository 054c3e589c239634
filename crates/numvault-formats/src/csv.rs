//! CSV: one number per field, an optional header line; 1-D or 2-D.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use numvault::DType;

use crate::{arr, clip, element_count, invalid, io_at, unsupported, Fail, FormatError, Loaded};

/// A parsed CSV number.
#[derive(Clone, Copy)]
enum Num {
    I(i64),
    /// An integer above i64::MAX.
    U(u64),
    F(f64),
}

fn parse_num(s: &str) -> Option<Num> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    if digits.bytes().all(|c| c.is_ascii_digit()) {
        if let Ok(v) = s.parse::<i64>() {
            return Some(Num::I(v));
        }
        if let Ok(v) = s.parse::<u64>() {
            return Some(Num::U(v));
        }
    }
    // Rust's float syntax: decimals, exponents, inf/infinity/nan (any case).
    s.parse::<f64>().ok().map(Num::F)
}

fn csv_error(e: csv::Error) -> Fail {
    let line = e.position().map(|p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(e) => Fail::Io(e),
        kind => {
            let msg = match kind {
                csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_string(),
                other => format!("{other:?}"),
            };
            match line {
                Some(l) => invalid(format!("malformed CSV at line {l}: {msg}")),
                None => invalid(format!("malformed CSV: {msg}")),
            }
        }
    }
}

pub fn load_csv(path: &Path) -> Result<Loaded, FormatError> {
    let file = File::open(path).map_err(io_at(path))?;
    parse_csv(BufReader::new(file)).map_err(|f| f.at(path))
}

/// Column values accumulated as 8-byte little-endian numbers; the element
/// type widens as needed: all integers → i64, integers above i64::MAX (none
/// negative) → u64, anything else → f64.
struct CsvValues {
    dtype: DType,
    any_neg: bool,
    data: Vec<u8>,
}

impl CsvValues {
    fn widen_to_f64(&mut self) {
        let from = self.dtype;
        for c in self.data.chunks_exact_mut(8) {
            let v = match from {
                DType::I64 => i64::from_le_bytes(arr(c)) as f64,
                DType::U64 => u64::from_le_bytes(arr(c)) as f64,
                _ => f64::from_le_bytes(arr(c)),
            };
            c.copy_from_slice(&v.to_le_bytes());
        }
        self.dtype = DType::F64;
    }

    fn push(&mut self, v: Num) {
        match (self.dtype, v) {
            (DType::I64, Num::I(x)) => {
                self.any_neg |= x < 0;
                self.data.extend(x.to_le_bytes());
            }
            (DType::I64, Num::U(x)) if !self.any_neg => {
                // The i64 values so far are non-negative: same bits as u64.
                self.dtype = DType::U64;
                self.data.extend(x.to_le_bytes());
            }
            (DType::U64, Num::I(x)) if x >= 0 => self.data.extend(x.to_le_bytes()),
            (DType::U64, Num::U(x)) => self.data.extend(x.to_le_bytes()),
            (DType::F64, v) => {
                let f = match v {
                    Num::I(x) => x as f64,
                    Num::U(x) => x as f64,
                    Num::F(x) => x,
                };
                self.data.extend(f.to_le_bytes());
            }
            (_, v) => {
                self.widen_to_f64();
                self.push(v);
            }
        }
    }
}

/// The field with a UTF-8 byte order mark removed from the file's first field.
fn strip_bom(first: bool, j: usize, f: &str) -> &str {
    if first && j == 0 {
        f.trim_start_matches('\u{feff}')
    } else {
        f
    }
}

fn parse_csv<R: Read>(r: R) -> Result<Loaded, Fail> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(r);
    let mut rec = csv::StringRecord::new();
    let mut ncols: Option<usize> = None;
    let mut first = true;
    let mut rows = 0u64;
    let mut vals = CsvValues {
        dtype: DType::I64,
        any_neg: false,
        data: Vec::new(),
    };
    while rdr.read_record(&mut rec).map_err(csv_error)? {
        let line = rec.position().map_or(0, |p| p.line());
        if first {
            let is_header = rec
                .iter()
                .enumerate()
                .any(|(j, f)| parse_num(strip_bom(true, j, f)).is_none());
            if is_header {
                first = false;
                ncols = Some(rec.len());
                continue;
            }
        }
        let expected = *ncols.get_or_insert(rec.len());
        if rec.len() != expected {
            return Err(invalid(format!(
                "line {line} has {} fields, expected {expected}",
                rec.len()
            )));
        }
        for (j, f) in rec.iter().enumerate() {
            let f = strip_bom(first, j, f);
            let v = parse_num(f).ok_or_else(|| {
                invalid(format!(
                    "line {line}, column {}: '{}' is not a number",
                    j + 1,
                    clip(f)
                ))
            })?;
            vals.push(v);
        }
        first = false;
        rows += 1;
    }
    let Some(ncols) = ncols else {
        return Err(invalid("the CSV file is empty"));
    };
    if rows == 0 {
        return Err(invalid("the CSV file has a header but no data rows"));
    }
    let CsvValues { dtype, data, .. } = vals;
    let shape = if ncols == 1 {
        vec![rows]
    } else {
        vec![rows, ncols as u64]
    };
    Ok(Loaded {
        member: None,
        dtype,
        shape,
        data,
    })
}

fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        // Debug is the shortest round-trip form and keeps a ".0" on whole
        // numbers, so the column reads back as floating point.
        format!("{v:?}")
    }
}

fn fmt_f32(v: f32) -> String {
    if v.is_nan() || v.is_infinite() {
        fmt_f64(f64::from(v))
    } else {
        format!("{v:?}")
    }
}

pub fn write_csv<W: Write>(
    w: &mut W,
    dtype: DType,
    shape: &[u64],
    data: &[u8],
) -> Result<(), Fail> {
    if matches!(dtype, DType::Complex64 | DType::Complex128) {
        return Err(unsupported(format!(
            "cannot export {dtype} to CSV (complex numbers have no CSV form; use .npy)"
        )));
    }
    let cols = usize::try_from(element_count(shape.get(1..).unwrap_or(&[])).unwrap_or(0))
        .map_err(|_| invalid("too many columns"))?;
    if cols == 0 {
        return Ok(());
    }
    let item = dtype.itemsize();
    let mut line = String::new();
    for (i, el) in data.chunks_exact(item).enumerate() {
        if i % cols != 0 {
            line.push(',');
        }
        let s = match dtype {
            DType::Bool => u8::from(el.first().is_some_and(|b| *b != 0)).to_string(),
            DType::I8 => i8::from_le_bytes(arr(el)).to_string(),
            DType::I16 => i16::from_le_bytes(arr(el)).to_string(),
            DType::I32 => i32::from_le_bytes(arr(el)).to_string(),
            DType::I64 => i64::from_le_bytes(arr(el)).to_string(),
            DType::U8 => u8::from_le_bytes(arr(el)).to_string(),
            DType::U16 => u16::from_le_bytes(arr(el)).to_string(),
            DType::U32 => u32::from_le_bytes(arr(el)).to_string(),
            DType::U64 => u64::from_le_bytes(arr(el)).to_string(),
            DType::F16 => fmt_f32(half::f16::from_le_bytes(arr(el)).to_f32()),
            DType::F32 => fmt_f32(f32::from_le_bytes(arr(el))),
            DType::F64 => fmt_f64(f64::from_le_bytes(arr(el))),
            DType::Complex64 | DType::Complex128 => String::new(),
        };
        line.push_str(&s);
        if (i + 1) % cols == 0 {
            line.push('\n');
            w.write_all(line.as_bytes()).map_err(Fail::Io)?;
            line.clear();
        }
    }
    Ok(())
}
