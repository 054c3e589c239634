"""Parquet files and Arrow tables <-> numvault (pyarrow).

Files stream: ``from_parquet_file`` reads record batches
(``ParquetFile.iter_batches``), ``to_parquet_file`` writes one row group
batch at a time. ``from_parquet_table`` / ``to_parquet_table`` work on an
in-memory ``pyarrow.Table`` (the whole table is in memory by nature).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Union

import numpy as np

from . import _arrow
from .utils import (
    DEFAULT_CHUNK_SIZE,
    ConversionError,
    Progress,
    StoreWriter,
    Widen,
    _check_pyarrow,
    atomic_path,
    check_source,
    open_result,
    open_store,
    pick_one,
    rows_per_batch,
    store_batches,
)


def from_parquet_table(
    table: Any,
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    columns: Optional[List[str]] = None,
    drop_if_exists: bool = False,
    return_npk_obj: bool = False,
) -> Any:
    """Save an in-memory ``pyarrow.Table`` as one array (``array_name``,
    default ``'data'``): its (selected) numeric columns side by side, shape
    ``(rows, columns)``. In memory: the table and its array. One atomic
    commit."""
    return _arrow.save_table(_check_pyarrow(), table, output_path, array_name, columns,
                             drop_if_exists, return_npk_obj)


def to_parquet_table(
    input_path: Union[str, Path],
    array_name: Optional[str] = None,
    column_names: Optional[List[str]] = None,
) -> Any:
    """One array (``array_name``, or the store's only array) as an in-memory
    ``pyarrow.Table``: 1-D: column 'data'; 2-D: 'col0', 'col1', ... (or
    ``column_names``); N-D: one fixed-size-list column of flattened rows. The
    row shape is kept in the schema metadata. In memory: the whole array."""
    return _arrow.load_table(_check_pyarrow(), input_path, array_name, column_names)


def _file_batches(pa: Any, pq: Any, src: Path, columns: Optional[List[str]], chunk_size: int,
                  forced: Optional[np.dtype], progress: Progress):
    try:
        # no pre-buffering: pyarrow would read whole row groups ahead
        pf = pq.ParquetFile(str(src), pre_buffer=False, buffer_size=1 << 20)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ConversionError(src, None, f"cannot open as Parquet: {e}") from e
    schema = pf.schema_arrow
    ncols = len(columns) if columns is not None else len(schema.names)
    # Arrow's decoding buffers and allocator hold several times a batch: a
    # quarter of the usual batch keeps the whole within chunk_size
    rows = rows_per_batch((max(1, ncols),), np.dtype(np.float64), max(1, chunk_size // 4))
    it = pf.iter_batches(batch_size=rows, columns=columns, use_threads=False)

    def batches():
        done = 0
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except (pa.ArrowException, OSError, ValueError) as e:
                raise ConversionError(src, f"rows from {done}", f"cannot read: {e}") from e
            yield batch, f"rows {done}..{done + batch.num_rows - 1}"
            done += batch.num_rows

    yield from _arrow.batch_arrays(pa, batches(), schema, src, columns, forced, progress,
                                   empty_schema=schema.remove_metadata())


def from_parquet_file(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    columns: Optional[List[str]] = None,
    drop_if_exists: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    return_npk_obj: bool = False,
) -> Any:
    """Import a Parquet file as one array (``array_name``, default the
    file's stem): its (selected) numeric columns side by side. Streams
    record batches of about ``chunk_size / 2`` bytes (pyarrow decodes one
    row group at a time, so memory also holds a row group); one atomic
    commit. Integer columns that turn out to hold nulls make the array
    float64 (NaN). A damaged file raises :class:`~numvault.io.ConversionError`
    naming the rows; nothing is written."""
    pa = _check_pyarrow()
    import pyarrow.parquet as pq

    src = check_source(input_path)
    forced = None
    while True:
        try:
            with Progress(src.stat().st_size, f"from_parquet {src.name}") as progress:
                with StoreWriter(output_path, drop_if_exists) as w:
                    w.save_batches(array_name or src.stem, _file_batches(pa, pq, src, columns, chunk_size, forced,
                                                                        progress))
            break
        except Widen as wd:
            forced = wd.dtype
    return open_result(output_path) if return_npk_obj else None


def to_parquet_file(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    compression: str = "snappy",
    row_group_size: int = 100000,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Export one array (``array_name``, or the store's only array) to a
    Parquet file (columns as :func:`to_parquet_table`), one batch at a time;
    the file appears only once complete."""
    pa = _check_pyarrow()
    import pyarrow.parquet as pq

    with open_store(input_path) as v:
        name = pick_one(v, array_name, "export")
        shape, dtype = tuple(v.shape(name)), v.dtype(name)
        schema = _arrow.schema_for(pa, dtype, shape)
        with Progress(v.info(name)["data_bytes"], f"to_parquet {Path(output_path).name}") as progress:
            with atomic_path(output_path) as tmp:
                # floats seldom repeat: no dictionary pages (they cost memory
                # when written and read, and space)
                with pq.ParquetWriter(str(tmp), schema, compression=compression,
                                      use_dictionary=np.dtype(dtype).kind != "f") as writer:
                    # whole row groups of row_group_size rows (the memory of one)
                    pending: list = []
                    held = 0
                    for b in store_batches(v, name, chunk_size):
                        pending.append(b)
                        held += len(b)
                        progress.update(b.nbytes)
                        while held >= row_group_size:
                            block = np.concatenate(pending) if len(pending) > 1 else pending[0]
                            writer.write_table(_arrow.array_to_table(pa, block[:row_group_size]),
                                               row_group_size=row_group_size)
                            rest = block[row_group_size:]
                            pending, held = ([rest] if len(rest) else []), len(rest)
                            del block
                    if held or not shape[0]:
                        block = np.concatenate(pending) if pending else np.empty((0,) + shape[1:], dtype)
                        writer.write_table(_arrow.array_to_table(pa, block), row_group_size=row_group_size)

from_parquet = from_parquet_file
to_parquet = to_parquet_file

__all__ = ["from_parquet_table", "to_parquet_table", "from_parquet_file", "to_parquet_file", "from_parquet",
           "to_parquet"]
