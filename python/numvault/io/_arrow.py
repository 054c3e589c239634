"""Arrow tables and record batches <-> NumPy arrays (shared by parquet_io,
feather_io and pandas_io).

A table becomes one array: its numeric columns side by side, shape
``(rows, columns)`` (NumPack's convention); a fixed-size-list column (an
embedding per row) contributes its width. Tables written by numvault carry
the array's row shape in their schema metadata (``numvault.row_shape``), so
1-D and N-D arrays come back with their shape. Columns of other types
(strings, nested lists, ...) are refused with a ConversionError naming them.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from .utils import ConversionError, StoreWriter, check_dtype, conform, open_result, open_store, pick_one

META_KEY = b"numvault.row_shape"


def row_shape_of(schema: Any) -> Optional[Tuple[int, ...]]:
    md = schema.metadata or {}
    raw = md.get(META_KEY)
    if raw is None:
        return None
    try:
        rs = json.loads(raw.decode())
        return tuple(int(x) for x in rs)
    except (ValueError, TypeError):
        return None


def _column(pa: Any, col: Any, name: str, source: Any, place: str) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    t = col.type
    if pa.types.is_fixed_size_list(t):
        if col.null_count:
            raise ConversionError(source, f"{place}column '{name}'", "list column holds null rows")
        vals = _column(pa, col.flatten(), name, source, place)
        return vals.reshape(len(col), t.list_size)
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise ConversionError(source, f"{place}column '{name}'", f"Arrow type {t} is not numeric")
    arr = col.to_numpy(zero_copy_only=False) if hasattr(col, "to_numpy") else np.asarray(col)
    if arr.dtype == object:  # booleans with nulls
        raise ConversionError(source, f"{place}column '{name}'", f"column of {t} holds nulls")
    return np.asarray(arr)


def table_to_array(pa: Any, table: Any, source: Any, columns: Optional[List[str]] = None,
                   place: str = "") -> np.ndarray:
    """One array from a Table or RecordBatch (see the module documentation)."""
    if columns is not None:
        missing = [c for c in columns if c not in table.schema.names]
        if missing:
            raise KeyError(f"{source}: column(s) {missing} not found (columns: {table.schema.names})")
        table = table.select(columns)
    rows = table.num_rows
    names = table.schema.names
    rs = row_shape_of(table.schema) if columns is None else None
    if not names:
        return np.empty((rows, 0))
    cols = [_column(pa, table.column(i), n, source, place) for i, n in enumerate(names)]
    cols = [c.reshape(rows, -1) for c in cols]
    dt = np.result_type(*[c.dtype for c in cols])
    out = cols[0] if len(cols) == 1 else np.concatenate([c.astype(dt, copy=False) for c in cols], axis=1)
    out = np.ascontiguousarray(out)
    check_dtype(out.dtype, source, place.rstrip(", ") or None)
    if rs is not None and int(np.prod(rs, dtype=np.int64)) == out.shape[1]:
        out = out.reshape((rows,) + rs)
    return out


def array_to_table(pa: Any, arr: np.ndarray, column_names: Optional[List[str]] = None) -> Any:
    """A Table of ``arr``: 1-D: one column ('data'); 2-D: one column per
    array column ('col0', ...); N-D: one fixed-size-list column ('data') of
    each row flattened. The row shape is kept in the schema metadata."""
    arr = np.ascontiguousarray(arr)
    meta = {META_KEY: json.dumps(list(arr.shape[1:])).encode()}
    if arr.dtype.kind == "c":
        raise ValueError(f"Arrow has no complex type; cannot export an array of {arr.dtype}")
    if arr.ndim > 1 and int(np.prod(arr.shape[1:], dtype=np.int64)) == 0:
        # a table of no columns keeps no row count: the rows would be lost
        raise ValueError(f"an array of shape {arr.shape} has rows of zero elements, which an Arrow table "
                         "cannot hold")
    if arr.ndim == 1:
        names = column_names or ["data"]
        return pa.table({names[0]: arr}).replace_schema_metadata(meta)
    if arr.ndim == 2:
        names = column_names or [f"col{i}" for i in range(arr.shape[1])]
        if len(names) != arr.shape[1]:
            raise ValueError(f"{len(names)} column names for {arr.shape[1]} columns")
        return pa.table({names[i]: arr[:, i] for i in range(arr.shape[1])}).replace_schema_metadata(meta)
    width = int(np.prod(arr.shape[1:], dtype=np.int64))
    flat = pa.array(arr.reshape(-1))
    col = pa.FixedSizeListArray.from_arrays(flat, width)
    names = column_names or ["data"]
    return pa.table({names[0]: col}).replace_schema_metadata(meta)


def schema_for(pa: Any, dtype: np.dtype, shape: Tuple[int, ...], column_names: Optional[List[str]] = None) -> Any:
    """The schema :func:`array_to_table` gives an array of ``dtype`` and ``shape``."""
    return array_to_table(pa, np.empty((0,) + tuple(shape[1:]), dtype), column_names).schema


def save_table(pa: Any, table: Any, output_path: Any, array_name: Optional[str],
               columns: Optional[List[str]], drop_if_exists: bool, return_npk_obj: bool) -> Any:
    """``from_table`` / ``from_parquet_table``: an in-memory table as one
    array (default name ``'data'``), one atomic commit."""
    arr = table_to_array(pa, table, "table", columns)
    with StoreWriter(output_path, drop_if_exists) as w:
        w.save(array_name or "data", arr)
    return open_result(output_path) if return_npk_obj else None


def load_table(pa: Any, input_path: Any, array_name: Optional[str],
               column_names: Optional[List[str]]) -> Any:
    """``to_table`` / ``to_parquet_table``: one array (``array_name``, or the
    store's only array) as an in-memory table."""
    with open_store(input_path) as v:
        name = pick_one(v, array_name, "export")
        return array_to_table(pa, v.load(name), column_names)


def batch_arrays(pa: Any, batches: Iterable[Tuple[Any, str]], schema: Any, src: Any,
                 columns: Optional[List[str]], forced: Optional[np.dtype], progress: Any,
                 empty_schema: Any = None) -> Iterator[np.ndarray]:
    """The arrays of a file's record batches, given as ``(batch, place)``
    (``place`` names the rows, for errors), each conformed to one dtype
    (``forced``, or the widest seen so far); a file without rows gives one
    empty array of the columns' shape."""
    current = forced
    for batch, place in batches:
        tbl = pa.Table.from_batches([batch]).replace_schema_metadata(schema.metadata)
        arr = table_to_array(pa, tbl, src, columns, place=f"{place}, ")
        arr = conform(arr, current, forced is not None, src, place)
        current = arr.dtype
        progress.update(arr.nbytes)
        yield arr
    if current is None:
        empty = pa.Table.from_batches([], schema=empty_schema if empty_schema is not None else schema)
        yield table_to_array(pa, empty.replace_schema_metadata(schema.metadata), src, columns)
