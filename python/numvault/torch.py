"""PyTorch datasets over numvault stores.

``ArrayDataset(path, names)`` is a map-style ``torch.utils.data.Dataset`` of
the rows of one or more arrays of a store (all with the same number of
rows): ``ds[i]`` is row ``i`` (a tensor, or a tuple of tensors, one per
name), and ``ds.__getitems__(indices)`` (what ``DataLoader`` calls for a
batch) gathers a whole batch at once: one tensor per name, rows in the order
asked. The dataset reads a snapshot: the arrays as committed when it was
made, in every worker; with ``version=`` (an id or a tag, see
``Vault.snapshot``), the arrays as they are in that version, whatever is
committed later.

It works in ``DataLoader(num_workers=N)`` under every start method:

* ``fork``: the workers inherit the dataset's LazyArrays, read-only memory
  maps that stay valid in a child process (no Vault handle is used there).
* ``spawn``/``forkserver``: the dataset pickles as (path, names, committed
  states); each worker opens the store read-only once and checks that the
  arrays are still in the state the dataset was made from
  (``StaleSnapshotError`` otherwise, never a silent mix of states).

Batches without an extra copy: in the main process a batch is gathered into
a new NumPy array that the tensor wraps (``torch.from_numpy``); in a worker
it is gathered straight into shared memory, which is how a worker hands a
tensor to the main process. Use ``collate`` as the ``collate_fn`` (or
``ds.loader(...)``) to take the gathered batch as it is; with PyTorch's
default collate the result is the same, re-stacked row by row (one more
copy). ``transform`` applies to what ``__getitem__`` returns (a row) and
to the gathered batch in ``__getitems__``.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, List, Optional, Sequence, Union

import numpy as np

from ._core import LazyArray, Vault
from .dask import StaleSnapshotError

try:
    import torch
    from torch.utils.data import DataLoader, Dataset, get_worker_info
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "numvault.torch needs PyTorch, which is not installed: pip install torch"
    ) from e

__all__ = ["ArrayDataset", "Batch", "collate", "StaleSnapshotError"]


def _torch_dtype(dtype: np.dtype) -> "torch.dtype":
    try:
        return torch.from_numpy(np.empty(0, dtype=dtype)).dtype
    except TypeError as e:
        raise TypeError(f"PyTorch has no dtype for {dtype}") from e


class Batch(list):
    """What ``ArrayDataset.__getitems__`` returns: a batch already gathered
    (``batch.tensors``: a tensor, or a tuple of tensors, one per name).
    ``collate`` returns ``batch.tensors`` as they are (no copy). It is also
    the list of its rows, as PyTorch's ``default_collate`` expects (it then
    stacks them: one more copy): the row views are made at the first look
    at an item, never when ``collate`` takes the batch whole."""

    __slots__ = ("tensors", "_rows")

    def __init__(self, tensors: Any) -> None:
        super().__init__()
        self.tensors = tensors
        t = tensors[0] if isinstance(tensors, tuple) else tensors
        self._rows = len(t)

    def _fill(self) -> None:
        if self._rows and not list.__len__(self):
            t = self.tensors
            if isinstance(t, tuple):
                list.extend(self, zip(*(x.unbind(0) for x in t)))
            else:
                list.extend(self, t.unbind(0))

    def __len__(self) -> int:
        return self._rows

    def __getitem__(self, i: Any) -> Any:
        self._fill()
        return list.__getitem__(self, i)

    def __iter__(self) -> Any:
        self._fill()
        return list.__iter__(self)


class ArrayDataset(Dataset):
    """Rows of arrays ``names`` (a name or a sequence of names) of the store
    at ``path`` (of its ``version``, an id or a tag, if given).
    ``transform``, if given, is applied to what ``__getitem__`` and
    ``__getitems__`` return."""

    def __init__(
        self,
        path: "os.PathLike[str] | str",
        names: Union[str, Sequence[str]],
        *,
        transform: Optional[Any] = None,
        version: Optional[Union[int, str]] = None,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.single = isinstance(names, str)
        self.names: List[str] = [names] if isinstance(names, str) else list(names)
        if not self.names:
            raise ValueError("ArrayDataset needs at least one array name")
        self.transform = transform
        with Vault(self.path, "r", version=version) as v:
            arrays = [v.lazy(n) for n in self.names]
            # The id, not a tag: a tag can be given to another version later.
            self.version: Optional[int] = v.version
        lengths = {n: len(a) for n, a in zip(self.names, arrays)}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"arrays of an ArrayDataset must have the same number of rows: {lengths}")
        self._len = len(arrays[0])
        self._states = [tuple(a._state) for a in arrays]
        self._tdtypes = [_torch_dtype(np.dtype(a.dtype)) for a in arrays]
        self._arrays: Optional[List[LazyArray]] = arrays

    # -- pickling (spawn workers): the snapshot's identity, not its bytes
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arrays"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _open(self) -> List[LazyArray]:
        arrays = self._arrays
        if arrays is None:
            try:
                v = Vault(self.path, "r", version=getattr(self, "version", None))
            except KeyError:
                raise StaleSnapshotError(
                    f"version {self.version} of {self.path}, which this ArrayDataset reads, "
                    "was deleted after the dataset was made"
                ) from None
            with v:
                try:
                    arrays = [v.lazy(n) for n in self.names]
                except KeyError as e:
                    raise StaleSnapshotError(
                        f"an array of this ArrayDataset was dropped from {self.path} after the "
                        f"dataset was made: {e}"
                    ) from None
            for n, a, s in zip(self.names, arrays, self._states):
                if tuple(a._state) != s:
                    raise StaleSnapshotError(
                        f"array {n!r} of {self.path} was changed by a commit made after this "
                        "ArrayDataset was made; make the dataset again"
                    )
            self._arrays = arrays
        return arrays

    def __len__(self) -> int:
        return self._len

    def _out(self, parts: List[Any]) -> Any:
        out = parts[0] if self.single else tuple(parts)
        return self.transform(out) if self.transform is not None else out

    def __getitem__(self, index: int) -> Any:
        parts = []
        for a in self._open():
            row = a[index]
            parts.append(torch.from_numpy(np.ascontiguousarray(row)) if isinstance(row, np.ndarray)
                         else torch.tensor(row))
        return self._out(parts)

    def __getitems__(self, indices: Iterable[int]) -> Any:
        arrays = self._open()
        if get_worker_info() is None:
            # Main process: the LazyArray checks the indices and gathers into
            # a new array, which the tensor wraps.
            if not isinstance(indices, (list, np.ndarray)):
                indices = list(indices)
            parts = [torch.from_numpy(a[indices]) for a in arrays]
            return Batch(self._out(parts))
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1:
            raise IndexError("__getitems__ takes a 1-d sequence of row indices")
        n = self._len
        if idx.size:
            lo, hi = int(idx.min()), int(idx.max())
            if lo < -n or hi >= n:
                bad = idx[(idx < -n) | (idx >= n)][0]
                raise IndexError(f"index {bad} is out of bounds for a dataset of {n} rows")
            if lo < 0:
                idx = np.where(idx < 0, idx + n, idx)
        parts = [self._gather_shared(a, td, idx) for a, td in zip(arrays, self._tdtypes)]
        return Batch(self._out(parts))

    @staticmethod
    def _gather_shared(a: LazyArray, tdtype: "torch.dtype", idx: np.ndarray) -> "torch.Tensor":
        """In a DataLoader worker: gather rows ``idx`` (checked, >= 0)
        straight into shared memory, which is what the worker hands to the
        main process: one copy from the map."""
        shape = (len(idx),) + tuple(a.shape[1:])
        try:
            numel = int(np.prod(shape, dtype=np.int64))
            proto = torch.empty(0, dtype=tdtype)
            storage = proto._typed_storage()._new_shared(numel, device=proto.device)
            out = proto.new(storage).view(shape)
        except Exception:  # private API changed: one more copy, when sent
            return torch.from_numpy(a[idx])
        dst = out.numpy()
        if a.zero_copy:
            # mode='clip' (indices already checked): NumPy writes into `dst`
            # directly ('raise' would buffer).
            np.take(np.asarray(a), idx, axis=0, out=dst, mode="clip")
        else:
            dst[...] = a[idx]
        return out

    def loader(self, **kwargs: Any) -> "DataLoader":
        """``DataLoader(self, collate_fn=collate, **kwargs)``."""
        kwargs.setdefault("collate_fn", collate)
        return DataLoader(self, **kwargs)

    def __repr__(self) -> str:
        return f"ArrayDataset({self.path!r}, {self.names if not self.single else self.names[0]!r}, rows={self._len})"


def collate(batch: Any) -> Any:
    """``collate_fn`` for ``ArrayDataset``: passes a batch from
    ``__getitems__`` through as it is (tensors, no copy); anything else (a
    list of samples) goes to PyTorch's ``default_collate``."""
    if isinstance(batch, Batch):
        return batch.tensors
    from torch.utils.data import default_collate

    return default_collate(batch)
