//! A NumPack store directory, opened and checked: every array's record, its
//! data file(s) and deletion bitmap, before a single row is read.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use numvault::DType;

use crate::error::{Error, Result};
use crate::format::{self, ArrayMeta, Bitmap};

/// Metadata, bitmaps and manifests larger than this are refused (a real one
/// is a few bytes per array or row).
pub const MAX_SIDE_FILE: u64 = 1 << 30;

/// Where an array's rows are.
#[derive(Debug, Clone)]
pub enum Layout {
    /// One file of all the rows (NumPack 0.5, 0.6, and 0.7 below its segment
    /// size).
    Single { path: PathBuf },
    /// Rows split over segment files in order (NumPack 0.7).
    Segmented {
        manifest: PathBuf,
        segments: Vec<Segment>,
    },
}

/// One segment file.
#[derive(Debug, Clone)]
pub struct Segment {
    pub path: PathBuf,
    pub rows: u64,
}

/// One array of a NumPack store, checked against its files.
#[derive(Debug, Clone)]
pub struct NumPackArray {
    pub name: String,
    pub dtype: DType,
    /// As NumPack stores it: the first dimension counts deleted rows too.
    pub physical_shape: Vec<u64>,
    pub row_bytes: u64,
    pub layout: Layout,
    /// `None` when no row was ever deleted.
    pub deleted: Option<Bitmap>,
    /// The deletion bitmap file, if any.
    pub bitmap_path: Option<PathBuf>,
    pub meta: ArrayMeta,
}

impl NumPackArray {
    /// Rows NumPack stores, deleted ones included.
    pub fn physical_rows(&self) -> u64 {
        self.physical_shape.first().copied().unwrap_or(1)
    }

    /// Rows NumPack's `load` returns.
    pub fn live_rows(&self) -> u64 {
        match &self.deleted {
            Some(b) => b.live_rows(),
            None => self.physical_rows(),
        }
    }

    /// Rows deleted (not imported).
    pub fn deleted_rows(&self) -> u64 {
        self.physical_rows() - self.live_rows()
    }

    /// The shape NumPack's `load` returns (and the import creates).
    pub fn shape(&self) -> Vec<u64> {
        let mut s = self.physical_shape.clone();
        if let Some(first) = s.first_mut() {
            *first = self.live_rows();
        }
        s
    }

    /// Bytes of the live rows.
    pub fn live_bytes(&self) -> u64 {
        self.live_rows().saturating_mul(self.row_bytes)
    }

    /// True if stored as segments.
    pub fn is_segmented(&self) -> bool {
        matches!(self.layout, Layout::Segmented { .. })
    }
}

/// A NumPack store directory.
#[derive(Debug, Clone)]
pub struct NumPackStore {
    pub dir: PathBuf,
    pub metadata_path: PathBuf,
    pub metadata: format::Metadata,
    /// Sorted by name.
    pub arrays: Vec<NumPackArray>,
}

/// True if `dir` looks like a NumPack store (holds `metadata.npkm`).
pub fn is_numpack_store(dir: &Path) -> bool {
    dir.join("metadata.npkm").is_file()
}

fn read_side_file(path: &Path, array: Option<&str>) -> Result<Vec<u8>> {
    let f = fs::File::open(path).map_err(|e| Error::io(path, array, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, array, e))?.len();
    if len > MAX_SIDE_FILE {
        return Err(Error::corrupt(
            path,
            array,
            0,
            format!("{len} bytes is more than such a file can be ({MAX_SIDE_FILE})"),
        ));
    }
    let mut b = Vec::new();
    f.take(MAX_SIDE_FILE + 1)
        .read_to_end(&mut b)
        .map_err(|e| Error::io(path, array, e))?;
    Ok(b)
}

fn parse_err(path: &Path, e: format::ParseError, array: Option<&str>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        array: e.array.or(array.map(str::to_string)),
        offset: e.offset,
        detail: e.detail,
    }
}

/// Length of a data file that must hold at least `need` bytes.
fn check_data_file(path: &Path, array: &str, need: u64) -> Result<()> {
    let m = fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::corrupt(path, Some(array), 0, "the data file is missing")
        } else {
            Error::io(path, Some(array), e)
        }
    })?;
    if !m.is_file() {
        return Err(Error::corrupt(
            path,
            Some(array),
            0,
            "the data file is not a regular file",
        ));
    }
    if m.len() < need {
        return Err(Error::corrupt(
            path,
            Some(array),
            m.len(),
            format!(
                "truncated: the data file has {} bytes, the array needs {need}",
                m.len()
            ),
        ));
    }
    Ok(())
}

impl NumPackStore {
    /// Open `dir` and check every array: its record, the size of its data
    /// file(s), its segment manifest and deletion bitmap. Reads no rows.
    pub fn open(dir: &Path) -> Result<NumPackStore> {
        let metadata_path = dir.join("metadata.npkm");
        if !dir.is_dir() {
            return Err(Error::io(
                dir,
                None,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            ));
        }
        if !metadata_path.exists() {
            return Err(Error::NotNumPack {
                path: dir.to_path_buf(),
            });
        }
        let bytes = read_side_file(&metadata_path, None)?;
        let metadata =
            format::parse_metadata(&bytes).map_err(|e| parse_err(&metadata_path, e, None))?;
        let mut arrays = Vec::with_capacity(metadata.arrays.len());
        for m in &metadata.arrays {
            arrays.push(Self::check_array(dir, &metadata_path, m)?);
        }
        arrays.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(NumPackStore {
            dir: dir.to_path_buf(),
            metadata_path,
            metadata,
            arrays,
        })
    }

    fn check_array(dir: &Path, mpath: &Path, m: &ArrayMeta) -> Result<NumPackArray> {
        let name = m.name.as_str();
        let bad = |detail: String| Error::corrupt(mpath, Some(name), m.offset, detail);
        let dtype = format::dtype_of(m.dtype_code)
            .ok_or_else(|| bad(format!("unknown dtype code {}", m.dtype_code)))?;
        if m.compression != 0 || m.block_compression.is_some() {
            return Err(Error::unsupported(
                mpath,
                Some(name),
                format!(
                    "the array is stored compressed (algorithm {}, block info {}); NumPack 0.5-0.7 never write compressed arrays",
                    m.compression,
                    m.block_compression.is_some()
                ),
            ));
        }
        if m.shape.is_empty() {
            return Err(Error::unsupported(
                mpath,
                Some(name),
                "a 0-d array: numvault stores arrays of at least one dimension",
            ));
        }
        let too_big = || bad(format!("shape {:?} is larger than 2^64 bytes", m.shape));
        let row_bytes = m.shape[1..]
            .iter()
            .try_fold(dtype.itemsize() as u64, |a, &d| a.checked_mul(d))
            .ok_or_else(too_big)?;
        let rows = m.shape[0];
        let total = row_bytes.checked_mul(rows).ok_or_else(too_big)?;
        if total != m.size_bytes {
            return Err(bad(format!(
                "shape {:?} of {} makes {total} bytes, the record says {}",
                m.shape, dtype, m.size_bytes
            )));
        }
        let rel = format::safe_relative(&m.data_file).map_err(&bad)?;
        let data_path = dir.join(&rel);
        let layout = if m.data_file.ends_with(".npkseg") {
            Self::check_segments(dir, &data_path, name, rows, row_bytes)?
        } else {
            check_data_file(&data_path, name, total)?;
            Layout::Single { path: data_path }
        };
        let bitmap_rel = format::safe_relative(&format!("deleted_{name}.npkb")).map_err(&bad)?;
        let bitmap_path = dir.join(bitmap_rel);
        let (deleted, bitmap_path) = if bitmap_path.exists() {
            let b = read_side_file(&bitmap_path, Some(name))?;
            let bm = format::parse_bitmap(&b, rows)
                .map_err(|e| parse_err(&bitmap_path, e, Some(name)))?;
            (Some(bm), Some(bitmap_path))
        } else {
            (None, None)
        };
        Ok(NumPackArray {
            name: m.name.clone(),
            dtype,
            physical_shape: m.shape.clone(),
            row_bytes,
            layout,
            deleted,
            bitmap_path,
            meta: m.clone(),
        })
    }

    fn check_segments(
        dir: &Path,
        manifest_path: &Path,
        name: &str,
        rows: u64,
        row_bytes: u64,
    ) -> Result<Layout> {
        let b = read_side_file(manifest_path, Some(name))?;
        let m = format::parse_manifest(&b).map_err(|e| parse_err(manifest_path, e, Some(name)))?;
        let mut segments = Vec::with_capacity(m.segments.len());
        let mut sum = 0u64;
        for (i, s) in m.segments.iter().enumerate() {
            let bad = |detail: String| {
                Error::corrupt(
                    manifest_path,
                    Some(name),
                    0,
                    format!("segment {i}: {detail}"),
                )
            };
            let bytes = s
                .rows
                .checked_mul(row_bytes)
                .ok_or_else(|| bad(format!("{} rows overflow", s.rows)))?;
            if bytes != s.bytes {
                return Err(bad(format!(
                    "{} rows of {row_bytes} bytes make {bytes} bytes, the manifest says {}",
                    s.rows, s.bytes
                )));
            }
            sum = sum
                .checked_add(s.rows)
                .ok_or_else(|| bad("row counts overflow".into()))?;
            if s.rows == 0 {
                continue; // NumPack skips empty segments too
            }
            let rel = format::safe_relative(&s.file).map_err(&bad)?;
            let path = dir.join(rel);
            check_data_file(&path, name, bytes)?;
            segments.push(Segment { path, rows: s.rows });
        }
        if sum != rows {
            return Err(Error::corrupt(
                manifest_path,
                Some(name),
                0,
                format!("the segments hold {sum} rows, the metadata says {rows}"),
            ));
        }
        Ok(Layout::Segmented {
            manifest: manifest_path.to_path_buf(),
            segments,
        })
    }

    /// The array named `name`.
    pub fn get(&self, name: &str) -> Option<&NumPackArray> {
        self.arrays.iter().find(|a| a.name == name)
    }

    /// Stream the live rows of `a` (those NumPack's `load` returns), in
    /// order, in chunks of at most `chunk_bytes` (at least one row), to
    /// `sink`. Memory: one chunk. Bool values are checked to be 0 or 1.
    pub fn stream_rows<E: From<Error>>(
        &self,
        a: &NumPackArray,
        chunk_bytes: usize,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if a.row_bytes == 0 || a.live_rows() == 0 {
            return Ok(());
        }
        let rows_per_chunk = (chunk_bytes as u64 / a.row_bytes).max(1);
        let buf_bytes = rows_per_chunk.saturating_mul(a.row_bytes);
        let oom = || Error::OutOfMemory {
            array: a.name.clone(),
            bytes: buf_bytes,
        };
        let buf_len = usize::try_from(buf_bytes).map_err(|_| oom())?;
        let mut buf: Vec<u8> = Vec::new();
        buf.try_reserve_exact(buf_len).map_err(|_| oom())?;
        buf.resize(buf_len, 0);
        let parts: Vec<(&Path, u64)> = match &a.layout {
            Layout::Single { path } => vec![(path.as_path(), a.physical_rows())],
            Layout::Segmented { segments, .. } => segments
                .iter()
                .map(|s| (s.path.as_path(), s.rows))
                .collect(),
        };
        let rb = a.row_bytes as usize;
        let mut physical = 0u64; // first row of the next read
        for (path, rows) in parts {
            let mut f = fs::File::open(path).map_err(|e| Error::io(path, Some(&a.name), e))?;
            let mut done = 0u64;
            while done < rows {
                let n = (rows - done).min(rows_per_chunk);
                let len = n as usize * rb;
                let off = done * a.row_bytes;
                read_at(&mut f, &mut buf[..len], off, path, &a.name)?;
                if a.dtype == DType::Bool {
                    if let Some(p) = buf[..len].iter().position(|&v| v > 1) {
                        return Err(Error::corrupt(
                            path,
                            Some(&a.name),
                            off + p as u64,
                            format!("a bool value is {} (not 0 or 1)", buf[p]),
                        )
                        .into());
                    }
                }
                let out_len = match &a.deleted {
                    None => len,
                    Some(bm) => {
                        let mut w = 0usize;
                        for i in 0..n as usize {
                            if bm.is_live(physical + i as u64) {
                                if w != i {
                                    buf.copy_within(i * rb..(i + 1) * rb, w * rb);
                                }
                                w += 1;
                            }
                        }
                        w * rb
                    }
                };
                if out_len > 0 {
                    sink(&buf[..out_len])?;
                }
                done += n;
                physical += n;
            }
        }
        Ok(())
    }

    /// Read the live rows of `a` whole (for small arrays and tests).
    pub fn read_array(&self, a: &NumPackArray) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.stream_rows(a, 1 << 20, |rows| {
            out.extend_from_slice(rows);
            Ok::<(), Error>(())
        })?;
        Ok(out)
    }
}

fn read_at(f: &mut fs::File, buf: &mut [u8], off: u64, path: &Path, array: &str) -> Result<()> {
    f.seek(SeekFrom::Start(off))
        .map_err(|e| Error::io(path, Some(array), e))?;
    let mut got = 0usize;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(Error::corrupt(
                    path,
                    Some(array),
                    off + got as u64,
                    format!(
                        "truncated: the file ended {} bytes short of the array's rows (did it shrink during the import?)",
                        buf.len() - got
                    ),
                ))
            }
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, Some(array), e)),
        }
    }
    Ok(())
}
