"""safetensors files and tensor dicts <-> numvault.

Reading uses the ``safetensors`` library (``safe_open``, ``get_slice``):
``from_safetensors_file`` reads each tensor a batch of rows at a time and
reopens the file between batches, so the library's mapping never holds more
than a batch resident. The library has no streaming writer, so
``to_safetensors_file`` writes the documented layout itself (an 8-byte
little-endian header length, the JSON header padded with spaces to a
multiple of 8 bytes, then each tensor's bytes back to back), one batch at a
time; the tests read every file it writes back with the library.
``from_tensor_dict`` / ``to_tensor_dict`` are in memory.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from .utils import (
    DEFAULT_CHUNK_SIZE,
    ConversionError,
    Progress,
    StoreWriter,
    _check_safetensors,
    atomic_output,
    check_dtype,
    check_source,
    open_result,
    open_store,
    pick_names,
    sliced_batches,
    store_batches,
)

_ST_OF = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "uint16": "U16", "int16": "I16", "uint32": "U32",
    "int32": "I32", "uint64": "U64", "int64": "I64", "float16": "F16", "float32": "F32", "float64": "F64",
}
_NP_OF = {v: np.dtype(k) for k, v in _ST_OF.items()}


def _as_numpy(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    a = np.asarray(value)
    check_dtype(a.dtype, "tensor dict", f"key '{name}'")
    if a.ndim == 0:
        raise ConversionError("tensor dict", f"key '{name}'", "0-d (scalar) tensors are not supported by numvault")
    return a


def from_tensor_dict(
    tensors: Dict[str, Any],
    output_path: Union[str, Path],
    drop_if_exists: bool = False,
    return_npk_obj: bool = False,
) -> Any:
    """Save a dict name -> array (NumPy arrays or torch tensors) as arrays of
    those names. In memory. One atomic commit."""
    arrays = {k: _as_numpy(v, k) for k, v in tensors.items()}
    with StoreWriter(output_path, drop_if_exists) as w:
        for k, a in arrays.items():
            w.save(k, a)
    return open_result(output_path) if return_npk_obj else None


def to_tensor_dict(
    input_path: Union[str, Path],
    array_names: Optional[List[str]] = None,
) -> Dict[str, np.ndarray]:
    """Arrays (``array_names``, default all) as a dict name -> ndarray. In
    memory."""
    with open_store(input_path) as v:
        return {n: v.load(n) for n in pick_names(v, array_names)}


def _open(src: Path) -> Any:
    from safetensors import safe_open

    try:
        return safe_open(str(src), framework="np")
    except Exception as e:  # SafetensorError, OSError
        raise ConversionError(src, "header", f"not a valid safetensors file: {e}") from e


def _tensor_info(src: Path, keys: Optional[List[str]]) -> Tuple[List[Tuple[str, Tuple[int, ...], np.dtype]], Dict[str, str]]:
    with _open(src) as f:
        names = list(f.keys())
        meta = dict(f.metadata() or {})
        if keys is not None:
            missing = [k for k in keys if k not in names]
            if missing:
                raise KeyError(f"{src}: tensor(s) {missing} not found (tensors: {names})")
            names = list(keys)
        out = []
        for n in names:
            sl = f.get_slice(n)
            st = sl.get_dtype()
            if st not in _NP_OF:
                raise ConversionError(src, f"tensor '{n}'", f"safetensors dtype {st} has no numvault equivalent")
            shape = tuple(int(x) for x in sl.get_shape())
            if len(shape) == 0:
                raise ConversionError(src, f"tensor '{n}'", "0-d (scalar) tensors are not supported by numvault")
            out.append((n, shape, _NP_OF[st]))
    return out, meta


def _st_batches(src: Path, name: str, shape: Tuple[int, ...], dtype: np.dtype, chunk_size: int,
                progress: Progress) -> Iterator[np.ndarray]:
    def read(start: int, stop: int) -> np.ndarray:
        # reopened per batch: closing unmaps the file, so at most one
        # batch of its pages is resident
        with _open(src) as f:
            return np.array(f.get_slice(name)[start:stop])

    return sliced_batches(src, f"tensor '{name}'", shape, dtype, chunk_size, progress, read)


def from_safetensors_file(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    keys: Optional[List[str]] = None,
    drop_if_exists: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    return_npk_obj: bool = False,
) -> Any:
    """Import the tensors (``keys``, default all) of a safetensors file as
    arrays of the same names. Streams batches of about ``chunk_size / 2``
    bytes; one atomic commit. A damaged or truncated file raises
    :class:`~numvault.io.ConversionError` naming it (header) or the tensor;
    nothing is written. Needs ``safetensors``."""
    _check_safetensors()
    src = check_source(input_path)
    info, _ = _tensor_info(src, keys)
    with Progress(src.stat().st_size, f"from_safetensors {src.name}") as progress:
        with StoreWriter(output_path, drop_if_exists) as w:
            for name, shape, dtype in info:
                w.save_batches(name, _st_batches(src, name, shape, dtype, chunk_size, progress))
    return open_result(output_path) if return_npk_obj else None


def to_safetensors_file(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    array_names: Optional[List[str]] = None,
    metadata: Optional[Dict[str, str]] = None,
) -> None:
    """Export arrays (``array_names``, default all) to a safetensors file
    (``metadata``: str -> str, stored as ``__metadata__``), one batch at a
    time; the file appears only once complete. Complex arrays are refused
    (safetensors has no complex dtype)."""
    with open_store(input_path) as v:
        names = pick_names(v, array_names)
        header: Dict[str, Any] = {}
        if metadata:
            if not all(isinstance(k, str) and isinstance(x, str) for k, x in metadata.items()):
                raise ValueError("safetensors metadata must map str to str")
            header["__metadata__"] = dict(metadata)
        offset = 0
        for n in names:
            dt = np.dtype(v.dtype(n))
            if dt.name not in _ST_OF:
                raise ValueError(f"array '{n}': dtype {dt} has no safetensors equivalent")
            shape = [int(s) for s in v.shape(n)]
            size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            header[n] = {"dtype": _ST_OF[dt.name], "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
        hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
        hb += b" " * (-len(hb) % 8)
        with Progress(offset, f"to_safetensors {Path(output_path).name}") as progress:
            with atomic_output(output_path) as f:
                f.write(struct.pack("<Q", len(hb)))
                f.write(hb)
                for n in names:
                    for b in store_batches(v, n, 32 << 20):  # no chunk_size in NumPack's signature
                        b = np.ascontiguousarray(b, dtype=np.dtype(b.dtype).newbyteorder("<"))
                        f.write(b.tobytes() if b.size else b"")
                        progress.update(b.nbytes)


def get_safetensors_metadata(path: Union[str, Path]) -> Dict[str, Any]:
    """``{'tensors': {name: {'dtype', 'shape'}}, 'metadata': {...}}`` of a
    safetensors file, read from its header only (no tensor is loaded)."""
    _check_safetensors()
    src = check_source(path)
    result: Dict[str, Any] = {"tensors": {}, "metadata": {}}
    with _open(src) as f:
        for k in f.keys():
            sl = f.get_slice(k)
            st = sl.get_dtype()
            result["tensors"][k] = {
                "dtype": str(_NP_OF[st]) if st in _NP_OF else st,
                "shape": tuple(int(x) for x in sl.get_shape()),
            }
        md = f.metadata()
        if md:
            result["metadata"] = dict(md)
    return result


def iter_safetensors(
    path: Union[str, Path],
    keys: Optional[List[str]] = None,
) -> Iterator[Tuple[str, np.ndarray]]:
    """Yield ``(name, ndarray)`` for each tensor (``keys``, default all), one
    tensor in memory at a time."""
    _check_safetensors()
    src = check_source(path)
    with _open(src) as f:
        names = list(keys) if keys is not None else list(f.keys())
        for k in names:
            yield k, f.get_tensor(k)


__all__ = [
    "from_safetensors_file", "to_safetensors_file", "from_tensor_dict", "to_tensor_dict",
    "get_safetensors_metadata", "iter_safetensors",
]
