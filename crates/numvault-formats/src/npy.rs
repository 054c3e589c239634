//! NumPy `.npy`: one array per file.
//!
//! The header, a Python dict literal, is read and written by the header
//! module of the ndarray-npy crate (which parses it with py_literal). What
//! this file adds around it: the size checks made before the header is
//! parsed (every size is capped up front), a clean-up of the header text
//! ([`clean_header`]: Python 2 long integers, line breaks, nesting depth),
//! the mapping of dtype strings to numvault dtypes, and the element bytes.
//! Those are read as they are: swapped to little-endian per scalar
//! component and rearranged from Fortran to C order here, which makes every
//! numvault dtype (bool, float16, complex) and both byte orders work without
//! per-type conversions.
//!
//! Why not npyz (checked with 0.9.1): it accepts headers with unknown keys
//! (NumPy refuses them), it overflows (a panic in debug builds, a wrong count in release builds) on a shape
//! whose element count exceeds u64, its writer panics instead of switching
//! to format 2.0 when a header passes 64 KiB, and it refuses the descr
//! strings `?`, `f8` and `=f8` that this reader has always taken.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use ndarray_npy::npy::header::{Header, Layout, ParseHeaderError, ReadHeaderError};
use numvault::DType;
use py_literal::Value;

use crate::{
    clip, element_count, invalid, io_at, shape_str, unsupported, Fail, FormatError, Loaded,
};

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

pub const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Largest header we accept. NumPy itself refuses more than 10 000 bytes by
/// default; the header of any dtype numvault stores is under 2 KiB, even with
/// 64 dimensions. (1 MiB with the hand-written parser before; the
/// Python-literal parser needs up to 8 s and 200 MB for a crafted 1 MiB
/// header, under a second for 64 KiB.)
const MAX_NPY_HEADER: usize = 64 << 10;
/// NumPy's own limit on dimensions.
pub const MAX_NPY_NDIM: usize = 64;

/// Read a whole .npy file.
pub fn load_npy(path: &Path) -> Result<Loaded, FormatError> {
    let (dtype, shape, data) = NpyReader::open(path)?.read_all().map_err(|f| f.at(path))?;
    Ok(Loaded {
        member: None,
        dtype,
        shape,
        data,
    })
}

/// What a .npy header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    pub dtype: DType,
    /// The data is stored big-endian (the reader swaps it).
    pub big_endian: bool,
    /// The data is stored in Fortran (column-major) order.
    pub fortran: bool,
    /// The shape as written: empty for a 0-d array.
    pub shape: Vec<u64>,
}

/// A .npy stream whose header has been read and checked: its rows, in
/// chunks of bounded size, as C-order little-endian bytes (big-endian data
/// swapped, booleans made 0/1).
///
/// The sizes are checked before any data is read: the data must be exactly
/// what the header's shape needs, so a truncated (or over-long) file is an
/// error at [`NpyReader::new`] and no allocation is larger than the file.
///
/// Fortran-order arrays of two or more dimensions are not streamed: their
/// rows are not contiguous in the file, so the first chunk holds the whole
/// array (reordered into C order; memory: twice the array). C-order arrays
/// (what NumPy writes unless asked) stream in chunks of the size asked.
#[derive(Debug)]
pub struct NpyReader<R> {
    r: R,
    header: NpyHeader,
    /// Byte offset of the array data from the start of the stream.
    data_offset: u64,
    rows: u64,
    row_bytes: u64,
    /// Rows handed out so far.
    done: u64,
}

impl NpyReader<BufReader<File>> {
    /// Open .npy file `path` and read its header; errors name the file.
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let file = File::open(path).map_err(io_at(path))?;
        let len = file.metadata().map_err(io_at(path))?.len();
        NpyReader::new(BufReader::with_capacity(1 << 16, file), len).map_err(|f| f.at(path))
    }
}

impl<R: Read> NpyReader<R> {
    /// Read the header of a .npy stream of exactly `total_len` bytes and
    /// check the data's size against it.
    pub fn new(mut r: R, total_len: u64) -> Result<Self, Fail> {
        let (header, prefix) = read_header(&mut r, total_len)?;
        let itemsize = header.dtype.itemsize() as u64;
        let count = element_count(&header.shape).ok_or_else(|| {
            invalid(format!(
                "the .npy header's shape {} overflows",
                shape_str(&header.shape)
            ))
        })?;
        let available = total_len - prefix;
        let needed = count.checked_mul(itemsize);
        match needed {
            Some(n) if n == available => {}
            Some(n) if n < available => {
                return Err(invalid(format!(
                    "{} unexpected bytes after the array data at byte offset {} (shape {} of {} \
                     needs {n} bytes)",
                    available - n,
                    prefix + n,
                    shape_str(&header.shape),
                    header.dtype
                )))
            }
            _ => {
                return Err(invalid(format!(
                    "truncated at byte offset {total_len}: shape {} of {} needs {} bytes of data \
                     from offset {prefix} but only {available} are present",
                    shape_str(&header.shape),
                    header.dtype,
                    needed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
                )))
            }
        }
        let (rows, row_elems) = match header.shape.split_first() {
            None => (1, 1),
            Some((&rows, rest)) => (rows, element_count(rest).unwrap_or(0)),
        };
        Ok(NpyReader {
            r,
            data_offset: prefix,
            rows,
            row_bytes: row_elems.saturating_mul(itemsize),
            header,
            done: 0,
        })
    }

    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    pub fn dtype(&self) -> DType {
        self.header.dtype
    }

    /// The array's shape with at least one dimension (a 0-d array is one
    /// row of shape []).
    pub fn shape(&self) -> Vec<u64> {
        if self.header.shape.is_empty() {
            vec![1]
        } else {
            self.header.shape.clone()
        }
    }

    /// The shape of one row (the shape without its first dimension).
    pub fn row_shape(&self) -> Vec<u64> {
        self.header.shape.get(1..).unwrap_or(&[]).to_vec()
    }

    /// Number of rows (1 for a 0-d array).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> u64 {
        self.row_bytes
    }

    /// Byte offset of the array data from the start of the stream.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// True if the array's rows are not contiguous (Fortran order, 2+
    /// dimensions): [`NpyReader::next_rows`] returns them all at once.
    pub fn whole(&self) -> bool {
        self.header.fortran && self.header.shape.len() > 1
    }

    /// Rows per chunk for chunks of at most `max_bytes` (at least one row;
    /// every row when they are not contiguous or have no bytes).
    pub fn rows_per_chunk(&self, max_bytes: usize) -> u64 {
        if self.whole() || self.row_bytes == 0 {
            return self.rows.max(1);
        }
        (max_bytes as u64 / self.row_bytes).max(1)
    }

    /// Read the next chunk of at most `max_rows` rows (all of them for
    /// [`NpyReader::whole`] arrays) into `buf` (cleared first): C-order,
    /// little-endian. Returns the number of rows, 0 once every row has been
    /// read.
    pub fn next_rows(&mut self, max_rows: u64, buf: &mut Vec<u8>) -> Result<u64, Fail> {
        buf.clear();
        let left = self.rows - self.done;
        if left == 0 {
            return Ok(0);
        }
        let n = if self.whole() {
            left
        } else {
            left.min(max_rows.max(1))
        };
        let nbytes = usize::try_from(n.saturating_mul(self.row_bytes))
            .map_err(|_| invalid("the array is too large for this machine"))?;
        buf.try_reserve_exact(nbytes)
            .map_err(|_| invalid(format!("cannot allocate {nbytes} bytes for the array data")))?;
        let start = self.data_offset + self.done * self.row_bytes;
        let got = (&mut self.r)
            .take(nbytes as u64)
            .read_to_end(buf)
            .map_err(Fail::Io)?;
        if got != nbytes {
            return Err(invalid(format!(
                "truncated at byte offset {}: the data of rows {}..{} should end at offset {}",
                start + got as u64,
                self.done,
                self.done + n,
                start + nbytes as u64
            )));
        }
        if self.header.big_endian {
            swap_to_le(buf, self.header.dtype);
        }
        if self.header.dtype == DType::Bool {
            // NumPy treats any non-zero byte as True; store canonical 0/1.
            buf.iter_mut().for_each(|b| *b = u8::from(*b != 0));
        }
        if self.whole() {
            *buf = fortran_to_c(buf, &self.header.shape, self.header.dtype.itemsize())?;
        }
        self.done += n;
        Ok(n)
    }

    /// The next chunk of rows of about `max_bytes` (see
    /// [`NpyReader::next_rows`]); None once every row has been read.
    pub fn next_chunk(&mut self, max_bytes: usize) -> Result<Option<Vec<u8>>, Fail> {
        let mut buf = Vec::new();
        let n = self.next_rows(self.rows_per_chunk(max_bytes), &mut buf)?;
        Ok((n > 0).then_some(buf))
    }

    /// Every remaining row: (dtype, shape with at least one dimension,
    /// C-order little-endian data).
    pub fn read_all(mut self) -> Result<(DType, Vec<u64>, Vec<u8>), Fail> {
        let shape = self.shape();
        let mut data = Vec::new();
        let mut buf = Vec::new();
        while self.next_rows(u64::MAX, &mut buf)? > 0 {
            if data.is_empty() {
                data = std::mem::take(&mut buf);
            } else {
                data.extend_from_slice(&buf);
            }
        }
        Ok((self.header.dtype, shape, data))
    }

    /// The underlying stream (positioned after the rows read so far).
    pub fn into_inner(self) -> R {
        self.r
    }
}

/// Parse one .npy stream of exactly `total_len` bytes: (dtype, shape with at
/// least one dimension, C-order little-endian data).
pub fn read_npy<R: Read>(r: &mut R, total_len: u64) -> Result<(DType, Vec<u64>, Vec<u8>), Fail> {
    NpyReader::new(r, total_len)?.read_all()
}

/// Read the magic, version, length and text of a .npy header from a
/// stream of `total_len` bytes: the header and the offset of the data.
pub fn read_header<R: Read>(r: &mut R, total_len: u64) -> Result<(NpyHeader, u64), Fail> {
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
            "truncated at byte offset {total_len}: the .npy header claims {header_len} bytes but \
             the file has {total_len} bytes in all"
        )));
    }
    let mut hbuf = vec![0u8; header_len];
    read_full(r, &mut hbuf, "the .npy header")?;
    let text =
        std::str::from_utf8(&hbuf).map_err(|_| invalid("the .npy header is not valid text"))?;
    Ok((parse_npy_header(text)?, prefix))
}

/// Reverse the bytes of each scalar component (complex numbers are two).
pub fn swap_to_le(data: &mut [u8], dtype: DType) {
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
                "unsupported dtype '{descr}': not supported by numvault (it stores bool, \
                 int8-int64, uint8-uint64, float16/32/64, complex64/128; not strings, objects, \
                 dates or records)"
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

/// Parse the header text (the bytes between the length field and the data)
/// with ndarray-npy's header reader, after [`clean_header`].
fn parse_npy_header(text: &str) -> Result<NpyHeader, Fail> {
    let text = clean_header(text)?;
    // ndarray-npy reads a whole header from a stream: frame the cleaned text
    // as a version 3.0 header (UTF-8 text, like the hand parser took before).
    let text_len =
        u32::try_from(text.len() + 1).map_err(|_| invalid("the .npy header is too long"))?;
    let mut framed = Vec::with_capacity(text.len() + 13);
    framed.extend_from_slice(NPY_MAGIC);
    framed.extend_from_slice(&[3, 0]);
    framed.extend_from_slice(&text_len.to_le_bytes());
    framed.extend_from_slice(text.as_bytes());
    framed.push(b'\n');
    let header = Header::from_reader(&mut framed.as_slice()).map_err(|e| header_error(&text, e))?;
    let descr = match &header.type_descriptor {
        Value::String(s) => s.as_str(),
        Value::List(_) => {
            return Err(unsupported(
                "unsupported dtype: structured (record) arrays are not supported",
            ))
        }
        other => {
            return Err(invalid(format!(
                "malformed .npy header: descr {} is not a string",
                clip(&other.to_string())
            )))
        }
    };
    let (dtype, big_endian) = parse_descr(descr)?;
    if header.shape.len() > MAX_NPY_NDIM {
        return Err(invalid(format!(
            "malformed .npy header: more than {MAX_NPY_NDIM} dimensions"
        )));
    }
    Ok(NpyHeader {
        dtype,
        big_endian,
        fortran: header.layout.is_fortran(),
        shape: header.shape.iter().map(|&d| d as u64).collect(),
    })
}

/// Deepest nesting of brackets the header may have. A header for the dtypes
/// numvault stores has two levels (the dict and the shape tuple); structured
/// dtypes, which are refused with a clear message, have up to five. The limit
/// exists because the Python-literal parser (pest, in py_literal) backtracks
/// exponentially in the nesting depth: 40 levels of `[` take it hours.
const MAX_NPY_NESTING: usize = 6;

/// Prepare the header text for the Python-literal parser:
/// - drop the `L` of Python 2 long integers (`(2L, 3L)`), as NumPy's own
///   reader does for files written under Python 2;
/// - turn line breaks outside strings into spaces (the parser takes only
///   spaces and tabs between tokens);
/// - report an unterminated string, and nesting deeper than
///   [`MAX_NPY_NESTING`], before the parser sees them.
fn clean_header(text: &str) -> Result<String, Fail> {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut depth = 0usize;
    let mut prev = ' ';
    for c in text.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
        } else {
            match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    if depth > MAX_NPY_NESTING {
                        return Err(invalid(format!(
                            "malformed .npy header: brackets nested more than \
                             {MAX_NPY_NESTING} levels deep"
                        )));
                    }
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                'L' | 'l' if prev.is_ascii_digit() => continue,
                '\n' | '\r' => {
                    out.push(' ');
                    prev = ' ';
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
        prev = c;
    }
    if quote.is_some() {
        return Err(invalid("malformed .npy header: unterminated string"));
    }
    Ok(out)
}

/// Our message for an error of ndarray-npy's header reader.
fn header_error(text: &str, e: ReadHeaderError) -> Fail {
    let msg = match e {
        ReadHeaderError::Parse(ParseHeaderError::UnknownKey(k)) => {
            format!("unexpected key {}", clip(&k.to_string()))
        }
        ReadHeaderError::Parse(ParseHeaderError::MissingKey(_)) => {
            "needs 'descr', 'fortran_order' and 'shape'".to_string()
        }
        ReadHeaderError::Parse(ParseHeaderError::IllegalValue { key, value }) => match key.as_str()
        {
            "shape" => format!(
                "bad dimension in shape {} (expected a tuple of non-negative integers)",
                clip(&value.to_string())
            ),
            "fortran_order" => "fortran_order is not True or False".to_string(),
            _ => format!("bad value for '{key}': {}", clip(&value.to_string())),
        },
        ReadHeaderError::Parse(ParseHeaderError::MetaNotDict(_)) => {
            "the header is not a dictionary".to_string()
        }
        ReadHeaderError::Parse(ParseHeaderError::DictParse(p)) => {
            // py_literal's message is pest's multi-line report in grammar
            // terms; keep its column and quote the text around it.
            let report = p.to_string();
            let column = report
                .split_once("--> ")
                .and_then(|(_, s)| s.split(|c: char| c.is_whitespace()).next())
                .and_then(|lc| lc.split_once(':'))
                .and_then(|(_, c)| c.parse::<usize>().ok())
                .unwrap_or(1);
            let from = text
                .char_indices()
                .nth(column.saturating_sub(24))
                .map_or(text.len(), |(i, _)| i);
            format!(
                "syntax error at column {column}, near \"{}\"",
                clip(text[from..].trim_end())
            )
        }
        other => other.to_string(),
    };
    invalid(format!("malformed .npy header: {msg}"))
}

/// The complete .npy header (magic through padding newline) for a
/// little-endian C-order array, written by ndarray-npy: version 1.0, or 2.0
/// once the header no longer fits in 64 KiB; the data starts 64-byte aligned.
pub fn npy_header(dtype: DType, shape: &[u64]) -> Result<Vec<u8>, Fail> {
    let too_big = || invalid("the array is too large for this machine");
    let shape = shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| too_big()))
        .collect::<Result<Vec<usize>, Fail>>()?;
    Header {
        type_descriptor: Value::String(npy_descr(dtype).to_string()),
        layout: Layout::Standard,
        shape,
    }
    .to_bytes()
    .map_err(|e| invalid(format!("cannot write the .npy header: {e}")))
}
