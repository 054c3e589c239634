"""PyTorch tensors and ``.pt`` files <-> numvault.

``torch.save`` files are pickles: ``from_pt`` loads them with
``torch.load(weights_only=True, mmap=True)`` (no arbitrary code runs; the
tensors of a zip-format file are memory-mapped and staged in batches), and
``to_pt`` builds the dict of tensors in memory for ``torch.save``.
``from_tensor`` / ``to_tensor`` are in memory.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from .utils import (
    DEFAULT_CHUNK_SIZE,
    ConversionError,
    StoreWriter,
    _check_torch,
    atomic_path,
    check_dtype,
    check_source,
    open_result,
    open_store,
    pick_names,
    pick_one,
    rows_per_batch,
)


def _to_numpy(torch: Any, t: Any, source: Any, place: str) -> np.ndarray:
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype == torch.bfloat16:
        raise ConversionError(source, place, "bfloat16 has no NumPy dtype; convert it (e.g. .float()) first")
    try:
        a = t.numpy()
    except (TypeError, RuntimeError) as e:
        raise ConversionError(source, place, str(e)) from e
    check_dtype(a.dtype, source, place)
    if a.ndim == 0:
        raise ConversionError(source, place, "0-d (scalar) tensors are not supported by numvault")
    return a


def _batches(a: np.ndarray, chunk_size: int):
    rows = rows_per_batch(a.shape[1:], a.dtype, chunk_size)
    if len(a) == 0:
        yield a
    for i in range(0, len(a), rows):
        yield np.ascontiguousarray(a[i : i + rows])


def from_tensor(
    tensor: Any,
    output_path: Union[str, Path],
    array_name: Optional[str] = None,
    drop_if_exists: bool = False,
    return_npk_obj: bool = False,
) -> Any:
    """Save a tensor (moved to the CPU) as array ``array_name`` (default
    ``'data'``). In memory. One atomic commit."""
    torch = _check_torch()
    if not torch.is_tensor(tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(tensor).__name__}")
    a = _to_numpy(torch, tensor, "tensor", array_name or "data")
    with StoreWriter(output_path, drop_if_exists) as w:
        w.save_batches(array_name or "data", _batches(a, DEFAULT_CHUNK_SIZE))
    return open_result(output_path) if return_npk_obj else None


def to_tensor(
    input_path: Union[str, Path],
    array_name: Optional[str] = None,
    device: Optional[str] = None,
    dtype: Optional[Any] = None,
) -> Any:
    """One array (``array_name``, or the store's only array) as a tensor
    (on ``device``, of ``dtype`` if given). In memory."""
    torch = _check_torch()
    with open_store(input_path) as v:
        name = pick_one(v, array_name, "export")
        t = torch.from_numpy(v.load(name))
    if dtype is not None:
        t = t.to(dtype)
    if device is not None:
        t = t.to(device)
    return t


def _flatten(torch: Any, obj: Any, prefix: str, out: Dict[str, Any]) -> None:
    for k, val in obj.items():
        name = f"{prefix}{k}"
        if torch.is_tensor(val):
            out[name] = val
        elif isinstance(val, dict):
            _flatten(torch, val, name + "/", out)
        else:
            warnings.warn(f"from_pt: '{name}' is a {type(val).__name__}, not a tensor; not imported", UserWarning,
                          stacklevel=3)


def from_pt(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    key: Optional[str] = None,
    drop_if_exists: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    return_npk_obj: bool = False,
) -> Any:
    """Import a ``torch.save`` file: a tensor (named by the file's stem) or a
    dict of tensors (one array per key, nested dicts as '/' names; ``key``
    selects one). Loaded with ``weights_only=True`` (no code from the file
    runs) and memory-mapped where the file allows; staged in batches of
    about ``chunk_size / 2`` bytes; one atomic commit."""
    torch = _check_torch()
    src = check_source(input_path)
    try:
        try:
            data = torch.load(str(src), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            data = torch.load(str(src), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise ConversionError(src, None, f"cannot load: {e}") from e
    items: Dict[str, Any] = {}
    if torch.is_tensor(data):
        items[src.stem] = data
    elif isinstance(data, dict):
        if key is not None:
            if key not in data:
                raise KeyError(f"Key '{key}' not found. Available: {list(data.keys())}")
            if not torch.is_tensor(data[key]):
                raise TypeError(f"Value for key '{key}' is not a tensor")
            items[key] = data[key]
        else:
            _flatten(torch, data, "", items)
    else:
        raise TypeError(f"Unsupported PyTorch data type: {type(data)}")
    with StoreWriter(output_path, drop_if_exists) as w:
        for name, t in items.items():
            w.save_batches(name, _batches(_to_numpy(torch, t, src, f"key '{name}'"), chunk_size))
    return open_result(output_path) if return_npk_obj else None


def to_pt(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_names: Optional[List[str]] = None,
    as_dict: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Export arrays (``array_names``, default all) to a ``torch.save`` file:
    a dict name -> tensor, or with ``as_dict=False`` and one array the bare
    tensor. In memory (``torch.save`` needs every tensor); the file appears
    only once complete."""
    torch = _check_torch()
    with open_store(input_path) as v:
        names = pick_names(v, array_names)
        tensors = {n: torch.from_numpy(v.load(n)) for n in names}
    if not as_dict:
        if len(tensors) != 1:
            raise ValueError(f"as_dict=False needs exactly one array, got {len(tensors)}")
        obj: Any = next(iter(tensors.values()))
    else:
        obj = tensors
    with atomic_path(output_path) as tmp:
        torch.save(obj, str(tmp))


__all__ = ["from_tensor", "to_tensor", "from_pt", "to_pt"]
