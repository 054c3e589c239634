//! Source files for `numvault import` and target files for `numvault export`:
//! NumPy `.npy` / `.npz`, CSV and Parquet.
//!
//! Everything here is driven by untrusted file contents, so nothing panics on
//! bad input and no allocation is sized by a number read from a file unless
//! that number has been checked against the file's size first.
//!
//! One file per format (npy.rs, npz.rs, csv.rs, parquet.rs); this module
//! holds what they share and dispatches on the file extension. The tests are
//! in tests/, one file per format as well.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use numvault::DType;

use self::csv::{load_csv, write_csv};
use self::npy::{load_npy, npy_header};
use self::npz::load_npz;
use self::parquet::{load_parquet, write_parquet};

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

/// The first 40 characters of `s` (with "..." if there were more), to
/// quote file contents in a message.
fn clip(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        t.push_str("...");
    }
    t
}

/// Copy a slice into an array of the same length (never panics; a short slice
/// leaves zeros).
fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.iter_mut().zip(b).for_each(|(d, s)| *d = *s);
    a
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

mod csv;
mod npy;
mod npz;
mod parquet;
#[cfg(test)]
mod tests;

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
            w.write_all(&npy_header(dtype, shape)?).map_err(Fail::Io)?;
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
