"""Zero-copy hand-offs between NumPy arrays (numvault's loads and lazy
views) and DLPack, Arrow and PyTorch.

Each helper shares memory when the formats allow it and says when it has to
copy (a ``UserWarning``): non-contiguous arrays for DLPack, Arrow arrays
with nulls or types NumPy cannot view. ``numvault.LazyArray`` views are
accepted wherever an array is (through ``np.asarray``, which maps them
without copying).
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .utils import _check_pyarrow, _check_torch


def _as_array(obj: Any) -> np.ndarray:
    return obj if isinstance(obj, np.ndarray) else np.asarray(obj)


class DLPackBuffer:
    """A NumPy array exposed through the DLPack protocol (``__dlpack__``,
    ``__dlpack_device__``) for ``torch.from_dlpack``, ``np.from_dlpack``,
    JAX, CuPy... A non-C-contiguous array is copied (with a warning)."""

    kDLCPU = 1

    def __init__(self, array: Any) -> None:
        arr = _as_array(array)
        if not arr.flags["C_CONTIGUOUS"]:
            warnings.warn(
                "array is not C-contiguous; DLPackBuffer made a contiguous copy", UserWarning, stacklevel=2
            )
            arr = np.ascontiguousarray(arr)
        self.array = arr

    def __dlpack__(self, stream: Any = None, **kwargs: Any) -> Any:
        if stream is not None and stream != -1:
            raise BufferError("a CPU array has no stream")
        try:
            return self.array.__dlpack__(**kwargs)
        except TypeError:  # an older NumPy without the keyword arguments
            return self.array.__dlpack__()

    def __dlpack_device__(self) -> Tuple[int, int]:
        return (self.kDLCPU, 0)

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype


def to_dlpack(array: Any) -> DLPackBuffer:
    """``array`` wrapped as a :class:`DLPackBuffer`."""
    return DLPackBuffer(array)


def from_dlpack(obj: Any) -> np.ndarray:
    """An ndarray sharing the memory of a DLPack producer (CPU only)."""
    if not hasattr(np, "from_dlpack"):  # pragma: no cover - NumPy < 1.22
        raise RuntimeError("NumPy >= 1.22 is required for DLPack")
    return np.from_dlpack(obj)


def numpy_to_arrow_zero_copy(array: Any) -> Any:
    """A ``pyarrow.Array`` over the buffer of a 1-D contiguous numeric array
    (N-D arrays are flattened, a view when C-contiguous)."""
    pa = _check_pyarrow()
    arr = _as_array(array)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if not arr.flags["C_CONTIGUOUS"]:
        warnings.warn("array is not contiguous; Arrow gets a copy", UserWarning, stacklevel=2)
        arr = np.ascontiguousarray(arr)
    return pa.array(arr)


def arrow_to_numpy_zero_copy(arrow_array: Any) -> np.ndarray:
    """An ndarray viewing an Arrow array's buffer; if Arrow cannot hand it
    over without a copy (nulls, booleans, chunked data...), a copy with a
    ``UserWarning``."""
    pa = _check_pyarrow()
    try:
        return arrow_array.to_numpy(zero_copy_only=True)
    except (pa.ArrowInvalid, pa.ArrowException, TypeError, ValueError) as e:
        warnings.warn(f"Zero-copy conversion from Arrow failed ({e}); copying", UserWarning, stacklevel=2)
        return arrow_array.to_numpy(zero_copy_only=False)


def table_to_numpy_zero_copy(table: Any) -> Dict[str, np.ndarray]:
    """``{column name: ndarray}`` of a ``pyarrow.Table``, each a view where
    Arrow allows it (a single-chunk numeric column without nulls)."""
    _check_pyarrow()
    out: Dict[str, np.ndarray] = {}
    for name in table.column_names:
        col = table.column(name)
        if getattr(col, "num_chunks", 1) == 1:
            chunk = col.chunk(0) if hasattr(col, "chunk") else col
            try:
                out[name] = chunk.to_numpy(zero_copy_only=True)
                continue
            except Exception:
                pass
        out[name] = col.to_numpy()
    return out


def numpy_to_torch_zero_copy(array: Any) -> Any:
    """A CPU tensor sharing the array's memory (``torch.from_numpy``); a
    read-only array (a lazy view) is shared too, and writing to it through
    the tensor is the caller's error to avoid."""
    torch = _check_torch()
    arr = _as_array(array)
    if not arr.flags["WRITEABLE"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(arr)
    return torch.from_numpy(arr)


def torch_to_numpy_zero_copy(tensor: Any) -> np.ndarray:
    """An ndarray sharing a CPU tensor's memory (a GPU tensor is copied to
    the CPU first)."""
    _check_torch()
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t.numpy()


class ZeroCopyArray:
    """A NumPy array (or numvault lazy view) with zero-copy exits: NumPy's
    ``__array__``, DLPack, :meth:`to_torch`, :meth:`to_arrow`."""

    def __init__(self, array: Any) -> None:
        self._array = _as_array(array)

    @property
    def array(self) -> np.ndarray:
        return self._array

    @property
    def shape(self) -> Tuple[int, ...]:
        return self._array.shape

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def nbytes(self) -> int:
        return int(self._array.nbytes)

    @property
    def ndim(self) -> int:
        return self._array.ndim

    def __len__(self) -> int:
        return len(self._array)

    def __array__(self, dtype: Optional[Any] = None, copy: Optional[bool] = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self._array.dtype:
            if copy is False:
                raise ValueError("a dtype change needs a copy")
            return self._array.astype(dtype)
        return self._array.copy() if copy else self._array

    def __dlpack__(self, stream: Any = None, **kwargs: Any) -> Any:
        return DLPackBuffer(self._array).__dlpack__(stream, **kwargs)

    def __dlpack_device__(self) -> Tuple[int, int]:
        return (DLPackBuffer.kDLCPU, 0)

    def to_numpy(self) -> np.ndarray:
        return self._array

    def to_torch(self) -> Any:
        return numpy_to_torch_zero_copy(self._array)

    def to_arrow(self) -> Any:
        """A flat ``pyarrow.Array`` of the elements (a view when contiguous)."""
        return numpy_to_arrow_zero_copy(self._array)

    def __repr__(self) -> str:
        return f"ZeroCopyArray(shape={self.shape}, dtype={self.dtype})"


def wrap_for_zero_copy(array: Any) -> ZeroCopyArray:
    """``array`` wrapped as a :class:`ZeroCopyArray`."""
    return ZeroCopyArray(array)


__all__ = [
    "DLPackBuffer", "to_dlpack", "from_dlpack", "numpy_to_arrow_zero_copy", "arrow_to_numpy_zero_copy",
    "table_to_numpy_zero_copy", "numpy_to_torch_zero_copy", "torch_to_numpy_zero_copy", "ZeroCopyArray",
    "wrap_for_zero_copy",
]
