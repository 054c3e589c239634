"""Zero-copy hand-offs of LazyArray: the Arrow PyCapsule interface
(pyarrow.array / pyarrow.table / RecordBatchReader.from_stream, Vault.to_arrow)
and DLPack (np.from_dlpack), including writes by a consumer that ignores the
read-only flag."""

import gc
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import numvault
import numvault._interop
from numvault import Vault

pa = pytest.importorskip("pyarrow")

ARROW_DTYPES = [
    "bool", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
]
SHAPES = [(7,), (7, 3), (7, 2, 3)]


def _sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)


def _store_ranges(path):
    """Address ranges of this process's mappings of files under `path`."""
    root = os.path.realpath(path)
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].strip().startswith(root + os.sep):
                a, b = (int(x, 16) for x in parts[0].split("-"))
                out.append((a, b))
    return out


def _values_buffer(arr):
    """The Arrow buffer holding the element values of `arr`."""
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    while pa.types.is_fixed_size_list(arr.type):
        arr = arr.values
    return arr.buffers()[1]


def _to_numpy(arr, shape):
    if isinstance(arr, pa.ChunkedArray):
        arr = pa.concat_arrays(arr.chunks) if arr.num_chunks != 1 else arr.chunk(0)
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    while pa.types.is_fixed_size_list(arr.type):
        arr = arr.flatten()
    return arr.to_numpy(zero_copy_only=False).reshape(shape)


@pytest.fixture
def store(tmp_path):
    p = str(tmp_path / "s")
    with Vault(p, "w") as v:
        yield p, v


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("dtype", ARROW_DTYPES)
def test_pa_array_every_dtype(store, dtype, shape):
    path, v = store
    a = _sample(dtype, shape)
    v.save("x", a)
    lz = v.lazy("x")
    assert lz.zero_copy
    arr = pa.array(lz)
    assert len(arr) == shape[0]
    if len(shape) == 2:
        assert pa.types.is_fixed_size_list(arr.type) and arr.type.list_size == shape[1]
    if len(shape) == 3:
        assert isinstance(arr.type, pa.FixedShapeTensorType)
        assert list(arr.type.shape) == list(shape[1:])
        if dtype != "bool":  # pyarrow has no bool tensors to convert to
            np.testing.assert_array_equal(arr.to_numpy_ndarray(), a)
    np.testing.assert_array_equal(_to_numpy(arr, shape), a)
    assert arr.type == numvault._interop.arrow_type(shape, np.dtype(dtype))
    buf = _values_buffer(arr)
    inside = any(lo <= buf.address < hi for lo, hi in _store_ranges(path))
    # bool: Arrow packs bits, so it is a copy; every other dtype is the mapping.
    assert inside == (dtype != "bool"), (dtype, hex(buf.address))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
def test_table_and_stream(store, shape):
    path, v = store
    a = _sample("float32", shape)
    v.save("x", a)
    lz = v.lazy("x")
    t = pa.table(lz)
    assert t.column_names == ["x"] and t.num_rows == shape[0]
    np.testing.assert_array_equal(_to_numpy(t.column("x"), shape), a)
    reader = pa.RecordBatchReader.from_stream(lz)
    got = reader.read_all()
    np.testing.assert_array_equal(_to_numpy(got.column("x"), shape), a)
    for chunk in got.column("x").chunks:
        buf = _values_buffer(chunk)
        assert any(lo <= buf.address < hi for lo, hi in _store_ranges(path))


def test_stream_in_batches(store, monkeypatch):
    _, v = store
    a = _sample("int32", (1000, 4))
    v.save("x", a)
    monkeypatch.setattr(numvault._interop, "STREAM_BATCH_BYTES", 16 * 100)
    batches = list(pa.RecordBatchReader.from_stream(v.lazy("x")))
    assert [b.num_rows for b in batches] == [100] * 10
    got = np.concatenate([_to_numpy(b.column(0), (b.num_rows, 4)) for b in batches])
    np.testing.assert_array_equal(got, a)
    # with deleted rows: read batch by batch, equal values
    v.delete_rows("x", [0, 5, 999])
    want = np.delete(a, [0, 5, 999], axis=0)
    lz = v.lazy("x")
    assert not lz.zero_copy
    batches = list(pa.RecordBatchReader.from_stream(lz))
    got = np.concatenate([_to_numpy(b.column(0), (b.num_rows, 4)) for b in batches])
    np.testing.assert_array_equal(got, want)


def test_vault_to_arrow(store):
    path, v = store
    a = _sample("float64", (50, 2, 2))
    v.save("x", a)
    arr = v.to_arrow("x")
    assert isinstance(arr.type, pa.FixedShapeTensorType)
    np.testing.assert_array_equal(arr.to_numpy_ndarray(), a)
    assert any(lo <= _values_buffer(arr).address < hi for lo, hi in _store_ranges(path))
    with pytest.raises(KeyError):
        v.to_arrow("nope")


def test_arrow_outlives_vault_and_lazy(tmp_path):
    path = str(tmp_path / "s")
    a = _sample("int64", (10_000, 8), seed=3)
    v = Vault(path, "w")
    v.save("x", a)
    lz = v.lazy("x")
    arr = pa.array(lz)
    table = pa.table(lz)
    addr = _values_buffer(arr).address
    v.close()
    del lz
    gc.collect()
    # the store changes under it: overwritten, compacted, checkpointed
    with Vault(path, "a") as w:
        w.save("x", np.zeros((3, 8), dtype=np.int64))
        w.checkpoint()
    gc.collect()
    assert _values_buffer(arr).address == addr
    np.testing.assert_array_equal(_to_numpy(arr, a.shape), a)
    np.testing.assert_array_equal(_to_numpy(table.column("x"), a.shape), a)


@pytest.mark.parametrize("change", ["delete", "replace"])
def test_changed_rows_are_copied(store, change):
    path, v = store
    a = _sample("float32", (100, 3), seed=1)
    v.save("x", a)
    if change == "delete":
        v.delete_rows("x", [3, 50])
        want = np.delete(a, [3, 50], axis=0)
    else:
        v.replace("x", [3, 50], np.ones((2, 3), np.float32))
        want = a.copy()
        want[[3, 50]] = 1
    lz = v.lazy("x")
    assert not lz.zero_copy
    for arr in (pa.array(lz), v.to_arrow("x")):
        np.testing.assert_array_equal(_to_numpy(arr, want.shape), want)
        assert not any(lo <= _values_buffer(arr).address < hi for lo, hi in _store_ranges(path))
    np.testing.assert_array_equal(_to_numpy(pa.table(lz).column("x"), want.shape), want)


def test_complex_has_no_arrow_type(store):
    _, v = store
    v.save("z", np.ones(4, np.complex64))
    with pytest.raises(TypeError, match="complex"):
        pa.array(v.lazy("z"))


def test_empty_arrays(store):
    _, v = store
    v.save("e", np.zeros((0, 3), np.float32))
    arr = pa.array(v.lazy("e"))
    assert len(arr) == 0 and arr.type.list_size == 3
    assert pa.table(v.lazy("e")).num_rows == 0
    v.save("w", np.zeros((4, 0), np.int8))
    v.save("w3", np.zeros((4, 2, 0), np.int8))
    for name in ("w", "w3"):
        arr = pa.array(v.lazy(name))
        assert len(arr) == 4 and pa.table(v.lazy(name)).num_rows == 4
        assert np.from_dlpack(v.lazy(name)).shape == v.shape(name)


def _run(code, *args):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=120,
    )


def test_missing_pyarrow_names_it(store):
    path, v = store
    v.save("x", np.arange(3))
    v.flush()
    r = _run(
        """
        import sys
        sys.modules["pyarrow"] = None  # import pyarrow -> ImportError
        import numvault
        lz = numvault.Vault(sys.argv[1], "r").lazy("x")
        for f in (lambda: lz.__arrow_c_array__(), lambda: lz.__arrow_c_stream__(), lz.to_arrow):
            try:
                f()
            except ImportError as e:
                assert "pyarrow" in str(e), e
            else:
                raise SystemExit("no ImportError")
        print("ok")
        """,
        path,
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


# ---------------------------------------------------------------- DLPack


DLPACK_DTYPES = ARROW_DTYPES + ["complex64", "complex128"]


@pytest.mark.parametrize("dtype", DLPACK_DTYPES)
def test_from_dlpack_every_dtype(store, dtype):
    _, v = store
    a = _sample(dtype, (20, 3)) if np.dtype(dtype).kind != "c" else (
        _sample("float64", (20, 3)) + 1j * _sample("float64", (20, 3), 1)).astype(dtype)
    v.save("x", a)
    lz = v.lazy("x")
    assert lz.__dlpack_device__() == (1, 0)
    got = np.from_dlpack(lz)
    np.testing.assert_array_equal(got, a)
    assert got.dtype == a.dtype
    # DLPack >= 1.0 (NumPy 2 asks for it): flagged read-only
    assert not got.flags.writeable


def test_dlpack_is_not_the_shared_mapping(store):
    path, v = store
    a = _sample("float32", (1000, 16))
    v.save("x", a)
    lz = v.lazy("x")
    got = np.from_dlpack(lz)
    shared = np.asarray(lz)
    assert shared.ctypes.data != got.ctypes.data
    # a private copy-on-write mapping of the data file (not a copy): inside a
    # mapping of the store's files, and writable without reaching them
    priv = lz._private_array()
    assert priv.flags.writeable and priv.ctypes.data != shared.ctypes.data
    assert any(lo <= priv.ctypes.data < hi for lo, hi in _store_ranges(path))
    assert any(lo <= got.ctypes.data < hi for lo, hi in _store_ranges(path))
    priv[:] = -1
    np.testing.assert_array_equal(shared, a)
    np.testing.assert_array_equal(np.asarray(v.lazy("x")), a)
    # legacy consumers (no max_version) get a writable private export
    legacy = np.from_dlpack(_Legacy(lz))
    np.testing.assert_array_equal(legacy, a)


class _Legacy:
    """A producer wrapper that hides max_version (a pre-1.0 consumer)."""

    def __init__(self, x):
        self.x = x

    def __dlpack__(self, **kw):
        kw.pop("max_version", None)
        kw.pop("copy", None)
        kw.pop("dl_device", None)
        return self.x.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self.x.__dlpack_device__()


def test_dlpack_refusals(store):
    _, v = store
    v.save("x", np.arange(10.0))
    lz = v.lazy("x")
    with pytest.raises(BufferError, match="host memory"):
        lz.__dlpack__(dl_device=(2, 0))
    with pytest.raises(BufferError, match="stream"):
        lz.__dlpack__(stream=1)
    v.delete_rows("x", [0])
    lz2 = v.lazy("x")
    with pytest.raises(BufferError, match="copy"):
        lz2.__dlpack__(max_version=(1, 0), copy=False)
    np.testing.assert_array_equal(np.from_dlpack(lz2), np.arange(1.0, 10.0))
    np.testing.assert_array_equal(np.from_dlpack(lz2, copy=True), np.arange(1.0, 10.0))
    np.testing.assert_array_equal(np.from_dlpack(lz, copy=True), np.arange(10.0))


WRITER = """
import ctypes, sys
import numpy as np
import numvault
import numvault._interop
path = sys.argv[1]
v = numvault.Vault(path, "r")
for name in ("ident", "changed"):
    lz = v.lazy(name)
    for how in ("versioned", "legacy"):
        if how == "versioned":
            t = np.from_dlpack(lz)            # read-only flagged: write behind its back
            assert not t.flags.writeable
        else:
            class L:
                def __dlpack__(self, **kw):
                    return lz.__dlpack__(stream=kw.get("stream"))
                def __dlpack_device__(self):
                    return lz.__dlpack_device__()
            t = np.from_dlpack(L())           # legacy: no read-only flag
        junk = np.full(t.nbytes, 0xAB, np.uint8)
        ctypes.memmove(t.ctypes.data, junk.ctypes.data, t.nbytes)
        assert (t.view(np.uint8) == 0xAB).all()
        # another export of the same snapshot, and the lazy itself, are unchanged
        assert (np.asarray(lz) != t).any()
        again = np.from_dlpack(lz)
        assert not (again.view(np.uint8) == 0xAB).all()
print("survived")
"""


def test_writes_into_dlpack_export_never_reach_the_store(tmp_path):
    path = str(tmp_path / "s")
    ident = _sample("float64", (4096, 8), seed=5)
    changed = _sample("int32", (500, 4), seed=6)
    with Vault(path, "w") as v:
        v.save("ident", ident)
        v.save("changed", changed)
        v.replace("changed", [1, 2], np.zeros((2, 4), np.int32))
        v.delete_rows("changed", [10])
    want_changed = changed.copy()
    want_changed[[1, 2]] = 0
    want_changed = np.delete(want_changed, [10], axis=0)
    r = _run(WRITER, path)
    assert r.returncode == 0 and "survived" in r.stdout, (r.returncode, r.stderr)
    with Vault(path, "r") as v:
        rep = v.verify()
        assert rep["clean"], rep["problems"]
        np.testing.assert_array_equal(v.load("ident"), ident)
        np.testing.assert_array_equal(v.load("changed"), want_changed)
        np.testing.assert_array_equal(np.asarray(v.lazy("ident")), ident)
