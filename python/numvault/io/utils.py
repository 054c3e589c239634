"""Shared machinery of :mod:`numvault.io`.

* constants and size helpers of ``numpack.io`` (``LARGE_FILE_THRESHOLD``,
  ``DEFAULT_CHUNK_SIZE``, ``DEFAULT_BATCH_ROWS``, ``get_file_size``,
  ``is_large_file``, ``estimate_chunk_rows``);
* :class:`DependencyError` and the lazy imports of optional libraries;
* :class:`ConversionError`, raised when a source is bad, naming the source
  file and the place in it (row, line, byte offset, member, dataset);
* :class:`StoreWriter`: every converter writes into numvault through one
  :meth:`numvault.Vault.begin` transaction, committed once, so a failed
  conversion leaves the target store as it was (a new target is built in a
  directory beside it and renamed into place only once complete);
* :func:`atomic_output`: exports write a temporary file beside the output and
  rename it into place, so a failed export leaves no partial file;
* :class:`Progress`: a tqdm bar on a terminal for conversions over a second.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Tuple, Union

import numpy as np

# Same values as numpack.io.
LARGE_FILE_THRESHOLD = 1 * 1024 * 1024 * 1024  # 1 GiB
DEFAULT_CHUNK_SIZE = 100 * 1024 * 1024  # 100 MiB
DEFAULT_BATCH_ROWS = 100000

PathLike = Union[str, "os.PathLike[str]"]

# dtypes numvault stores (others are refused with a ValueError naming them).
SUPPORTED_DTYPES = tuple(
    np.dtype(t)
    for t in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64", "complex64", "complex128",
    )
)


class DependencyError(ImportError):
    """An optional library a converter needs is not installed; the message
    names the package to install (and the numvault extra that brings it)."""


class ConversionError(ValueError):
    """A source could not be converted. ``source`` is the file (or object)
    and ``place`` where in it (row, line, byte offset, member, dataset).
    Nothing was written to the target."""

    def __init__(self, source: Any, place: Optional[str], message: str) -> None:
        self.source = str(source)
        self.place = place
        where = f"{self.source}" + (f", {place}" if place else "")
        super().__init__(f"{where}: {message}")


_EXTRA_OF = {
    "h5py": "hdf5",
    "zarr": "zarr",
    "pyarrow": "arrow",
    "pandas": "pandas",
    "torch": None,
    "safetensors": "safetensors",
    "blake3": "pack",
    "zstandard": "pack",
    "tqdm": "io",
}


def _check_dependency(module_name: str, package_name: Optional[str] = None) -> Any:
    """Import optional module ``module_name`` or raise :class:`DependencyError`
    naming the pip package (``package_name``, default the module's name)."""
    package_name = package_name or module_name.split(".")[0]
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        extra = _EXTRA_OF.get(package_name)
        hint = f"pip install {package_name}"
        if extra:
            hint += f" (or pip install 'numvault[{extra}]')"
        raise DependencyError(
            f"The optional dependency '{package_name}' is required to use this feature.\n"
            f"Please run: {hint}"
        ) from e


def _check_h5py() -> Any:
    return _check_dependency("h5py")


def _check_zarr() -> Any:
    return _check_dependency("zarr")


def _check_pyarrow() -> Any:
    return _check_dependency("pyarrow")


def _check_pandas() -> Any:
    return _check_dependency("pandas")


def _check_torch() -> Any:
    return _check_dependency("torch")


def _check_safetensors() -> Any:
    return _check_dependency("safetensors")


# ---------------------------------------------------------------------------
# size helpers (numpack.io's)
# ---------------------------------------------------------------------------


def get_file_size(path: PathLike) -> int:
    """Size in bytes of a file, or the total of the files under a directory;
    0 if ``path`` does not exist."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return 0


def is_large_file(path: PathLike, threshold: int = LARGE_FILE_THRESHOLD) -> bool:
    """True if :func:`get_file_size` of ``path`` exceeds ``threshold`` bytes."""
    return get_file_size(path) > threshold


def estimate_chunk_rows(
    shape: Tuple[int, ...], dtype: np.dtype, target_chunk_bytes: int = DEFAULT_CHUNK_SIZE
) -> int:
    """Rows per chunk so that a chunk of an array of ``shape`` and ``dtype``
    holds about ``target_chunk_bytes`` (at least 1, at most the rows, at most
    ``10 * DEFAULT_BATCH_ROWS``)."""
    if len(shape) == 0:
        return 1
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize if len(shape) > 1 else np.dtype(dtype).itemsize
    if row_bytes == 0:
        return DEFAULT_BATCH_ROWS
    rows = max(1, int(target_chunk_bytes) // row_bytes)
    return max(1, min(rows, int(shape[0]), DEFAULT_BATCH_ROWS * 10)) if shape[0] > 0 else 1


def rows_per_batch(row_shape: Tuple[int, ...], dtype: np.dtype, chunk_size: int) -> int:
    """Rows of one read batch of a streaming import: a quarter of
    ``chunk_size`` bytes (at least one row). A quarter, because a batch may
    exist several times at once (the source library's buffer, its converted
    copy, and batches the allocator has not given back yet): the
    converter's peak stays within ``chunk_size``."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return max(1, (int(chunk_size) // 4) // max(1, row_bytes))


def sliced_batches(
    source: Any,
    place: str,
    shape: Tuple[int, ...],
    dtype: Any,
    chunk_size: int,
    progress: Any,
    read: Any,
    errors: Tuple[type, ...] = (Exception,),
) -> Iterator[np.ndarray]:
    """Row batches of a source read by slices: ``read(start, stop)`` returns
    rows ``start:stop`` (a library's slicing: an HDF5 dataset, a Zarr array,
    a safetensors slice), about ``chunk_size / 4`` bytes each. An empty
    array gives one empty batch; a 0-d one, or a read raising one of
    ``errors``, a ConversionError naming ``place`` (and the rows)."""
    if len(shape) == 0:
        raise ConversionError(source, place, "0-d (scalar) arrays are not supported by numvault")
    dtype = check_dtype(dtype, source, place)
    if shape[0] == 0 or 0 in shape:
        yield np.empty(shape, dtype)
        return
    rows = rows_per_batch(shape[1:], dtype, chunk_size)
    for start in range(0, shape[0], rows):
        stop = min(shape[0], start + rows)
        try:
            b = np.asarray(read(start, stop))
        except errors as e:
            raise ConversionError(source, f"{place}, rows {start}..{stop - 1}", f"cannot read: {e}") from e
        progress.update(b.nbytes)
        yield b


def check_dtype(dtype: Any, source: Any, place: Optional[str]) -> np.dtype:
    """``dtype`` as a NumPy dtype numvault stores, else a ConversionError."""
    dt = np.dtype(dtype)
    if dt.newbyteorder("=") in SUPPORTED_DTYPES or dt in SUPPORTED_DTYPES:
        return dt
    raise ConversionError(
        source,
        place,
        f"dtype {dt} is not supported by numvault (it stores bool, int8..int64, "
        "uint8..uint64, float16/32/64, complex64/128)",
    )


def native(a: np.ndarray) -> np.ndarray:
    """``a`` C-contiguous in native byte order (numvault stores little-endian
    rows; the engine converts, this only avoids strided inputs)."""
    if a.dtype.byteorder not in ("=", "|") and a.dtype.byteorder != ("<" if sys.byteorder == "little" else ">"):
        a = a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)


# ---------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------


class Progress:
    """A tqdm progress bar (bytes) shown only when tqdm is installed, stderr
    is a terminal and the conversion has run for more than a second."""

    def __init__(self, total: Optional[int], desc: str) -> None:
        self._bar = None
        try:
            if not sys.stderr.isatty():
                return
            tqdm = importlib.import_module("tqdm").tqdm
        except Exception:
            return
        self._bar = tqdm(
            total=total, desc=desc, unit="B", unit_scale=True, delay=1.0, leave=False, file=sys.stderr
        )

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------
# the target store: one atomic commit per call
# ---------------------------------------------------------------------------


def is_numvault_store(p: Path) -> bool:
    return (p / "MANIFEST").is_file()


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(str(d), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_dir(new: Path, target: Path) -> None:
    """Put directory ``new`` at ``target``: a rename if ``target`` is missing
    or an empty directory, else an exchange (the old one is removed after)."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        if target.is_dir():
            target.rmdir()
        os.rename(new, target)
    else:
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        try:
            os.rename(new, target)
        except BaseException:
            os.rename(old, target)
            raise
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    _fsync_dir(target.parent)


class StoreWriter:
    """Writes arrays into the numvault store at ``output_path`` as one atomic
    commit (a :meth:`numvault.Vault.begin` transaction; arrays arriving in
    batches are streamed into staging files by ``Transaction.save_batches``,
    so memory holds one batch).

    * An existing numvault store is opened as a writer; with
      ``drop_if_exists`` its arrays are dropped in the same transaction.
    * A missing path (or an empty directory) gets a new store built in a
      directory beside it, renamed into place after the commit.
    * Another existing path (a NumPack-format directory, other files) is
      replaced only with ``drop_if_exists`` (the new store is built beside it
      and swapped in after the commit); otherwise a ``FileExistsError``.

    Used as a context manager: an exception discards everything staged, and
    a new store built beside the target is removed.
    """

    def __init__(self, output_path: PathLike, drop_if_exists: bool = False, sync: str = "flush") -> None:
        self.target = Path(output_path)
        self.drop_if_exists = drop_if_exists
        self.sync = sync
        self.vault: Any = None
        self.tx: Any = None
        self._build: Optional[Path] = None

    def __enter__(self) -> "StoreWriter":
        from numvault import Vault

        t = self.target
        if is_numvault_store(t):
            # a writer by turns, as NumPack instances are: it stages without
            # the lock and takes it only to commit, so it coexists with other
            # handles open on the store (a change of theirs that the staged
            # one no longer applies to is a ConflictError, nothing committed)
            self.vault = Vault(str(t), "a", self.sync, shared=True)  # type: ignore[arg-type]
        else:
            if t.exists() and not (t.is_dir() and not any(t.iterdir())) and not self.drop_if_exists:
                raise FileExistsError(
                    f"{t} exists and is not a numvault store; pass drop_if_exists=True to replace it"
                )
            t.parent.mkdir(parents=True, exist_ok=True)
            self._build = t.parent / f".{t.name}.build-{uuid.uuid4().hex[:12]}"
            self.vault = Vault(str(self._build), "a", self.sync)  # type: ignore[arg-type]
        try:
            self.tx = self.vault.begin()
            if self.drop_if_exists and self._build is None:
                for name in self.tx.names():
                    self.tx.drop(name)
        except BaseException:
            self._abort()
            raise
        return self

    # -- staging -------------------------------------------------------------
    def save(self, name: str, array: np.ndarray) -> None:
        """Stage ``array`` as array ``name`` (replacing one of that name)."""
        self.tx.save(name, native(np.asarray(array)))

    def save_batches(self, name: str, batches: Iterable[np.ndarray], progress: Optional[Progress] = None) -> int:
        """Stage array ``name`` from row batches, streamed into a staging
        file by ``Transaction.save_batches`` (memory: one batch; the rows
        never enter the transaction's memory budget). Returns the number of
        rows. An empty iterable is an error (the row shape would be
        unknown)."""
        it = iter(batches)
        try:
            first = native(np.asarray(next(it)))
        except StopIteration:
            raise ValueError(f"array '{name}': no rows and no shape to save") from None

        def stream() -> Iterator[np.ndarray]:
            yield first
            if progress is not None:
                progress.update(first.nbytes)
            for b in it:
                b = native(np.asarray(b))
                yield b
                if progress is not None:
                    progress.update(b.nbytes)

        if first.ndim >= 1 and int(np.prod(first.shape[1:], dtype=np.int64)) * first.itemsize > 0 \
                and hasattr(self.tx, "save_batches"):
            return int(self.tx.save_batches(name, stream()))
        # rows of 0 bytes (or an older extension): save, then append
        rows = 0
        for i, b in enumerate(stream()):
            if i == 0:
                self.tx.save(name, b)
            elif len(b):
                self.tx.append(name, b)
            rows += len(b)
        return rows

    def names(self) -> list:
        return list(self.tx.names())

    # -- end -----------------------------------------------------------------
    def _abort(self) -> None:
        try:
            if self.tx is not None and self.tx.active:
                self.tx.discard()
        finally:
            self.tx = None
            if self.vault is not None:
                try:
                    self.vault.close()
                finally:
                    self.vault = None
            if self._build is not None:
                shutil.rmtree(self._build, ignore_errors=True)
                self._build = None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self.tx.commit()
            self.tx = None
            self.vault.close()
            self.vault = None
        except BaseException:
            self._abort()
            raise
        if self._build is not None:
            build, self._build = self._build, None
            try:
                replace_dir(build, self.target)
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise


def open_result(output_path: PathLike) -> Any:
    """The opened :class:`numvault.NumPack` that ``return_npk_obj=True`` returns."""
    from numvault import NumPack

    npk = NumPack(str(output_path))
    npk.open()
    return npk


@contextlib.contextmanager
def open_store(input_path: PathLike) -> Iterator[Any]:
    """A read-only :class:`numvault.Vault` on ``input_path`` (a snapshot:
    reads see the state at open, whatever a writer does meanwhile)."""
    from numvault import Vault

    p = Path(input_path)
    if not p.exists():
        raise FileNotFoundError(f"store not found: {p}")
    if not is_numvault_store(p):
        if (p / "metadata.npkm").exists():
            raise ValueError(
                f"{p} is a NumPack-format store; import it first (numvault.io.from_numpack "
                "or `numvault import`)"
            )
        raise ValueError(f"{p} is not a numvault store (no MANIFEST)")
    v = Vault(str(p), "r")
    try:
        yield v
    finally:
        v.close()


def pick_one(v: Any, array_name: Optional[str], what: str) -> str:
    """``array_name``, or the store's only array; ValueError if ambiguous."""
    if array_name is not None:
        if array_name not in v:
            raise KeyError(f"array '{array_name}' not found in {v.path}")
        return array_name
    names = v.names()
    if len(names) == 1:
        return names[0]
    raise ValueError(
        f"{v.path} holds {len(names)} arrays {names}; pass array_name to choose the one to {what}"
    )


def pick_names(v: Any, array_names: Optional[Iterable[str]]) -> list:
    """``array_names`` (each must exist) or every array of the store."""
    if array_names is None:
        return list(v.names())
    out = list(array_names)
    for n in out:
        if n not in v:
            raise KeyError(f"array '{n}' not found in {v.path}")
    return out


def store_batches(v: Any, name: str, chunk_size: int) -> Iterator[np.ndarray]:
    """Row batches of array ``name`` (checksums verified as read) for an
    export: batches of ``chunk_size / 8`` bytes, because numvault's stream
    reads up to three batches ahead of the one handed out (so about half of
    ``chunk_size`` is in flight) and the export's library converts a batch."""
    shape = v.shape(name)
    rows = rows_per_batch(tuple(shape[1:]), v.dtype(name), max(1, chunk_size // 2))
    return iter(v.batches(name, rows))


@contextlib.contextmanager
def atomic_output(output_path: PathLike, mode: str = "wb") -> Iterator[Any]:
    """A file object on a temporary file beside ``output_path``, synced and
    renamed into place when the block ends normally, removed otherwise."""
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
    f = open(tmp, mode)
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        f.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(output_path: PathLike, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``output_path`` for a library to write (a file
    or a directory); renamed into place when the block ends normally,
    removed otherwise. ``suffix`` keeps extensions libraries insist on."""
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}{suffix}"
    try:
        yield tmp
        if tmp.is_dir():
            replace_dir(tmp, out)
        else:
            os.replace(tmp, out)
            _fsync_dir(out.parent)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


class Widen(Exception):
    """A later batch needs a wider dtype than the one inferred from the
    earlier ones (e.g. integers, then a null or a fraction): the import
    restarts with that dtype, so no value is ever narrowed."""

    def __init__(self, dtype: np.dtype) -> None:
        super().__init__(str(dtype))
        self.dtype = np.dtype(dtype)


def conform(arr: np.ndarray, current: Optional[np.dtype], forced: bool, source: Any, place: str) -> np.ndarray:
    """``arr`` cast to ``current`` (the dtype of the earlier batches, or the
    one asked for when ``forced``). A cast that would change a value raises
    :class:`Widen` (inferred dtype) or :class:`ConversionError` (forced)."""
    if current is None or arr.dtype == current:
        return arr
    if not forced and np.result_type(current, arr.dtype) != current:
        raise Widen(np.result_type(current, arr.dtype))
    with np.errstate(all="ignore"):
        out = arr.astype(current)
        back = out.astype(arr.dtype)
    same = back == arr
    if arr.dtype.kind in "fc":
        same |= np.isnan(arr) & np.isnan(back)
    if not np.all(same):
        r = int(np.argmax(~np.all(same.reshape(len(arr), -1), axis=1)))
        raise ConversionError(source, f"{place}, row {r} of the batch",
                              f"value(s) {arr[r].tolist()} do not fit dtype {np.dtype(current)}")
    return out


def check_source(input_path: PathLike) -> Path:
    p = Path(input_path)
    if not p.exists():
        raise FileNotFoundError(f"File not found: {p}")
    return p
