//! NumPy `.npy` / `.npz` and CSV: the one implementation of these formats,
//! used by the `numvault` command (`import` / `export`, crate numvault-cli)
//! and by the Python package's `numvault.io` (through `numvault._core`).
//!
//! Everything here is driven by untrusted file contents, so nothing panics on
//! bad input and no allocation is sized by a number read from a file unless
//! that number has been checked against the file's size first.
//!
//! Readers stream: [`npy::NpyReader`] parses the header, checks the sizes
//! against the file and then hands out rows in chunks of bounded size
//! (C-order, little-endian, whatever the file's layout); [`npz::NpzReader`]
//! does the same for each member of an archive. The whole-file loaders
//! ([`npy::load_npy`], [`npz::load_npz`], [`csv::load_csv`]) are built on
//! them for callers that want the arrays in memory.
//!
//! Parquet is not here: its reader and writer (the `parquet` crate, which
//! brings Arrow's types) live in numvault-cli only, so that the Python
//! extension does not link them; Python reads Parquet with pyarrow.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use numvault::DType;

pub mod csv;
pub mod npy;
pub mod npz;
pub mod printf;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;

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

impl FormatError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FormatError::Io { path, .. }
            | FormatError::UnknownFormat { path }
            | FormatError::ExportUnsupported { path, .. }
            | FormatError::Invalid { path, .. }
            | FormatError::Unsupported { path, .. } => path,
        }
    }
}

/// An error before the path is attached (see [`Fail::at`]).
#[derive(Debug)]
pub enum Fail {
    Invalid(String),
    Unsupported(String),
    Io(io::Error),
}

impl Fail {
    /// The error about file `path`.
    pub fn at(self, path: &Path) -> FormatError {
        let path = path.to_path_buf();
        match self {
            Fail::Invalid(detail) => FormatError::Invalid { path, detail },
            Fail::Unsupported(detail) => FormatError::Unsupported { path, detail },
            Fail::Io(source) => FormatError::Io { path, source },
        }
    }

    /// Prefix the message (e.g. with the npz member); I/O errors inside a
    /// container are reported as damage to that member.
    pub fn context(self, what: &str) -> Fail {
        match self {
            Fail::Invalid(m) => Fail::Invalid(format!("{what}: {m}")),
            Fail::Unsupported(m) => Fail::Unsupported(format!("{what}: {m}")),
            Fail::Io(e) => Fail::Invalid(format!("{what}: {e}")),
        }
    }
}

pub fn invalid(msg: impl Into<String>) -> Fail {
    Fail::Invalid(msg.into())
}

pub fn unsupported(msg: impl Into<String>) -> Fail {
    Fail::Unsupported(msg.into())
}

pub fn io_at(path: &Path) -> impl FnOnce(io::Error) -> FormatError + '_ {
    move |source| FormatError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Run a third-party decoder, turning a panic inside it into an error (the
/// decoders are meant not to panic on bad input; this is a backstop).
pub fn guarded<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, FormatError>,
) -> Result<T, FormatError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(invalid("the decoder failed on malformed data").at(path)),
    }
}

/// Product of a shape, None on overflow.
pub fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

pub fn shape_str(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// The first 40 characters of `s` (with "..." if there were more), to
/// quote file contents in a message.
pub fn clip(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        t.push_str("...");
    }
    t
}

/// Copy a slice into an array of the same length (never panics; a short slice
/// leaves zeros).
pub fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.iter_mut().zip(b).for_each(|(d, s)| *d = *s);
    a
}
