"""NumPy's protocols for :class:`numvault.LazyArray` (``__array_ufunc__``,
``__array_function__``) and its NumPy-like methods, called by the Rust class.

Every operation gives NumPy's result for the array's values. The values are
read zero-copy from the mapping where possible; reductions (``np.sum``,
``np.mean``, ``np.std``, ``np.max``, ``ufunc.reduce``, ... over axis 0, all
axes or any other axes) stream the array in batches of about
:data:`BATCH_BYTES`, so they need one batch plus the result in memory, not the
array. Float sums are then computed batch by batch (not NumPy's pairwise
order across the whole array): they match NumPy's within a few ulps per
batch (``rtol=1e-6`` for float64, ``1e-5`` for float32 in the tests).
"""

from __future__ import annotations

import builtins
import operator
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ._core import LazyArray

#: Bytes per batch read by streaming reductions.
BATCH_BYTES = 16 << 20


def _is_lazy(x: Any) -> bool:
    return isinstance(x, LazyArray)


def _values(x: Any) -> Any:
    """Replace lazy arrays (also inside lists and tuples) by their values."""
    if _is_lazy(x):
        return np.asarray(x)
    if isinstance(x, list):
        return [_values(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_values(v) for v in x)
    return x


def _batches(lazy: Any) -> Iterator[np.ndarray]:
    """Consecutive row batches of ``lazy`` (copies, about BATCH_BYTES each)."""
    n = len(lazy)
    row = builtins.max(1, int(lazy.nbytes // builtins.max(n, 1)))
    step = builtins.max(1, BATCH_BYTES // row)
    for start in range(0, n, step):
        yield lazy[start:start + step]


def _axes(axis: Any, ndim: int) -> Optional[Tuple[int, ...]]:
    """Normalized reduction axes, or None if ``axis`` is not a valid one (let
    NumPy raise its error)."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for a in items:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            return None
        a = int(a)
        if not -ndim <= a < ndim:
            return None
        out.append(a % ndim)
    if len(set(out)) != len(out):
        return None
    return tuple(sorted(out))


def _squeeze(res: np.ndarray, axes: Tuple[int, ...], keepdims: bool) -> Any:
    if keepdims:
        return res
    res = np.squeeze(res, axis=axes) if axes else res
    return res[()] if res.ndim == 0 else res


def _stream_reduce(
    lazy: Any, part: Callable[[np.ndarray], np.ndarray], combine: Callable[[Any, Any], Any],
    axes: Tuple[int, ...], keepdims: bool,
) -> Any:
    """Reduce ``lazy`` over ``axes`` batch by batch: ``part(batch)`` reduces a
    batch with ``keepdims=True``; partial results are combined with
    ``combine`` when axis 0 is reduced and concatenated otherwise."""
    acc: Any = None
    parts: List[np.ndarray] = []
    for b in _batches(lazy):
        p = part(b)
        if 0 in axes:
            acc = p if acc is None else combine(acc, p)
        else:
            parts.append(p)
    res = acc if 0 in axes else np.concatenate(parts, axis=0)
    return _squeeze(np.asarray(res), axes, keepdims)


# ufuncs whose reduction may be computed batch by batch and combined with the
# ufunc itself.
_REDUCIBLE = {
    "add", "multiply", "maximum", "minimum", "fmax", "fmin", "logical_and",
    "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
}


def _reduce(lazy: Any, ufunc: np.ufunc, axis: Any = 0, dtype: Any = None,
            keepdims: bool = False) -> Any:
    axes = _axes(axis, lazy.ndim)
    if axes is None or len(lazy) == 0 or lazy.size == 0:
        return None

    # NumPy sums and multiplies float16 in float32 and rounds once at the end;
    # float16 partial results rounded batch by batch would drift from it.
    acc = dtype
    if dtype is None and lazy.dtype == np.float16 and ufunc.__name__ in ("add", "multiply"):
        acc = np.float32

    def part(b: np.ndarray) -> np.ndarray:
        return ufunc.reduce(b, axis=axes, dtype=acc, keepdims=True)

    def combine(a: np.ndarray, p: np.ndarray) -> np.ndarray:
        r = ufunc(a, p)
        return r.astype(a.dtype, copy=False) if r.dtype != a.dtype else r

    res = _stream_reduce(lazy, part, combine, axes, keepdims)
    if acc is not dtype:
        res = np.asarray(res).astype(np.float16)
        res = res[()] if res.ndim == 0 else res
    return res


def array_ufunc(lazy: Any, ufunc: np.ufunc, method: str, inputs: Tuple[Any, ...],
                kwargs: Dict[str, Any]) -> Any:
    """``LazyArray.__array_ufunc__``: reductions of a lazy array stream;
    everything else runs on the values."""
    if (method == "reduce" and ufunc.__name__ in _REDUCIBLE and len(inputs) == 1
            and inputs[0] is lazy and set(kwargs) <= {"axis", "dtype", "keepdims"}):
        res = _reduce(lazy, ufunc, kwargs.get("axis", 0), kwargs.get("dtype"),
                      bool(kwargs.get("keepdims", False)))
        if res is not None:
            return res
    if "out" in kwargs:
        kwargs = dict(kwargs)
        kwargs["out"] = tuple(_values(o) for o in kwargs["out"])
        if any(_is_lazy(o) for o in kwargs["out"]):
            raise ValueError("a LazyArray is read-only and cannot be an output")
    return getattr(ufunc, method)(*_values(inputs), **kwargs)


def _mean(lazy: Any, axes: Tuple[int, ...], dtype: Any, keepdims: bool) -> Any:
    kind = lazy.dtype.kind
    if dtype is not None:
        acc = np.dtype(dtype)
    elif kind in "biu":
        acc = np.dtype(np.float64)
    elif lazy.dtype == np.float16:
        acc = np.dtype(np.float32)
    else:
        acc = lazy.dtype
    total = _reduce(lazy, np.add, axes, acc, True)
    count = int(np.prod([lazy.shape[a] for a in axes], dtype=np.int64))
    res = np.true_divide(total, count)
    out_dtype = np.dtype(dtype) if dtype is not None else (
        np.dtype(np.float64) if kind in "biu" else lazy.dtype)
    res = np.asarray(res).astype(out_dtype, copy=False)
    return _squeeze(res, axes, keepdims)


def _moments(b: np.ndarray, axes: Tuple[int, ...], acc: np.dtype) -> Tuple[Any, np.ndarray, np.ndarray]:
    x = b.astype(acc, copy=False)
    n = int(np.prod([b.shape[a] for a in axes], dtype=np.int64))
    m = x.mean(axis=axes, keepdims=True)
    d = x - m
    m2 = (d.real ** 2 + d.imag ** 2 if np.iscomplexobj(d) else d * d).sum(axis=axes, keepdims=True)
    return n, m, m2


def _var(lazy: Any, axes: Tuple[int, ...], dtype: Any, ddof: Any, keepdims: bool,
         std: bool) -> Any:
    kind = lazy.dtype.kind
    if dtype is not None:
        acc = np.dtype(dtype)
    elif kind == "c":
        acc = np.dtype(np.complex128)
    else:
        acc = np.dtype(np.float64)
    if kind == "c":
        out_dtype = np.dtype(dtype) if dtype is not None else lazy.dtype.type(0).real.dtype
    elif dtype is not None:
        out_dtype = np.dtype(dtype)
    else:
        out_dtype = np.dtype(np.float64) if kind in "biu" else lazy.dtype
    if 0 not in axes:
        fn = np.std if std else np.var

        def part(b: np.ndarray) -> np.ndarray:
            return fn(b, axis=axes, dtype=dtype, ddof=ddof, keepdims=True)

        return _stream_reduce(lazy, part, lambda a, p: a, axes, keepdims)
    # Chan et al.'s pairwise combination of (count, mean, M2) per batch.
    n_acc, m_acc, m2_acc = 0, None, None
    for b in _batches(lazy):
        n, m, m2 = _moments(b, axes, acc)
        if m_acc is None:
            n_acc, m_acc, m2_acc = n, m, m2
            continue
        tot = n_acc + n
        delta = m - m_acc
        dd = delta.real ** 2 + delta.imag ** 2 if np.iscomplexobj(delta) else delta * delta
        m2_acc = m2_acc + m2 + dd * (n_acc * n / tot)
        m_acc = m_acc + delta * (n / tot)
        n_acc = tot
    with np.errstate(divide="ignore", invalid="ignore"):
        res = m2_acc / builtins.max(n_acc - ddof, 0)
    if std:
        res = np.sqrt(res)
    res = np.asarray(res).real.astype(out_dtype, copy=False)
    return _squeeze(res, axes, keepdims)


_UFUNC_OF = {
    "sum": np.add, "prod": np.multiply, "max": np.maximum, "amax": np.maximum,
    "min": np.minimum, "amin": np.minimum, "any": np.logical_or, "all": np.logical_and,
}


_POSITIONAL = {
    "sum": ("axis", "dtype", "out", "keepdims", "initial", "where"),
    "prod": ("axis", "dtype", "out", "keepdims", "initial", "where"),
    "mean": ("axis", "dtype", "out", "keepdims"),
    "std": ("axis", "dtype", "out", "ddof", "keepdims"),
    "var": ("axis", "dtype", "out", "ddof", "keepdims"),
}
_STREAM_KEYS = {"axis", "dtype", "keepdims", "ddof"}


def _streamed(func: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    """A streaming result for ``func(lazy, ...)``, or NotImplemented."""
    name = getattr(func, "__name__", "")
    lazy = args[0]
    if len(lazy) == 0 or lazy.size == 0:
        return NotImplemented
    positional = _POSITIONAL.get(name, ("axis", "out", "keepdims", "initial", "where"))
    if len(args) - 1 > len(positional):
        return NotImplemented
    params = dict(zip(positional, args[1:]))
    params.update(kwargs)
    if params.get("out") is None:
        params.pop("out", None)
    if params.get("keepdims", False) is np._NoValue:
        params.pop("keepdims")
    if not set(params) <= _STREAM_KEYS:
        return NotImplemented
    keepdims = bool(params.get("keepdims", False))
    axes = _axes(params.get("axis"), lazy.ndim)
    if axes is None:
        return NotImplemented
    if name in _UFUNC_OF:
        if name in ("any", "all"):
            if "dtype" in params:
                return NotImplemented
            res = _reduce(lazy, _UFUNC_OF[name], axes, None, keepdims)
            if res is None:
                return NotImplemented
            res = np.asarray(res).astype(bool)
            return res[()] if res.ndim == 0 else res
        if "ddof" in params:
            return NotImplemented
        res = _reduce(lazy, _UFUNC_OF[name], axes, params.get("dtype"), keepdims)
        return NotImplemented if res is None else res
    if lazy.dtype.kind not in "biufc":
        return NotImplemented
    if name == "mean":
        if "ddof" in params:
            return NotImplemented
        return _mean(lazy, axes, params.get("dtype"), keepdims)
    return _var(lazy, axes, params.get("dtype"), params.get("ddof", 0), keepdims, name == "std")


_STREAMED = {"sum", "prod", "max", "amax", "min", "amin", "any", "all", "mean", "std", "var"}


def array_function(lazy: Any, func: Any, types: Any, args: Tuple[Any, ...],
                   kwargs: Dict[str, Any]) -> Any:
    """``LazyArray.__array_function__``: whole-array reductions stream; every
    other NumPy function runs on the values."""
    if getattr(func, "__name__", "") in _STREAMED and args and args[0] is lazy:
        res = _streamed(func, args, kwargs)
        if res is not NotImplemented:
            return res
    return func(*_values(args), **_values_kw(kwargs))


def _values_kw(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    if "out" in kwargs and _is_lazy(kwargs["out"]):
        raise ValueError("a LazyArray is read-only and cannot be an output")
    return {k: _values(v) for k, v in kwargs.items()}


def reshape(lazy: Any, shape: Tuple[Any, ...], order: str = "C") -> Any:
    """``LazyArray.reshape``: a lazy view when the row count stays the same
    (only trailing dimensions change), otherwise NumPy's reshape of the
    values (a read-only view of the mapping when zero-copy)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        dims = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"reshape: shape must be integers, got {shape!r}") from None
    if any(d < -1 for d in dims) or sum(d == -1 for d in dims) > 1:
        raise ValueError(
            f"cannot reshape array of shape {lazy.shape} into {dims}: only one dimension "
            "may be -1 and no other may be negative"
        )
    if order != "C":
        return np.reshape(np.asarray(lazy), dims, order=order)
    # NumPy resolves -1 and checks the size (its error messages too), on a
    # zero-stride stand-in of the same shape.
    target = np.broadcast_to(np.uint8(0), lazy.shape).reshape(dims).shape
    if len(target) >= 1 and target[0] == lazy.shape[0] and len(lazy) > 0:
        return lazy._with_shape(list(target))
    return np.asarray(lazy).reshape(target)


# NumPack 0.7's LazyArray accelerators: all equivalent to plain indexing.
def _gather(lazy: Any) -> Callable[..., np.ndarray]:
    def vectorized_gather(indices: Any) -> np.ndarray:
        return lazy[np.asarray(indices, dtype=np.int64)]

    return vectorized_gather


def _mega_batch(lazy: Any) -> Callable[..., np.ndarray]:
    def mega_batch_get_rows(indices: Any, batch_size: int = 1000) -> List[np.ndarray]:
        """One array per index (the row), gathered ``batch_size`` rows at a time."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if batch_size <= 0:
            raise ValueError("batch_size must be greater than 0")
        rows: List[np.ndarray] = []
        for i in range(0, len(idx), batch_size):
            rows.extend(lazy[idx[i:i + batch_size]])
        return rows

    return mega_batch_get_rows


def _bool_index(lazy: Any, name: str) -> Callable[..., np.ndarray]:
    def boolean_index(mask: Any) -> np.ndarray:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (len(lazy),):
            raise ValueError(
                f"{name}: mask of shape {m.shape} does not match the array's {len(lazy)} rows"
            )
        return lazy[m]

    boolean_index.__name__ = name
    return boolean_index


def _choose(lazy: Any) -> Callable[..., str]:
    def choose_optimal_algorithm(mask: Any) -> str:
        return "numvault"

    return choose_optimal_algorithm


def _warmup(lazy: Any) -> Callable[..., None]:
    def intelligent_warmup(hint: Any = None) -> None:
        return None

    return intelligent_warmup


def _numpy_method(lazy: Any, name: str) -> Callable[..., Any]:
    fn = getattr(np, name)

    def method(*args: Any, **kwargs: Any) -> Any:
        return fn(lazy, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"``np.{name}(lazy, ...)``: streamed in batches where NumPy allows it."
    return method


_NUMPY_METHODS = ("sum", "prod", "max", "min", "mean", "std", "var", "any", "all",
                  "argmax", "argmin", "cumsum", "cumprod", "nonzero", "ravel", "flatten",
                  "transpose", "swapaxes", "squeeze", "round", "clip", "dot", "take",
                  "searchsorted", "sort", "argsort")


def getattr_(lazy: Any, name: str) -> Any:
    """``LazyArray.__getattr__`` (after the class's own attributes):
    NumPack's accelerator methods and NumPy's array methods."""
    if name == "vectorized_gather":
        return _gather(lazy)
    if name == "mega_batch_get_rows":
        return _mega_batch(lazy)
    if name in ("parallel_boolean_index", "boolean_index_smart", "boolean_index_adaptive",
                "boolean_index_production", "boolean_index_adaptive_algorithm"):
        return _bool_index(lazy, name)
    if name == "choose_optimal_algorithm":
        return _choose(lazy)
    if name == "intelligent_warmup":
        return _warmup(lazy)
    if name in _NUMPY_METHODS:
        if name in ("flatten", "sort", "argsort"):
            values = np.asarray(lazy)
            if name == "sort":
                def sort(*args: Any, **kwargs: Any) -> None:
                    raise ValueError("a LazyArray is read-only: use np.sort(lazy) for a sorted copy")
                return sort
            return getattr(values, name)
        if name in ("swapaxes", "squeeze", "round", "clip", "dot", "take", "searchsorted",
                    "nonzero", "argmax", "argmin", "cumsum", "cumprod"):
            return getattr(np.asarray(lazy), name)
        return _numpy_method(lazy, name)
    raise AttributeError(f"'numvault.LazyArray' object has no attribute '{name}'")
