"""Feather (Arrow IPC) files and Arrow tables <-> numvault (pyarrow).

Files stream record batch by record batch: ``from_feather_file`` reads a
Feather v2 file with ``pyarrow.ipc.open_file`` (memory: one record batch of
the file, decompressed), ``to_feather_file`` writes one record batch per
read batch. ``from_table`` / ``to_table`` work on an in-memory
``pyarrow.Table``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Union

import numpy as np

from . import _arrow
from .utils import (
    ConversionError,
    Progress,
    StoreWriter,
    Widen,
    _check_pyarrow,
    atomic_output,
    check_source,
    open_result,
    open_store,
    pick_one,
    store_batches,
)


# to_feather_file has no chunk_size (NumPack's signature): batches of 8 MiB
_EXPORT_CHUNK = 16 << 20


def from_table(
    table: Any,
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    columns: Optional[List[str]] = None,
    drop_if_exists: bool = False,
    return_npk_obj: bool = False,
) -> Any:
    """Save an in-memory ``pyarrow.Table`` as one array (``array_name``,
    default ``'data'``), its numeric columns side by side. In memory: the
    table and its array. One atomic commit."""
    return _arrow.save_table(_check_pyarrow(), table, output_path, array_name, columns,
                             drop_if_exists, return_npk_obj)


def to_table(
    input_path: Union[str, Path],
    array_name: Optional[str] = None,
    column_names: Optional[List[str]] = None,
) -> Any:
    """One array (``array_name``, or the store's only array) as an in-memory
    ``pyarrow.Table`` (1-D: 'data'; 2-D: 'col0', ...; N-D: fixed-size lists;
    the row shape in the schema metadata). In memory: the whole array."""
    return _arrow.load_table(_check_pyarrow(), input_path, array_name, column_names)


def _batches(pa: Any, src: Path, columns: Optional[List[str]], forced: Optional[np.dtype], progress: Any):
    try:
        f = pa.OSFile(str(src), "rb")
    except (pa.ArrowException, OSError) as e:
        raise ConversionError(src, None, f"cannot open: {e}") from e
    with f:
        try:
            reader = pa.ipc.open_file(f)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise ConversionError(src, None, f"not a Feather v2 (Arrow IPC) file: {e}") from e

        def batches():
            done = 0
            for i in range(reader.num_record_batches):
                try:
                    batch = reader.get_batch(i)
                    batch.validate(full=True)
                except (pa.ArrowException, OSError, ValueError) as e:
                    raise ConversionError(src, f"record batch {i} (rows from {done})",
                                          f"cannot read: {e}") from e
                done += batch.num_rows
                yield batch, f"record batch {i}"

        yield from _arrow.batch_arrays(pa, batches(), reader.schema, src, columns, forced, progress)


def from_feather_file(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    columns: Optional[List[str]] = None,
    drop_if_exists: bool = False,
    return_npk_obj: bool = False,
) -> Any:
    """Import a Feather file as one array (``array_name``, default the
    file's stem): its (selected) numeric columns side by side. Feather v2
    files stream one record batch at a time (memory: the largest batch the
    writer made; ``pyarrow.feather.write_feather`` makes 64K-row batches);
    Feather v1 files are read whole. One atomic commit; a damaged file
    raises :class:`~numvault.io.ConversionError` naming the record batch."""
    pa = _check_pyarrow()
    import pyarrow.ipc  # noqa: F401

    src = check_source(input_path)
    name = array_name or src.stem
    forced = None
    while True:
        try:
            with Progress(src.stat().st_size, f"from_feather {src.name}") as progress:
                with StoreWriter(output_path, drop_if_exists) as w:
                    try:
                        w.save_batches(name, _batches(pa, src, columns, forced, progress))
                    except ConversionError as e:
                        if "Feather v2" not in str(e):
                            raise
                        import pyarrow.feather as feather

                        try:
                            table = feather.read_table(str(src), columns=columns)
                        except (pa.ArrowException, OSError, ValueError) as e2:
                            raise ConversionError(src, None, f"not a Feather file: {e2}") from e2
                        w.save(name, _arrow.table_to_array(pa, table, src))
            break
        except Widen as wd:
            forced = wd.dtype
    return open_result(output_path) if return_npk_obj else None


def to_feather_file(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    compression: str = "zstd",
) -> None:
    """Export one array (``array_name``, or the store's only array) to a
    Feather v2 file (``compression``: 'zstd', 'lz4' or 'uncompressed'), one
    record batch per batch of rows; the file appears only once complete."""
    pa = _check_pyarrow()
    import pyarrow.ipc  # noqa: F401

    with open_store(input_path) as v:
        name = pick_one(v, array_name, "export")
        shape, dtype = tuple(v.shape(name)), v.dtype(name)
        schema = _arrow.schema_for(pa, dtype, shape)
        comp = None if compression in (None, "uncompressed") else compression
        opts = pa.ipc.IpcWriteOptions(compression=comp)
        with Progress(v.info(name)["data_bytes"], f"to_feather {Path(output_path).name}") as progress:
            with atomic_output(output_path) as f:
                with pa.ipc.new_file(f, schema, options=opts) as writer:
                    for b in store_batches(v, name, _EXPORT_CHUNK):
                        if len(b):
                            for rb in _arrow.array_to_table(pa, b).to_batches(max_chunksize=65536):
                                writer.write_batch(rb)
                        progress.update(b.nbytes)


from_feather = from_feather_file
to_feather = to_feather_file

__all__ = ["from_table", "to_table", "from_feather_file", "to_feather_file", "from_feather", "to_feather"]
