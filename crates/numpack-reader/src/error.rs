//! The one error type of the reader: every message names the file, and where
//! it applies the array and the byte offset.

use std::fmt;
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading a NumPack store or importing it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The directory holds no `metadata.npkm`.
    NotNumPack { path: PathBuf },
    /// An I/O error other than a short file.
    Io {
        path: PathBuf,
        array: Option<String>,
        source: std::io::Error,
    },
    /// The store's files are malformed, truncated or inconsistent.
    Corrupt {
        path: PathBuf,
        array: Option<String>,
        offset: u64,
        detail: String,
    },
    /// Well-formed but not something this reader imports (compressed data, a
    /// 0-d array, a name numvault refuses, ...).
    Unsupported {
        path: PathBuf,
        array: Option<String>,
        detail: String,
    },
    /// Memory for one chunk of rows could not be had.
    OutOfMemory { array: String, bytes: u64 },
    /// The progress callback stopped the import (nothing was committed).
    Cancelled(String),
    /// The numvault store refused the import (nothing was committed).
    Target {
        array: Option<String>,
        source: numvault::Error,
    },
}

impl Error {
    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        array: Option<&str>,
        offset: u64,
        detail: impl Into<String>,
    ) -> Error {
        Error::Corrupt {
            path: path.into(),
            array: array.map(str::to_string),
            offset,
            detail: detail.into(),
        }
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        array: Option<&str>,
        source: std::io::Error,
    ) -> Error {
        Error::Io {
            path: path.into(),
            array: array.map(str::to_string),
            source,
        }
    }

    pub(crate) fn unsupported(
        path: impl Into<PathBuf>,
        array: Option<&str>,
        detail: impl Into<String>,
    ) -> Error {
        Error::Unsupported {
            path: path.into(),
            array: array.map(str::to_string),
            detail: detail.into(),
        }
    }

    /// True for damage of the NumPack store (corrupt or truncated files).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }
}

fn array_part(array: &Option<String>) -> String {
    match array {
        Some(a) => format!(", array '{a}'"),
        None => String::new(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotNumPack { path } => write!(
                f,
                "{}: not a NumPack store (no metadata.npkm in the directory)",
                path.display()
            ),
            Error::Io {
                path,
                array,
                source,
            } => write!(f, "{}{}: {source}", path.display(), array_part(array)),
            Error::Corrupt {
                path,
                array,
                offset,
                detail,
            } => write!(
                f,
                "corrupt NumPack store: {}{}, at byte {offset}: {detail}",
                path.display(),
                array_part(array)
            ),
            Error::Unsupported {
                path,
                array,
                detail,
            } => write!(
                f,
                "cannot import from NumPack store: {}{}: {detail}",
                path.display(),
                array_part(array)
            ),
            Error::OutOfMemory { array, bytes } => write!(
                f,
                "array '{array}': could not allocate {bytes} bytes for one chunk of rows"
            ),
            Error::Cancelled(why) => write!(f, "import cancelled: {why}"),
            Error::Target { array, source } => match array {
                Some(a) => write!(f, "importing array '{a}': {source}"),
                None => write!(f, "{source}"),
            },
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Target { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<numvault::Error> for Error {
    fn from(source: numvault::Error) -> Error {
        Error::Target {
            array: None,
            source,
        }
    }
}
