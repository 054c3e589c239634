"""The native Vault: modes, sync policies, dict-like access, every method."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import numvault
from numvault import CorruptionError, LockedError, Vault

from conftest import ALL_DTYPES, make_array


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape", [(7,), (5, 3), (4, 2, 3), (0, 4)])
def test_round_trip_every_dtype_and_shape(store_path, dtype, shape):
    a = make_array(dtype, shape)
    with Vault(store_path) as v:
        v.save("x", a)
        out = v.load("x")
        assert out.dtype == a.dtype and out.shape == a.shape
        np.testing.assert_array_equal(out, a)
        lz = v.lazy("x")
        assert lz.dtype == a.dtype and lz.shape == a.shape
        np.testing.assert_array_equal(np.asarray(lz), a)
    with Vault(store_path, "r") as v:
        np.testing.assert_array_equal(v.load("x"), a)


def test_modes(store_path):
    with pytest.raises(FileNotFoundError):
        Vault(store_path, "r")
    with Vault(store_path, "a") as v:
        v.save("x", np.arange(3))
    with Vault(store_path, "a") as v:
        assert list(v) == ["x"]
    with Vault(store_path, "r") as v:
        assert v.read_only and v.mode == "r"
        with pytest.raises(PermissionError):
            v.save("y", np.arange(3))
        np.testing.assert_array_equal(v["x"], np.arange(3))
    with Vault(store_path, "w") as v:
        assert len(v) == 0
    with pytest.raises(ValueError, match="mode"):
        Vault(store_path, "x")


@pytest.mark.parametrize("sync", ["always", "group", "flush", "never"])
def test_sync_policies(store_path, sync):
    with Vault(store_path, sync=sync, max_delay_ms=1) as v:
        assert v.sync == sync
        for i in range(5):
            v.save(f"a{i}", np.full(10, i))
            v.append(f"a{i}", np.full(3, i))
        v.flush()
    with Vault(store_path, "r") as v:
        assert v.names() == [f"a{i}" for i in range(5)]
        assert v.shape("a3") == (13,)
    with pytest.raises(ValueError, match="sync"):
        Vault(store_path, sync="sometimes")
    with pytest.raises(ValueError):
        Vault(store_path, sync="group", max_delay_ms=-1)


def test_dict_like(store_path):
    v = Vault(store_path)
    v["a"] = np.arange(4)
    v["b/c"] = np.ones((2, 2))
    assert "a" in v and "zz" not in v and 3 not in v
    assert len(v) == 2
    assert sorted(v) == ["a", "b/c"] == v.keys()
    np.testing.assert_array_equal(v["a"], np.arange(4))
    del v["a"]
    assert "a" not in v
    with pytest.raises(KeyError):
        v["a"]
    with pytest.raises(KeyError):
        del v["a"]
    assert v.names("b") == ["b/c"]
    v.close()
    assert v.closed
    v.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        v["b/c"]
    assert "closed" in repr(v)


def test_metadata_methods(store_path):
    with Vault(store_path) as v:
        v.save("x", np.zeros((10, 3), np.float32))
        assert v.shape("x") == (10, 3)
        assert v.dtype("x") == np.float32
        t0 = v.mtime_ns("x")
        v.append("x", np.ones((2, 3), np.float32))
        assert v.mtime_ns("x") >= t0
        v.delete_rows("x", [0, 1])
        info = v.info("x")
        assert info["shape"] == (10, 3) and info["dead_rows"] == 2
        assert info["name"] == "x" and info["dtype"] == np.float32
        assert v.compact("x") > 0
        assert v.info("x")["dead_rows"] == 0
        v.rename("x", "y")
        assert v.names() == ["y"]
        v.save("z", np.ones(1))
        with pytest.raises(ValueError):
            v.rename("y", "z")
        v.drop("z")
        rep = v.verify()
        assert rep["clean"] and rep["problems"] == []
        v.checkpoint()
        v.refresh()
        for name in ["x", "nope"]:
            for f in (v.shape, v.dtype, v.mtime_ns, v.info, v.load, v.lazy, v.drop, v.compact):
                with pytest.raises(KeyError):
                    f(name)


def test_commit_is_atomic(store_path):
    with Vault(store_path) as v:
        v.save("a", np.arange(10))
        v.commit([
            ("append", "a", np.arange(10, 12)),
            ("replace", "a", slice(-2, None), np.array([100, 101])),
            ("delete_rows", "a", [0]),
            ("save", "b", np.ones(3)),
            ("rename", "b", "c"),
            ("compact", "a"),
        ])
        np.testing.assert_array_equal(v["a"], np.r_[1:10, 100, 101])
        assert v.names() == ["a", "c"]
        before = {n: v[n] for n in v}
        bad = [
            [("save", "d", np.ones(2)), ("append", "a", np.ones(2))],  # dtype mismatch
            [("save", "d", np.ones(2)), ("drop", "missing")],
            [("save", "d", np.ones(2)), ("replace", "a", [99], np.array([1]))],
            [("save", "d", np.ones(2)), ("frobnicate", "a")],
            [("save", "d", np.ones(2)), ("drop",)],
            [("save", "", np.ones(2))],
        ]
        for ops in bad:
            with pytest.raises((ValueError, KeyError, IndexError)):
                v.commit(ops)
            assert {n: v[n].tolist() for n in v} == {n: a.tolist() for n, a in before.items()}
        v.commit([])


def test_commit_resolves_indexes_against_staged_state(store_path):
    with Vault(store_path) as v:
        v.save("a", np.arange(5))
        # the second op's -1 is the row appended by the first
        v.commit([("append", "a", np.array([5])), ("replace", "a", -1, 50),
                  ("delete_rows", "a", slice(0, 2)), ("replace", "a", [0, 0], [7, 8])])
        np.testing.assert_array_equal(v["a"], [8, 3, 4, 50])


def test_lock_and_read_only_sharing(store_path):
    w = Vault(store_path)
    w.save("x", np.arange(3))
    w.flush()
    with pytest.raises(LockedError) as ei:
        Vault(store_path)
    assert isinstance(ei.value, OSError)
    r = Vault(store_path, "r")
    np.testing.assert_array_equal(r["x"], np.arange(3))
    w.append("x", np.arange(3, 5))
    w.flush()
    r.refresh()
    assert r.shape("x") == (5,)
    w.close()
    with Vault(store_path, lock_timeout=0.5):
        pass
    r.close()


def test_not_a_store(tmp_path):
    d = tmp_path / "other"
    d.mkdir()
    (d / "file.txt").write_text("hello")
    with pytest.raises(OSError, match="not a numvault store"):
        Vault(d)


def test_corruption_is_reported(store_path):
    with Vault(store_path) as v:
        v.save("x", np.arange(100_000, dtype=np.int64))
    data = next((store_path / "data").glob("*.nvd"))
    raw = bytearray(data.read_bytes())
    raw[1234] ^= 0xFF
    data.write_bytes(bytes(raw))
    with Vault(store_path) as v:
        with pytest.raises(CorruptionError) as ei:
            v.load("x")
        assert "x" in str(ei.value) and isinstance(ei.value, OSError)
        assert not v.verify()["clean"]
        with pytest.raises(CorruptionError):
            list(v.batches("x", 1000))


def test_corrupt_manifest_is_not_an_empty_store(store_path):
    with Vault(store_path) as v:
        v.save("x", np.arange(10))
    m = store_path / "MANIFEST"
    raw = bytearray(m.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    m.write_bytes(bytes(raw))
    with pytest.raises(CorruptionError):
        Vault(store_path)


def test_threads_share_one_vault(store_path):
    v = Vault(store_path)
    errors = []

    def worker(k):
        try:
            name = f"t{k}"
            a = np.arange(1000, dtype=np.float64) * k
            v.save(name, a)
            for i in range(20):
                v.append(name, np.array([float(i)]))
                v.replace(name, [0], np.array([float(i)]))
                assert v.load(name)[0] == float(i)
                lz = v.lazy(name)
                assert len(lz) == 1001 + i
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(v) == 8
    assert v.verify()["clean"]
    v.close()


def test_gil_is_released_during_io(store_path):
    """While a large load runs, another thread runs Python code: with a huge
    switch interval the main thread never yields the GIL on its own, so the
    ticker can only advance while Rust has released it."""
    import sys
    import time

    v = Vault(store_path)
    v.save("big", np.zeros((4_000_000, 4), np.float32))
    ticks = []
    stop = threading.Event()
    started = threading.Event()

    def ticker():
        started.set()
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.0001)  # releases the GIL at once

    old = sys.getswitchinterval()
    t = threading.Thread(target=ticker)
    t.start()
    started.wait()
    sys.setswitchinterval(100.0)
    try:
        before = len(ticks)
        for _ in range(3):
            v.load("big")
        during = len(ticks) - before
    finally:
        sys.setswitchinterval(old)
        stop.set()
        t.join()
    assert during > 0
    v.close()


def test_version_and_exports():
    assert numvault.__version__.count(".") >= 2
    assert issubclass(LockedError, OSError) and issubclass(CorruptionError, OSError)
    assert issubclass(numvault.InternalError, RuntimeError)
    for name in numvault.__all__:
        obj = getattr(numvault, name)
        if callable(obj):
            assert obj.__doc__, name


@pytest.mark.parametrize("dtype", ["<f4", ">f4", ">i8", ">c16", "<u2", ">f2", "?"])
def test_input_layouts(store_path, dtype):
    base = make_array(np.dtype(dtype).newbyteorder("="), (12, 6), 3).astype(dtype)
    forms = {
        "c": base,
        "fortran": np.asfortranarray(base),
        "strided": base[::2, ::-1],
        "transposed": base.T,
        "broadcast": np.broadcast_to(base[:1], (5, 6)),
        "readonly": base.copy(),
    }
    forms["readonly"].flags.writeable = False
    with Vault(store_path) as v:
        for name, a in forms.items():
            v.save(name, a)
            out = v.load(name)
            assert out.dtype == a.dtype.newbyteorder("=") and out.dtype.isnative
            np.testing.assert_array_equal(out, a)
            v.append(name, a[:2])
            np.testing.assert_array_equal(v.load(name), np.concatenate([a, a[:2]]))
            v.replace(name, [0, 1], a[-2:][::-1])
            want = np.concatenate([a, a[:2]])
            want[[0, 1]] = a[-2:][::-1]
            np.testing.assert_array_equal(v.load(name), want)
    mm_path = store_path.parent / "m.npy"
    np.save(mm_path, base)
    with Vault(store_path) as v:
        v.save("memmap", np.load(mm_path, mmap_mode="r"))
        np.testing.assert_array_equal(v.load("memmap"), base)
        v.save("list", [[1.5, 2.5], [3.5, 4.5]])
        assert v.dtype("list") == np.float64
