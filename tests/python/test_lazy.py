"""LazyArray: attributes, iteration, array and buffer protocols, pickling,
lifetime after close, deleted rows invisible everywhere."""

from __future__ import annotations

import multiprocessing as mp
import pickle

import numpy as np
import pytest

from numvault import LazyArray, NumPack, Vault


@pytest.fixture
def vault(store_path):
    v = Vault(store_path)
    yield v
    if not v.closed:
        v.close()


def test_attributes(vault):
    a = np.arange(60, dtype=np.float32).reshape(20, 3)
    vault.save("a", a)
    lz = vault.lazy("a")
    assert isinstance(lz, LazyArray)
    assert lz.shape == a.shape and lz.dtype == a.dtype and lz.ndim == 2
    assert lz.size == a.size and lz.itemsize == 4 and lz.nbytes == a.nbytes
    assert len(lz) == 20 and lz.name == "a" and lz.path == vault.path
    assert "LazyArray" in repr(lz) and "(20, 3)" in repr(lz)
    assert LazyArray.__doc__ and "snapshot" in LazyArray.__doc__


def test_iteration(vault):
    a = np.arange(12).reshape(4, 3)
    vault.save("a", a)
    vault.save("v", np.arange(5.0))
    rows = list(vault.lazy("a"))
    assert len(rows) == 4
    for r, want in zip(rows, a):
        np.testing.assert_array_equal(r, want)
    vals = list(vault.lazy("v"))
    assert vals == [0.0, 1.0, 2.0, 3.0, 4.0] and isinstance(vals[0], np.float64)
    it = iter(vault.lazy("a"))
    assert it.__length_hint__() == 4
    next(it)
    assert it.__length_hint__() == 3


def test_array_protocol_zero_copy(vault):
    a = np.arange(30, dtype=np.int16).reshape(10, 3)
    vault.save("a", a)
    lz = vault.lazy("a")
    assert lz.zero_copy
    x = np.asarray(lz)
    np.testing.assert_array_equal(x, a)
    assert not x.flags.writeable and not x.flags.owndata
    with pytest.raises(ValueError):
        x[0, 0] = 1
    y = lz.__array__()
    assert y.base is lz and not y.flags.writeable
    z = np.array(lz)  # a copy
    z[0, 0] = 99
    np.testing.assert_array_equal(vault.load("a"), a)
    f = lz.__array__(dtype=np.float64)
    assert f.dtype == np.float64
    np.testing.assert_array_equal(f, a)
    c = lz.__array__(copy=True)
    assert c.flags.writeable and c.flags.owndata
    np.testing.assert_array_equal(lz.to_numpy(), a)
    assert np.mean(lz) == a.mean()


def test_buffer_protocol(vault):
    a = np.arange(24, dtype=np.float64).reshape(4, 6)
    vault.save("a", a)
    m = memoryview(vault.lazy("a"))
    assert m.readonly and m.shape == (4, 6) and m.format == "d"
    assert bytes(m) == a.tobytes()
    vault.save("c", (np.arange(4) + 1j).astype(np.complex64))
    assert bytes(memoryview(vault.lazy("c"))) == (np.arange(4) + 1j).astype(np.complex64).tobytes()
    vault.delete_rows("a", [0])
    m2 = memoryview(vault.lazy("a"))
    assert m2.shape == (3, 6) and m2.readonly
    assert bytes(m2) == a[1:].tobytes()
    import ctypes

    with pytest.raises((BufferError, TypeError)):

        (ctypes.c_char * 8).from_buffer(vault.lazy("a"))  # writable buffer requested


def test_snapshot_semantics(vault):
    vault.save("a", np.arange(10))
    lz = vault.lazy("a")
    vault.append("a", np.arange(10, 15))
    vault.replace("a", [0], np.array([-1]))
    vault.delete_rows("a", [1])
    vault.compact("a")
    vault.checkpoint()  # old data file deleted from the directory
    assert len(lz) == 10
    np.testing.assert_array_equal(np.asarray(lz), np.arange(10))
    vault.drop("a")
    np.testing.assert_array_equal(lz[2:4], [2, 3])


def test_deleted_rows_invisible_everywhere(vault, store_path):
    base = np.arange(40, dtype=np.float32).reshape(20, 2)
    vault.save("a", base)
    vault.delete_rows("a", [0, 5, 19])
    vault.replace("a", [3], np.array([[100, 101]], np.float32))
    model = np.delete(base, [0, 5, 19], axis=0)
    model[3] = [100, 101]
    lz = vault.lazy("a")
    assert not lz.zero_copy
    assert len(lz) == 17 and lz.shape == (17, 2)
    np.testing.assert_array_equal(np.asarray(lz), model)
    np.testing.assert_array_equal(lz[:], model)
    np.testing.assert_array_equal(lz[::-2], model[::-2])
    np.testing.assert_array_equal(np.stack(list(lz)), model)
    np.testing.assert_array_equal(np.concatenate(list(vault.batches("a", 4))), model)
    with pytest.raises(ValueError):
        lz.__array__(copy=False)
    with NumPack(store_path.parent / "np2", drop_if_exists=True) as npk:
        npk.save({"a": base})
        npk.drop("a", [0, 5, 19])
        np.testing.assert_array_equal(np.concatenate(list(npk.stream_load("a", 5))), np.delete(base, [0, 5, 19], axis=0))
        with pytest.raises(ValueError, match="deleted rows"):
            with npk.writable_batch_mode() as wb:
                wb.load("a")
        npk.update("a")
        with npk.writable_batch_mode() as wb:
            w = wb.load("a")
            assert w.shape == (17, 2)
            np.testing.assert_array_equal(w, np.delete(base, [0, 5, 19], axis=0))


def test_valid_after_close(store_path):
    v = Vault(store_path)
    v.save("a", np.arange(100.0))
    lz = v.lazy("a")
    x = np.asarray(lz)
    m = memoryview(lz)
    v.close()
    del v
    np.testing.assert_array_equal(x, np.arange(100.0))
    np.testing.assert_array_equal(lz[10:20], np.arange(10.0, 20.0))
    assert bytes(m)[:8] == np.float64(0).tobytes()
    assert len(list(lz)) == 100


def _worker_sum(lz):
    return float(np.asarray(lz).sum()), lz.shape, float(lz[[1, 2]].sum())


def test_pickle_and_multiprocessing(vault):
    a = np.arange(1000, dtype=np.float64).reshape(100, 10)
    vault.save("feat", a)
    vault.flush()
    lz = vault.lazy("feat")
    lz2 = pickle.loads(pickle.dumps(lz))
    assert isinstance(lz2, LazyArray) and lz2.shape == lz.shape
    np.testing.assert_array_equal(np.asarray(lz2), a)
    for method in ["spawn", "fork"]:
        ctx = mp.get_context(method)
        with ctx.Pool(2) as pool:
            res = pool.map(_worker_sum, [lz, lz])
        assert res[0] == (a.sum(), (100, 10), a[[1, 2]].sum())


class _Dataset:
    """A PyTorch-style map dataset over lazy arrays (pickled to workers)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def _fetch(args):
    ds, idx = args
    xs, ys = zip(*(ds[i] for i in idx))
    return np.stack(xs).sum(), int(np.sum(ys))


def test_dataloader_style_workers(vault):
    x = np.random.default_rng(0).random((64, 5)).astype(np.float32)
    y = np.arange(64, dtype=np.int64)
    vault.save("x", x)
    vault.save("y", y)
    ds = _Dataset(vault.lazy("x"), vault.lazy("y"))
    batches = [list(range(i, i + 16)) for i in range(0, 64, 16)]
    with mp.get_context("spawn").Pool(2) as pool:
        res = pool.map(_fetch, [(ds, b) for b in batches])
    for (sx, sy), b in zip(res, batches):
        assert sx == pytest.approx(x[b].sum(), rel=1e-5) and sy == y[b].sum()


def test_dask_style_chunked_access(vault):
    a = np.arange(600, dtype=np.int32).reshape(20, 30)
    vault.save("a", a)
    lz = vault.lazy("a")
    blocks = [[lz[i:i + 7, j:j + 11] for j in range(0, 30, 11)] for i in range(0, 20, 7)]
    np.testing.assert_array_equal(np.block(blocks), a)
