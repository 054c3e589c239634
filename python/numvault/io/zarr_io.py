"""Zarr stores <-> numvault (zarr 2 or 3; streaming, bounded memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Union

import numpy as np

from .utils import (
    DEFAULT_CHUNK_SIZE,
    ConversionError,
    Progress,
    StoreWriter,
    _check_zarr,
    atomic_path,
    check_source,
    open_result,
    open_store,
    pick_names,
    rows_per_batch,
    sliced_batches,
    store_batches,
)

_ZARR_ERRORS = (OSError, ValueError, KeyError, RuntimeError, TypeError)


def _arrays(zarr: Any, grp: Any, prefix: str = "") -> List[tuple]:
    """(name relative to ``grp``, array) of every array under it, sub-groups
    included, in name order."""
    out = [(prefix + k, a) for k, a in grp.arrays()]
    for k, g in grp.groups():
        out.extend(_arrays(zarr, g, prefix + k + "/"))
    return sorted(out, key=lambda t: t[0])


def _batches(src: Path, name: str, arr: Any, chunk_size: int, progress: Progress):
    shape = tuple(int(s) for s in arr.shape)
    return sliced_batches(src, f"array '{name}'", shape, arr.dtype, chunk_size, progress,
                          lambda a, b: arr[a:b], _ZARR_ERRORS)


def from_zarr(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_names: Optional[List[str]] = None,
    group: str = "/",
    drop_if_exists: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    return_npk_obj: bool = False,
) -> Any:
    """Import the arrays of Zarr group ``group`` (``array_names``, default
    every array under it, sub-groups included, named with '/') into the
    store ``output_path``. A path to a single Zarr array imports it under
    its directory's stem. Streams row batches of about ``chunk_size / 2``
    bytes; one atomic commit; a damaged chunk raises
    :class:`~numvault.io.ConversionError` naming the array and rows.
    Needs ``zarr``."""
    zarr = _check_zarr()
    src = check_source(input_path)
    try:
        root = zarr.open(str(src), mode="r")
        if group not in ("/", ""):
            root = root[group.strip("/")]
    except _ZARR_ERRORS as e:
        raise ConversionError(src, None if group in ("/", "") else f"group '{group}'",
                              f"cannot open as Zarr: {e}") from e
    if not hasattr(root, "arrays"):  # a single array
        items = [(src.stem if group in ("/", "") else group.strip("/").split("/")[-1], root)]
    elif array_names is None:
        items = _arrays(zarr, root)
    else:
        items = []
        for n in array_names:
            try:
                items.append((n.strip("/"), root[n]))
            except KeyError as e:
                raise KeyError(f"{src}: array '{n}' not found in group '{group}'") from e
    total = sum(int(np.prod(a.shape, dtype=np.int64)) * np.dtype(a.dtype).itemsize for _, a in items)
    with Progress(total, f"from_zarr {src.name}") as progress:
        with StoreWriter(output_path, drop_if_exists) as w:
            for name, a in items:
                w.save_batches(name, _batches(src, name, a, chunk_size, progress))
    return open_result(output_path) if return_npk_obj else None


def to_zarr(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_names: Optional[List[str]] = None,
    group: str = "/",
    compressor: Optional[str] = "default",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Export arrays (``array_names``, default all) of the store
    ``input_path`` into a new Zarr group (at ``group`` within it), one batch
    at a time. ``compressor``: ``'default'`` (zarr's default), None (no
    compression) or a codec object of the installed zarr. The store appears
    only once complete. Needs ``zarr``."""
    zarr = _check_zarr()
    v3 = hasattr(zarr, "create_array")
    with open_store(input_path) as v:
        names = pick_names(v, array_names)
        total = sum(v.info(n)["data_bytes"] for n in names)
        with Progress(total, f"to_zarr {Path(output_path).name}") as progress:
            with atomic_path(output_path) as tmp:
                root = zarr.open_group(str(tmp), mode="w")
                g = root.require_group(group.strip("/")) if group not in ("/", "") else root
                for n in names:
                    shape, dtype = tuple(v.shape(n)), v.dtype(n)
                    parent = g
                    *dirs, leaf = n.split("/")
                    for d in dirs:
                        parent = parent.require_group(d)
                    # one Zarr chunk per batch read from the store: each batch
                    # fills whole chunks (no read-modify-write of a chunk)
                    crows = max(1, min(shape[0] or 1, rows_per_batch(shape[1:], dtype, max(1, chunk_size // 2))))
                    chunks = (crows,) + shape[1:]
                    chunks = tuple(max(1, c) for c in chunks)
                    kw: dict = {}
                    if v3:
                        if compressor is None:
                            kw["compressors"] = None
                        elif compressor != "default":
                            kw["compressors"] = compressor
                        a = parent.create_array(leaf, shape=shape, dtype=dtype, chunks=chunks, **kw)
                    else:  # zarr 2
                        if compressor != "default":
                            kw["compressor"] = compressor
                        a = parent.create_dataset(leaf, shape=shape, dtype=dtype, chunks=chunks, **kw)
                    start = 0
                    for b in store_batches(v, n, chunk_size):
                        if len(b):
                            a[start : start + len(b)] = b
                        start += len(b)
                        progress.update(b.nbytes)


__all__ = ["from_zarr", "to_zarr"]
