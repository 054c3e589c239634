"""LazyArray through NumPy's protocols: ufuncs, array functions, streaming
reductions in bounded memory, and NumPy-like methods (reshape, T, astype,
copy, tolist, __bool__, __repr__), checked against NumPy on the same data,
with and without deleted and replaced rows."""

import copy
import pickle
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numvault
from numvault import _lazy

DTYPES = [np.bool_, np.int8, np.uint16, np.int32, np.int64, np.float16, np.float32,
          np.float64, np.complex64, np.complex128]


def _data(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.random(shape) > 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100), size=shape).astype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        return (rng.random(shape) + 1j * rng.random(shape)).astype(dtype)
    return (rng.random(shape) * 10 - 5).astype(dtype)


def _tol(dtype):
    d = np.dtype(dtype)
    if d.kind in "fc" and d.itemsize <= 4 + 4 * (d.kind == "c"):
        return dict(rtol=1e-5 if d != np.float16 else 1e-2, atol=1e-5 if d != np.float16 else 1e-2)
    return dict(rtol=1e-6, atol=1e-9)


@pytest.fixture
def vault(tmp_path):
    with numvault.Vault(tmp_path / "s") as v:
        yield v


def _stored(vault, name, model, history):
    """Store ``model`` under ``name``; with ``history``, reach it through
    deleted and replaced rows (so the lazy array is not zero-copy)."""
    if not history:
        vault.save(name, model)
        return model
    extra = np.concatenate([model[:1], model[:1], model])
    vault.save(name, extra)
    vault.delete_rows(name, [0, 1])
    if len(model):
        vault.replace(name, [0], model[:1])
    return model


REDUCTIONS = [
    ("sum", {}), ("sum", {"axis": 0}), ("sum", {"axis": 1}), ("sum", {"axis": (0, 1)}),
    ("sum", {"axis": -1, "keepdims": True}), ("prod", {"axis": 0}), ("max", {}),
    ("min", {"axis": 0}), ("max", {"axis": 1, "keepdims": True}), ("any", {}),
    ("all", {"axis": 0}), ("mean", {}), ("mean", {"axis": 0}), ("mean", {"axis": 1}),
    ("std", {}), ("std", {"axis": 0}), ("var", {"axis": 0, "ddof": 1}),
    ("var", {"axis": (0, 1), "keepdims": True}),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dtype=st.sampled_from(DTYPES),
    rows=st.integers(1, 300),
    cols=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    history=st.booleans(),
    batch=st.sampled_from([8, 64, 1 << 20]),
    which=st.sampled_from(REDUCTIONS),
)
def test_reductions_match_numpy(vault, monkeypatch, dtype, rows, cols, seed, history, batch, which):
    monkeypatch.setattr(_lazy, "BATCH_BYTES", batch)
    model = _stored(vault, "a", _data(dtype, (rows, cols), seed), history)
    lazy = vault.lazy("a")
    fname, kw = which
    if fname in ("prod",) and np.dtype(dtype).kind in "iu":
        model = model % 3  # keep products in range
        vault.save("a", model)
        lazy = vault.lazy("a")
    want = getattr(np, fname)(model, **kw)
    got = getattr(np, fname)(lazy, **kw)
    assert np.shape(got) == np.shape(want)
    assert np.asarray(got).dtype == np.asarray(want).dtype, (fname, kw)
    _assert_matches(got, want, getattr(np, fname), model, kw)
    if fname in ("sum", "prod", "max", "min"):
        uf = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}[fname]
        kw_uf = {"axis": kw.get("axis", 0)}
        _assert_matches(uf.reduce(lazy, **kw_uf), uf.reduce(model, **kw_uf), uf.reduce, model, kw_uf)
        # the method form is NumPy's too
        _assert_matches(getattr(lazy, fname)(**kw), want, getattr(np, fname), model, kw)


def _assert_matches(got, want, fn, model, kw):
    """``got`` is NumPy's ``want`` within the tolerance of its dtype. float16
    is the exception: NumPy's own float16 reductions round in float16 in an
    order that depends on the memory layout (pairwise in float32 along a
    contiguous axis, one row at a time in float16 across rows), so no batched
    order reproduces them. There the check is stronger than a tolerance: the
    result is at least as close to the exact (float64) answer as NumPy's, give
    or take one float16 rounding of that answer."""
    if model.dtype != np.float16:
        np.testing.assert_allclose(np.asarray(got, dtype=np.asarray(want).dtype), want,
                                   **_tol(model.dtype))
        return
    exact = np.asarray(fn(model.astype(np.float64), **kw))
    got64 = np.asarray(got, dtype=np.float64)
    want64 = np.asarray(want, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ulp = np.spacing(np.abs(exact).astype(np.float16)).astype(np.float64)
        ok = (np.abs(got64 - exact) <= np.abs(want64 - exact) + ulp) | (got64 == want64)
    ok |= np.isnan(got64) & np.isnan(want64)
    assert ok.all(), f"float16 {fn.__name__}{kw}: got {got}, NumPy {want}, exact {exact}"


@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.float64])
@pytest.mark.parametrize("history", [False, True])
def test_ufuncs_and_functions_on_values(vault, dtype, history):
    model = _stored(vault, "a", _data(dtype, (50, 4), 1), history)
    lazy = vault.lazy("a")
    other = _data(dtype, (50, 4), 2)
    np.testing.assert_array_equal(np.add(lazy, other), model + other)
    np.testing.assert_array_equal(np.abs(lazy), np.abs(model))
    np.testing.assert_array_equal(np.maximum(lazy, other), np.maximum(model, other))
    np.testing.assert_array_equal(np.cumsum(lazy, axis=0), np.cumsum(model, axis=0))
    assert all(np.array_equal(a, b) for a, b in zip(np.where(lazy > 0), np.where(model > 0)))
    np.testing.assert_array_equal(np.concatenate([lazy, other]), np.concatenate([model, other]))
    np.testing.assert_array_equal(np.stack([lazy, lazy]), np.stack([model, model]))
    np.testing.assert_array_equal(np.sort(lazy, axis=0), np.sort(model, axis=0))
    np.testing.assert_array_equal(np.argmax(lazy, axis=1), np.argmax(model, axis=1))
    np.testing.assert_array_equal(np.median(lazy, axis=0), np.median(model, axis=0))
    np.testing.assert_array_equal(lazy @ other.T, model @ other.T)
    # a ufunc never writes into the store
    with pytest.raises(ValueError, match="read-only"):
        np.add(other, 1, out=lazy)
    np.testing.assert_array_equal(vault.load("a"), model)


def test_streaming_reduction_needs_one_batch_not_the_array(vault, monkeypatch):
    # An array with deleted rows is not zero-copy: reading it whole would copy
    # all of its 8 MB; a streamed reduction holds one 64 KiB batch at a time.
    model = _stored(vault, "a", _data(np.float64, (131072, 8), 3), True)
    lazy = vault.lazy("a")
    assert not lazy.zero_copy
    monkeypatch.setattr(_lazy, "BATCH_BYTES", 64 << 10)
    for fn, kw in [(np.sum, {}), (np.mean, {"axis": 0}), (np.max, {"axis": 0}),
                   (np.std, {}), (np.var, {"axis": 0}), (np.add.reduce, {"axis": 0})]:
        tracemalloc.start()
        try:
            got = fn(lazy, **kw)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        np.testing.assert_allclose(got, fn(model, **kw), rtol=1e-6)
        assert peak < 1 << 20, (fn, peak)
    # the same reduction that cannot stream (an `out=` array) reads it whole
    tracemalloc.start()
    try:
        np.sum(lazy, axis=0, out=np.empty(8))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak > 4 << 20


def test_reshape_transpose_astype_copy(vault):
    model = _data(np.float32, (40, 6), 4)
    vault.save("a", model)
    lazy = vault.lazy("a")
    r = lazy.reshape(40, 2, 3)
    assert isinstance(r, numvault.LazyArray) and r.shape == (40, 2, 3) and r.size == lazy.size
    want = model.reshape(40, 2, 3)
    np.testing.assert_array_equal(np.asarray(r), want)
    np.testing.assert_array_equal(r[5], want[5])
    np.testing.assert_array_equal(r[3:9], want[3:9])
    np.testing.assert_array_equal(r[[0, 39, 7]], want[[0, 39, 7]])
    np.testing.assert_array_equal(r[2, 1], want[2, 1])
    np.testing.assert_array_equal(np.stack(list(r)), want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(r))[:], want)
    assert lazy.reshape((40, -1)).shape == (40, 6)
    assert isinstance(lazy.reshape(-1), np.ndarray)  # rows change: NumPy's reshape
    np.testing.assert_array_equal(lazy.reshape(-1), model.reshape(-1))
    np.testing.assert_array_equal(lazy.reshape(80, 3), model.reshape(80, 3))
    with pytest.raises(ValueError):
        lazy.reshape(7, 7)
    with pytest.raises(ValueError):
        lazy.reshape(-2, 120)
    with pytest.raises(ValueError):
        lazy.reshape(-1, -1)
    np.testing.assert_array_equal(lazy.T, model.T)
    a = lazy.astype(np.float64)
    assert a.dtype == np.float64 and a.flags.writeable
    np.testing.assert_array_equal(a, model.astype(np.float64))
    for c in (lazy.copy(), copy.copy(lazy), copy.deepcopy(lazy)):
        assert type(c) is np.ndarray and c.flags.writeable
        np.testing.assert_array_equal(c, model)
        c[0] = 0  # a copy: the store is unchanged
    np.testing.assert_array_equal(vault.load("a"), model)
    assert lazy.tolist() == model.tolist()


def test_bool_follows_numpy(vault):
    vault.save("one", np.array([3]))
    vault.save("zero", np.array([0.0]))
    vault.save("many", np.arange(3))
    vault.save("empty", np.zeros((0, 2)))
    assert bool(vault.lazy("one")) is True and bool(vault.lazy("zero")) is False
    for name in ("many", "empty"):
        with pytest.raises(ValueError):
            bool(vault.lazy(name))


def test_repr_names_shape_dtype_and_store(vault):
    vault.save("feat", np.zeros((4, 2), np.float32))
    r = repr(vault.lazy("feat"))
    assert "feat" in r and "(4, 2)" in r and "float32" in r and str(vault.path) in r


def test_inplace_operators_rebind_and_never_change_the_store(vault):
    model = np.arange(10.0)
    vault.save("a", model)
    x = vault.lazy("a")
    x *= 2
    assert type(x) is np.ndarray
    np.testing.assert_array_equal(x, model * 2)
    np.testing.assert_array_equal(vault.load("a"), model)


def test_numpack_accelerators_are_plain_indexing(vault):
    model = _data(np.float64, (30, 3), 5)
    vault.save("a", model)
    lazy = vault.lazy("a")
    np.testing.assert_array_equal(lazy.vectorized_gather([3, 1, 3]), model[[3, 1, 3]])
    rows = lazy.mega_batch_get_rows([0, 5, 29], 2)
    assert len(rows) == 3
    for r, i in zip(rows, [0, 5, 29]):
        np.testing.assert_array_equal(r, model[i])
    mask = model[:, 0] > 0
    np.testing.assert_array_equal(lazy.boolean_index_smart(mask), model[mask])
    with pytest.raises(ValueError, match="mask"):
        lazy.parallel_boolean_index(mask[:5])
    with pytest.raises(AttributeError):
        lazy.no_such_method  # noqa: B018
    with lazy as same:  # NumPack's context manager and close(): no-ops
        assert same is lazy
    lazy.close()
    np.testing.assert_array_equal(lazy[:], model)


def test_bitwise_on_floats_is_a_type_error(vault):
    vault.save("f", np.arange(4.0))
    vault.save("i", np.arange(4))
    with pytest.raises(TypeError, match="integer arrays"):
        vault.lazy("f") & 1
    with pytest.raises(TypeError, match="integer arrays"):
        ~vault.lazy("f")
    np.testing.assert_array_equal(vault.lazy("i") & 1, np.arange(4) & 1)
