//! NumPy `.npy`: one array per file.
//!
//! The header is parsed by hand (a small, strict parser for the Python
//! dict literal NumPy writes): it keeps the element bytes as they are, which
//! makes every numvault dtype (bool, float16, complex) and both byte orders
//! work without per-type conversions, and it lets us cap every size up front.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use numvault::DType;

use super::{element_count, invalid, io_at, shape_str, unsupported, Fail, FormatError, Loaded};

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

pub(super) const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Largest header we accept (NumPy itself refuses more than 10 000 bytes by
/// default).
const MAX_NPY_HEADER: usize = 1 << 20;
/// NumPy's own limit on dimensions.
pub(super) const MAX_NPY_NDIM: usize = 64;

pub(super) fn load_npy(path: &Path) -> Result<Loaded, FormatError> {
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
pub(super) fn read_npy<R: Read>(
    r: &mut R,
    total_len: u64,
) -> Result<(DType, Vec<u64>, Vec<u8>), Fail> {
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
pub(super) fn swap_to_le(data: &mut [u8], dtype: DType) {
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
pub(super) fn npy_header(dtype: DType, shape: &[u64]) -> Vec<u8> {
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
