"""numvault.torch.ArrayDataset in DataLoader workers (fork and spawn),
batched __getitems__, snapshots, and torch.from_dlpack(LazyArray).
Run by scripts/test-torch.sh (PyTorch is not in the `test` extra)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import numvault  # noqa: E402
from numvault import Vault  # noqa: E402
from numvault.torch import ArrayDataset, StaleSnapshotError, collate  # noqa: E402

N = 5_000


@pytest.fixture
def store(tmp_path):
    path = str(tmp_path / "s")
    x = np.random.default_rng(0).standard_normal((N, 6)).astype(np.float32)
    y = np.arange(N, dtype=np.int64)
    z = np.random.default_rng(1).integers(0, 255, (N, 2, 3), dtype=np.uint8)
    with Vault(path, "w") as v:
        v.save("x", x)
        v.save("y", y)
        v.save("z", z)
        # one array with replaced and deleted rows (not zero-copy)
        v.save("w", np.vstack([x, x[:10]]))
        v.replace("w", [1, 2], np.zeros((2, 6), np.float32))
        v.delete_rows("w", list(range(N, N + 10)))
    w = x.copy()
    w[[1, 2]] = 0
    return path, {"x": x, "y": y, "z": z, "w": w}


def test_len_getitem_getitems(store):
    path, want = store
    ds = ArrayDataset(path, ["x", "y", "z", "w"])
    assert len(ds) == N
    row = ds[7]
    assert isinstance(row, tuple) and len(row) == 4
    np.testing.assert_array_equal(row[0].numpy(), want["x"][7])
    assert row[1].item() == 7 and row[1].dtype == torch.int64
    np.testing.assert_array_equal(row[2].numpy(), want["z"][7])
    idx = [5, 0, -1, 4999, 5]
    b = collate(ds.__getitems__(idx))
    for t, name in zip(b, ["x", "y", "z", "w"]):
        assert isinstance(t, torch.Tensor)
        np.testing.assert_array_equal(t.numpy(), want[name][idx])
    single = ArrayDataset(path, "x")
    t = collate(single.__getitems__(np.array([3, 1])))
    assert isinstance(t, torch.Tensor) and t.shape == (2, 6) and t.dtype == torch.float32
    with pytest.raises(IndexError):
        single.__getitems__([N])
    with pytest.raises(ValueError, match="same number of rows"):
        with Vault(path, "a") as v:
            v.save("short", np.zeros(3))
        ArrayDataset(path, ["x", "short"])


def test_batch_wraps_the_gathered_array(store):
    """Main process: the batch tensor is the gathered array (no extra copy)."""
    path, want = store
    ds = ArrayDataset(path, "x")
    t = collate(ds.__getitems__([1, 2, 3]))
    arr = t.numpy()
    assert arr.base is not None or arr.flags.owndata  # shares the ndarray's memory
    t[0, 0] = 1234.0
    assert arr[0, 0] == 1234.0
    # and the store is untouched
    assert ds[1][0] == want["x"][1, 0]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_dataloader_two_workers(store, method):
    path, want = store
    ds = ArrayDataset(path, ["x", "y", "w"])
    dl = ds.loader(batch_size=256, shuffle=True, num_workers=2, multiprocessing_context=method)
    seen = []
    for xb, yb, wb in dl:
        ids = yb.numpy()
        np.testing.assert_array_equal(xb.numpy(), want["x"][ids])
        np.testing.assert_array_equal(wb.numpy(), want["w"][ids])
        assert xb.is_shared()  # gathered into shared memory in the worker
        seen.append(ids)
    assert sorted(np.concatenate(seen).tolist()) == list(range(N))
    # default collate (per-sample __getitem__ path) also works
    dl2 = torch.utils.data.DataLoader(ArrayDataset(path, "y"), batch_size=None, num_workers=2,
                                      multiprocessing_context=method)
    assert sorted(int(v) for v in dl2) == list(range(N))


def test_snapshot_semantics(store):
    path, want = store
    ds = ArrayDataset(path, ["x", "y"])
    with Vault(path, "a") as v:
        v.replace("x", [0], np.full((1, 6), 9.0, np.float32))
    # fork: workers inherit the snapshot: the old values, consistently
    dl = ds.loader(batch_size=1000, num_workers=2, multiprocessing_context="fork")
    got = torch.cat([xb for xb, _ in dl]).numpy()
    np.testing.assert_array_equal(got, want["x"])
    # spawn: workers reopen the store and find it changed: a clear error
    dl = ds.loader(batch_size=1000, num_workers=2, multiprocessing_context="spawn")
    with pytest.raises(StaleSnapshotError, match="changed by a commit"):
        for _ in dl:
            pass


def test_from_dlpack_and_writes_stay_private(store):
    path, want = store
    lz = Vault(path, "r").lazy("x")
    t = torch.from_dlpack(lz)
    np.testing.assert_array_equal(t.numpy(), want["x"])
    code = textwrap.dedent(
        """
        import sys, numpy as np, torch, numvault
        v = numvault.Vault(sys.argv[1], "r")
        for name in ("x", "w"):
            t = torch.from_dlpack(v.lazy(name))   # torch ignores the read-only flag
            t.add_(1000)                          # writes into the export
            assert (t.numpy() >= 900).all()
            assert not (np.asarray(v.lazy(name)) >= 900).all()
        print("survived")
        """
    )
    r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "survived" in r.stdout, r.stderr
    with Vault(path, "r") as v:
        assert v.verify()["clean"]
        np.testing.assert_array_equal(v.load("x"), want["x"])
        np.testing.assert_array_equal(v.load("w"), want["w"])


@pytest.mark.parametrize("workers", [0, 2])
def test_default_collate_gives_the_same_batches(store, workers):
    """Without numvault.torch.collate, PyTorch's default collate re-stacks
    the rows of a Batch: the same values and shapes."""
    path, want = store
    ds = ArrayDataset(path, ["x", "z"])
    dl = torch.utils.data.DataLoader(ds, batch_size=100, num_workers=workers,
                                     multiprocessing_context="fork" if workers else None)
    xs, zs = zip(*dl)
    assert xs[0].shape == (100, 6) and zs[0].shape == (100, 2, 3)
    np.testing.assert_array_equal(torch.cat(xs).numpy(), want["x"])
    np.testing.assert_array_equal(torch.cat(zs).numpy(), want["z"])
    single = torch.utils.data.DataLoader(ArrayDataset(path, "y"), batch_size=64)
    got = torch.cat(list(single)).numpy()
    np.testing.assert_array_equal(got, want["y"])
