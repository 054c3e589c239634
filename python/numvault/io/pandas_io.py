"""pandas DataFrames <-> numvault (in memory: the DataFrame and its array
are both in memory by nature)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Union

import numpy as np

from .utils import (
    DEFAULT_CHUNK_SIZE,
    ConversionError,
    StoreWriter,
    _check_pandas,
    check_dtype,
    open_result,
    open_store,
    pick_one,
    rows_per_batch,
)


def from_dataframe(
    df: "Any",
    output_path: Union[str, Path],
    array_name: str = "data",
    drop_if_exists: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    return_npk_obj: bool = False,
) -> Any:
    """Save a DataFrame's values (``df.to_numpy()``, numeric columns only;
    mixed numeric columns take NumPy's common type) as one 2-D array
    ``array_name``. In memory; staged to the store in batches of about
    ``chunk_size / 2`` bytes as one atomic commit. A non-numeric column
    raises :class:`~numvault.io.ConversionError` naming it."""
    pd = _check_pandas()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas.DataFrame, got {type(df).__name__}")
    for c in df.columns:
        kind = getattr(df[c].dtype, "kind", "O")
        if kind not in "biufc":
            raise ConversionError("DataFrame", f"column {c!r}", f"dtype {df[c].dtype} is not numeric")
    arr = np.ascontiguousarray(df.to_numpy())
    check_dtype(arr.dtype, "DataFrame", None)
    rows = rows_per_batch(arr.shape[1:], arr.dtype, chunk_size)
    with StoreWriter(output_path, drop_if_exists) as w:
        w.save_batches(array_name, (arr[i : i + rows] for i in range(0, max(1, len(arr)), rows)))
    return open_result(output_path) if return_npk_obj else None


def to_dataframe(
    input_path: Union[str, Path],
    array_name: Optional[str] = None,
    columns: Optional[List[str]] = None,
) -> Any:
    """One 1-D or 2-D array (``array_name``, or the store's only array) as
    a DataFrame (columns ``col0``, ... unless ``columns``). In memory."""
    pd = _check_pandas()
    with open_store(input_path) as v:
        name = pick_one(v, array_name, "export")
        arr = v.load(name)
    if arr.ndim > 2:
        raise ValueError(f"array '{name}' has shape {arr.shape}: a DataFrame holds 1-D or 2-D data")
    if columns is None and arr.ndim == 2:
        columns = [f"col{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=columns)


__all__ = ["from_dataframe", "to_dataframe"]
