"""NumPy ``.npy`` / ``.npz`` files <-> numvault (streaming, bounded memory).

``.npy`` headers are read and written by NumPy's ``numpy.lib.format``; the
rows of a ``.npy`` file are read through ``np.load(mmap_mode='r')`` one
batch at a time (the mapped pages of a batch are released after it is
staged), those of a ``.npz`` member through the member's zip stream.
"""

from __future__ import annotations

import mmap
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, List, Optional, Tuple, Union

import numpy as np
from numpy.lib import format as npformat

from .utils import (
    DEFAULT_CHUNK_SIZE,
    ConversionError,
    Progress,
    StoreWriter,
    atomic_output,
    check_dtype,
    check_source,
    open_result,
    open_store,
    pick_names,
    rows_per_batch,
    store_batches,
)


def _read_header(f: BinaryIO, source: Any, place: Optional[str]) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    try:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
        else:  # pragma: no cover - read_magic refuses others
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, EOFError, SyntaxError, OSError) as e:
        raise ConversionError(source, place or "header", f"not a valid .npy header: {e}") from e
    if dtype.hasobject:
        raise ConversionError(source, place, "object arrays (pickled Python objects) are not supported")
    check_dtype(dtype, source, place)
    if len(shape) == 0:
        raise ConversionError(source, place, "0-d arrays (scalars) are not supported by numvault")
    return tuple(int(s) for s in shape), bool(fortran), dtype


def _npy_batches(path: Path, chunk_size: int, progress: Progress):
    """Batches of rows of ``path`` (validated against its header first)."""
    with open(path, "rb") as f:
        shape, fortran, dtype = _read_header(f, path, None)
        offset = f.tell()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < offset + nbytes:
        raise ConversionError(
            path,
            f"byte offset {size}",
            f"file is truncated: its header promises {nbytes} bytes of data from offset "
            f"{offset}, the file ends {offset + nbytes - size} bytes short",
        )
    if nbytes == 0:
        yield np.empty(shape, dtype)
        return
    m = np.load(str(path), mmap_mode="r")
    raw = getattr(m, "_mmap", None)
    rows = rows_per_batch(shape[1:], dtype, chunk_size)
    try:
        for start in range(0, shape[0], rows):
            batch = np.array(m[start : start + rows], order="C")
            if raw is not None:
                # drop the pages just read from this process's resident set
                try:
                    raw.madvise(mmap.MADV_DONTNEED)
                except (AttributeError, OSError, ValueError):
                    pass
            progress.update(batch.nbytes)
            yield batch
    finally:
        del m, raw


def _stream_batches(f: BinaryIO, shape: Tuple[int, ...], fortran: bool, dtype: np.dtype, chunk_size: int, source: Any, place: str):
    """Row batches read from a stream positioned at the data of a .npy."""
    if fortran and len(shape) > 1:
        # column-major data: rows are not contiguous in the stream; read whole
        count = int(np.prod(shape, dtype=np.int64))
        data = f.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise ConversionError(source, place, f"member is truncated at data byte {len(data)}")
        yield np.ascontiguousarray(np.frombuffer(data, dtype).reshape(shape, order="F"))
        return
    row_elems = int(np.prod(shape[1:], dtype=np.int64))
    row_bytes = row_elems * dtype.itemsize
    if shape[0] == 0 or row_bytes == 0:
        yield np.empty(shape, dtype)
        return
    rows = rows_per_batch(shape[1:], dtype, chunk_size)
    done = 0
    while done < shape[0]:
        n = min(rows, shape[0] - done)
        want = n * row_bytes
        data = f.read(want)
        if len(data) != want:
            raise ConversionError(
                source, place, f"member is truncated: row {done + len(data) // row_bytes} of {shape[0]} is missing"
            )
        done += n
        yield np.frombuffer(data, dtype).reshape((n,) + tuple(shape[1:]))


def from_npy(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    drop_if_exists: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    return_npk_obj: bool = False,
) -> Any:
    """Import a ``.npy`` file (one array, named ``array_name`` or the file's
    stem) or a ``.npz`` file (one array per member, named by its key) into
    the numvault store ``output_path``.

    Streams in batches of about ``chunk_size / 2`` bytes whatever the file's
    size; the whole import is one atomic commit (a bad or truncated file
    raises :class:`~numvault.io.ConversionError` naming the file and the
    byte offset or member, and the store is left as it was). Returns an
    opened :class:`numvault.NumPack` if ``return_npk_obj``, else None.
    """
    src = check_source(input_path)
    suffix = src.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"Unsupported file format: {suffix}. Supported: .npy and .npz")
    with Progress(src.stat().st_size, f"from_npy {src.name}") as progress:
        with StoreWriter(output_path, drop_if_exists) as w:
            if suffix == ".npy":
                w.save_batches(array_name or src.stem, _npy_batches(src, chunk_size, progress))
            else:
                _from_npz(src, w, chunk_size, progress)
    return open_result(output_path) if return_npk_obj else None


class _Checked:
    """A zip member stream whose read errors (bad CRC, damaged deflate data,
    truncation) become ConversionErrors naming the member."""

    def __init__(self, f: BinaryIO, source: Any, place: str) -> None:
        self._f, self._source, self._place = f, source, place

    def read(self, n: int = -1) -> bytes:
        try:
            return self._f.read(n)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise ConversionError(self._source, self._place, f"damaged or truncated member: {e}") from e


def _from_npz(src: Path, w: StoreWriter, chunk_size: int, progress: Progress) -> None:
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as e:
        raise ConversionError(src, None, f"not a valid .npz (zip) file: {e}") from e
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            place = f"member '{info.filename}'"
            try:
                f = zf.open(info)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ConversionError(src, place, f"damaged member: {e}") from e
            with f:
                rf = _Checked(f, src, place)
                shape, fortran, dtype = _read_header(rf, src, place)
                w.save_batches(key, _stream_batches(rf, shape, fortran, dtype, chunk_size, src, place))
                if rf.read(1):
                    raise ConversionError(src, place, "member holds bytes past the array its header describes")
            progress.update(info.compress_size)


def _npy_header(dtype: np.dtype, shape: Tuple[int, ...]) -> dict:
    return {"descr": npformat.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}


def _write_header(f: BinaryIO, dtype: np.dtype, shape: Tuple[int, ...]) -> None:
    d = _npy_header(dtype, shape)
    try:
        npformat.write_array_header_1_0(f, d)
    except ValueError:  # header too large for format 1.0
        npformat.write_array_header_2_0(f, d)


def _write_rows(f: BinaryIO, v: Any, name: str, chunk_size: int, progress: Progress) -> None:
    for b in store_batches(v, name, chunk_size):
        b = np.ascontiguousarray(b)
        f.write(b.data if b.size else b"")
        progress.update(b.nbytes)


def to_npy(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_names: Optional[List[str]] = None,
    compressed: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Export arrays of the store ``input_path`` to a ``.npy`` file (exactly
    one array) or a ``.npz`` file (``array_names``, default all; deflated if
    ``compressed``). Streams batches of about ``chunk_size / 2`` bytes, also
    into ``.npz`` members; the output appears only once complete."""
    out = Path(output_path)
    suffix = out.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"Unsupported file format: {suffix}. Supported: .npy and .npz")
    with open_store(input_path) as v:
        names = pick_names(v, array_names)
        total = sum(v.info(n)["data_bytes"] for n in names)
        with Progress(total, f"to_npy {out.name}") as progress:
            if suffix == ".npy":
                if len(names) != 1:
                    raise ValueError(
                        f"The .npy format can only store one array, but {len(names)} arrays were "
                        "provided. Use .npz or provide exactly one array name."
                    )
                with atomic_output(out) as f:
                    _write_header(f, v.dtype(names[0]), v.shape(names[0]))
                    _write_rows(f, v, names[0], chunk_size, progress)
            else:
                method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
                with atomic_output(out) as raw:
                    with zipfile.ZipFile(raw, "w", compression=method, allowZip64=True) as zf:
                        for n in names:
                            with zf.open(n + ".npy", "w", force_zip64=True) as f:
                                _write_header(f, v.dtype(n), v.shape(n))
                                _write_rows(f, v, n, chunk_size, progress)


__all__ = ["from_npy", "to_npy"]
