//! Source files for `numvault import` and target files for `numvault export`:
//! NumPy `.npy` / `.npz`, CSV and Parquet.
//!
//! Everything here is driven by untrusted file contents, so nothing panics on
//! bad input and no allocation is sized by a number read from a file unless
//! that number has been checked against the file's size first.
//!
//! .npy, .npz and CSV are read and written by the crate numvault-formats
//! (shared with the Python package's numvault.io); Parquet by parquet.rs
//! here. This module dispatches on the file extension and writes exports
//! atomically. The tests are in tests/, one file per format.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use numvault::DType;
// .npy, .npz and CSV: the shared implementation (crate numvault-formats,
// also behind numvault.io in Python); Parquet stays here (parquet.rs), so
// that the Python extension does not link the parquet crate.
pub use numvault_formats::npy::NpyReader;
use numvault_formats::{
    arr, csv, element_count, guarded, invalid, io_at, npy, npz, shape_str, unsupported, Fail,
};
pub use numvault_formats::{FormatError, Loaded};

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
