"""NumPy ``.npy`` / ``.npz`` files <-> numvault (streaming, bounded memory).

Both directions go through the Rust crate ``numvault-formats`` (exposed as
``numvault._core._import_npy``, ``_import_npz`` and ``_npy_header``), the
same reader and writer as the ``numvault import`` / ``export`` command: the
rows of a ``.npy`` file or ``.npz`` member are read in chunks and written
straight into the transaction's staging file; an export writes the shared
writer's header and then the store's rows batch by batch (``.npz`` archives
with Python's ``zipfile``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, BinaryIO, List, Optional, Union

import numpy as np

from .utils import (
    DEFAULT_CHUNK_SIZE,
    ConversionError,
    Progress,
    StoreWriter,
    atomic_output,
    check_source,
    open_result,
    open_store,
    pick_names,
    store_batches,
)


def _core() -> Any:
    from numvault import _core

    return _core


def _conversion_error(e: BaseException, src: Path) -> BaseException:
    """A reader error of ``_core`` as a ConversionError naming the file and
    the place (other exceptions unchanged)."""
    if isinstance(e, ValueError) and hasattr(e, "format_detail"):
        err = ConversionError(src, getattr(e, "format_place", None), e.format_detail)  # type: ignore[attr-defined]
        err.__cause__ = e
        return err
    return e


def _import(src: Path, w: StoreWriter, array_name: Optional[str], chunk_size: int, progress: Progress) -> None:
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    # a quarter of chunk_size per chunk, as the other streaming importers
    chunk = max(1, int(chunk_size) // 4)
    core = _core()
    try:
        if src.suffix.lower() == ".npy":
            core._import_npy(w.tx, str(src), array_name or src.stem, chunk, progress.update)
        else:
            core._import_npz(w.tx, str(src), chunk, progress.update)
    except ValueError as e:
        raise _conversion_error(e, src) from e


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

    Streams in chunks of at most ``chunk_size / 4`` bytes whatever the
    file's size (a Fortran-order array of two or more dimensions is read
    whole: its rows are not contiguous in the file), through the same Rust
    reader as ``numvault import``; the whole import is one atomic commit (a bad or truncated file
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
            _import(src, w, array_name, chunk_size, progress)
    return open_result(output_path) if return_npk_obj else None


def _write_header(f: BinaryIO, dtype: Any, shape: Any) -> None:
    """The shared writer's .npy header (format 1.0, or 2.0 when needed)."""
    f.write(_core()._npy_header(str(dtype), [int(d) for d in shape]))


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
