//! `_core` functions over the crate numvault-formats, the one
//! implementation of .npy / .npz that `numvault import` / `export` also use;
//! `numvault.io.from_npy` / `to_npy` wrap them.
//!
//! * `_import_npy(txn, path, name, chunk_bytes, progress=None)` and
//!   `_import_npz(txn, path, chunk_bytes, progress=None)` stream a file's
//!   rows into a `Transaction` (chunks of at most `chunk_bytes`, each written
//!   to the transaction's staging file as it is read: memory stays one chunk
//!   whatever the file's size). The caller commits (one atomic commit).
//! * `_import_csv(txn, path, name, chunk_bytes, delimiter, skiprows,
//!   max_rows, header, detect_header, dtype, progress=None)`: a CSV or text
//!   file, parsed by the command's CSV reader, staged in chunks.
//! * `_npy_header(dtype, shape)`: the bytes of a .npy header (an export
//!   writes it, then the rows as they are).
//! * `_format_csv(batch, delimiter, fmt, newline)`: rows as CSV text, by the
//!   command's writer with a printf-style `fmt`.
//!
//! A bad file raises `ValueError` with the attributes `format_source` (the
//! file), `format_place` (the npz member, or None) and `format_detail`,
//! which `numvault.io` turns into `ConversionError`; a failed read of the
//! file raises `OSError`. The GIL is held throughout (the progress
//! callback, e.g. a tqdm bar, runs between chunks; an exception from it,
//! or Ctrl-C, stops the import).

use std::path::PathBuf;

use numvault::{ArrayRef, DType, Txn};
use numvault_formats::csv::{push_exact, widen, CsvOptions, CsvReader, Header, Num};
use numvault_formats::npy::{npy_header, NpyReader};
use numvault_formats::npz::NpzReader;
use numvault_formats::FormatError;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::errors::{guard, to_py};
use crate::txn::Transaction;

/// Why an import stopped.
enum Stop {
    Format(FormatError),
    Engine(numvault::Error),
    Py(PyErr),
}

impl From<FormatError> for Stop {
    fn from(e: FormatError) -> Self {
        Stop::Format(e)
    }
}

impl From<numvault::Error> for Stop {
    fn from(e: numvault::Error) -> Self {
        Stop::Engine(e)
    }
}

impl From<PyErr> for Stop {
    fn from(e: PyErr) -> Self {
        Stop::Py(e)
    }
}

impl From<Stop> for PyErr {
    fn from(s: Stop) -> PyErr {
        match s {
            Stop::Format(e) => format_err(e),
            Stop::Engine(e) => to_py(e),
            Stop::Py(e) => e,
        }
    }
}

/// The Python exception of a reader error (see the module comment).
fn format_err(e: FormatError) -> PyErr {
    let source = e.path().display().to_string();
    let msg = e.to_string();
    let (err, detail) = match e {
        FormatError::Io { source: io, .. } => (
            match io.raw_os_error() {
                Some(errno) => PyOSError::new_err((errno, msg.clone())),
                None => PyOSError::new_err(msg.clone()),
            },
            io.to_string(),
        ),
        FormatError::Invalid { detail, .. } | FormatError::Unsupported { detail, .. } => {
            (PyValueError::new_err(msg.clone()), detail)
        }
        other => (PyValueError::new_err(msg.clone()), other.to_string()),
    };
    // "member 'x.npy': rest" and "line 4, column 2: rest" name the place.
    let (place, detail) = if let Some((member, rest)) = detail
        .strip_prefix("member '")
        .and_then(|r| r.split_once("': "))
    {
        (Some(format!("member '{member}'")), rest.to_string())
    } else if let Some((place, rest)) = detail
        .starts_with("line ")
        .then(|| detail.split_once(": "))
        .flatten()
    {
        (Some(place.to_string()), rest.to_string())
    } else {
        (None, detail)
    };
    Python::attach(|py| {
        let v = err.value(py);
        let _ = v.setattr("format_source", source);
        let _ = v.setattr("format_place", place);
        let _ = v.setattr("format_detail", detail);
    });
    err
}

/// Call `progress(nbytes)` if given; Ctrl-C or an exception stops.
fn report(py: Python<'_>, progress: Option<&Py<PyAny>>, n: usize) -> Result<(), Stop> {
    py.check_signals()?;
    if let Some(cb) = progress {
        cb.call1(py, (n,))?;
    }
    Ok(())
}

/// Stage array `name` (`shape`: at least one dimension) in `t` from the
/// row chunks `next` hands out into its buffer (returning the rows, 0 at
/// the end).
#[allow(clippy::too_many_arguments)]
fn stage(
    py: Python<'_>,
    t: &mut Txn,
    name: &str,
    dtype: DType,
    shape: &[u64],
    row_bytes: u64,
    progress: Option<&Py<PyAny>>,
    mut next: impl FnMut(&mut Vec<u8>) -> Result<u64, FormatError>,
) -> Result<(), Stop> {
    let mut buf = Vec::new();
    if row_bytes == 0 {
        // Rows of no bytes cannot be streamed (nor hold data): save the
        // shape, having read the (empty) rest.
        while next(&mut buf)? > 0 {}
        t.save(name, ArrayRef::new(dtype, shape, &[]))?;
        return Ok(());
    }
    let mut w = t.save_stream(name, dtype, shape.get(1..).unwrap_or(&[]))?;
    while next(&mut buf)? > 0 {
        w.write(&buf)?;
        report(py, progress, buf.len())?;
    }
    w.finish()?;
    Ok(())
}

fn refuse_0d(
    path: &std::path::Path,
    place: Option<&str>,
    header_shape: &[u64],
) -> Result<(), Stop> {
    if header_shape.is_empty() {
        let what = place.map_or(String::new(), |p| format!("{p}: "));
        return Err(Stop::Format(
            numvault_formats::unsupported(format!(
                "{what}0-d arrays (scalars) are not supported by numvault"
            ))
            .at(path),
        ));
    }
    Ok(())
}

fn info<'py>(
    py: Python<'py>,
    name: &str,
    dtype: DType,
    shape: &[u64],
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            name.into_pyobject(py)?.into_any(),
            dtype.name().into_pyobject(py)?.into_any(),
            PyTuple::new(py, shape)?.into_any(),
        ],
    )
}

/// Stage the array of .npy file `path` as array `name` of `txn`, streamed
/// in chunks of at most `chunk_bytes` (a Fortran-order array of two or more
/// dimensions is read whole: its rows are not contiguous in the file).
/// Returns `(name, dtype name, shape)`. 0-d arrays are refused.
#[pyfunction]
#[pyo3(signature = (txn, path, name, chunk_bytes, progress=None))]
pub fn _import_npy<'py>(
    py: Python<'py>,
    txn: &Bound<'py, Transaction>,
    path: PathBuf,
    name: &str,
    chunk_bytes: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (dtype, shape) = guard(|| {
        txn.get().with_now(|t| {
            let mut r = NpyReader::open(&path).map_err(Stop::from)?;
            refuse_0d(&path, None, &r.header().shape)?;
            let (dtype, shape, row_bytes) = (r.dtype(), r.shape(), r.row_bytes());
            let per_chunk = r.rows_per_chunk(chunk_bytes.max(1));
            stage(
                py,
                t,
                name,
                dtype,
                &shape,
                row_bytes,
                progress.as_ref(),
                |buf| r.next_rows(per_chunk, buf).map_err(|f| f.at(&path)),
            )?;
            Ok((dtype, shape))
        })
    })?;
    info(py, name, dtype, &shape)
}

/// Stage every array member of .npz file `path` in `txn`, each as the array
/// named by its key (the member name without ".npy"), streamed in chunks
/// of at most `chunk_bytes`. Returns a list of `(name, dtype name, shape)`.
#[pyfunction]
#[pyo3(signature = (txn, path, chunk_bytes, progress=None))]
pub fn _import_npz<'py>(
    py: Python<'py>,
    txn: &Bound<'py, Transaction>,
    path: PathBuf,
    chunk_bytes: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let done = guard(|| {
        txn.get().with_now(|t| {
            let mut done = Vec::new();
            NpzReader::open(&path)
                .map_err(Stop::from)?
                .for_each(|m| -> Result<(), Stop> {
                    let place = format!("member '{}'", m.name());
                    refuse_0d(&path, Some(&place), &m.header().shape)?;
                    let (key, dtype, shape) = (m.key().to_string(), m.dtype(), m.shape());
                    let per_chunk = m.rows_per_chunk(chunk_bytes.max(1));
                    let row_bytes = m.row_bytes();
                    stage(
                        py,
                        t,
                        &key,
                        dtype,
                        &shape,
                        row_bytes,
                        progress.as_ref(),
                        |buf| m.next_rows(per_chunk, buf),
                    )?;
                    done.push((key, dtype, shape));
                    Ok(())
                })?;
            Ok(done)
        })
    })?;
    let out = PyList::empty(py);
    for (name, dtype, shape) in &done {
        out.append(info(py, name, *dtype, shape)?)?;
    }
    Ok(out)
}

/// The .npy header (magic through the padding newline; the data starts
/// 64-byte aligned) of a little-endian C-order array of `dtype` (a numvault
/// dtype name: "float64", ...) and `shape`: format 1.0, or 2.0 when the
/// header does not fit 1.0.
#[pyfunction]
pub fn _npy_header<'py>(
    py: Python<'py>,
    dtype: &str,
    shape: Vec<u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let d = DType::from_name(dtype)
        .ok_or_else(|| PyValueError::new_err(format!("dtype {dtype} is not supported")))?;
    let h = npy_header(d, &shape).map_err(|f| match f {
        numvault_formats::Fail::Io(e) => PyOSError::new_err(e.to_string()),
        numvault_formats::Fail::Invalid(m) | numvault_formats::Fail::Unsupported(m) => {
            PyValueError::new_err(m)
        }
    })?;
    Ok(PyBytes::new(py, &h))
}

/// Why a CSV import stopped: an error, or a value the dtype inferred so far
/// cannot hold (the import restarts with the wider one).
enum CsvStop {
    Stop(Stop),
    Restart(DType),
}

impl<E: Into<Stop>> From<E> for CsvStop {
    fn from(e: E) -> Self {
        CsvStop::Stop(e.into())
    }
}

fn num_str(v: Num) -> String {
    match v {
        Num::I(x) => x.to_string(),
        Num::U(x) => x.to_string(),
        Num::F(x) => format!("{x:?}"),
    }
}

/// One attempt at staging the CSV file with element type `dtype`.
#[allow(clippy::too_many_arguments)]
fn stage_csv(
    py: Python<'_>,
    t: &mut Txn,
    name: &str,
    path: &std::path::Path,
    opts: &CsvOptions,
    dtype: DType,
    infer: bool,
    chunk_bytes: usize,
    progress: Option<&Py<PyAny>>,
) -> Result<Vec<u64>, CsvStop> {
    let at = |f: numvault_formats::Fail| Stop::Format(f.at(path));
    let mut rdr = CsvReader::open(path, opts).map_err(Stop::from)?;
    let mut row = Vec::new();
    let Some(mut line) = rdr.next_row(&mut row).map_err(at)? else {
        let what = if rdr.ncols().is_some() {
            "the file has a header but no data rows"
        } else {
            "no data: the file is empty"
        };
        return Err(at(numvault_formats::invalid(what)).into());
    };
    let ncols = row.len();
    let item = dtype.itemsize();
    let rows_per_chunk = (chunk_bytes / ncols.saturating_mul(item.max(16)).max(1)).max(1);
    let mut w = t.save_stream(name, dtype, &[ncols as u64])?;
    let mut buf = Vec::new();
    let mut in_chunk = 0;
    loop {
        for (j, v) in row.iter().enumerate() {
            if !push_exact(dtype, *v, &mut buf) {
                let to = widen(dtype, *v);
                if infer && to != dtype {
                    return Err(CsvStop::Restart(to));
                }
                return Err(at(numvault_formats::invalid(format!(
                    "line {line}, column {}: {} does not fit dtype {dtype} exactly",
                    j + 1,
                    num_str(*v)
                )))
                .into());
            }
        }
        in_chunk += 1;
        if in_chunk >= rows_per_chunk {
            w.write(&buf)?;
            report(py, progress, buf.len())?;
            buf.clear();
            in_chunk = 0;
        }
        match rdr.next_row(&mut row).map_err(at)? {
            Some(l) => line = l,
            None => break,
        }
    }
    if !buf.is_empty() {
        w.write(&buf)?;
        report(py, progress, buf.len())?;
    }
    let rows = w.rows();
    w.finish()?;
    Ok(vec![rows, ncols as u64])
}

/// Stage CSV or text file `path` as the 2-D array `name` (rows x columns)
/// of `txn`, parsed by numvault-formats' CSV reader (the command's) and
/// staged in chunks of about `chunk_bytes`. `delimiter`: one character, or
/// None / whitespace for runs of spaces and tabs; `skiprows` lines are
/// skipped, then `header` records (`header=n`: records 0..=n are not
/// data; `detect_header`: the first record is a header if a field is not
/// a number); at most `max_rows` rows. `dtype` (a numvault dtype name):
/// every value must fit it exactly; without it, int64 is tried, then
/// uint64 or float64 as values need (the import restarts). Returns
/// `(name, dtype name, shape)`.
#[pyfunction]
#[pyo3(signature = (txn, path, name, chunk_bytes, delimiter=None, skiprows=0, max_rows=None, header=None, detect_header=false, dtype=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn _import_csv<'py>(
    py: Python<'py>,
    txn: &Bound<'py, Transaction>,
    path: PathBuf,
    name: &str,
    chunk_bytes: usize,
    delimiter: Option<&str>,
    skiprows: u64,
    max_rows: Option<u64>,
    header: Option<u64>,
    detect_header: bool,
    dtype: Option<&str>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let delimiter = match delimiter {
        None => None,
        Some(d) if d.trim().is_empty() && d != "\t" => None,
        Some(d) if d.len() == 1 => Some(d.as_bytes()[0]),
        Some(d) => {
            return Err(PyValueError::new_err(format!(
                "delimiter {d:?}: the CSV reader takes one ASCII character or whitespace"
            )))
        }
    };
    let forced = match dtype {
        None => None,
        Some(d) => Some(DType::from_name(d).ok_or_else(|| {
            PyValueError::new_err(format!("dtype {d} is not supported by numvault"))
        })?),
    };
    let opts = CsvOptions {
        delimiter,
        skiprows,
        header: match (header, detect_header) {
            (Some(n), _) => Header::Line(n),
            (None, true) => Header::Auto,
            (None, false) => Header::None,
        },
        max_rows,
    };
    let (dtype, shape) = guard(|| {
        txn.get().with_now(|t| {
            let mut dtype = forced.unwrap_or(DType::I64);
            loop {
                match stage_csv(
                    py,
                    t,
                    name,
                    &path,
                    &opts,
                    dtype,
                    forced.is_none(),
                    chunk_bytes.max(1),
                    progress.as_ref(),
                ) {
                    Ok(shape) => return Ok((dtype, shape)),
                    Err(CsvStop::Restart(d)) => dtype = d,
                    Err(CsvStop::Stop(e)) => return Err(e.into()),
                }
            }
        })
    })?;
    info(py, name, dtype, &shape)
}

/// The rows of `batch` (a 1-D or 2-D array; each element of a 1-D array is
/// a row) as CSV text by numvault-formats' writer (the command's): values
/// in printf-style `fmt` (one conversion, as NumPy's `savetxt` applies it;
/// None: the command's shortest exact form), separated by `delimiter`,
/// each row ended by `newline`. ValueError for a `fmt` it does not take,
/// complex data, or NaN / infinity with an integer conversion.
#[pyfunction]
#[pyo3(signature = (batch, delimiter=",", fmt=None, newline="\n"))]
pub fn _format_csv<'py>(
    py: Python<'py>,
    batch: &Bound<'py, PyAny>,
    delimiter: &str,
    fmt: Option<&str>,
    newline: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let printf = fmt
        .map(numvault_formats::printf::Printf::parse)
        .transpose()
        .map_err(PyValueError::new_err)?;
    let inp = crate::conv::input(batch, "batch")?;
    if inp.shape.len() > 2 {
        return Err(PyValueError::new_err(format!(
            "a batch of shape {:?}: CSV holds 1-D or 2-D arrays",
            inp.shape
        )));
    }
    let cols = inp.shape.get(1).map_or(1, |&c| c as usize);
    let style = numvault_formats::csv::CsvStyle {
        delimiter,
        fmt: printf.as_ref(),
        newline,
    };
    let mut out = Vec::new();
    guard(|| {
        numvault_formats::csv::write_rows(&mut out, inp.dtype, cols, inp.bytes(), &style).map_err(
            |f| match f {
                numvault_formats::Fail::Io(e) => PyOSError::new_err(e.to_string()),
                numvault_formats::Fail::Invalid(m) | numvault_formats::Fail::Unsupported(m) => {
                    PyValueError::new_err(m)
                }
            },
        )
    })?;
    Ok(PyBytes::new(py, &out))
}

/// Add this module's functions to `_core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_import_npy, m)?)?;
    m.add_function(wrap_pyfunction!(_import_npz, m)?)?;
    m.add_function(wrap_pyfunction!(_npy_header, m)?)?;
    m.add_function(wrap_pyfunction!(_import_csv, m)?)?;
    m.add_function(wrap_pyfunction!(_format_csv, m)?)?;
    Ok(())
}
