//! CSV and whitespace-separated text: one number per field, an optional
//! header line; 1-D or 2-D.
//!
//! [`CsvReader`] streams: it reads one record at a time (the `csv` crate for
//! a delimiter, a line splitter for whitespace), so its callers hold as
//! many rows as they choose. [`load_csv`] (the command's importer) keeps
//! them all, widening the element type as needed; `numvault.io.from_csv`
//! stages them in chunks (numvault-py's formats.rs), converting each value
//! exactly to the dtype asked or inferred.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use numvault::DType;

use crate::printf::{Printf, Value};

use crate::{arr, clip, element_count, invalid, io_at, unsupported, Fail, FormatError, Loaded};

/// A parsed CSV number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
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

fn csv_error(e: csv::Error, line_offset: u64) -> Fail {
    let line = e.position().map(|p| p.line() + line_offset);
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

/// Which line holds column names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// The first record, if one of its fields is not a number.
    Auto,
    /// None: every record is data.
    None,
    /// Record `n` (0-based, after the skipped lines): it and the records
    /// before it are not data (pandas' `header=n`).
    Line(u64),
}

/// How to read a CSV or text file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// The field separator; None: runs of spaces and tabs (text files).
    pub delimiter: Option<u8>,
    /// Lines skipped at the start, before the header.
    pub skiprows: u64,
    pub header: Header,
    /// Read at most this many data rows.
    pub max_rows: Option<u64>,
}

impl Default for CsvOptions {
    /// The command's CSV: commas, a header line detected.
    fn default() -> Self {
        CsvOptions {
            delimiter: Some(b','),
            skiprows: 0,
            header: Header::Auto,
            max_rows: None,
        }
    }
}

enum Src<R: Read> {
    Csv(csv::Reader<BufReader<R>>),
    Text(BufReader<R>, String),
}

/// The data rows of a CSV or text file, one record at a time, parsed into
/// numbers; every row must have as many fields as the first (or as the
/// header). Errors name the line (1-based, counting skipped lines).
pub struct CsvReader<R: Read> {
    src: Src<R>,
    rec: csv::StringRecord,
    /// Lines before the records the parser numbers (the skipped ones).
    line_offset: u64,
    /// Physical line of the last record read (text: counted here).
    line: u64,
    ncols: Option<usize>,
    rows: u64,
    max_rows: Option<u64>,
    /// No record read yet (the first field may start with a BOM).
    first: bool,
    /// A record read ahead (the first data row after an Auto header check).
    pending: bool,
}

impl CsvReader<File> {
    /// Open `path` and read up to its first data row.
    pub fn open(path: &Path, opts: &CsvOptions) -> Result<Self, FormatError> {
        let file = File::open(path).map_err(io_at(path))?;
        CsvReader::new(file, opts).map_err(|f| f.at(path))
    }
}

impl<R: Read> CsvReader<R> {
    pub fn new(r: R, opts: &CsvOptions) -> Result<Self, Fail> {
        let mut br = BufReader::with_capacity(1 << 16, r);
        let mut skipped = 0;
        let mut sink = Vec::new();
        while skipped < opts.skiprows {
            sink.clear();
            if br.read_until(b'\n', &mut sink).map_err(Fail::Io)? == 0 {
                break;
            }
            skipped += 1;
        }
        let src = match opts.delimiter {
            Some(d) => Src::Csv(
                csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .trim(csv::Trim::All)
                    .delimiter(d)
                    .from_reader(br),
            ),
            None => Src::Text(br, String::new()),
        };
        let mut me = CsvReader {
            src,
            rec: csv::StringRecord::new(),
            line_offset: skipped,
            line: skipped,
            ncols: None,
            rows: 0,
            max_rows: opts.max_rows,
            first: true,
            pending: false,
        };
        match opts.header {
            Header::None => {}
            Header::Line(n) => {
                for _ in 0..=n {
                    if !me.read_record()? {
                        return Err(invalid(format!(
                            "no header: the file ends before line {} (header={n})",
                            me.line + 1
                        )));
                    }
                }
                me.ncols = Some(me.rec.len());
            }
            Header::Auto => {
                if me.read_record()? {
                    let is_header = me
                        .rec
                        .iter()
                        .enumerate()
                        .any(|(j, f)| parse_num(strip_bom(true, j, f)).is_none());
                    if is_header {
                        me.ncols = Some(me.rec.len());
                    } else {
                        me.pending = true;
                        // The BOM check applies to this record still.
                        me.first = true;
                    }
                }
            }
        }
        Ok(me)
    }

    /// Read the next record into `self.rec`; false at the end.
    fn read_record(&mut self) -> Result<bool, Fail> {
        self.first = false;
        match &mut self.src {
            Src::Csv(rdr) => {
                let more = rdr.read_record(&mut self.rec).map_err(|e| {
                    let off = self.line_offset;
                    csv_error(e, off)
                })?;
                if more {
                    self.line = self.line_offset + self.rec.position().map_or(0, |p| p.line());
                }
                Ok(more)
            }
            Src::Text(br, line) => loop {
                line.clear();
                let n = br.read_line(line).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        invalid(format!("line {}: invalid UTF-8", self.line + 1))
                    } else {
                        Fail::Io(e)
                    }
                })?;
                if n == 0 {
                    return Ok(false);
                }
                self.line += 1;
                if line.trim().is_empty() {
                    continue;
                }
                self.rec.clear();
                for f in line.split_whitespace() {
                    self.rec.push_field(f);
                }
                return Ok(true);
            },
        }
    }

    /// Number of columns (known once a header or a data row was read).
    pub fn ncols(&self) -> Option<usize> {
        self.ncols
    }

    /// Data rows read so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Line (1-based) of the last row read.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Parse the next data row into `out` (cleared first): its line, or
    /// None at the end (or after `max_rows` rows).
    pub fn next_row(&mut self, out: &mut Vec<Num>) -> Result<Option<u64>, Fail> {
        out.clear();
        if self.max_rows.is_some_and(|m| self.rows >= m) {
            return Ok(None);
        }
        let bom = self.first;
        if self.pending {
            self.pending = false;
            self.first = false;
        } else if !self.read_record()? {
            return Ok(None);
        }
        let line = self.line;
        let expected = *self.ncols.get_or_insert(self.rec.len());
        if self.rec.len() != expected {
            return Err(invalid(format!(
                "line {line} has {} fields, expected {expected}",
                self.rec.len()
            )));
        }
        for (j, f) in self.rec.iter().enumerate() {
            let f = strip_bom(bom, j, f);
            let v = parse_num(f).ok_or_else(|| {
                invalid(format!(
                    "line {line}, column {}: '{}' is not a number",
                    j + 1,
                    clip(f)
                ))
            })?;
            out.push(v);
        }
        self.rows += 1;
        Ok(Some(line))
    }
}

fn parse_csv<R: Read>(r: R) -> Result<Loaded, Fail> {
    let mut rdr = CsvReader::new(r, &CsvOptions::default())?;
    let mut vals = CsvValues {
        dtype: DType::I64,
        any_neg: false,
        data: Vec::new(),
    };
    let mut row = Vec::new();
    while rdr.next_row(&mut row)?.is_some() {
        for v in &row {
            vals.push(*v);
        }
    }
    let Some(ncols) = rdr.ncols() else {
        return Err(invalid("the CSV file is empty"));
    };
    let rows = rdr.rows();
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

/// Append `v` to `out` as a little-endian element of `dtype` if `dtype`
/// holds it exactly (integral floats into integer types, 0/1 into bool,
/// real numbers into complex); false otherwise (nothing appended).
pub fn push_exact(dtype: DType, v: Num, out: &mut Vec<u8>) -> bool {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    const TWO64: f64 = 18_446_744_073_709_551_616.0;
    fn int<T: TryFrom<i64> + TryFrom<u64>>(v: Num) -> Option<T> {
        match v {
            Num::I(x) => T::try_from(x).ok(),
            Num::U(x) => T::try_from(x).ok(),
            // Integral and within i64 / u64: then the range check above.
            Num::F(x) if x.fract() == 0.0 && (-TWO63..TWO63).contains(&x) => {
                T::try_from(x as i64).ok()
            }
            Num::F(x) if x.fract() == 0.0 && (0.0..TWO64).contains(&x) => {
                T::try_from(x as u64).ok()
            }
            Num::F(_) => None,
        }
    }
    fn as_f64(v: Num) -> Option<f64> {
        match v {
            Num::I(x) => Some(x as f64).filter(|f| *f as i64 == x && *f != TWO63),
            Num::U(x) => Some(x as f64).filter(|f| *f as u64 == x && *f != TWO64),
            Num::F(x) => Some(x),
        }
    }
    fn as_f32(v: Num) -> Option<f32> {
        let x = as_f64(v)?;
        let f = x as f32;
        (f64::from(f) == x || x.is_nan()).then_some(f)
    }
    match dtype {
        DType::Bool => match int::<u8>(v) {
            Some(b @ (0 | 1)) => out.push(b),
            _ => return false,
        },
        DType::I8 => match int::<i8>(v) {
            Some(x) => out.extend(x.to_le_bytes()),
            None => return false,
        },
        DType::I16 => match int::<i16>(v) {
            Some(x) => out.extend(x.to_le_bytes()),
            None => return false,
        },
        DType::I32 => match int::<i32>(v) {
            Some(x) => out.extend(x.to_le_bytes()),
            None => return false,
        },
        DType::I64 => match int::<i64>(v) {
            Some(x) => out.extend(x.to_le_bytes()),
            None => return false,
        },
        DType::U8 => match int::<u8>(v) {
            Some(x) => out.extend(x.to_le_bytes()),
            None => return false,
        },
        DType::U16 => match int::<u16>(v) {
            Some(x) => out.extend(x.to_le_bytes()),
            None => return false,
        },
        DType::U32 => match int::<u32>(v) {
            Some(x) => out.extend(x.to_le_bytes()),
            None => return false,
        },
        DType::U64 => match int::<u64>(v) {
            Some(x) => out.extend(x.to_le_bytes()),
            None => return false,
        },
        DType::F16 => {
            let Some(x) = as_f64(v) else { return false };
            let h = half::f16::from_f64(x);
            if h.to_f64() != x && !x.is_nan() {
                return false;
            }
            out.extend(h.to_le_bytes());
        }
        DType::F32 => match as_f32(v) {
            Some(x) => out.extend(x.to_le_bytes()),
            None => return false,
        },
        DType::F64 => match as_f64(v) {
            Some(x) => out.extend(x.to_le_bytes()),
            None => return false,
        },
        DType::Complex64 => match as_f32(v) {
            Some(x) => {
                out.extend(x.to_le_bytes());
                out.extend(0f32.to_le_bytes());
            }
            None => return false,
        },
        DType::Complex128 => match as_f64(v) {
            Some(x) => {
                out.extend(x.to_le_bytes());
                out.extend(0f64.to_le_bytes());
            }
            None => return false,
        },
    }
    true
}

/// The type to infer once `v` does not fit `current` (int64 → uint64 for
/// integers above int64's range → float64 for anything else).
pub fn widen(current: DType, v: Num) -> DType {
    match (current, v) {
        (DType::I64, Num::U(_)) => DType::U64,
        _ => DType::F64,
    }
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

/// How [`write_rows`] writes values.
#[derive(Clone, Copy, Debug)]
pub struct CsvStyle<'a> {
    pub delimiter: &'a str,
    /// A printf-style format for every value; None: integers as they are,
    /// floating point in the shortest form that reads back exactly (with a
    /// ".0" on whole numbers, so the column reads back as floating point).
    pub fmt: Option<&'a Printf>,
    pub newline: &'a str,
}

impl Default for CsvStyle<'_> {
    /// The command's CSV.
    fn default() -> Self {
        CsvStyle {
            delimiter: ",",
            fmt: None,
            newline: "\n",
        }
    }
}

/// The command's CSV export: `data` (C order, little-endian) of an array
/// of `shape` (1-D or 2-D; more dimensions are flattened into the columns)
/// in [`CsvStyle::default`].
pub fn write_csv<W: Write>(
    w: &mut W,
    dtype: DType,
    shape: &[u64],
    data: &[u8],
) -> Result<(), Fail> {
    let cols = usize::try_from(element_count(shape.get(1..).unwrap_or(&[])).unwrap_or(0))
        .map_err(|_| invalid("too many columns"))?;
    write_rows(w, dtype, cols, data, &CsvStyle::default())
}

/// Write the rows of `cols` values of `data` (C order, little-endian
/// elements of `dtype`), one line each, in `style`.
pub fn write_rows<W: Write>(
    w: &mut W,
    dtype: DType,
    cols: usize,
    data: &[u8],
    style: &CsvStyle<'_>,
) -> Result<(), Fail> {
    if matches!(dtype, DType::Complex64 | DType::Complex128) {
        return Err(unsupported(format!(
            "cannot export {dtype} to CSV (complex numbers have no CSV form; use .npy)"
        )));
    }
    if cols == 0 {
        return Ok(());
    }
    let item = dtype.itemsize();
    let mut line = String::new();
    for (i, el) in data.chunks_exact(item).enumerate() {
        if i % cols != 0 {
            line.push_str(style.delimiter);
        }
        if let Some(f) = style.fmt {
            let v = match dtype {
                DType::Bool => Value::Int(i128::from(el.first().is_some_and(|b| *b != 0))),
                DType::I8 => Value::Int(i8::from_le_bytes(arr(el)).into()),
                DType::I16 => Value::Int(i16::from_le_bytes(arr(el)).into()),
                DType::I32 => Value::Int(i32::from_le_bytes(arr(el)).into()),
                DType::I64 => Value::Int(i64::from_le_bytes(arr(el)).into()),
                DType::U8 => Value::Int(u8::from_le_bytes(arr(el)).into()),
                DType::U16 => Value::Int(u16::from_le_bytes(arr(el)).into()),
                DType::U32 => Value::Int(u32::from_le_bytes(arr(el)).into()),
                DType::U64 => Value::Int(u64::from_le_bytes(arr(el)).into()),
                DType::F16 => Value::Float(half::f16::from_le_bytes(arr(el)).to_f64()),
                DType::F32 => Value::Float(f32::from_le_bytes(arr(el)).into()),
                DType::F64 | DType::Complex64 | DType::Complex128 => {
                    Value::Float(f64::from_le_bytes(arr(el)))
                }
            };
            f.write(v, &mut line)
                .map_err(|e| invalid(format!("row {}, column {}: {e}", i / cols, i % cols + 1)))?;
        } else {
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
        }
        if (i + 1) % cols == 0 {
            line.push_str(style.newline);
            w.write_all(line.as_bytes()).map_err(Fail::Io)?;
            line.clear();
        }
    }
    Ok(())
}
