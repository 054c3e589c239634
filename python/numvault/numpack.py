"""NumPack-compatible API over :class:`numvault.Vault`.

Code written against NumPack runs unchanged: same class name, constructor
and method signatures, same return types. What differs is what NumPack got
wrong: every call is atomic and crash-safe (a commit log, not metadata
written at close), data is checksummed, instances writing one store take
turns through a per-commit writer lock (no lost update), ``batch_mode``
commits atomically and raises its errors, and indexes follow NumPy. The
deliberate differences from NumPack 0.7 are listed in docs/COMPAT.md.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np

from . import _core
from ._core import LazyArray, LockedError, NeedsCompactionError, Vault, WritableArray

ArrayDict = Dict[str, Any]
IndexLike = Union[int, slice, Sequence[int], Sequence[bool], np.ndarray]

_SUPPORTED_KINDS = {
    ("b", 1),
    ("i", 1), ("i", 2), ("i", 4), ("i", 8),
    ("u", 1), ("u", 2), ("u", 4), ("u", 8),
    ("f", 2), ("f", 4), ("f", 8),
    ("c", 8), ("c", 16),
}


def _is_store(path: Path) -> bool:
    return (path / "MANIFEST").is_file()


def _is_numpack_store(path: Path) -> bool:
    """A directory written by NumPack itself (not numvault)."""
    return (path / "metadata.npkm").is_file() and not _is_store(path)


# NumPack 0.7's dtype names (its Rust DataType), for get_metadata().
_NUMPACK_DTYPE_NAMES = {
    "bool": "Bool", "uint8": "Uint8", "uint16": "Uint16", "uint32": "Uint32",
    "uint64": "Uint64", "int8": "Int8", "int16": "Int16", "int32": "Int32",
    "int64": "Int64", "float16": "Float16", "float32": "Float32", "float64": "Float64",
    "complex64": "Complex64", "complex128": "Complex128",
}


def _check_indexes(indexes: Any) -> None:
    """NumPack's error for an index of a type no array can be indexed with
    (a string, a float, None...)."""
    ok = (int, np.integer, np.bool_, slice, list, tuple, range, np.ndarray, type(Ellipsis))
    if isinstance(indexes, (str, bytes)) or not isinstance(indexes, ok):
        raise ValueError(
            "The indexes must be int or list or numpy.ndarray or slice, "
            f"not {type(indexes).__name__}"
        )


def force_cleanup_windows_handles() -> bool:
    """NumPack compatibility: NumPack releases Windows file handles here.
    numvault holds no handles that outlive their objects, so this only runs
    ``gc.collect()`` (dropping unreferenced lazy arrays and their mappings)
    and returns True."""
    import gc

    gc.collect()
    return True


def _as_input(name: str, arr: Any) -> np.ndarray:
    """Validate a value to be saved, as the engine will (raise now, not at
    commit time)."""
    _core.validate_name(name)
    a = arr if isinstance(arr, np.ndarray) else np.asarray(arr)
    if (a.dtype.kind, a.dtype.itemsize) not in _SUPPORTED_KINDS or a.dtype.fields:
        raise ValueError(f"array '{name}': dtype {a.dtype} is not supported")
    if a.ndim == 0:
        raise ValueError(
            f"array '{name}': 0-d arrays (scalars) are not supported; store at least one "
            "dimension, e.g. np.atleast_1d(x)"
        )
    return a


class NumPack:
    """A NumPack-compatible store (a directory) of named NumPy arrays.

    ``NumPack(filename, drop_if_exists=False, strict_context_mode=False,
    warn_no_context=None, force_gc_on_close=False)`` as in NumPack; the file
    is opened by ``open()`` or by entering a ``with`` block. numvault adds
    keyword-only options: ``sync`` ("always", "group", "flush" -- the
    default -- or "never", see :class:`numvault.Vault`), ``max_delay_ms``
    (for "group"), ``lock_timeout`` (seconds to wait for another writer's
    commit, 30 by default), ``read_only``, ``shared``, ``version``,
    ``upgrade``, ``keep_last`` and ``keep_for`` (retention, see
    :class:`numvault.Vault`).

    Versions: ``snapshot(tag=None)`` pins the committed state (no data is
    copied) and returns its id; ``versions()``, ``diff()``, ``restore()``,
    ``delete_snapshot()`` and ``gc()`` are :class:`numvault.Vault`'s.
    ``at(id_or_tag)`` returns a read-only NumPack on that version, already
    open (every read method works; writes raise ``PermissionError``);
    ``NumPack(path, version=id_or_tag)`` is the same opened by ``open()``
    or ``with``. ``upgrade=True`` upgrades a format-1 store to format 2 when
    it is opened for writing (versions need it: ``NeedsUpgradeError``).

    Many instances may be open on one store at once, in threads and in
    processes (``shared=True``, the default): reads never wait, and each
    write takes the store's writer lock only while it commits (after
    catching up with what the other instances committed), so no update is
    lost. A write that cannot get the lock within ``lock_timeout`` raises
    :class:`numvault.LockedError` naming the process that holds it.
    ``shared=False`` holds the writer lock from ``open()`` to ``close()``
    (slightly faster writes; a second writer gets ``LockedError`` at once).

    Every mutating call is atomic: after a crash the store holds the state
    before or after it, and a process crash never loses a call that
    returned. Indexes (``replace``, ``drop``, ``getitem``) accept an int,
    negative int, list, NumPy int array, bool mask or slice (open-ended,
    stepped) with NumPy's meaning; out-of-range raises ``IndexError``.
    """

    def __init__(
        self,
        filename: Union[str, "os.PathLike[str]"],
        drop_if_exists: bool = False,
        strict_context_mode: bool = False,
        warn_no_context: Optional[bool] = None,
        force_gc_on_close: bool = False,
        *,
        sync: str = "flush",
        max_delay_ms: float = 10.0,
        lock_timeout: Optional[float] = None,
        read_only: bool = False,
        shared: bool = True,
        version: Optional[Union[int, str]] = None,
        upgrade: bool = False,
        keep_last: Optional[int] = None,
        keep_for: Optional[float] = None,
    ) -> None:
        if version is not None:
            if drop_if_exists:
                raise ValueError("version= opens a version read-only: drop_if_exists cannot be set")
            if upgrade:
                raise ValueError("version= opens a version read-only: upgrade cannot be set")
            read_only = True
        if upgrade and read_only:
            raise ValueError("upgrade=True rewrites the store: it cannot be read_only")
        if read_only and (keep_last is not None or keep_for is not None):
            raise ValueError("keep_last and keep_for are applied by a writer: not with read_only")
        self._filename = Path(filename)
        self._keep = {"keep_last": keep_last, "keep_for": keep_for}
        self._version = version
        self._upgrade_format = upgrade
        self._shared = shared
        self._drop_if_exists = drop_if_exists
        self._strict_context_mode = strict_context_mode
        self._force_gc_on_close = force_gc_on_close
        self._sync = sync
        self._max_delay_ms = max_delay_ms
        self._lock_timeout = lock_timeout
        self._read_only = read_only
        self._vault: Optional[Vault] = None
        # Opened for reading while another instance held the writer lock:
        # reopen as a writer by turns at the first write.
        self._upgrade = False
        self._context_entered = False
        self._batch: Optional[BatchModeContext] = None
        self._writable: List[WritableBatchMode] = []
        if warn_no_context is None:
            warn_no_context = os.name == "nt"
        if warn_no_context and not strict_context_mode:
            warnings.warn(
                f"NumPack instance created for '{filename}' is not using strict context "
                "mode; prefer 'with NumPack(...) as npk:'. Suppress with warn_no_context=False.",
                UserWarning,
                stacklevel=2,
            )

    # -- lifecycle -----------------------------------------------------------
    def open(self) -> None:
        """Open the store (creating it if missing). No-op if already open;
        reopens after ``close()``."""
        if self._vault is not None:
            return
        mode: Literal["r", "a", "w"] = "r" if self._read_only else "a"
        if _is_numpack_store(self._filename) and not (self._drop_if_exists and not self._read_only):
            raise ValueError(
                f"'{self._filename}' is a store written by NumPack (it holds metadata.npkm), "
                "not a numvault store. Convert it once, then open the copy: "
                f"`numvault import NEW_STORE {self._filename}` or "
                f"numvault.io.from_numpack({str(self._filename)!r}, 'NEW_STORE')"
            )
        if self._drop_if_exists and not self._read_only:
            p = self._filename
            if _is_store(p):
                mode = "w"  # emptied atomically on open
            elif p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        shared = self._shared and not self._read_only
        if shared and mode == "a" and _is_store(self._filename):
            # Opening takes the writer lock for a moment. If another instance
            # holds it (one opened with shared=False, or a long commit), open
            # for reading at once and become a writer at the first write
            # (which waits for the lock): reads never wait.
            try:
                self._vault = self._open_vault(mode, True, 0.0)
                self._vault.set_lock_timeout(self._lock_timeout)
            except LockedError:
                self._vault = self._open_vault("r", False, self._lock_timeout)
                self._upgrade = True
        else:
            self._vault = self._open_vault(mode, shared, self._lock_timeout)
        self._drop_if_exists = False

    def _open_vault(self, mode: str, shared: bool, lock_timeout: Optional[float]) -> Vault:
        return Vault(
            str(self._filename),
            mode,  # type: ignore[arg-type]
            self._sync,  # type: ignore[arg-type]  # checked at runtime by Vault
            max_delay_ms=self._max_delay_ms,
            lock_timeout=lock_timeout,
            shared=shared,
            version=self._version if mode == "r" else None,
            upgrade=self._upgrade_format and mode != "r",
            **(self._keep if mode != "r" else {}),
        )

    def close(self, force_gc: Optional[bool] = None) -> None:
        """Commit a pending ``batch_mode``, end writable sessions, flush,
        checkpoint and release the lock. Idempotent; ``open()`` reopens.
        Errors raise."""
        if self._vault is None:
            return
        vault = self._vault
        try:
            if self._batch is not None:
                batch, self._batch = self._batch, None
                batch._commit()
            for wb in list(self._writable):
                wb._finish_all()
        finally:
            self._writable.clear()
            self._vault = None
            self._upgrade = False
            vault.close()
            if force_gc or (force_gc is None and self._force_gc_on_close):
                import gc

                gc.collect()

    @property
    def is_opened(self) -> bool:
        """True while the store is open."""
        return self._vault is not None

    @property
    def is_closed(self) -> bool:
        """True when the store is not open."""
        return self._vault is None

    @property
    def backend_type(self) -> str:
        """Always "rust" (as NumPack)."""
        return "rust"

    @property
    def filename(self) -> Path:
        """Path of the store directory."""
        return self._filename

    @property
    def vault(self) -> Vault:
        """The underlying native :class:`numvault.Vault` (must be open)."""
        return self._v()

    def _v(self) -> Vault:
        v = self._vault
        if v is None:
            raise RuntimeError(
                f"NumPack instance '{self._filename}' is not opened or has been closed. "
                "Please call open() method first, or use 'with' statement for automatic "
                "management."
            )
        if self._strict_context_mode and not self._context_entered:
            raise RuntimeError(
                f"NumPack instance '{self._filename}' is in strict context mode. "
                "All operations must be executed within a 'with' statement."
            )
        return v

    def _w(self) -> Vault:
        """The Vault, for a write: reopened as a writer by turns if it was
        opened for reading (waiting up to ``lock_timeout`` for the lock)."""
        v = self._v()
        if not self._upgrade:
            return v
        writer = self._open_vault("a", True, self._lock_timeout)
        self._vault, self._upgrade = writer, False
        v.close()
        return writer

    def __enter__(self) -> "NumPack":
        self.open()
        self._context_entered = True
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        try:
            if exc_type is not None and self._batch is not None:
                # An exception escaped a batch: its changes are discarded.
                self._batch._discard()
                self._batch = None
            self.close()
        finally:
            self._context_entered = False
        return False

    def __repr__(self) -> str:
        if self._vault is not None:
            version = self._vault.version
            at = "" if version is None else f", version={version}"
            return f"NumPack({str(self._filename)!r}, arrays={len(self._vault)}{at}, backend=rust)"
        return f"NumPack({str(self._filename)!r}, status=closed, backend=rust)"

    # -- writes --------------------------------------------------------------
    def save(self, arrays: ArrayDict) -> None:
        """Create or overwrite arrays: ``save({"name": array, ...})``. Several
        arrays are saved in one atomic commit."""
        v = self._w()
        if not isinstance(arrays, dict):
            raise ValueError("arrays must be a dictionary")
        if self._batch is not None:
            for name, arr in arrays.items():
                self._batch._save(name, arr)
            return
        if len(arrays) == 1:
            ((name, arr),) = arrays.items()
            v.save(name, arr)
        elif arrays:
            v.commit([("save", n, a) for n, a in arrays.items()])

    def append(self, arrays: ArrayDict) -> None:
        """Append rows: ``append({"name": rows, ...})`` (same dtype and
        trailing shape). Several arrays are appended atomically."""
        v = self._w()
        if not isinstance(arrays, dict):
            raise ValueError("arrays must be a dictionary")
        if self._batch is not None:
            for name, arr in arrays.items():
                self._batch._append(name, arr)
            return
        if len(arrays) == 1:
            ((name, arr),) = arrays.items()
            v.append(name, arr)
        elif arrays:
            v.commit([("append", n, a) for n, a in arrays.items()])

    def replace(self, arrays: ArrayDict, indexes: IndexLike) -> None:
        """Replace rows: for each ``name: values`` of ``arrays``,
        ``stored[indexes] = values`` (NumPy assignment: values broadcast,
        repeated indexes -- last wins). Atomic across the arrays."""
        v = self._w()
        if not isinstance(arrays, dict):
            raise ValueError("arrays must be a dictionary")
        _check_indexes(indexes)
        if self._batch is not None:
            for name, arr in arrays.items():
                self._batch._replace(name, arr, indexes)
            return
        if len(arrays) == 1:
            ((name, arr),) = arrays.items()
            v.replace(name, indexes, arr)
        elif arrays:
            v.commit([("replace", n, indexes, a) for n, a in arrays.items()])

    def drop(self, array_name: Union[str, Iterable[str]], indexes: Optional[IndexLike] = None) -> None:
        """Without ``indexes``: empty the array(s), as NumPack 0.7 does: each
        stays listed with shape ``(0, ...)`` and its dtype (its data is freed
        at the next checkpoint); unknown names are ignored. To remove an
        array from the store use ``vault.drop(name)``. With ``indexes``:
        delete those rows from each array (``numpy.delete`` semantics; the
        space is reclaimed by ``update``); unknown arrays raise ``KeyError``.
        Atomic: all the arrays or none change."""
        v = self._w()
        names = [array_name] if isinstance(array_name, str) else list(array_name)
        if indexes is None:
            self._empty(names)
            return
        _check_indexes(indexes)
        if self._batch is not None:
            for name in names:
                self._batch._delete_rows(name, indexes)
            return
        if len(names) == 1:
            v.delete_rows(names[0], indexes)
        elif names:
            v.commit([("delete_rows", n, indexes) for n in names])

    def _empty(self, names: List[str]) -> None:
        """Replace each existing array of ``names`` by an empty one of the
        same dtype and trailing shape (NumPack's ``drop(name)``)."""
        empties = []
        for name in dict.fromkeys(names):
            if not self.has_array(name):
                continue
            dtype = self._dtype(name)
            shape = self.get_shape(name)
            empties.append((name, np.empty((0, *shape[1:]), dtype=dtype)))
        if self._batch is not None:
            for name, e in empties:
                self._batch._save(name, e)
            return
        if empties:
            self._w().commit([("save", n, e) for n, e in empties])

    def _dtype(self, name: str) -> np.dtype:
        if self._batch is not None and self._batch._pending(name):
            return self._batch._dtype(name)
        return self._v().dtype(name)

    def update(self, array_name: str) -> None:
        """Compact the array: rewrite it without deleted and superseded rows
        (atomic; the old file is freed at the next checkpoint)."""
        v = self._w()
        if self._batch is not None:
            self._batch._compact(array_name)
            return
        v.compact(array_name)

    def clone(self, source_name: str, target_name: str) -> None:
        """Copy array ``source_name`` to a new array ``target_name``
        (``KeyError`` if the source is missing, ``ValueError`` if the target
        exists)."""
        v = self._w()
        if self.has_array(target_name):
            raise ValueError(f"array '{target_name}' already exists")
        if self._batch is not None:
            self._batch._clone(source_name, target_name)
            return
        v.save(target_name, v.load(source_name))

    def reset(self) -> None:
        """Remove every array (atomically)."""
        v = self._w()
        if self._batch is not None:
            for name in self.get_member_list():
                self._batch._drop(name)
            return
        names = v.names()
        if names:
            v.commit([("drop", n) for n in names])

    # -- reads ---------------------------------------------------------------
    def load(self, array_name: str, lazy: bool = False) -> Union[np.ndarray, LazyArray]:
        """The array as a new NumPy array (checksums verified), or with
        ``lazy=True`` as a :class:`LazyArray` (memory-mapped snapshot)."""
        v = self._v()
        if self._batch is not None:
            return self._batch._load(array_name, lazy)
        if lazy:
            return v.lazy(array_name)
        return v.load(array_name)

    def getitem(self, array_name: str, indexes: IndexLike) -> np.ndarray:
        """``stored[indexes]`` with NumPy's meaning, read through a memory map,
        except that an int selects a one-row array of shape ``(1, ...)``, as in
        NumPack (``Vault.getitem`` drops the axis, as NumPy does)."""
        v = self._v()
        _check_indexes(indexes)
        if isinstance(indexes, (int, np.integer)) and not isinstance(indexes, (bool, np.bool_)):
            indexes = [int(indexes)]
        if self._batch is not None and self._batch._pending(array_name):
            sel: np.ndarray = self._batch._load(array_name, False)[indexes]  # type: ignore[index]
            return sel.copy() if isinstance(sel, np.ndarray) and sel.base is not None else sel
        out: np.ndarray = v.getitem(array_name, indexes)
        return out

    def stream_load(self, array_name: str, buffer_size: Optional[int] = None) -> Iterator[np.ndarray]:
        """Iterate over the array in batches of ``buffer_size`` rows (one row
        per batch if ``None``), checksums verified as read."""
        v = self._v()
        if buffer_size is not None and buffer_size <= 0:
            raise ValueError("buffer_size must be greater than 0")
        bs = 1 if buffer_size is None else int(buffer_size)
        if self._batch is not None and self._batch._pending(array_name):
            data = self._batch._load(array_name, False)
            return (data[i:i + bs].copy() for i in range(0, len(data), bs))
        return v.batches(array_name, bs)

    def get_shape(self, array_name: str) -> Tuple[int, ...]:
        """Shape of the array (``KeyError`` if missing)."""
        v = self._v()
        if self._batch is not None and self._batch._pending(array_name):
            return self._batch._shape(array_name)
        return v.shape(array_name)

    def get_member_list(self) -> List[str]:
        """Sorted names of all arrays."""
        v = self._v()
        if self._batch is not None:
            return self._batch._names()
        return v.names()

    def has_array(self, array_name: str) -> bool:
        """True if the array exists."""
        v = self._v()
        if self._batch is not None:
            return self._batch._has(array_name)
        return v.has(array_name)

    def get_modify_time(self, array_name: str) -> Optional[int]:
        """Time of the array's last change in microseconds since the Unix
        epoch, or ``None`` if it does not exist."""
        v = self._v()
        if self._batch is not None and self._batch._pending(array_name):
            return int(time.time() * 1e6) if self._batch._has(array_name) else None
        try:
            return v.mtime_ns(array_name) // 1000
        except KeyError:
            return None

    def get_metadata(self) -> Dict[str, Any]:
        """Store metadata with NumPack 0.7's keys: ``{"arrays": {name:
        {"shape", "data_file", "last_modified", "size_bytes", "dtype"}},
        "base_dir", "total_arrays"}`` (``dtype`` named as NumPack names it,
        e.g. ``"Float32"``; ``last_modified`` in microseconds since the
        epoch; ``size_bytes`` of the visible rows), plus numvault's keys:
        ``version``, ``path``, ``total_size`` and, per array, ``name``,
        ``numpy_dtype``, ``data_bytes`` and ``dead_rows``."""
        v = self._v()
        arrays = {}
        total = 0
        for name in self.get_member_list():
            if self._batch is not None and self._batch._pending(name):
                shape = self._batch._shape(name)
                dt = self._batch._dtype(name)
                i = {"data_bytes": None, "dead_rows": None, "mtime_ns": time.time_ns()}
            else:
                i = v.info(name)
                shape, dt = tuple(i["shape"]), i["dtype"]
            size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            arrays[name] = {
                "shape": list(shape),
                "data_file": f"data/{name}",
                "last_modified": i["mtime_ns"] // 1000,
                "size_bytes": size,
                "dtype": _NUMPACK_DTYPE_NAMES.get(dt.name, dt.name),
                "name": name,
                "numpy_dtype": str(dt),
                "data_bytes": i["data_bytes"],
                "dead_rows": i["dead_rows"],
            }
            total += size
        return {
            "arrays": arrays,
            "base_dir": str(self._filename),
            "total_arrays": len(arrays),
            "version": _core.FORMAT_VERSION,
            "path": str(self._filename),
            "total_size": total,
        }

    def get_io_stats(self) -> Dict[str, Any]:
        """NumPack compatibility: ``{"stats_available": False}``, as NumPack
        0.7 returns."""
        self._v()
        return {"stats_available": False}

    def __getitem__(self, key: str) -> np.ndarray:
        """``npk["name"]``: ``load(name)``."""
        return self.load(key)  # type: ignore[return-value]

    def __iter__(self) -> Iterator[str]:
        """Iterate over the array names."""
        return iter(self.get_member_list())

    def __contains__(self, key: object) -> bool:
        """``"name" in npk``."""
        return isinstance(key, str) and self.has_array(key)

    def __len__(self) -> int:
        """Number of arrays."""
        return len(self.get_member_list())

    # -- versions ------------------------------------------------------------
    def _no_batch(self, what: str) -> None:
        if self._batch is not None:
            raise RuntimeError(
                f"{what} inside batch_mode: its changes are not committed yet; leave the "
                "batch_mode block first"
            )

    def snapshot(self, tag: Optional[str] = None) -> int:
        """Pin the committed state as a version and return its id (see
        :meth:`numvault.Vault.snapshot`). Not inside ``batch_mode`` (its
        changes are not committed yet: ``RuntimeError``)."""
        v = self._w()
        self._no_batch("snapshot()")
        return v.snapshot(tag)

    def versions(self, array_name: Optional[str] = None) -> List[Dict[str, Any]]:
        """The versions, oldest first, as dicts (id, tag, time, time_ns,
        arrays, own_bytes); with ``array_name``, those in which that array
        changed (see :meth:`numvault.Vault.versions`)."""
        return self._v().versions(array_name)

    def at(self, version: Union[int, str]) -> "NumPack":
        """A read-only NumPack on ``version`` (an id or a tag), already
        open: every read method shows the arrays as they were in it, writes
        raise ``PermissionError``. It does not follow later commits; close
        it (or use it in a ``with`` block) when done."""
        view = self._v().at(version)
        npk = NumPack(
            self._filename,
            warn_no_context=False,
            sync=self._sync,
            max_delay_ms=self._max_delay_ms,
            lock_timeout=self._lock_timeout,
            version=view.version,
        )
        npk._vault = view
        return npk

    @property
    def version(self) -> Optional[int]:
        """The id of the version this NumPack shows (``at()``,
        ``NumPack(path, version=...)``), or None for the current state."""
        return self._v().version

    @property
    def format_version(self) -> int:
        """The store's format version (1, or 2: versions)."""
        return self._v().format_version

    def diff(self, a: Union[int, str], b: Optional[Union[int, str]] = None) -> Dict[str, Dict[str, Any]]:
        """What changed per array from version ``a`` to ``b`` (None: the
        current state), from metadata (see :meth:`numvault.Vault.diff`)."""
        return self._v().diff(a, b)

    def restore(self, version: Union[int, str], array_names: Union[str, Iterable[str], None] = None) -> None:
        """Put all arrays (arrays the version lacks are dropped) or the
        named ones back to their state in ``version``, in one atomic commit,
        without copying data. Not inside ``batch_mode`` (``RuntimeError``)."""
        v = self._w()
        self._no_batch("restore()")
        v.restore(version, array_names)

    def delete_snapshot(self, version: Union[int, str]) -> None:
        """Delete a version; ``gc()`` frees the data only it kept."""
        self._w().delete_snapshot(version)

    def gc(self) -> int:
        """Free what deleted versions, drops and overwrites left behind;
        returns the bytes freed."""
        return self._w().gc()

    def upgrade(self) -> bool:
        """Upgrade a format-1 store to format 2 (versions need it); True if
        it was upgraded, False if it already was format 2."""
        return self._w().upgrade()

    # -- batch modes ---------------------------------------------------------
    def batch_mode(self, memory_limit: Optional[float] = None) -> "BatchModeContext":
        """In-memory batch: loads are cached, writes deferred, and everything
        is committed atomically when the ``with`` block exits (an exception
        in the block discards the changes). See :class:`BatchModeContext`."""
        return BatchModeContext(self, memory_limit=memory_limit)

    def writable_batch_mode(self) -> "WritableBatchMode":
        """Zero-copy in-place modification: ``wb.load(name)`` returns a NumPy
        array over the stored rows. See :class:`WritableBatchMode`."""
        return WritableBatchMode(self)


class BatchModeContext:
    """``with npk.batch_mode(memory_limit=None):`` -- cached loads, deferred
    writes, one atomic commit at exit.

    The changes are staged in an engine transaction (``Vault.begin()``),
    which checks each one when it is made (errors raise at the call, indexes
    count in the array as the earlier changes leave it) and computes what
    ``load``, ``get_shape`` and ``get_member_list`` show inside the block.
    When the block exits normally all staged changes are committed in one
    atomic commit (after a crash: all or none); a commit error raises. When
    the block exits with an exception nothing is committed.

    ``load`` returns a cached array (the same object on every call until the
    array changes). An array passed to ``save`` is kept by reference: in-place
    changes made to it before the block exits (or before another change to
    that array) are committed, as in NumPack. In-place changes to a loaded
    array that is not saved again are not committed. ``memory_limit`` (MB)
    bounds the cache of loaded, unchanged arrays. A ``batch_mode`` block
    nested in another on the same NumPack joins the outer one (its changes
    commit with the outer block's).

    With several instances on one store (``shared=True``), the staged
    changes are checked again at the commit against what other instances
    committed meanwhile; if they no longer apply (an array they change was
    dropped or shrunk), :class:`numvault.ConflictError` is raised and
    nothing is committed.
    """

    def __init__(self, npk: NumPack, memory_limit: Optional[float] = None) -> None:
        self._npk = npk
        self.memory_limit = memory_limit
        self._txn: Any = None
        # Saves kept by reference, staged at the commit (or before another
        # change to the same array).
        self._saved: "OrderedDict[str, np.ndarray]" = OrderedDict()
        # Names with changes in the block, and their loads.
        self._changed: set = set()
        self._loaded: Dict[str, np.ndarray] = {}
        # Loads of arrays without changes, bounded by memory_limit.
        self._clean: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._active = False
        self._outer: Optional[BatchModeContext] = None

    def __enter__(self) -> "BatchModeContext":
        v = self._npk._w()
        if self._npk._batch is not None:
            # Nested: this block joins the outer batch; its changes commit
            # (or are discarded) with the outer block's.
            self._outer = self._npk._batch
            return self._outer
        self._txn = v.begin()
        self._npk._batch = self
        self._active = True
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        if self._outer is not None:
            self._outer = None
            return False  # a nested block: the outer one commits
        if self._npk._batch is not self:
            return False  # already committed by close()
        self._npk._batch = None
        if exc_type is not None:
            self._discard()
            return False
        self._commit()
        return False

    # -- internals -----------------------------------------------------------
    def _discard(self) -> None:
        if self._txn is not None:
            self._txn.discard()
        self._saved.clear()
        self._changed.clear()
        self._loaded.clear()
        self._clean.clear()
        self._active = False

    def _commit(self) -> None:
        txn = self._txn
        try:
            for name, a in self._saved.items():
                txn.save(name, a)
        except BaseException:
            self._discard()
            raise
        self._saved.clear()
        staged = len(txn)
        self._discard_caches()
        if staged:
            txn.commit()
        else:
            txn.discard()

    def _discard_caches(self) -> None:
        self._changed.clear()
        self._loaded.clear()
        self._clean.clear()
        self._active = False

    def _touch(self, *names: str) -> None:
        """Before a change to ``names``: stage their saves kept by reference
        (the change applies after them) and forget their loads."""
        for name in names:
            a = self._saved.pop(name, None)
            if a is not None:
                self._txn.save(name, a)
            self._loaded.pop(name, None)
            self._clean.pop(name, None)

    def _pending(self, name: str) -> bool:
        return name in self._changed

    def _evict(self) -> None:
        if self.memory_limit is None:
            return
        limit = float(self.memory_limit) * (1 << 20)
        used = sum(a.nbytes for a in self._clean.values())
        while self._clean and used > limit:
            _, a = self._clean.popitem(last=False)
            used -= a.nbytes

    # -- operations ------------------------------------------------------------
    def _load(self, name: str, lazy: bool) -> Union[np.ndarray, LazyArray]:
        saved = self._saved.get(name)
        if saved is not None:
            return saved
        if name in self._changed:
            a = self._loaded.get(name)
            if a is None:
                a = self._txn.load(name)
                self._loaded[name] = a
            return a
        a = self._clean.get(name)
        if a is not None:
            return a
        v = self._npk._v()
        if lazy:
            return v.lazy(name)
        a = v.load(name)
        self._clean[name] = a
        self._evict()
        return a

    def _save(self, name: str, arr: Any) -> None:
        _core.validate_name(name)
        a = _as_input(name, arr)
        # A save kept by reference is superseded, not staged: saving one
        # array again and again in a batch writes it once, at the commit.
        self._saved.pop(name, None)
        self._loaded.pop(name, None)
        self._clean.pop(name, None)
        self._saved[name] = a
        self._changed.add(name)

    def _append(self, name: str, arr: Any) -> None:
        a = _as_input(name, arr)
        self._touch(name)
        self._txn.append(name, a)
        self._changed.add(name)

    def _replace(self, name: str, arr: Any, indexes: IndexLike) -> None:
        self._touch(name)
        self._txn.replace(name, indexes, arr)
        self._changed.add(name)

    def _delete_rows(self, name: str, indexes: IndexLike) -> None:
        self._touch(name)
        self._txn.delete_rows(name, indexes)
        self._changed.add(name)

    def _drop(self, name: str) -> None:
        self._touch(name)
        self._txn.drop(name)
        self._changed.add(name)

    def _compact(self, name: str) -> None:
        self._touch(name)
        self._txn.compact(name)
        self._changed.add(name)

    def _clone(self, src: str, dst: str) -> None:
        _core.validate_name(dst)
        data = np.array(self._load(src, False), copy=True)
        self._touch(dst)
        self._saved[dst] = data
        self._changed.add(dst)

    def _shape(self, name: str) -> Tuple[int, ...]:
        saved = self._saved.get(name)
        if saved is not None:
            return tuple(saved.shape)
        return tuple(self._txn.shape(name))

    def _dtype(self, name: str) -> np.dtype:
        saved = self._saved.get(name)
        if saved is not None:
            return saved.dtype
        return np.dtype(self._txn.dtype(name))

    def _names(self) -> List[str]:
        return sorted(set(self._txn.names()) | set(self._saved))

    def _has(self, name: str) -> bool:
        return name in self._saved or self._txn.has(name)


class WritableBatchMode:
    """``with npk.writable_batch_mode() as wb:`` -- zero-copy, in-place
    modification of stored arrays.

    ``wb.load(name)`` returns a NumPy array backed by a shared, writable
    memory map of the array's rows (the same object on every call): assign
    to it and the stored array changes, with no copy and no save.
    ``wb.save(...)`` is accepted for NumPack compatibility (it copies values
    into the mapped array if they are a different object). Shapes cannot
    change. Arrays with deleted rows that are not compacted are refused
    (``ValueError``: call ``npk.update(name)`` first); arrays with replaced
    rows are compacted automatically.

    On exit (also on an exception) every session ends: checksums are
    computed over the new contents (on a helper thread, except under
    ``sync="always"``) and logged before the next call on the store, so
    later reads verify them;
    the changes are durable per the store's ``sync`` policy (at the next
    ``flush()``/close by default). Arrays obtained from ``wb.load`` remain
    valid afterwards but become read-only private copies.

    Crash semantics: the start of each session is logged durably and
    suspends that array's checksums. Writes inside the block are not atomic
    as a group: after a crash each page of the array holds its old or new
    contents (a process crash keeps every write made; a power loss keeps an
    arbitrary subset of the unsynced ones). The rest of the store is
    unaffected and the array's checksums are recomputed at the next open.
    Use ``batch_mode`` when a group of changes must be atomic.
    """

    def __init__(self, npk: NumPack) -> None:
        self._npk = npk
        self._sessions: Dict[str, WritableArray] = {}

    def __enter__(self) -> "WritableBatchMode":
        self._npk._v()
        self._npk._writable.append(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        try:
            self._finish_all()
        finally:
            if self in self._npk._writable:
                self._npk._writable.remove(self)
        return False

    def load(self, array_name: str) -> np.ndarray:
        """The writable, memory-mapped NumPy array of ``array_name``."""
        s = self._sessions.get(array_name)
        if s is not None:
            return s.array
        v = self._npk._w()
        b = self._npk._batch
        if b is not None and b._pending(array_name):
            raise ValueError(
                f"array '{array_name}' has uncommitted batch_mode changes; leave the batch first"
            )
        if 0 in v.shape(array_name):
            raise ValueError(
                f"array '{array_name}' is empty: cannot mmap an empty file for writing "
                "(append rows first)"
            )
        try:
            s = v.writable(array_name)
        except NeedsCompactionError as e:
            raise NeedsCompactionError(f"{e} (call NumPack.update({array_name!r}) first)") from None
        self._sessions[array_name] = s
        return s.array

    def save(self, arrays: ArrayDict) -> None:
        """Write values into the mapped arrays (a no-op for arrays returned
        by ``load``, which are already the stored rows)."""
        if not isinstance(arrays, dict):
            raise ValueError("arrays must be a dictionary")
        for name, arr in arrays.items():
            target = self.load(name)
            if arr is not target:
                target[...] = arr

    def _finish_all(self) -> None:
        first: Optional[BaseException] = None
        sessions, self._sessions = self._sessions, {}
        for s in sessions.values():
            try:
                s.finish()
            except BaseException as e:  # noqa: BLE001 - re-raised below
                if first is None:
                    first = e
        if first is not None:
            raise first
