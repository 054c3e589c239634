"""Import a NumPack store directory (NumPack 0.5, 0.6, 0.7) into numvault.

The reading is done in Rust by the ``numpack-reader`` crate, the same code
as the ``numvault import STORE NUMPACK_DIR`` command, so both accept and
refuse the same stores. See ``docs/MIGRATING.md``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable, List, Optional, Union

from .utils import DEFAULT_CHUNK_SIZE, ConversionError, Progress, is_numvault_store, open_result, replace_dir

PathLike = Union[str, "os.PathLike[str]"]

# Reader errors about the NumPack store itself (the rest: OSError,
# MemoryError, numvault's own exceptions, propagate as they are).
_SOURCE_KINDS = ("corrupt", "unsupported", "not_numpack")


def is_numpack_store(path: PathLike) -> bool:
    """True if ``path`` is a directory holding a NumPack ``metadata.npkm``."""
    return (Path(path) / "metadata.npkm").is_file()


def _place(e: BaseException) -> Optional[str]:
    parts = []
    array = getattr(e, "numpack_array", None)
    offset = getattr(e, "numpack_offset", None)
    if array is not None:
        parts.append(f"array '{array}'")
    if offset is not None:
        parts.append(f"byte {offset}")
    return ", ".join(parts) or None


def _run(src: Path, dst: Path, **kw: Any) -> List[dict]:
    from numvault import _core

    try:
        return _core._import_numpack(str(src), str(dst), **kw)
    except (ValueError, OSError) as e:
        kind = getattr(e, "numpack_kind", None)
        if kind not in _SOURCE_KINDS:
            raise
        what = {
            "corrupt": "corrupt NumPack store",
            "unsupported": "cannot import from this NumPack store",
            "not_numpack": "not a NumPack store",
        }[kind]
        detail = getattr(e, "numpack_detail", None) or str(e)
        if kind == "not_numpack":
            detail = "no metadata.npkm in the directory"
        source = getattr(e, "numpack_file", None) or src
        raise ConversionError(source, _place(e), f"{what}: {detail}") from e


def from_numpack(
    input_path: PathLike,
    output_path: PathLike,
    drop_if_exists: bool = False,
    *,
    arrays: Optional[Iterable[str]] = None,
    prefix: Optional[str] = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    return_npk_obj: bool = False,
) -> Any:
    """Import the NumPack store ``input_path`` (a directory with
    ``metadata.npkm``, written by NumPack 0.5-0.7) into the numvault store
    ``output_path``, in one atomic commit.

    Every array is imported with the rows NumPack's ``load`` returns: rows
    deleted with ``drop(name, indexes)`` are left out, segmented arrays
    (NumPack 0.7) are joined. ``arrays`` imports only the arrays named;
    ``prefix`` puts them under a group (``prefix/name``). Rows stream in
    chunks of about ``chunk_size / 2`` bytes (at least one row), so memory
    stays bounded whatever the store's size.

    The target: an existing numvault store gets the arrays (replacing arrays
    of the same names; with ``drop_if_exists`` its other arrays are dropped
    in the same commit), written by turns like the other ``numvault.io``
    converters (NumPack instances may stay open on it). A missing path or empty directory gets a new store.
    Any other existing path -- the NumPack directory itself, to convert in
    place -- is replaced only with ``drop_if_exists`` (the new store is built
    beside it and swapped in after the commit); else ``FileExistsError``.

    A corrupt or truncated NumPack store raises
    :class:`~numvault.io.ConversionError` naming the file, the array and the
    byte offset; nothing is imported and the target is left as it was.

    Returns an opened :class:`numvault.NumPack` if ``return_npk_obj``, else
    a list with a dict per imported array (``source``, ``name``, ``dtype``,
    ``shape``, ``deleted_rows``, ``bytes``, ``segmented``).
    """
    src = Path(input_path)
    dst = Path(output_path)
    if not src.is_dir():
        raise FileNotFoundError(f"NumPack store not found: {src}")
    kw: dict = {
        "prefix": prefix,
        "arrays": None if arrays is None else [str(a) for a in arrays],
        "chunk_bytes": max(1, int(chunk_size) // 2),
    }
    with Progress(None, f"from_numpack {src.name}") as progress:
        kw["progress"] = progress.update
        if is_numvault_store(dst):
            # A writer by turns, as the other numvault.io converters: it
            # coexists with NumPack instances open on the store.
            report = _run(src, dst, replace_all=bool(drop_if_exists), shared=True, **kw)
        else:
            if dst.exists() and not (dst.is_dir() and not any(dst.iterdir())) and not drop_if_exists:
                raise FileExistsError(
                    f"{dst} exists and is not a numvault store; pass drop_if_exists=True to replace it"
                )
            dst.parent.mkdir(parents=True, exist_ok=True)
            build = dst.parent / f".{dst.name}.build-{uuid.uuid4().hex[:12]}"
            try:
                report = _run(src, build, **kw)
                replace_dir(build, dst)
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
    return open_result(dst) if return_npk_obj else report


__all__ = ["from_numpack", "is_numpack_store"]
