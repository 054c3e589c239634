//! Source files for `numvault import` and target files for `numvault export`:
//! NumPy `.npy` / `.npz`, CSV and Parquet.
//!
//! Everything here is driven by untrusted file contents, so nothing panics on
//! bad input and no allocation is sized by a number read from a file unless
//! that number has been checked against the file's size first.
//!
//! The `.npy` header is parsed by hand (a small, strict parser for the Python
//! dict literal NumPy writes): it keeps the element bytes as they are, which
//! makes every numvault dtype (bool, float16, complex) and both byte orders
//! work without per-type conversions, and it lets us cap every size up front.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use numvault::DType;

/// A file format known to `import` / `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Npy,
    Npz,
    Csv,
    Parquet,
}

impl Format {
    /// From the file extension (case-insensitive): .npy .npz .csv .parquet
    /// (also .pq). None otherwise.
    pub fn of_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "npy" => Some(Format::Npy),
            "npz" => Some(Format::Npz),
            "csv" => Some(Format::Csv),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Format::Npy => ".npy",
            Format::Npz => ".npz",
            Format::Csv => ".csv",
            Format::Parquet => ".parquet",
        }
    }
}

/// One array read from a source file.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// None for a single-array file (.npy, .csv, a parquet file that maps to
    /// one array); Some(member) for .npz members ("a", "sub/b" — the member
    /// name with ".npy" dropped) and for parquet files whose columns do not
    /// share one type (Some(column name)).
    pub member: Option<String>,
    pub dtype: DType,
    /// Full shape, first axis = rows; at least 1 dimension (a 0-d npy scalar
    /// becomes shape [1]).
    pub shape: Vec<u64>,
    /// C-order, little-endian element bytes; len == product(shape) * itemsize.
    pub data: Vec<u8>,
}

/// Why a file could not be read or written. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The operating system refused (open, read, write, rename, ...).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The extension is not one of .npy .npz .csv .parquet .pq.
    #[error(
        "{}: unknown file type (expected extension .npy, .npz, .csv, .parquet or .pq)",
        path.display()
    )]
    UnknownFormat { path: PathBuf },
    /// `export` was asked for a format it cannot write.
    #[error(
        "{}: cannot export to {format} (export supports .npy, .csv and .parquet)",
        path.display()
    )]
    ExportUnsupported { path: PathBuf, format: &'static str },
    /// The file is damaged or not what its extension says.
    #[error("{}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
    /// The file is well-formed but holds something numvault cannot store
    /// (or the target format cannot hold the array's dtype).
    #[error("{}: {detail}", path.display())]
    Unsupported { path: PathBuf, detail: String },
}

/// Internal error, before the path is attached.
#[derive(Debug)]
enum Fail {
    Invalid(String),
    Unsupported(String),
    Io(io::Error),
}

impl Fail {
    fn at(self, path: &Path) -> FormatError {
        let path = path.to_path_buf();
        match self {
            Fail::Invalid(detail) => FormatError::Invalid { path, detail },
            Fail::Unsupported(detail) => FormatError::Unsupported { path, detail },
            Fail::Io(source) => FormatError::Io { path, source },
        }
    }

    /// Prefix the message (e.g. with the npz member); I/O errors inside a
    /// container are reported as damage to that member.
    fn context(self, what: &str) -> Fail {
        match self {
            Fail::Invalid(m) => Fail::Invalid(format!("{what}: {m}")),
            Fail::Unsupported(m) => Fail::Unsupported(format!("{what}: {m}")),
            Fail::Io(e) => Fail::Invalid(format!("{what}: {e}")),
        }
    }
}

fn invalid(msg: impl Into<String>) -> Fail {
    Fail::Invalid(msg.into())
}

fn unsupported(msg: impl Into<String>) -> Fail {
    Fail::Unsupported(msg.into())
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> FormatError + '_ {
    move |source| FormatError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Run a third-party decoder, turning a panic inside it into an error (the
/// decoders are meant not to panic on bad input; this is a backstop).
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, FormatError>) -> Result<T, FormatError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(invalid("the decoder failed on malformed data").at(path)),
    }
}

/// Product of a shape, None on overflow.
fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

fn shape_str(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// Copy a slice into an array of the same length (never panics; a short slice
/// leaves zeros).
fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.iter_mut().zip(b).for_each(|(d, s)| *d = *s);
    a
}

/// Read exactly `buf.len()` bytes; a short read means the file is truncated.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8], what: &str) -> Result<(), Fail> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            invalid(format!("truncated: the file ends inside {what}"))
        } else {
            Fail::Io(e)
        }
    })
}

// ---------------------------------------------------------------------------
// load

/// Read every array in `path` (format from the extension).
pub fn load(path: &Path) -> Result<Vec<Loaded>, FormatError> {
    match Format::of_path(path) {
        Some(Format::Npy) => load_npy(path).map(|l| vec![l]),
        Some(Format::Npz) => guarded(path, || load_npz(path)),
        Some(Format::Csv) => load_csv(path).map(|l| vec![l]),
        Some(Format::Parquet) => guarded(path, || load_parquet(path)),
        None => Err(FormatError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

// ---------------------------------------------------------------------------
// .npy

const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Largest header we accept (NumPy itself refuses more than 10 000 bytes by
/// default).
const MAX_NPY_HEADER: usize = 1 << 20;
/// NumPy's own limit on dimensions.
const MAX_NPY_NDIM: usize = 64;

fn load_npy(path: &Path) -> Result<Loaded, FormatError> {
    let file = File::open(path).map_err(io_at(path))?;
    let len = file.metadata().map_err(io_at(path))?.len();
    let mut r = BufReader::new(file);
    let (dtype, shape, data) = read_npy(&mut r, len).map_err(|f| f.at(path))?;
    Ok(Loaded {
        member: None,
        dtype,
        shape,
        data,
    })
}

struct NpyHeader {
    dtype: DType,
    big_endian: bool,
    fortran: bool,
    shape: Vec<u64>,
}

/// Parse one .npy stream of exactly `total_len` bytes: (dtype, shape with at
/// least one dimension, C-order little-endian data).
fn read_npy<R: Read>(r: &mut R, total_len: u64) -> Result<(DType, Vec<u64>, Vec<u8>), Fail> {
    let mut pre = [0u8; 8];
    read_full(r, &mut pre, "the .npy header")?;
    if pre[..6] != NPY_MAGIC[..] {
        return Err(invalid("not a .npy file (bad magic bytes)"));
    }
    let (major, minor) = (pre[6], pre[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(unsupported(format!(
                "unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"
            )))
        }
    };
    let mut lb = [0u8; 4];
    read_full(r, &mut lb[..len_bytes], "the .npy header")?;
    let header_len = u32::from_le_bytes(lb) as usize;
    if header_len > MAX_NPY_HEADER {
        return Err(invalid(format!(
            ".npy header length {header_len} exceeds the limit of {MAX_NPY_HEADER} bytes"
        )));
    }
    let prefix = (8 + len_bytes + header_len) as u64;
    if prefix > total_len {
        return Err(invalid(format!(
            "truncated: the .npy header claims {header_len} bytes but the file has {total_len} bytes in all"
        )));
    }
    let mut hbuf = vec![0u8; header_len];
    read_full(r, &mut hbuf, "the .npy header")?;
    let text =
        std::str::from_utf8(&hbuf).map_err(|_| invalid("the .npy header is not valid text"))?;
    let h = parse_npy_header(text)?;

    let itemsize = h.dtype.itemsize() as u64;
    let count = element_count(&h.shape).ok_or_else(|| {
        invalid(format!(
            "the .npy header's shape {} overflows",
            shape_str(&h.shape)
        ))
    })?;
    let available = total_len - prefix;
    let needed = count.checked_mul(itemsize);
    match needed {
        Some(n) if n == available => {}
        Some(n) if n < available => {
            return Err(invalid(format!(
                "{} unexpected bytes after the array data (shape {} of {} needs {n} bytes)",
                available - n,
                shape_str(&h.shape),
                h.dtype
            )))
        }
        _ => {
            return Err(invalid(format!(
                "truncated: shape {} of {} needs {} bytes of data but only {available} are present",
                shape_str(&h.shape),
                h.dtype,
                needed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
            )))
        }
    }
    let nbytes = usize::try_from(available)
        .map_err(|_| invalid("the array is too large for this machine"))?;
    let mut data = Vec::new();
    data.try_reserve_exact(nbytes)
        .map_err(|_| invalid(format!("cannot allocate {nbytes} bytes for the array data")))?;
    r.take(available).read_to_end(&mut data).map_err(Fail::Io)?;
    if data.len() != nbytes {
        return Err(invalid(format!(
            "truncated: expected {nbytes} bytes of array data, found {}",
            data.len()
        )));
    }

    if h.big_endian {
        swap_to_le(&mut data, h.dtype);
    }
    if h.dtype == DType::Bool {
        // NumPy treats any non-zero byte as True; store canonical 0/1.
        data.iter_mut().for_each(|b| *b = u8::from(*b != 0));
    }
    if h.fortran && h.shape.len() > 1 {
        data = fortran_to_c(&data, &h.shape, h.dtype.itemsize())?;
    }
    let mut shape = h.shape;
    if shape.is_empty() {
        shape.push(1);
    }
    Ok((h.dtype, shape, data))
}

/// Reverse the bytes of each scalar component (complex numbers are two).
fn swap_to_le(data: &mut [u8], dtype: DType) {
    let comp = match dtype {
        DType::Complex64 => 4,
        DType::Complex128 => 8,
        d => d.itemsize(),
    };
    if comp > 1 {
        data.chunks_exact_mut(comp).for_each(<[u8]>::reverse);
    }
}

/// Reorder Fortran-order element bytes into C order.
fn fortran_to_c(data: &[u8], shape: &[u64], item: usize) -> Result<Vec<u8>, Fail> {
    let too_big = || invalid("the array is too large for this machine");
    let dims = shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| too_big()))
        .collect::<Result<Vec<usize>, Fail>>()?;
    let mut out = Vec::new();
    out.try_reserve_exact(data.len())
        .map_err(|_| invalid(format!("cannot allocate {} bytes", data.len())))?;
    out.resize(data.len(), 0);
    if data.is_empty() || item == 0 {
        return Ok(out);
    }
    // Element strides of the Fortran layout: axis 0 is fastest.
    let mut strides = Vec::with_capacity(dims.len());
    let mut acc = 1usize;
    for &d in &dims {
        strides.push(acc);
        acc = acc.saturating_mul(d);
    }
    let mut idx = vec![0usize; dims.len()];
    let mut src = 0usize;
    for dst in out.chunks_exact_mut(item) {
        let from = src * item;
        if let Some(s) = data.get(from..from + item) {
            dst.copy_from_slice(s);
        }
        // Advance the C-order odometer (last axis fastest).
        for k in (0..dims.len()).rev() {
            idx[k] += 1;
            src += strides[k];
            if idx[k] < dims[k] {
                break;
            }
            src -= strides[k] * dims[k];
            idx[k] = 0;
        }
    }
    Ok(out)
}

/// The npy descr string for `dtype`, little-endian.
fn npy_descr(dtype: DType) -> &'static str {
    match dtype {
        DType::Bool => "|b1",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::F16 => "<f2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::Complex64 => "<c8",
        DType::Complex128 => "<c16",
    }
}

/// (dtype, stored big-endian) for a descr such as `<f8`, `>i4`, `|b1`.
fn parse_descr(descr: &str) -> Result<(DType, bool), Fail> {
    let (order, code) = match descr.as_bytes().first() {
        Some(c @ (b'<' | b'>' | b'|' | b'=')) => (*c, &descr[1..]),
        _ => (b'=', descr),
    };
    let dtype = match code {
        "b1" | "?" => DType::Bool,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "u1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "f2" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        "c8" => DType::Complex64,
        "c16" => DType::Complex128,
        _ => {
            return Err(unsupported(format!(
                "unsupported dtype '{descr}' (supported: bool, int8-int64, uint8-uint64, \
                 float16/32/64, complex64/128; not strings, objects, dates or records)"
            )))
        }
    };
    let big = match order {
        b'>' => true,
        b'<' => false,
        _ => cfg!(target_endian = "big"),
    };
    Ok((dtype, big))
}

/// Cursor over the header text.
struct Lex<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Lex<'a> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), Fail> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(invalid(format!(
                "malformed .npy header: expected '{}' at offset {}",
                c as char, self.i
            )))
        }
    }

    fn string(&mut self) -> Result<&'a str, Fail> {
        let q = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(invalid(format!(
                    "malformed .npy header: expected a string at offset {}",
                    self.i
                )))
            }
        };
        let start = self.i + 1;
        let len = self.s[start..]
            .iter()
            .position(|&c| c == q || c == b'\\')
            .ok_or_else(|| invalid("malformed .npy header: unterminated string"))?;
        let end = start + len;
        if self.s.get(end) != Some(&q) {
            return Err(invalid(
                "malformed .npy header: escapes in strings are not supported",
            ));
        }
        self.i = end + 1;
        std::str::from_utf8(&self.s[start..end])
            .map_err(|_| invalid("malformed .npy header: string is not valid text"))
    }

    fn word(&mut self) -> &'a [u8] {
        self.ws();
        let start = self.i;
        while matches!(self.s.get(self.i), Some(c) if c.is_ascii_alphanumeric() || *c == b'_') {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn shape(&mut self) -> Result<Vec<u64>, Fail> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                break;
            }
            let w = self.word();
            let digits = w.strip_suffix(b"L").unwrap_or(w);
            let d = std::str::from_utf8(digits)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "malformed .npy header: bad dimension '{}' in shape",
                        String::from_utf8_lossy(w)
                    ))
                })?;
            dims.push(d);
            if dims.len() > MAX_NPY_NDIM {
                return Err(invalid(format!(
                    "malformed .npy header: more than {MAX_NPY_NDIM} dimensions"
                )));
            }
            if !self.eat(b',') {
                self.expect(b')')?;
                break;
            }
        }
        Ok(dims)
    }
}

/// Parse `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_npy_header(text: &str) -> Result<NpyHeader, Fail> {
    let mut lx = Lex {
        s: text.as_bytes(),
        i: 0,
    };
    let mut descr: Option<&str> = None;
    let mut fortran: Option<bool> = None;
    let mut shape: Option<Vec<u64>> = None;
    lx.expect(b'{')?;
    loop {
        if lx.eat(b'}') {
            break;
        }
        let key = lx.string()?;
        lx.expect(b':')?;
        let dup = match key {
            "descr" => {
                if lx.peek() == Some(b'[') {
                    return Err(unsupported(
                        "unsupported dtype: structured (record) arrays are not supported",
                    ));
                }
                descr.replace(lx.string()?).is_some()
            }
            "fortran_order" => {
                let v = match lx.word() {
                    b"True" => true,
                    b"False" => false,
                    _ => {
                        return Err(invalid(
                            "malformed .npy header: fortran_order is not True or False",
                        ))
                    }
                };
                fortran.replace(v).is_some()
            }
            "shape" => shape.replace(lx.shape()?).is_some(),
            other => {
                return Err(invalid(format!(
                    "malformed .npy header: unexpected key '{other}'"
                )))
            }
        };
        if dup {
            return Err(invalid(format!(
                "malformed .npy header: key '{key}' appears twice"
            )));
        }
        if !lx.eat(b',') {
            lx.expect(b'}')?;
            break;
        }
    }
    lx.ws();
    if lx.i != lx.s.len() {
        return Err(invalid(
            "malformed .npy header: unexpected text after the dictionary",
        ));
    }
    let (Some(descr), Some(fortran), Some(shape)) = (descr, fortran, shape) else {
        return Err(invalid(
            "malformed .npy header: needs 'descr', 'fortran_order' and 'shape'",
        ));
    };
    let (dtype, big_endian) = parse_descr(descr)?;
    Ok(NpyHeader {
        dtype,
        big_endian,
        fortran,
        shape,
    })
}

/// The complete .npy header (magic through padding newline) for a
/// little-endian C-order array.
fn npy_header(dtype: DType, shape: &[u64]) -> Vec<u8> {
    let shape_s = match shape {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
            format!("({})", dims.join(", "))
        }
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_s}, }}",
        npy_descr(dtype)
    );
    // Pad with spaces and end with '\n' so the data starts 64-byte aligned.
    let padded = |prefix: usize| {
        let unpadded = prefix + dict.len() + 1;
        let pad = (64 - unpadded % 64) % 64;
        let mut h = dict.clone().into_bytes();
        h.resize(h.len() + pad, b' ');
        h.push(b'\n');
        h
    };
    let mut out = NPY_MAGIC.to_vec();
    let h1 = padded(10);
    if let Ok(n) = u16::try_from(h1.len()) {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&h1);
    } else {
        let h2 = padded(12);
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&u32::try_from(h2.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&h2);
    }
    out
}

// ---------------------------------------------------------------------------
// .npz

/// Deflate cannot expand more than ~1032:1.
const DEFLATE_MAX_RATIO: u64 = 1100;

fn load_npz(path: &Path) -> Result<Vec<Loaded>, FormatError> {
    let file = File::open(path).map_err(io_at(path))?;
    let file_len = file.metadata().map_err(io_at(path))?.len();
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| invalid(format!("not a valid .npz (zip) archive: {e}")).at(path))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| invalid(format!("cannot read archive entry {i}: {e}")).at(path))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map_err(|e| invalid(format!("bad name of archive entry {i}: {e}")).at(path))?
            .into_owned();
        let what = format!("member '{name}'");
        let size = entry.size();
        let csize = entry.compressed_size();
        let plausible = match entry.compression() {
            zip::CompressionMethod::Stored => size == csize,
            zip::CompressionMethod::Deflated => {
                size <= csize.saturating_mul(DEFLATE_MAX_RATIO).saturating_add(4096)
            }
            m => {
                return Err(unsupported(format!(
                    "{what}: unsupported compression method {m} (NumPy writes stored or deflated)"
                ))
                .at(path))
            }
        };
        if !plausible || csize > file_len {
            return Err(invalid(format!(
                "{what}: implausible sizes ({csize} bytes compressed, {size} uncompressed, \
                 archive is {file_len} bytes)"
            ))
            .at(path));
        }
        let (dtype, shape, data) =
            read_npy(&mut entry, size).map_err(|f| f.context(&what).at(path))?;
        // Read to the end so the zip reader verifies the CRC.
        let mut extra = [0u8; 1];
        match entry.read(&mut extra) {
            Ok(0) => {}
            Ok(_) => {
                return Err(invalid(format!("{what}: more data than its declared size")).at(path))
            }
            Err(e) => return Err(invalid(format!("{what}: {e}")).at(path)),
        }
        let member = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        out.push(Loaded {
            member: Some(member),
            dtype,
            shape,
            data,
        });
    }
    if out.is_empty() {
        return Err(invalid("the archive contains no arrays").at(path));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// .csv

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

fn clip(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        t.push_str("...");
    }
    t
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

fn load_csv(path: &Path) -> Result<Loaded, FormatError> {
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

fn write_csv<W: Write>(w: &mut W, dtype: DType, shape: &[u64], data: &[u8]) -> Result<(), Fail> {
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

// ---------------------------------------------------------------------------
// .parquet

const SHAPE_KEY: &str = "numvault.shape";
/// Decoded parquet data may be at most this many times the file size (or
/// PARQUET_MIN_BUDGET, whichever is larger) before we call the file
/// implausible.
const PARQUET_EXPANSION: u64 = 4096;
const PARQUET_MIN_BUDGET: u64 = 256 << 20;
const PARQUET_BATCH: usize = 64 * 1024;
const ROW_GROUP_BYTES: usize = 64 << 20;

fn parquet_err(e: parquet::errors::ParquetError) -> Fail {
    invalid(format!("cannot read parquet data: {e}"))
}

fn parquet_dtype(col: &parquet::schema::types::ColumnDescriptor) -> Result<DType, Fail> {
    use parquet::basic::{ConvertedType as C, LogicalType as L, Type as P};
    let from_int = |bits: i8, signed: bool| match (bits, signed) {
        (8, true) => Some(DType::I8),
        (16, true) => Some(DType::I16),
        (32, true) => Some(DType::I32),
        (64, true) => Some(DType::I64),
        (8, false) => Some(DType::U8),
        (16, false) => Some(DType::U16),
        (32, false) => Some(DType::U32),
        (64, false) => Some(DType::U64),
        _ => None,
    };
    let phys = col.physical_type();
    let d = match (phys, col.logical_type_ref()) {
        (P::BOOLEAN, None) => Some(DType::Bool),
        (P::INT32, None) => match col.converted_type() {
            C::NONE | C::INT_32 => Some(DType::I32),
            C::INT_8 => Some(DType::I8),
            C::INT_16 => Some(DType::I16),
            C::UINT_8 => Some(DType::U8),
            C::UINT_16 => Some(DType::U16),
            C::UINT_32 => Some(DType::U32),
            _ => None,
        },
        (P::INT64, None) => match col.converted_type() {
            C::NONE | C::INT_64 => Some(DType::I64),
            C::UINT_64 => Some(DType::U64),
            _ => None,
        },
        (P::INT32, Some(L::Integer(t))) if t.bit_width <= 32 => from_int(t.bit_width, t.is_signed),
        (P::INT64, Some(L::Integer(t))) if t.bit_width == 64 => from_int(t.bit_width, t.is_signed),
        (P::FLOAT, None) => Some(DType::F32),
        (P::DOUBLE, None) => Some(DType::F64),
        (P::FIXED_LEN_BYTE_ARRAY, Some(L::Float16)) if col.type_length() == 2 => Some(DType::F16),
        _ => None,
    };
    d.ok_or_else(|| {
        let ann = match (col.converted_type(), col.logical_type_ref()) {
            (C::NONE, Some(l)) => format!(" ({l:?})"),
            (C::NONE, None) => String::new(),
            (c, _) => format!(" ({c})"),
        };
        unsupported(format!(
            "column '{}' has unsupported type {phys}{ann} (supported: bool, integers, float16/32/64)",
            col.path().string()
        ))
    })
}

/// Read `rows` non-null values of one column chunk, handing them to `sink`.
fn drain<T: parquet::data_type::DataType>(
    r: &mut parquet::column::reader::ColumnReaderImpl<T>,
    rows: usize,
    mut sink: impl FnMut(&[T::T]) -> Result<(), Fail>,
) -> Result<(), Fail> {
    let mut def = Vec::new();
    let mut vals = Vec::new();
    let mut got = 0usize;
    while got < rows {
        def.clear();
        vals.clear();
        let want = (rows - got).min(PARQUET_BATCH);
        let (recs, nvals, _) = r
            .read_records(want, Some(&mut def), None, &mut vals)
            .map_err(parquet_err)?;
        if recs == 0 {
            break;
        }
        if nvals != recs {
            // Flat optional column: definition level 0 marks a null.
            let first = got + def.iter().position(|&d| d == 0).unwrap_or(0);
            return Err(unsupported(format!(
                "contains null values (the first at row {first} of the row group); \
                 nulls are not supported"
            )));
        }
        sink(&vals)?;
        got += recs;
    }
    if got != rows {
        return Err(invalid(format!(
            "has {got} values where the row group metadata promises {rows}"
        )));
    }
    Ok(())
}

fn narrow<T: TryFrom<i32>>(v: i32, dtype: DType) -> Result<T, Fail> {
    T::try_from(v).map_err(|_| invalid(format!("value {v} is out of range for {dtype}")))
}

fn read_parquet_column(
    reader: parquet::column::reader::ColumnReader,
    dtype: DType,
    rows: usize,
    out: &mut Vec<u8>,
) -> Result<(), Fail> {
    use parquet::column::reader::ColumnReader as CR;
    match reader {
        CR::BoolColumnReader(mut r) => drain(&mut r, rows, |vs| {
            out.extend(vs.iter().map(|&b| u8::from(b)));
            Ok(())
        }),
        CR::Int32ColumnReader(mut r) => drain(&mut r, rows, |vs| {
            for &v in vs {
                match dtype {
                    DType::I8 => out.extend(narrow::<i8>(v, dtype)?.to_le_bytes()),
                    DType::I16 => out.extend(narrow::<i16>(v, dtype)?.to_le_bytes()),
                    DType::U8 => out.extend(narrow::<u8>(v, dtype)?.to_le_bytes()),
                    DType::U16 => out.extend(narrow::<u16>(v, dtype)?.to_le_bytes()),
                    // I32, and U32 stored as its bit pattern.
                    _ => out.extend(v.to_le_bytes()),
                }
            }
            Ok(())
        }),
        CR::Int64ColumnReader(mut r) => drain(&mut r, rows, |vs| {
            // I64, and U64 stored as its bit pattern.
            vs.iter().for_each(|v| out.extend(v.to_le_bytes()));
            Ok(())
        }),
        CR::FloatColumnReader(mut r) => drain(&mut r, rows, |vs| {
            vs.iter().for_each(|v| out.extend(v.to_le_bytes()));
            Ok(())
        }),
        CR::DoubleColumnReader(mut r) => drain(&mut r, rows, |vs| {
            vs.iter().for_each(|v| out.extend(v.to_le_bytes()));
            Ok(())
        }),
        CR::FixedLenByteArrayColumnReader(mut r) => drain(&mut r, rows, |vs| {
            for v in vs {
                let b: &[u8] = v.as_ref();
                if b.len() != 2 {
                    return Err(invalid(format!(
                        "a float16 value has {} bytes, expected 2",
                        b.len()
                    )));
                }
                out.extend_from_slice(b);
            }
            Ok(())
        }),
        _ => Err(unsupported("unsupported physical type")),
    }
}

/// Page reader that refuses pages the column reader would panic on instead
/// of returning an error: a dictionary-encoded data page with no dictionary
/// page before it, a v2 page whose level lengths exceed the page, and a
/// BYTE_STREAM_SPLIT page whose value bytes do not match its value count.
struct PageGuard {
    inner: Box<dyn parquet::column::page::PageReader>,
    seen_dict: bool,
    /// Bytes per value for BYTE_STREAM_SPLIT (physical width).
    width: usize,
    /// The column is required (no definition levels in v1 pages).
    required: bool,
}

impl Iterator for PageGuard {
    type Item = parquet::errors::Result<parquet::column::page::Page>;

    fn next(&mut self) -> Option<Self::Item> {
        parquet::column::page::PageReader::get_next_page(self).transpose()
    }
}

impl PageGuard {
    fn check(&mut self, page: &parquet::column::page::Page) -> Result<(), &'static str> {
        use parquet::basic::Encoding as E;
        use parquet::column::page::Page;
        let encoding = match page {
            Page::DictionaryPage { .. } => {
                self.seen_dict = true;
                return Ok(());
            }
            Page::DataPage { encoding, .. } | Page::DataPageV2 { encoding, .. } => *encoding,
        };
        if matches!(encoding, E::PLAIN_DICTIONARY | E::RLE_DICTIONARY) && !self.seen_dict {
            return Err("dictionary-encoded page without a dictionary page");
        }
        // Bytes holding the values, and how many values they must hold (when known).
        let (value_bytes, values) = match page {
            Page::DataPageV2 {
                buf,
                num_values,
                num_nulls,
                def_levels_byte_len,
                rep_levels_byte_len,
                ..
            } => {
                let levels = *def_levels_byte_len as usize + *rep_levels_byte_len as usize;
                let Some(rest) = buf.len().checked_sub(levels) else {
                    return Err("page levels are longer than the page");
                };
                let Some(non_null) = num_values.checked_sub(*num_nulls) else {
                    return Err("page has more nulls than values");
                };
                (rest, Some(non_null as usize))
            }
            Page::DataPage {
                buf, num_values, ..
            } => (buf.len(), self.required.then_some(*num_values as usize)),
            Page::DictionaryPage { .. } => return Ok(()),
        };
        if encoding == E::BYTE_STREAM_SPLIT {
            // Unknown for v1 pages of nullable columns (levels not parsed here).
            if let Some(n) = values {
                if n.checked_mul(self.width) != Some(value_bytes) {
                    return Err("BYTE_STREAM_SPLIT page size does not match its value count");
                }
            }
        }
        Ok(())
    }
}

impl parquet::column::page::PageReader for PageGuard {
    fn get_next_page(&mut self) -> parquet::errors::Result<Option<parquet::column::page::Page>> {
        let page = self.inner.get_next_page()?;
        if let Some(p) = &page {
            self.check(p)
                .map_err(|m| parquet::errors::ParquetError::General(m.to_string()))?;
        }
        Ok(page)
    }

    fn peek_next_page(
        &mut self,
    ) -> parquet::errors::Result<Option<parquet::column::page::PageMetadata>> {
        self.inner.peek_next_page()
    }

    fn skip_next_page(&mut self) -> parquet::errors::Result<()> {
        self.inner.skip_next_page()
    }

    fn at_record_boundary(&mut self) -> parquet::errors::Result<bool> {
        self.inner.at_record_boundary()
    }
}

fn load_parquet(path: &Path) -> Result<Vec<Loaded>, FormatError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = File::open(path).map_err(io_at(path))?;
    let file_len = file.metadata().map_err(io_at(path))?.len();
    let reader = SerializedFileReader::new(file)
        .map_err(|e| invalid(format!("not a valid parquet file: {e}")).at(path))?;
    let meta = reader.metadata();
    let fmeta = meta.file_metadata();
    let schema = fmeta.schema_descr();

    for field in schema.root_schema().get_fields() {
        if !field.is_primitive() {
            return Err(unsupported(format!(
                "column '{}' is nested (struct/list/map); only flat numeric columns are supported",
                field.name()
            ))
            .at(path));
        }
    }
    let ncols = schema.num_columns();
    let mut dtypes = Vec::with_capacity(ncols);
    let mut names = Vec::with_capacity(ncols);
    for col in schema.columns() {
        if col.max_rep_level() > 0 {
            return Err(unsupported(format!(
                "column '{}' is repeated; only flat numeric columns are supported",
                col.path().string()
            ))
            .at(path));
        }
        dtypes.push(parquet_dtype(col).map_err(|f| f.at(path))?);
        names.push(col.name().to_string());
    }

    // Row counts from the footer, checked against what the file could hold.
    let mut group_rows = Vec::with_capacity(meta.num_row_groups());
    let mut rows = 0u64;
    for rg in meta.row_groups() {
        let n = u64::try_from(rg.num_rows())
            .map_err(|_| invalid("a row group has a negative row count").at(path))?;
        rows = rows
            .checked_add(n)
            .ok_or_else(|| invalid("row count overflows").at(path))?;
        group_rows.push(n);
        // Column chunks must lie inside the file (the reader asserts this).
        for cc in rg.columns() {
            let start = cc.dictionary_page_offset().unwrap_or(cc.data_page_offset());
            let len = cc.compressed_size();
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l))
                .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(invalid(format!(
                    "column chunk '{}' lies outside the file (offset {start}, length {len})",
                    cc.column_path().string()
                ))
                .at(path));
            }
        }
    }
    let row_bytes: u64 = dtypes.iter().map(|d| d.itemsize() as u64).sum();
    let budget = file_len
        .saturating_mul(PARQUET_EXPANSION)
        .max(PARQUET_MIN_BUDGET);
    let total = rows.checked_mul(row_bytes);
    if total.is_none_or(|t| t > budget) {
        return Err(invalid(format!(
            "implausible size: {rows} rows of {row_bytes} bytes from a {file_len}-byte file"
        ))
        .at(path));
    }
    let rows_us = usize::try_from(rows).map_err(|_| invalid("too many rows").at(path))?;

    let mut columns: Vec<Vec<u8>> = Vec::with_capacity(ncols);
    for d in &dtypes {
        let mut v = Vec::new();
        v.try_reserve_exact(rows_us.saturating_mul(d.itemsize()))
            .map_err(|_| invalid("cannot allocate memory for the columns").at(path))?;
        columns.push(v);
    }
    for (g, &n) in group_rows.iter().enumerate() {
        let n = usize::try_from(n).map_err(|_| invalid("too many rows").at(path))?;
        let rg = reader
            .get_row_group(g)
            .map_err(|e| parquet_err(e).at(path))?;
        for c in 0..ncols {
            let what = format!("column '{}' (row group {g})", names[c]);
            let pages = rg
                .get_column_page_reader(c)
                .map_err(|e| parquet_err(e).context(&what).at(path))?;
            let descr = schema.column(c);
            let guarded_pages = PageGuard {
                inner: pages,
                seen_dict: false,
                width: match descr.physical_type() {
                    parquet::basic::Type::FIXED_LEN_BYTE_ARRAY => {
                        usize::try_from(descr.type_length()).unwrap_or(0)
                    }
                    _ => dtypes[c].itemsize().max(4),
                },
                required: descr.max_def_level() == 0,
            };
            let cr = parquet::column::reader::get_column_reader(descr, Box::new(guarded_pages));
            read_parquet_column(cr, dtypes[c], n, &mut columns[c])
                .map_err(|f| f.context(&what).at(path))?;
        }
    }

    let same_type = dtypes.windows(2).all(|w| w[0] == w[1]);
    if !same_type {
        let out = names
            .into_iter()
            .zip(dtypes)
            .zip(columns)
            .map(|((name, dtype), data)| Loaded {
                member: Some(name),
                dtype,
                shape: vec![rows],
                data,
            })
            .collect();
        return Ok(out);
    }
    let Some(&dtype) = dtypes.first() else {
        // No columns: only a numvault-written empty array can look like this.
        if let Some(shape) = stored_shape(fmeta.key_value_metadata()) {
            if element_count(&shape) == Some(0) && shape.len() > 1 {
                if let Some(d) = stored_dtype(fmeta.key_value_metadata()) {
                    return Ok(vec![Loaded {
                        member: None,
                        dtype: d,
                        shape,
                        data: Vec::new(),
                    }]);
                }
            }
        }
        return Err(invalid("the parquet file has no columns").at(path));
    };

    // Interleave the columns into row-major order.
    let item = dtype.itemsize();
    let data = if ncols == 1 {
        columns.pop().unwrap_or_default()
    } else {
        let mut data = Vec::new();
        data.try_reserve_exact(rows_us.saturating_mul(item).saturating_mul(ncols))
            .map_err(|_| invalid("cannot allocate memory for the array").at(path))?;
        for r in 0..rows_us {
            for col in &columns {
                if let Some(el) = col.get(r * item..(r + 1) * item) {
                    data.extend_from_slice(el);
                }
            }
        }
        data
    };
    let default_shape = if ncols == 1 {
        vec![rows]
    } else {
        vec![rows, ncols as u64]
    };
    let shape = match stored_shape(fmeta.key_value_metadata()) {
        Some(s)
            if s.first() == Some(&rows)
                && (if s.len() == 1 {
                    ncols == 1
                } else {
                    element_count(&s[1..]) == Some(ncols as u64)
                }) =>
        {
            s
        }
        _ => default_shape,
    };
    Ok(vec![Loaded {
        member: None,
        dtype,
        shape,
        data,
    }])
}

fn kv_value<'a>(
    kv: Option<&'a Vec<parquet::file::metadata::KeyValue>>,
    key: &str,
) -> Option<&'a str> {
    kv?.iter()
        .find(|e| e.key == key)
        .and_then(|e| e.value.as_deref())
}

/// The `numvault.shape` metadata, if present and well-formed.
fn stored_shape(kv: Option<&Vec<parquet::file::metadata::KeyValue>>) -> Option<Vec<u64>> {
    let s = kv_value(kv, SHAPE_KEY)?;
    let shape: Vec<u64> = serde_json::from_str(s).ok()?;
    (!shape.is_empty() && shape.len() <= MAX_NPY_NDIM).then_some(shape)
}

/// The `numvault.dtype` metadata (only needed for column-less files).
fn stored_dtype(kv: Option<&Vec<parquet::file::metadata::KeyValue>>) -> Option<DType> {
    DType::from_name(kv_value(kv, "numvault.dtype")?)
}

fn write_parquet<W: Write + Send>(
    w: W,
    dtype: DType,
    shape: &[u64],
    data: &[u8],
) -> Result<W, Fail> {
    use parquet::basic::{Compression, LogicalType, Repetition, Type as P};
    use parquet::data_type::{
        BoolType, DoubleType, FixedLenByteArray, FixedLenByteArrayType, FloatType, Int32Type,
        Int64Type,
    };
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::types::Type;

    let werr = |e: parquet::errors::ParquetError| invalid(format!("parquet writer: {e}"));
    let (phys, logical) = match dtype {
        DType::Bool => (P::BOOLEAN, None),
        DType::I8 => (P::INT32, Some(LogicalType::integer(8, true))),
        DType::I16 => (P::INT32, Some(LogicalType::integer(16, true))),
        DType::I32 => (P::INT32, None),
        DType::I64 => (P::INT64, None),
        DType::U8 => (P::INT32, Some(LogicalType::integer(8, false))),
        DType::U16 => (P::INT32, Some(LogicalType::integer(16, false))),
        DType::U32 => (P::INT32, Some(LogicalType::integer(32, false))),
        DType::U64 => (P::INT64, Some(LogicalType::integer(64, false))),
        DType::F16 => (P::FIXED_LEN_BYTE_ARRAY, Some(LogicalType::Float16)),
        DType::F32 => (P::FLOAT, None),
        DType::F64 => (P::DOUBLE, None),
        DType::Complex64 | DType::Complex128 => {
            return Err(unsupported(format!(
                "cannot export {dtype} to parquet (parquet has no complex type; use .npy)"
            )))
        }
    };
    let too_big = || invalid("the array is too large for this machine");
    let rows = usize::try_from(shape.first().copied().unwrap_or(1)).map_err(|_| too_big())?;
    let cols = usize::try_from(element_count(shape.get(1..).unwrap_or(&[])).unwrap_or(0))
        .map_err(|_| too_big())?;
    let mut fields = Vec::with_capacity(cols);
    for j in 0..cols {
        let name = j.to_string();
        let mut b = Type::primitive_type_builder(&name, phys)
            .with_repetition(Repetition::REQUIRED)
            .with_logical_type(logical.clone());
        if dtype == DType::F16 {
            b = b.with_length(2);
        }
        fields.push(Arc::new(b.build().map_err(werr)?));
    }
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
        .map_err(werr)?;
    let shape_json = serde_json::to_string(&if shape.is_empty() {
        vec![1]
    } else {
        shape.to_vec()
    })
    .map_err(|e| invalid(e.to_string()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![
            KeyValue::new(SHAPE_KEY.to_string(), shape_json),
            KeyValue::new("numvault.dtype".to_string(), dtype.name().to_string()),
        ]))
        .build();
    let mut writer =
        SerializedFileWriter::new(w, Arc::new(schema), Arc::new(props)).map_err(werr)?;

    let item = dtype.itemsize();
    let row_bytes = cols.saturating_mul(item).max(1);
    let per_group = (ROW_GROUP_BYTES / row_bytes).clamp(1, 1 << 20);
    let el = |r: usize, j: usize| {
        let at = (r * cols + j) * item;
        data.get(at..at + item).unwrap_or(&[])
    };
    let mut r0 = 0;
    while r0 < rows && cols > 0 {
        let r1 = rows.min(r0 + per_group);
        let mut rg = writer.next_row_group().map_err(werr)?;
        for j in 0..cols {
            let Some(mut col) = rg.next_column().map_err(werr)? else {
                return Err(invalid("parquet writer: missing column"));
            };
            let written = match dtype {
                DType::Bool => {
                    let v: Vec<bool> = (r0..r1)
                        .map(|r| el(r, j).first().is_some_and(|b| *b != 0))
                        .collect();
                    col.typed::<BoolType>().write_batch(&v, None, None)
                }
                DType::I8 => {
                    let v: Vec<i32> = (r0..r1)
                        .map(|r| i32::from(i8::from_le_bytes(arr(el(r, j)))))
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                DType::I16 => {
                    let v: Vec<i32> = (r0..r1)
                        .map(|r| i32::from(i16::from_le_bytes(arr(el(r, j)))))
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                DType::U8 => {
                    let v: Vec<i32> = (r0..r1)
                        .map(|r| i32::from(u8::from_le_bytes(arr(el(r, j)))))
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                DType::U16 => {
                    let v: Vec<i32> = (r0..r1)
                        .map(|r| i32::from(u16::from_le_bytes(arr(el(r, j)))))
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                DType::I32 | DType::U32 => {
                    let v: Vec<i32> = (r0..r1)
                        .map(|r| i32::from_le_bytes(arr(el(r, j))))
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                DType::I64 | DType::U64 => {
                    let v: Vec<i64> = (r0..r1)
                        .map(|r| i64::from_le_bytes(arr(el(r, j))))
                        .collect();
                    col.typed::<Int64Type>().write_batch(&v, None, None)
                }
                DType::F16 => {
                    let v: Vec<FixedLenByteArray> = (r0..r1)
                        .map(|r| FixedLenByteArray::from(el(r, j).to_vec()))
                        .collect();
                    col.typed::<FixedLenByteArrayType>()
                        .write_batch(&v, None, None)
                }
                DType::F32 => {
                    let v: Vec<f32> = (r0..r1)
                        .map(|r| f32::from_le_bytes(arr(el(r, j))))
                        .collect();
                    col.typed::<FloatType>().write_batch(&v, None, None)
                }
                DType::F64 => {
                    let v: Vec<f64> = (r0..r1)
                        .map(|r| f64::from_le_bytes(arr(el(r, j))))
                        .collect();
                    col.typed::<DoubleType>().write_batch(&v, None, None)
                }
                DType::Complex64 | DType::Complex128 => Ok(0),
            };
            written.map_err(werr)?;
            col.close().map_err(werr)?;
        }
        rg.close().map_err(werr)?;
        r0 = r1;
    }
    writer.into_inner().map_err(werr)
}

// ---------------------------------------------------------------------------
// export

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write one array; the format comes from `path`'s extension. Writes to a
/// temp file in the same directory and renames over `path` (no half-written
/// file left on error).
pub fn export(path: &Path, dtype: DType, shape: &[u64], data: &[u8]) -> Result<(), FormatError> {
    export_with_progress(path, dtype, shape, data, &|_| {})
}

/// [`export`], calling `progress(bytes written so far)` as the file grows.
pub fn export_with_progress(
    path: &Path,
    dtype: DType,
    shape: &[u64],
    data: &[u8],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), FormatError> {
    let format = Format::of_path(path).ok_or_else(|| FormatError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    if format == Format::Npz {
        return Err(FormatError::ExportUnsupported {
            path: path.to_path_buf(),
            format: format.label(),
        });
    }
    let expected = element_count(shape).and_then(|n| n.checked_mul(dtype.itemsize() as u64));
    if expected != Some(data.len() as u64) {
        return Err(invalid(format!(
            "cannot export: {} bytes of data do not match shape {} of {dtype}",
            data.len(),
            shape_str(shape)
        ))
        .at(path));
    }
    let Some(file_name) = path.file_name() else {
        return Err(invalid("cannot export: not a file path").at(path));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_at(path))?;
    let counting = Counting {
        file,
        written: 0,
        progress,
    };
    let result = write_file(counting, format, dtype, shape, data)
        .map_err(|f| f.at(path))
        .and_then(|()| fs::rename(&tmp, path).map_err(io_at(path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename durable where the platform allows opening directories.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The output file, counting the bytes written for a progress callback.
struct Counting<'a> {
    file: File,
    written: u64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        (self.progress)(self.written);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn write_file(
    file: Counting<'_>,
    format: Format,
    dtype: DType,
    shape: &[u64],
    data: &[u8],
) -> Result<(), Fail> {
    let mut w = BufWriter::new(file);
    match format {
        Format::Npy => {
            w.write_all(&npy_header(dtype, shape)).map_err(Fail::Io)?;
            w.write_all(data).map_err(Fail::Io)?;
        }
        Format::Csv => write_csv(&mut w, dtype, shape, data)?,
        Format::Parquet => {
            w = write_parquet(w, dtype, shape, data)?;
        }
        Format::Npz => {
            return Err(unsupported(
                "cannot export to .npz (export supports .npy, .csv and .parquet)",
            ))
        }
    }
    let counting = w.into_inner().map_err(|e| Fail::Io(e.into_error()))?;
    counting.file.sync_all().map_err(Fail::Io)
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

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
                DType::U64 => {
                    out.extend((x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes())
                }
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

    /// Build an .npy file by hand.
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
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in members {
            w.start_file(*name, opts).expect("start_file");
            w.write_all(bytes).expect("write member");
        }
        w.finish().expect("finish").into_inner()
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
        let h = npy_header(DType::U8, &[1; 64]);
        assert_eq!((h[6], h.len() % 64), (1, 0));
        let h = npy_header(DType::U8, &vec![1; 30000]);
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
    fn npz_stored_and_deflated() {
        let dir = tempfile::tempdir().unwrap();
        let a = sample(DType::F32, 6);
        let b = sample(DType::Complex128, 4);
        let mut bbe = b.clone();
        swap_to_le(&mut bbe, DType::Complex128); // make it big-endian
        let members = vec![
            (
                "a.npy",
                npy_bytes(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                    &a,
                ),
            ),
            (
                "sub/b.npy",
                npy_bytes(
                    "{'descr': '>c16', 'fortran_order': False, 'shape': (4,), }",
                    &bbe,
                ),
            ),
            (
                "s.npy",
                npy_bytes(
                    "{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
                    &7i64.to_le_bytes(),
                ),
            ),
        ];
        for (i, method) in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ]
        .into_iter()
        .enumerate()
        {
            let p = write(
                dir.path(),
                &format!("t{i}.npz"),
                &zip_bytes(&members, method),
            );
            let got = load(&p).unwrap();
            assert_eq!(got.len(), 3);
            assert_eq!(got[0].member.as_deref(), Some("a"));
            assert_eq!(
                (got[0].dtype, &got[0].shape, &got[0].data),
                (DType::F32, &vec![2, 3], &a)
            );
            assert_eq!(got[1].member.as_deref(), Some("sub/b"));
            assert_eq!(
                (got[1].dtype, &got[1].shape, &got[1].data),
                (DType::Complex128, &vec![4], &b)
            );
            assert_eq!(got[2].member.as_deref(), Some("s"));
            assert_eq!(
                (&got[2].shape, &got[2].data),
                (&vec![1], &7i64.to_le_bytes().to_vec())
            );
        }
        // Export to npz is refused with a helpful message.
        let err = export(&dir.path().join("o.npz"), DType::U8, &[1], &[1]).unwrap_err();
        assert!(
            err.to_string()
                .contains("export supports .npy, .csv and .parquet"),
            "{err}"
        );
    }

    #[test]
    fn npz_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let member = npy_bytes(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (64,), }",
            &[0; 512],
        );
        let stored = zip_bytes(&[("x.npy", member.clone())], zip::CompressionMethod::Stored);
        let deflated = zip_bytes(&[("x.npy", member)], zip::CompressionMethod::Deflated);
        // Truncations and garbage.
        for (i, src) in [&stored, &deflated].into_iter().enumerate() {
            for cut in (0..src.len()).step_by(7) {
                let p = write(dir.path(), "cut.npz", &src[..cut]);
                assert!(load(&p).is_err(), "{i} cut at {cut}");
            }
        }
        let p = write(
            dir.path(),
            "garbage.npz",
            b"this is not a zip file at all, sorry",
        );
        assert!(load(&p).unwrap_err().to_string().contains("garbage.npz"));
        // A flipped data byte in a stored member fails the CRC check.
        let mut bad = stored.clone();
        let at = bad.windows(8).position(|w| w == [0u8; 8]).unwrap() + 100;
        bad[at] ^= 1;
        let p = write(dir.path(), "crc.npz", &bad);
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("member 'x.npy'"), "{err}");
        // Corrupt every byte position of the deflated archive in turn: never a panic.
        for i in 0..deflated.len() {
            let mut d = deflated.clone();
            d[i] ^= 0x5a;
            let p = write(dir.path(), "flip.npz", &d);
            let _ = load(&p);
        }
        // A member with a bad npy inside names the member.
        let z = zip_bytes(
            &[("y.npy", b"nope".to_vec())],
            zip::CompressionMethod::Deflated,
        );
        let p = write(dir.path(), "inner.npz", &z);
        let err = load(&p).unwrap_err().to_string();
        assert!(
            err.contains("inner.npz") && err.contains("member 'y.npy'"),
            "{err}"
        );
        // Member whose header claims far more data than the archive holds.
        let z = zip_bytes(
            &[(
                "h.npy",
                npy_bytes(
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000000,), }",
                    &[],
                ),
            )],
            zip::CompressionMethod::Deflated,
        );
        let p = write(dir.path(), "huge.npz", &z);
        assert!(load(&p).unwrap_err().to_string().contains("truncated"));
        // Empty archive.
        let p = write(
            dir.path(),
            "empty.npz",
            &zip_bytes(&[], zip::CompressionMethod::Stored),
        );
        assert!(load(&p).unwrap_err().to_string().contains("no arrays"));
    }

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
        use parquet::data_type::{DoubleType, Int32Type, Int64Type};
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
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
        let schema = Arc::new(parquet::schema::parser::parse_message_type(&msg).unwrap());
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build(),
        );
        let mut w = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
        let mut rg = w.next_row_group().unwrap();
        let def: Vec<i16> = (0..rows).map(|r| i16::from(!(nulls && r == 1))).collect();
        let defs = nulls.then_some(&def[..]);
        let nv = if nulls { rows - 1 } else { rows };
        while let Some(mut c) = rg.next_column().unwrap() {
            match c.untyped() {
                parquet::column::writer::ColumnWriter::Int32ColumnWriter(_) => {
                    let v: Vec<i32> = (0..nv as i32).collect();
                    c.typed::<Int32Type>().write_batch(&v, defs, None).unwrap();
                }
                parquet::column::writer::ColumnWriter::Int64ColumnWriter(_) => {
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
        use parquet::basic::Encoding;
        use parquet::data_type::{DoubleType, FloatType};
        use parquet::file::properties::{WriterProperties, WriterVersion};
        use parquet::file::writer::SerializedFileWriter;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("enc.parquet");
        let msg = "message schema { required double d; optional float f; }";
        let schema = Arc::new(parquet::schema::parser::parse_message_type(msg).unwrap());
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
            Some(vec![parquet::file::metadata::KeyValue::new(
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
}
