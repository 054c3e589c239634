"""HDF5 files <-> numvault (h5py; streaming, bounded memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Union


from .utils import (
    DEFAULT_CHUNK_SIZE,
    ConversionError,
    Progress,
    StoreWriter,
    _check_h5py,
    atomic_path,
    check_source,
    open_result,
    open_store,
    pick_names,
    sliced_batches,
    store_batches,
)


def _datasets(h5py: Any, grp: Any, prefix: str = "") -> List[tuple]:
    """(name relative to the group, dataset) of every dataset under ``grp``,
    in sub-groups too ('/'-separated names), in name order."""
    out = []
    for key in sorted(grp.keys()):
        try:
            obj = grp[key]
        except KeyError:  # dangling external or soft link
            continue
        if isinstance(obj, h5py.Dataset):
            out.append((prefix + key, obj))
        elif isinstance(obj, h5py.Group):
            out.extend(_datasets(h5py, obj, prefix + key + "/"))
    return out


def _dataset_batches(src: Path, name: str, ds: Any, chunk_size: int, progress: Progress):
    shape = tuple(int(s) for s in ds.shape or ())
    return sliced_batches(src, f"dataset '{ds.name}'", shape, ds.dtype, chunk_size, progress,
                          lambda a, b: ds[a:b], (OSError, ValueError, RuntimeError, KeyError))


def from_hdf5(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    dataset_names: Optional[List[str]] = None,
    group: str = "/",
    drop_if_exists: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    return_npk_obj: bool = False,
) -> Any:
    """Import the datasets of HDF5 group ``group`` (``dataset_names``, names
    relative to the group; default every dataset under it, sub-groups
    included, named with '/') into the store ``output_path``.

    Streams row batches of about ``chunk_size / 2`` bytes; one atomic commit.
    A damaged file or dataset raises :class:`~numvault.io.ConversionError`
    naming the dataset (and rows); nothing is written. Needs ``h5py``.
    """
    h5py = _check_h5py()
    src = check_source(input_path)
    try:
        f = h5py.File(str(src), "r")
    except (OSError, ValueError) as e:
        raise ConversionError(src, None, f"cannot open as HDF5: {e}") from e
    with f:
        try:
            grp = f[group]
        except KeyError as e:
            raise KeyError(f"{src}: group '{group}' not found") from e
        if isinstance(grp, h5py.Dataset):
            items = [(Path(group).name, grp)]
        elif dataset_names is None:
            items = _datasets(h5py, grp)
        else:
            items = []
            for n in dataset_names:
                if n not in grp or not isinstance(grp[n], h5py.Dataset):
                    raise KeyError(f"{src}: dataset '{n}' not found in group '{group}'")
                items.append((n.strip("/"), grp[n]))
        total = sum(int(ds.size) * ds.dtype.itemsize for _, ds in items)
        with Progress(total, f"from_hdf5 {src.name}") as progress:
            with StoreWriter(output_path, drop_if_exists) as w:
                for name, ds in items:
                    w.save_batches(name, _dataset_batches(src, name, ds, chunk_size, progress))
    return open_result(output_path) if return_npk_obj else None


def to_hdf5(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_names: Optional[List[str]] = None,
    group: str = "/",
    compression: Optional[str] = "gzip",
    compression_opts: Optional[int] = 4,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Export arrays (``array_names``, default all) of the store
    ``input_path`` as datasets of group ``group`` of a new HDF5 file
    (``compression`` / ``compression_opts`` as h5py's), one batch at a time.
    The file appears only once complete. Needs ``h5py``."""
    h5py = _check_h5py()
    with open_store(input_path) as v:
        names = pick_names(v, array_names)
        total = sum(v.info(n)["data_bytes"] for n in names)
        with Progress(total, f"to_hdf5 {Path(output_path).name}") as progress:
            with atomic_path(output_path) as tmp:
                with h5py.File(str(tmp), "w") as f:
                    grp = f.require_group(group) if group not in ("/", "") else f
                    for n in names:
                        shape, dtype = tuple(v.shape(n)), v.dtype(n)
                        kw: dict = {}
                        if all(s > 0 for s in shape) and compression is not None:
                            kw = {"compression": compression, "chunks": True}
                            if compression_opts is not None:
                                kw["compression_opts"] = compression_opts
                        ds = grp.create_dataset(n, shape=shape, dtype=dtype, **kw)
                        start = 0
                        for b in store_batches(v, n, chunk_size):
                            if len(b):
                                ds[start : start + len(b)] = b
                            start += len(b)
                            progress.update(b.nbytes)


__all__ = ["from_hdf5", "to_hdf5"]
