"""Arrow hand-offs of numvault arrays (used by ``LazyArray.__arrow_c_array__``,
``LazyArray.__arrow_c_stream__``, ``LazyArray.to_arrow`` and
``Vault.to_arrow``).

An array without deleted or replaced rows (``lazy.zero_copy``) is handed to
Arrow without a copy: the Arrow buffer is the store's read-only mapping,
wrapped by ``pyarrow.py_buffer`` around a NumPy view whose base is the
LazyArray, so the mapping lives as long as any Arrow array (or C capsule)
using it, after the Vault is closed and the LazyArray dropped. Arrow buffers
are immutable, so no consumer writes through them. Arrays with deleted or
replaced rows, and bool arrays (Arrow packs booleans into bits), are copied.

Layouts: a 1-d array becomes a primitive Arrow array, a 2-d array a
``FixedSizeList`` array (one list per row), a >2-d array the canonical
``arrow.fixed_shape_tensor`` extension type over a ``FixedSizeList`` of the
flattened row. Complex dtypes have no Arrow type: ``TypeError``.

pyarrow is an optional dependency: without it these raise
``numvault.io.DependencyError`` (an ``ImportError``) naming it.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np

__all__ = ["to_arrow", "arrow_c_array", "arrow_c_stream", "arrow_type"]

#: Rows of the record batches of ``__arrow_c_stream__``: about this many bytes each.
STREAM_BATCH_BYTES = 64 << 20


def _pyarrow() -> Any:
    from .io.utils import _check_dependency

    return _check_dependency("pyarrow")


def _value_type(pa: Any, dtype: np.dtype) -> Any:
    if dtype.kind == "c":
        raise TypeError(
            f"Arrow has no type for {dtype} (complex numbers); view the array as "
            f"{'float32' if dtype.itemsize == 8 else 'float64'} pairs or export it through "
            "DLPack or NumPy instead"
        )
    return pa.from_numpy_dtype(dtype)


def arrow_type(shape: tuple, dtype: np.dtype) -> Any:
    """The Arrow type of an array of ``shape`` (rows first) and ``dtype``."""
    pa = _pyarrow()
    vt = _value_type(pa, np.dtype(dtype))
    row = shape[1:]
    if not row:
        return vt
    n = int(np.prod(row, dtype=np.int64))
    if len(row) == 1:
        return pa.list_(vt, n)
    return pa.fixed_shape_tensor(vt, list(row))


def _from_ndarray(pa: Any, arr: np.ndarray) -> Any:
    """Arrow array over ``arr`` (C-contiguous, native byte order): zero-copy
    for every dtype but bool."""
    vt = _value_type(pa, arr.dtype)
    flat_len = arr.size
    if arr.dtype == np.bool_:
        values = pa.array(arr.reshape(-1), type=vt)
    else:
        # py_buffer keeps a reference to `arr` (and so to its base, the
        # LazyArray and its mapping) for the buffer's life.
        values = pa.Array.from_buffers(vt, flat_len, [None, pa.py_buffer(arr.reshape(-1))])
    row = arr.shape[1:]
    if not row:
        return values
    width = int(np.prod(row, dtype=np.int64))
    # from_buffers, not FixedSizeListArray.from_arrays: rows of 0 elements
    # (a (n, 0) array) are allowed too.
    storage = pa.Array.from_buffers(pa.list_(vt, width), arr.shape[0], [None], children=[values])
    if len(row) == 1:
        return storage
    ext = pa.fixed_shape_tensor(vt, list(row))
    return pa.ExtensionArray.from_storage(ext, storage)


def _values(lazy: Any) -> np.ndarray:
    # Zero-copy read-only view when lazy.zero_copy, else a copy.
    arr = np.asarray(lazy)
    if not arr.flags.c_contiguous or not arr.dtype.isnative:  # pragma: no cover
        arr = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("="), copy=False)
    return arr


def to_arrow(lazy: Any) -> Any:
    """``lazy`` as a ``pyarrow.Array`` (see the module's doc)."""
    pa = _pyarrow()
    return _from_ndarray(pa, _values(lazy))


def arrow_c_array(lazy: Any, requested_schema: Optional[Any] = None) -> Any:
    """``(schema capsule, array capsule)`` of ``to_arrow(lazy)``."""
    return to_arrow(lazy).__arrow_c_array__(requested_schema)


def _batches(pa: Any, lazy: Any, schema: Any) -> Iterator[Any]:
    rows = len(lazy)
    row_bytes = max(1, lazy.nbytes // rows) if rows else 1
    step = max(1, STREAM_BATCH_BYTES // row_bytes)
    if lazy.zero_copy:
        whole = _values(lazy)
        for a in range(0, rows, step):
            yield pa.record_batch([_from_ndarray(pa, whole[a : a + step])], schema=schema)
    else:
        # Read (copy) one batch at a time: memory stays bounded.
        for a in range(0, rows, step):
            part = np.ascontiguousarray(lazy[a : a + step])
            yield pa.record_batch([_from_ndarray(pa, part)], schema=schema)


def to_reader(lazy: Any) -> Any:
    """``lazy`` as a ``pyarrow.RecordBatchReader`` of one column named after
    the array, in batches of about ``STREAM_BATCH_BYTES``."""
    pa = _pyarrow()
    schema = pa.schema([pa.field(lazy.name, arrow_type(tuple(lazy.shape), lazy.dtype), False)])
    return pa.RecordBatchReader.from_batches(schema, _batches(pa, lazy, schema))


def arrow_c_stream(lazy: Any, requested_schema: Optional[Any] = None) -> Any:
    """Stream capsule of ``to_reader(lazy)``."""
    return to_reader(lazy).__arrow_c_stream__(requested_schema)
