//! Parsers of NumPack's on-disk files, on bytes (no I/O): `metadata.npkm`,
//! `deleted_<name>.npkb` and `data_<name>.npkseg`. Every malformed input is
//! an error with the byte offset; none panics (fuzzed and bit-flipped in the
//! tests).
//!
//! The format, as NumPack 0.5.2, 0.6.0 and 0.7.0 write it (see
//! docs/MIGRATING.md for the differences between versions):
//!
//! `metadata.npkm`, little-endian: magic `u32` 0x424B504E ("NPKB"), version
//! `u32` (1), total size `u64`, array count `u32`, then per array: name
//! (`u32` length + UTF-8), shape (`u32` ndim + `u64` each), data file
//! (`u32` length + UTF-8, relative to the store), last modified `u64` (µs),
//! size in bytes `u64`, dtype code `u8`, compression algorithm `u8`,
//! compression level `u32`, original size `u64`, compressed size `u64`, a
//! block-compression flag `u8` and, if set, enabled `u8`, block size `u64`,
//! block count `u64`, `u32` n and n × (offset, original, compressed `u64`).
//!
//! `deleted_<name>.npkb`: total rows `u64`, deleted count `u64`, then
//! ceil(rows / 64) `u64` words, bit `r % 64` of word `r / 64` set when row
//! `r` is live. (An older headerless form, words only, is read as NumPack
//! reads it.)
//!
//! `data_<name>.npkseg` (0.7 segmented arrays): JSON
//! `{"version": 1, "segments": [{"file", "rows", "bytes"}]}`, the row-major
//! rows split over the listed files in order.

use serde::Deserialize;

/// `metadata.npkm` magic ("NPKB" little-endian).
pub const MAGIC: u32 = 0x424B_504E;
/// The only metadata version NumPack has written.
pub const METADATA_VERSION: u32 = 1;
/// The only segment manifest version NumPack has written.
pub const MANIFEST_VERSION: u32 = 1;
/// Dimensions beyond this are refused (NumPy's own limit is 64).
pub const MAX_NDIM: usize = 64;

/// A malformed input: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: u64,
    pub array: Option<String>,
    pub detail: String,
}

impl ParseError {
    fn new(offset: usize, array: Option<&str>, detail: impl Into<String>) -> ParseError {
        ParseError {
            offset: offset as u64,
            array: array.map(str::to_string),
            detail: detail.into(),
        }
    }
}

/// Block-compression info of an array (NumPack never writes it; parsed to
/// refuse it clearly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    pub enabled: bool,
    pub block_size: u64,
    pub num_blocks: u64,
    pub blocks: u32,
}

/// One array's record in `metadata.npkm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayMeta {
    pub name: String,
    pub shape: Vec<u64>,
    pub data_file: String,
    pub last_modified_us: u64,
    pub size_bytes: u64,
    pub dtype_code: u8,
    pub compression: u8,
    pub compression_level: u32,
    pub original_size: u64,
    pub compressed_size: u64,
    pub block_compression: Option<BlockInfo>,
    /// Byte offset of the record in the file.
    pub offset: u64,
}

/// A parsed `metadata.npkm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub version: u32,
    pub total_size: u64,
    /// In file order.
    pub arrays: Vec<ArrayMeta>,
}

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    array: Option<&'a str>,
}

impl<'a> Cur<'a> {
    fn err(&self, detail: impl Into<String>) -> ParseError {
        ParseError::new(self.pos, self.array, detail)
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ParseError> {
        let left = self.b.len() - self.pos;
        if n > left {
            return Err(self.err(format!(
                "truncated: {what} needs {n} bytes, {left} left in the file"
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ParseError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, ParseError> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, ParseError> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    fn flag(&mut self, what: &str) -> Result<bool, ParseError> {
        let at = self.pos;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(ParseError::new(
                at,
                self.array,
                format!("{what} is {v}, not 0 or 1"),
            )),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, ParseError> {
        let len = self.u32(&format!("the length of {what}"))? as usize;
        let at = self.pos;
        let s = self.take(len, what)?;
        String::from_utf8(s.to_vec())
            .map_err(|e| ParseError::new(at, self.array, format!("{what} is not UTF-8: {e}")))
    }
}

/// Parse `metadata.npkm`. Checks the structure only (magic, version,
/// lengths, flags, no trailing bytes, no duplicate names); what the records
/// say is checked against the data files by the store.
pub fn parse_metadata(b: &[u8]) -> Result<Metadata, ParseError> {
    let mut c = Cur {
        b,
        pos: 0,
        array: None,
    };
    let magic = c.u32("the magic number")?;
    if magic != MAGIC {
        return Err(ParseError::new(
            0,
            None,
            format!("magic number {magic:#010x} is not NumPack's {MAGIC:#010x} (\"NPKB\")"),
        ));
    }
    let version = c.u32("the format version")?;
    if version != METADATA_VERSION {
        return Err(ParseError::new(
            4,
            None,
            format!("metadata format version {version} is not supported (NumPack 0.5-0.7 write {METADATA_VERSION})"),
        ));
    }
    let total_size = c.u64("the total size")?;
    let count = c.u32("the array count")?;
    let mut arrays: Vec<ArrayMeta> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..count {
        let offset = c.pos;
        c.array = None;
        let name = c.string("an array name").map_err(|e| ParseError {
            detail: format!("array record {i} of {count}: {}", e.detail),
            ..e
        })?;
        // Borrow the name for error messages while parsing the rest.
        let name_ref: &str = &name;
        let mut r = Cur {
            b,
            pos: c.pos,
            array: Some(name_ref),
        };
        let ndim = r.u32("the number of dimensions")? as usize;
        if ndim > MAX_NDIM {
            return Err(ParseError::new(
                r.pos - 4,
                Some(name_ref),
                format!("{ndim} dimensions (at most {MAX_NDIM})"),
            ));
        }
        let mut shape = Vec::with_capacity(ndim);
        for _ in 0..ndim {
            shape.push(r.u64("a dimension")?);
        }
        let data_file = r.string("the data file name")?;
        let last_modified_us = r.u64("the modification time")?;
        let size_bytes = r.u64("the size in bytes")?;
        let dtype_code = r.u8("the dtype code")?;
        let compression = r.u8("the compression algorithm")?;
        let compression_level = r.u32("the compression level")?;
        let original_size = r.u64("the original size")?;
        let compressed_size = r.u64("the compressed size")?;
        let block_compression = if r.flag("the block-compression flag")? {
            let enabled = r.flag("the block-compression enabled flag")?;
            let block_size = r.u64("the block size")?;
            let num_blocks = r.u64("the block count")?;
            let blocks = r.u32("the block list length")?;
            r.take((blocks as usize).saturating_mul(24), "the block list")?;
            Some(BlockInfo {
                enabled,
                block_size,
                num_blocks,
                blocks,
            })
        } else {
            None
        };
        c.pos = r.pos;
        if !seen.insert(name.clone()) {
            return Err(ParseError::new(
                offset,
                Some(&name),
                "the array is listed twice",
            ));
        }
        arrays.push(ArrayMeta {
            name,
            shape,
            data_file,
            last_modified_us,
            size_bytes,
            dtype_code,
            compression,
            compression_level,
            original_size,
            compressed_size,
            block_compression,
            offset: offset as u64,
        });
    }
    if c.pos != b.len() {
        return Err(ParseError::new(
            c.pos,
            None,
            format!(
                "{} bytes follow the last of the {count} array records",
                b.len() - c.pos
            ),
        ));
    }
    Ok(Metadata {
        version,
        total_size,
        arrays,
    })
}

/// The numvault dtype of a NumPack dtype code.
pub fn dtype_of(code: u8) -> Option<numvault::DType> {
    use numvault::DType as D;
    Some(match code {
        0 => D::Bool,
        1 => D::U8,
        2 => D::U16,
        3 => D::U32,
        4 => D::U64,
        5 => D::I8,
        6 => D::I16,
        7 => D::I32,
        8 => D::I64,
        9 => D::F16,
        10 => D::F32,
        11 => D::F64,
        12 => D::Complex64,
        13 => D::Complex128,
        _ => return None,
    })
}

/// Which rows of an array are live (`deleted_<name>.npkb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
    rows: u64,
    live: u64,
    /// The deleted count the header records (`None` for the headerless
    /// form). NumPack's append can leave it off from the bits; the bits
    /// decide, as in NumPack's `load`.
    pub header_deleted: Option<u64>,
}

impl Bitmap {
    /// Rows covered (live and deleted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Live rows.
    pub fn live_rows(&self) -> u64 {
        self.live
    }

    /// Is `row` live?
    pub fn is_live(&self, row: u64) -> bool {
        if row >= self.rows {
            return false;
        }
        self.words
            .get((row / 64) as usize)
            .is_some_and(|w| (w >> (row % 64)) & 1 == 1)
    }
}

fn words_for(rows: u64) -> u64 {
    rows.div_ceil(64)
}

fn read_words(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|w| {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            u64::from_le_bytes(a)
        })
        .collect()
}

/// Parse a deletion bitmap of an array of `rows` rows (the metadata's
/// first dimension).
pub fn parse_bitmap(b: &[u8], rows: u64) -> Result<Bitmap, ParseError> {
    let len = b.len() as u64;
    if len < 16 {
        return Err(ParseError::new(
            0,
            None,
            format!("deletion bitmap of {len} bytes is shorter than its 16-byte header"),
        ));
    }
    let mut c = Cur {
        b,
        pos: 0,
        array: None,
    };
    let total = c.u64("the bitmap row count")?;
    let deleted = c.u64("the bitmap deleted count")?;
    // NumPack's rule: the header form when the size matches its row count.
    let header_len = words_for(total)
        .checked_mul(8)
        .and_then(|w| w.checked_add(16));
    let (words, header_deleted) = if header_len == Some(len) {
        if total != rows {
            return Err(ParseError::new(
                0,
                None,
                format!(
                    "deletion bitmap covers {total} rows, the metadata says the array has {rows}"
                ),
            ));
        }
        if deleted > total {
            return Err(ParseError::new(
                8,
                None,
                format!("deletion bitmap counts {deleted} deleted of {total} rows"),
            ));
        }
        (read_words(&b[16..]), Some(deleted))
    } else {
        // Headerless (older) form: words only, exactly enough for `rows`.
        let need = words_for(rows).saturating_mul(8);
        if !len.is_multiple_of(8) || len != need || total == rows {
            let expect = words_for(rows).saturating_mul(8).saturating_add(16);
            return Err(ParseError::new(
                len.min(expect) as usize,
                None,
                format!(
                    "deletion bitmap has {len} bytes; an array of {rows} rows needs {expect} (truncated or damaged)"
                ),
            ));
        }
        (read_words(b), None)
    };
    let mut live = 0u64;
    let full = (rows / 64) as usize;
    for w in words.iter().take(full) {
        live += u64::from(w.count_ones());
    }
    if !rows.is_multiple_of(64) {
        if let Some(w) = words.get(full) {
            let mask = (1u64 << (rows % 64)) - 1;
            live += u64::from((w & mask).count_ones());
        }
    }
    Ok(Bitmap {
        words,
        rows,
        live,
        header_deleted,
    })
}

/// One segment file of a segmented array.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SegmentEntry {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
}

/// A parsed `data_<name>.npkseg`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SegmentManifest {
    pub version: u32,
    pub segments: Vec<SegmentEntry>,
}

/// Parse a segment manifest (JSON).
pub fn parse_manifest(b: &[u8]) -> Result<SegmentManifest, ParseError> {
    let m: SegmentManifest = serde_json::from_slice(b).map_err(|e| {
        // serde_json reports line and column; turn them into a byte offset.
        let mut off = 0usize;
        for (i, line) in b.split(|&c| c == b'\n').enumerate() {
            if i + 1 == e.line() {
                off += e.column().saturating_sub(1).min(line.len());
                break;
            }
            off += line.len() + 1;
        }
        ParseError::new(off.min(b.len()), None, format!("segment manifest: {e}"))
    })?;
    if m.version != MANIFEST_VERSION {
        return Err(ParseError::new(
            0,
            None,
            format!(
                "segment manifest version {} is not supported (NumPack 0.7 writes {MANIFEST_VERSION})",
                m.version
            ),
        ));
    }
    Ok(m)
}

/// `rel` as a path inside the store: relative, no `..`, `.`, root or drive
/// components. NumPack writes plain names (`data_x.npkd`,
/// `data_x_segments/seg_000000.npkd`).
pub fn safe_relative(rel: &str) -> Result<std::path::PathBuf, String> {
    use std::path::{Component, Path};
    if rel.is_empty() {
        return Err("the file name is empty".into());
    }
    if rel.contains('\0') {
        return Err(format!("file name {rel:?} contains NUL"));
    }
    let p = Path::new(rel);
    for comp in p.components() {
        match comp {
            Component::Normal(_) => {}
            _ => {
                return Err(format!(
                    "file name {rel:?} leaves the store directory (absolute or with '..')"
                ))
            }
        }
    }
    Ok(p.to_path_buf())
}
