"""Dask integration: numvault arrays as Dask arrays, and Dask arrays written
to a store in one atomic commit.

Reading
-------
``from_vault(path, name)`` (or ``Vault.lazy(name).to_dask()``) builds a
``dask.array.Array`` over the array as committed when the graph is built:

* Blocks are whole rows: by default runs of rows spanning whole multiples of
  the stored chunk grid (``Vault.info(name)["chunk_bytes"]``, the engine's
  checksum chunks) adding up to about ``DEFAULT_BLOCK_BYTES``, so a task reads
  whole stored chunks; any Dask ``chunks`` spec is accepted too.
* The graph's name is a token of (store path, array name, committed state)
  (``LazyArray.__dask_tokenize__``): the data is never hashed, and the same
  committed array always gives the same graph name.
* A block of an array without deleted or replaced rows is a read-only view
  of the store's mapping (no copy); otherwise a copy of its rows.
* The tasks carry only (path, name, state, block slices, version): they
  pickle to worker processes, which open the store read-only themselves and
  check that the array's committed state is still the one the graph was
  built from (modification time of its last commit, shape and data file).
  If a newer commit changed, dropped or compacted the array, a task raises
  ``StaleSnapshotError`` instead of reading: a computation never mixes
  states. A worker keeps the snapshots it opened (a few, least recently used
  dropped), so a computation that started on a state keeps reading it.
* An array of a version (``Vault.at(v).lazy(name).to_dask()``,
  ``from_vault(path, name, version=v)``) is read from that version by the
  tasks, whatever was committed since; only deleting the version makes them
  raise ``StaleSnapshotError``.

Writing
-------
``store(x, path, name)`` computes the row-blocks of ``x`` in order (a few at
a time, in parallel on the current scheduler), stages them through the
store's single writer in row order (a ``Transaction``: rows beyond its memory
budget staged in files), and commits once at the end. After a crash, or if
any block fails, the store holds its previous committed state: all of the new
array or none of it.

Needs ``dask[array]`` (and ``distributed`` for a cluster).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ._core import ConflictError, LazyArray, Vault

__all__ = ["from_vault", "from_lazy", "store", "StaleSnapshotError", "DEFAULT_BLOCK_BYTES"]

#: Default bytes of a block of ``from_vault``: whole stored chunks adding up to
#: about this much (kept small enough for workers with a modest memory limit).
DEFAULT_BLOCK_BYTES = 16 << 20

#: Snapshots a process keeps open for tasks (least recently used dropped).
SNAPSHOT_CACHE = 8


class StaleSnapshotError(ConflictError):
    """A Dask task found that the array it reads was changed, dropped or
    compacted by a commit made after its graph was built."""


def _dask_array() -> Any:
    from .io.utils import _check_dependency

    return _check_dependency("dask.array", "dask[array]")


def default_chunks(shape: Tuple[int, ...], dtype: Any, chunk_bytes: int = 1 << 20,
                   block_bytes: int = DEFAULT_BLOCK_BYTES) -> Tuple[int, ...]:
    """Rows per block (and whole trailing axes): the rows in
    ``block_bytes // chunk_bytes`` stored chunks (at least one row)."""
    row_bytes = int(np.dtype(dtype).itemsize * int(np.prod(shape[1:], dtype=np.int64)))
    per_block = max(1, block_bytes // chunk_bytes) * chunk_bytes
    rows = max(1, per_block // max(1, row_bytes))
    rows = min(rows, max(1, shape[0]))
    return (rows,) + tuple(shape[1:])


def from_vault(
    path: "os.PathLike[str] | str", name: str, chunks: Any = None, *, version: Any = None
) -> Any:
    """Array ``name`` of the store at ``path`` as a ``dask.array.Array`` of its
    committed state now, or of ``version`` (an id or a tag) if given (see the
    module's doc)."""
    with Vault(os.fspath(path), "r", version=version) as v:
        lazy = v.lazy(name)
    return from_lazy(lazy, chunks)


def from_lazy(lazy: LazyArray, chunks: Any = None) -> Any:
    """``lazy`` (a snapshot) as a ``dask.array.Array`` whose tasks read that
    snapshot's committed state (see the module's doc)."""
    da = _dask_array()
    from dask.array.core import normalize_chunks
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    shape = tuple(int(s) for s in lazy.shape)
    dtype = np.dtype(lazy.dtype)
    if chunks is None:
        chunks = default_chunks(shape, dtype)
    chunks = normalize_chunks(chunks, shape, dtype=dtype)
    state = lazy._state
    path = os.path.abspath(lazy.path)
    gname = "numvault-" + tokenize(lazy, chunks)
    offsets = [np.cumsum((0,) + c).tolist() for c in chunks]
    dsk = {}
    for idx in itertools.product(*(range(len(c)) for c in chunks)):
        sl = tuple(
            (int(offsets[ax][i]), int(offsets[ax][i + 1])) for ax, i in enumerate(idx)
        )
        dsk[(gname,) + idx] = (_read_block, path, lazy.name, state, sl, lazy.version)
    graph = HighLevelGraph.from_collections(gname, dsk, dependencies=())
    meta = np.empty((0,) * len(shape), dtype=dtype)
    return da.Array(graph, gname, chunks, meta=meta)


_SNAPSHOTS: "OrderedDict[tuple, LazyArray]" = OrderedDict()
_SNAPSHOTS_LOCK = threading.Lock()


def _snapshot(path: str, name: str, state: tuple, version: Optional[int] = None) -> LazyArray:
    key = (path, name, state, version, os.getpid())
    with _SNAPSHOTS_LOCK:
        lazy = _SNAPSHOTS.get(key)
        if lazy is not None:
            _SNAPSHOTS.move_to_end(key)
            return lazy
    try:
        v = Vault(path, "r", version=version)
    except KeyError:
        raise StaleSnapshotError(
            f"version {version} of store {path} was deleted after this Dask graph was built"
        ) from None
    try:
        with v:
            lazy = v.lazy(name)
    except KeyError:
        raise StaleSnapshotError(
            f"array {name!r} of store {path} was dropped after this Dask graph was built; "
            "build the graph again"
        ) from None
    if tuple(lazy._state) != tuple(state):
        raise StaleSnapshotError(
            f"array {name!r} of store {path} was changed by a commit made after this Dask "
            f"graph was built (state {tuple(state)!r} at build, {tuple(lazy._state)!r} now); "
            "build the graph again"
        )
    with _SNAPSHOTS_LOCK:
        _SNAPSHOTS[key] = lazy
        while len(_SNAPSHOTS) > SNAPSHOT_CACHE:
            _SNAPSHOTS.popitem(last=False)
    return lazy


def _read_block(
    path: str,
    name: str,
    state: tuple,
    bounds: Sequence[Tuple[int, int]],
    version: Optional[int] = None,
) -> np.ndarray:
    lazy = _snapshot(path, name, state, version)
    (a, b), rest = bounds[0], bounds[1:]
    trailing = tuple(slice(lo, hi) for lo, hi in rest)
    if lazy.zero_copy:
        # A read-only view of the snapshot's mapping (Dask never writes into
        # its inputs): no copy; the view keeps the mapping alive.
        return np.asarray(lazy)[(slice(a, b),) + trailing]
    block = lazy[a:b]  # a new array, read from the snapshot
    if any((lo, hi) != (0, n) for (lo, hi), n in zip(rest, lazy.shape[1:])):
        block = np.ascontiguousarray(block[(slice(None),) + trailing])
    return block


def _workers(parallel: Optional[int]) -> int:
    if parallel is not None:
        if parallel < 1:
            raise ValueError("parallel must be a positive number of blocks")
        return int(parallel)
    try:
        from distributed import get_client

        return max(1, sum(get_client().nthreads().values()))
    except Exception:  # no distributed, or no client: the local scheduler
        return max(1, os.cpu_count() or 1)


def store(
    x: Any,
    path: "os.PathLike[str] | str",
    name: str,
    *,
    append: bool = False,
    sync: str = "flush",
    lock_timeout: Optional[float] = None,
    parallel: Optional[int] = None,
    **compute_kwargs: Any,
) -> Tuple[int, ...]:
    """Write the Dask array ``x`` to array ``name`` of the store at ``path``
    (created if missing) in one atomic commit; returns the array's new shape.

    Row-blocks of ``x`` are computed in order, ``parallel`` at a time
    (default: the distributed client's threads, else the CPU count), and
    staged in row order through one writer handle; the commit happens once,
    after the last block. ``append=True`` appends to an existing array
    (creating it if missing) instead of replacing it. If any block fails,
    nothing is committed: the store keeps its previous committed state.
    ``compute_kwargs`` go to ``dask.compute`` (e.g. ``scheduler=``)."""
    da = _dask_array()
    import dask

    x = da.asarray(x)
    if x.ndim == 0:
        raise ValueError("numvault stores arrays of at least one dimension")
    if any(np.isnan(c) for c in x.shape):
        raise ValueError("the array's shape must be known (call compute_chunk_sizes())")
    # Whole rows per block: a block's rows are contiguous in the store.
    if x.ndim > 1:
        x = x.rechunk({ax: -1 for ax in range(1, x.ndim)})
    blocks = [x.blocks[i] for i in range(x.numblocks[0])]
    k = _workers(parallel)
    with Vault(os.fspath(path), "a", sync=sync, lock_timeout=lock_timeout) as v:
        fresh = not (append and v.has(name))
        t = v.begin()
        try:
            for start in range(0, len(blocks), k):
                for part in dask.compute(*blocks[start : start + k], **compute_kwargs):
                    part = np.ascontiguousarray(part)
                    if fresh:
                        t.save(name, part)
                        fresh = False
                    elif part.shape[0]:
                        t.append(name, part)
            t.commit()
        except BaseException:
            if t.active:
                t.discard()
            raise
        return tuple(v.shape(name))
