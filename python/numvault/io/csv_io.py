"""CSV / whitespace-delimited text <-> numvault (streaming, bounded memory).

Parsing is the Rust CSV reader of the crate ``numvault-formats``
(``numvault._core._import_csv``), the one ``numvault import`` uses, which
stages the rows in chunks. Calls it cannot honour (``**kwargs`` other than
``header``, a ``header`` other than None / an int / ``'infer'``, a
delimiter of more than one character, ``skiprows`` given as a list) fall
back to pandas' ``read_csv`` in chunks of rows (NumPy's ``loadtxt`` on
batches of lines without pandas), as documented in docs/IO.md. Writing is
the command's Rust writer with a printf-style ``fmt``
(``numvault._core._format_csv``) one batch at a time, or NumPy's
``savetxt`` for formats and keywords it does not take.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterator, Optional, Tuple, Union

import numpy as np

from .utils import (
    DEFAULT_CHUNK_SIZE,
    ConversionError,
    DependencyError,
    Progress,
    StoreWriter,
    _check_pandas,
    atomic_output,
    check_dtype,
    check_source,
    open_result,
    open_store,
    pick_one,
    store_batches,
)


class _Widen(Exception):
    """A later chunk needs a wider dtype than the one inferred so far: the
    import restarts with it (no value is ever narrowed)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype


def _chunk_rows(path: Path, delimiter: Optional[str], chunk_size: int) -> int:
    """Rows per parsed chunk: about chunk_size/4 bytes of parsed float64
    values (parsing holds the text, the parsed frame and the array)."""
    with open(path, "rb") as f:
        sample = f.read(1 << 16)
    lines = [ln for ln in sample.splitlines() if ln.strip()]
    if not lines:
        return 1000
    line = lines[min(len(lines) - 1, 1)].decode("utf-8", "replace")
    ncols = len(line.split(delimiter)) if delimiter not in (None, r"\s+") else len(line.split())
    return max(1, (chunk_size // 4) // (max(1, ncols) * 8))


def _first_bad(df: Any, pd: Any) -> Optional[tuple]:
    """(row position, column position, value) of the first cell of ``df``
    that is not a number, or None."""
    best = None
    for ci, col in enumerate(df.columns):
        s = df[col]
        if s.dtype != object and not str(s.dtype).startswith(("string", "str")):
            continue
        num = pd.to_numeric(s, errors="coerce")
        bad = num.isna() & s.notna()
        if bad.any():
            ri = int(np.argmax(bad.to_numpy()))
            if best is None or ri < best[0]:
                best = (ri, ci, s.iloc[ri])
    return best


def _frame_to_array(df: Any, forced: Optional[np.dtype], src: Path, line: int) -> np.ndarray:
    """The chunk's columns as one 2-D array, column by column: of ``forced``
    if given, else of the columns' common type; a column whose values the
    target cannot hold exactly is an error naming the line."""
    cols = [df[c].to_numpy() for c in df.columns]
    target = forced if forced is not None else np.result_type(*[c.dtype for c in cols])
    out = np.empty((len(df), len(cols)), dtype=target)
    for i, c in enumerate(cols):
        if c.dtype == object:
            c = c.astype(np.float64)
        out[:, i] = _convert(c, target, src, line, "line")
    return out


def _convert(arr: np.ndarray, dtype: Optional[np.dtype], src: Path, first_line: int, what: str) -> np.ndarray:
    """``arr`` cast to ``dtype`` if given, refusing casts that change values."""
    if dtype is None or arr.dtype == dtype:
        return arr
    with np.errstate(all="ignore"):
        out = arr.astype(dtype)
        back = out.astype(arr.dtype)
    same = (back == arr) | (np.isnan(arr) & np.isnan(back)) if arr.dtype.kind in "fc" else back == arr
    if not np.all(same):
        r = int(np.argmax(~np.all(same.reshape(len(arr), -1), axis=1)))
        raise ConversionError(
            src, f"{what} {first_line + r}", f"value(s) {arr[r].tolist()} do not fit dtype {np.dtype(dtype)}"
        )
    return out


def _pandas_chunks(src: Path, pd: Any, delimiter: Optional[str], skiprows: int, max_rows: Optional[int],
                   rows: int, kwargs: dict) -> Iterator[tuple]:
    """(first data line number, DataFrame) per chunk."""
    kw = dict(kwargs)
    header = kw.pop("header", None)
    sep = delimiter if delimiter is not None else r"\s+"
    try:
        reader = pd.read_csv(src, sep=sep, skiprows=skiprows, nrows=max_rows, header=header, chunksize=rows, **kw)
    except pd.errors.EmptyDataError as e:
        raise ConversionError(src, None, f"no data: {e}") from e
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as e:
        raise ConversionError(src, None, str(e)) from e
    # line number (1-based) of the first data row
    line = skiprows + (1 if header is not None else 0) + 1 if isinstance(skiprows, int) else 1
    with reader:
        while True:
            try:
                df = next(reader)
            except StopIteration:
                return
            except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as e:
                raise ConversionError(src, None, str(e)) from e
            yield line, df
            line += len(df)


def _numpy_chunks(src: Path, delimiter: Optional[str], skiprows: int, max_rows: Optional[int], rows: int,
                  kwargs: dict) -> Iterator[tuple]:
    keep = {k: v for k, v in kwargs.items() if k in ("comments", "usecols", "encoding", "converters")}
    with open(src, "r", encoding=keep.pop("encoding", None) or "utf-8") as f:
        it = itertools.islice(f, skiprows, None)
        line = skiprows + 1
        left = max_rows
        while left is None or left > 0:
            n = rows if left is None else min(rows, left)
            lines = list(itertools.islice(it, n))
            if not lines:
                return
            try:
                arr = np.loadtxt(lines, delimiter=delimiter, dtype=np.float64, ndmin=2, **keep)
            except ValueError as e:
                # find the line at fault, parsing the batch's lines one by one
                for k, ln in enumerate(lines):
                    try:
                        np.loadtxt([ln], delimiter=delimiter, dtype=np.float64, ndmin=2, **keep)
                    except ValueError as e1:
                        raise ConversionError(src, f"line {line + k}", str(e1)) from e
                raise ConversionError(src, f"lines {line}..{line + len(lines) - 1}", str(e)) from e
            yield line, arr
            line += len(lines)
            if left is not None:
                left -= len(arr)


def _rust_header(kwargs: dict) -> Optional[Tuple[Optional[int], bool]]:
    """``(header, detect_header)`` for the Rust reader, or None if ``kwargs``
    ask for something it does not do."""
    if set(kwargs) - {"header"}:
        return None
    h = kwargs.get("header")
    if h is None:
        return None, False
    if h == "infer":
        return None, True
    if isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h >= 0:
        return int(h), False
    return None


def _rust_delimiter(delimiter: Optional[str]) -> Tuple[bool, Optional[str]]:
    """(usable, delimiter for the Rust reader: one character or None for
    whitespace)."""
    if delimiter is None or delimiter == r"\s+":
        return True, None
    if isinstance(delimiter, str) and len(delimiter) == 1 and delimiter.isascii():
        return True, delimiter
    return False, None


def _import_rust(src: Path, output_path: Any, name: str, drop_if_exists: bool, want: Optional[np.dtype],
                 delimiter: Optional[str], skiprows: int, max_rows: Optional[int], chunk_size: int,
                 header: Tuple[Optional[int], bool], what: str) -> None:
    from numvault import _core

    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    with Progress(None, f"{what} {src.name}") as progress:
        with StoreWriter(output_path, drop_if_exists) as w:
            try:
                _core._import_csv(
                    w.tx, str(src), name, max(1, int(chunk_size) // 4), delimiter=delimiter,
                    skiprows=int(skiprows), max_rows=None if max_rows is None else int(max_rows),
                    header=header[0], detect_header=header[1],
                    dtype=None if want is None else want.newbyteorder("=").name, progress=progress.update,
                )
            except ValueError as e:
                if hasattr(e, "format_detail"):
                    raise ConversionError(src, getattr(e, "format_place", None), e.format_detail) from e  # type: ignore[attr-defined]
                raise


def _import_text(src: Path, output_path: Any, array_name: Optional[str], drop_if_exists: bool, dtype: Any,
                 delimiter: Optional[str], skiprows: int, max_rows: Optional[int], chunk_size: int,
                 kwargs: dict, what: str) -> None:
    name = array_name or src.stem
    want = None if dtype is None else check_dtype(dtype, src, None)
    header = _rust_header(kwargs)
    usable, delim = _rust_delimiter(delimiter)
    if (header is not None and usable and isinstance(skiprows, (int, np.integer)) and skiprows >= 0
            and (max_rows is None or (isinstance(max_rows, (int, np.integer)) and max_rows >= 0))):
        _import_rust(src, output_path, name, drop_if_exists, want, delim, skiprows, max_rows, chunk_size, header,
                     what)
        return
    # fallback: pandas / NumPy for what the Rust reader does not do
    try:
        pd = _check_pandas()
    except DependencyError:
        pd = None
    rows = _chunk_rows(src, delimiter, chunk_size)
    forced = want
    while True:
        try:
            with Progress(None, f"{what} {src.name}") as progress:  # parsed bytes: total unknown
                with StoreWriter(output_path, drop_if_exists) as w:
                    w.save_batches(name, _arrays(src, pd, delimiter, skiprows, max_rows, rows, kwargs, forced,
                                                 want is None, progress))
            return
        except _Widen as wd:
            forced = wd.dtype


def _arrays(src: Path, pd: Any, delimiter: Optional[str], skiprows: int, max_rows: Optional[int], rows: int,
            kwargs: dict, forced: Optional[np.dtype], may_widen: bool, progress: Progress) -> Iterator[np.ndarray]:
    chunks = (_pandas_chunks(src, pd, delimiter, skiprows, max_rows, rows, kwargs) if pd is not None
              else _numpy_chunks(src, delimiter, skiprows, max_rows, rows, kwargs))
    current = forced
    width = None
    for line, chunk in chunks:
        if pd is not None:
            bad = _first_bad(chunk, pd)
            if bad is not None:
                r, c, val = bad
                raise ConversionError(src, f"line {line + r}, column {c + 1}", f"{val!r} is not a number")
            arr = _frame_to_array(chunk, forced, src, line)
        else:
            arr = chunk
        if width is None:
            width = arr.shape[1:]
        elif arr.shape[1:] != width:
            raise ConversionError(src, f"line {line}", f"{arr.shape[1:]} columns where earlier rows had {width}")
        if current is None:
            current = check_dtype(arr.dtype, src, f"line {line}")
        elif may_widen and np.result_type(current, arr.dtype) != current:
            raise _Widen(np.result_type(current, arr.dtype))
        arr = _convert(np.ascontiguousarray(arr), current, src, line, "line")
        progress.update(arr.nbytes)
        yield arr


def from_csv(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    drop_if_exists: bool = False,
    dtype: Optional[np.dtype] = None,
    delimiter: str = ",",
    skiprows: int = 0,
    max_rows: Optional[int] = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    return_npk_obj: bool = False,
    **kwargs: Any,
) -> Any:
    """Import a CSV file as one 2-D array (``array_name``, default the file's
    stem) of the store ``output_path``.

    Parsed in chunks of rows (pandas ``read_csv`` with ``header=None``
    unless given, ``**kwargs`` passed on; NumPy ``loadtxt`` without pandas),
    so memory stays bounded by ``chunk_size``. ``dtype`` defaults to what the
    parser infers for the whole file (a chunk needing a wider type restarts
    the import with it); a given ``dtype`` that would change a value is an
    error. A cell that is not a number, a row of another width or a parse
    error raises :class:`~numvault.io.ConversionError` naming the file and
    the line; nothing is written (one atomic commit).
    """
    src = check_source(input_path)
    _import_text(src, output_path, array_name, drop_if_exists, dtype, delimiter, skiprows, max_rows, chunk_size,
                 kwargs, "from_csv")
    return open_result(output_path) if return_npk_obj else None


def from_txt(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    drop_if_exists: bool = False,
    dtype: Optional[np.dtype] = None,
    delimiter: Optional[str] = None,
    skiprows: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    return_npk_obj: bool = False,
    **kwargs: Any,
) -> Any:
    """:func:`from_csv` for text whose columns are separated by whitespace
    (``delimiter=None``) or by ``delimiter``."""
    src = check_source(input_path)
    max_rows = kwargs.pop("max_rows", None)
    _import_text(src, output_path, array_name, drop_if_exists, dtype, delimiter, skiprows, max_rows, chunk_size,
                 kwargs, "from_txt")
    return open_result(output_path) if return_npk_obj else None


def _rust_writer_ok(dtype: Any, delimiter: Any, fmt: Any, kwargs: dict) -> bool:
    """True if the Rust CSV writer (the command's) can write as NumPy's
    ``savetxt`` would: one printf conversion in ``fmt``, no complex values,
    no ``savetxt`` keyword but ``newline``."""
    if set(kwargs) - {"newline"} or not isinstance(delimiter, str) or not isinstance(fmt, str):
        return False
    if not isinstance(kwargs.get("newline", "\n"), str) or np.dtype(dtype).kind == "c":
        return False
    from numvault import _core

    try:
        _core._format_csv(np.zeros((0, 1)), delimiter, fmt)
    except ValueError:
        return False
    return True


def to_csv(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    delimiter: str = ",",
    header: bool = False,
    fmt: str = "%.18e",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    **kwargs: Any,
) -> None:
    """Export one 1-D or 2-D array (``array_name``, or the store's only
    array) to CSV, one batch at a time, as NumPy's ``savetxt`` would write it
    with ``fmt`` and ``**kwargs``: by the Rust writer of ``numvault export``
    (``numvault._core._format_csv``) when ``fmt`` is one printf conversion
    and ``kwargs`` at most ``newline``, else by ``savetxt`` itself (several
    conversions, complex values, ``footer``, ...). ``header`` writes
    ``# col0,col1,...`` first. The file appears only once complete."""
    with open_store(input_path) as v:
        name = pick_one(v, array_name, "export")
        shape = v.shape(name)
        if len(shape) > 2:
            raise ValueError(f"array '{name}' has shape {shape}: text formats hold 1-D or 2-D arrays")
        if len(shape) == 2 and shape[1] == 0:
            raise ValueError(f"array '{name}' has shape {shape}: rows of zero columns leave no text to read back")
        with Progress(v.info(name)["data_bytes"], f"to_csv {Path(output_path).name}") as progress:
            if _rust_writer_ok(v.dtype(name), delimiter, fmt, kwargs):
                from numvault import _core

                newline = kwargs.get("newline", "\n")
                with atomic_output(output_path, "wb") as fb:
                    if header:
                        cols = shape[1] if len(shape) == 2 else 1
                        fb.write(("# " + delimiter.join(f"col{i}" for i in range(cols)) + "\n").encode())
                    for b in store_batches(v, name, chunk_size):
                        fb.write(_core._format_csv(b, delimiter, fmt, newline))
                        progress.update(b.nbytes)
                return
            # fallback: NumPy's savetxt for what the Rust writer does not do
            with atomic_output(output_path, "w") as f:
                if header:
                    cols = shape[1] if len(shape) == 2 else 1
                    f.write("# " + delimiter.join(f"col{i}" for i in range(cols)) + "\n")
                for b in store_batches(v, name, chunk_size):
                    np.savetxt(f, b, delimiter=delimiter, fmt=fmt, **kwargs)
                    progress.update(b.nbytes)


def to_txt(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    delimiter: str = " ",
    fmt: str = "%.18e",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    **kwargs: Any,
) -> None:
    """:func:`to_csv` with a space as delimiter."""
    to_csv(input_path, output_path, array_name=array_name, delimiter=delimiter, header=False, fmt=fmt,
           chunk_size=chunk_size, **kwargs)


__all__ = ["from_csv", "to_csv", "from_txt", "to_txt"]
