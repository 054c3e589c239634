"""numvault.dask on a real multi-process cluster: reads follow the stored
chunk grid, the graph is tokenized from the committed state (never the data)
and pickles to worker processes that reopen the store read-only; a commit
between build and compute is an error, never a mix; store() commits once."""

import logging
import pickle

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import numvault  # noqa: E402
import numvault.dask as nd  # noqa: E402
from numvault import Vault  # noqa: E402

ROWS, COLS = 400_000, 64  # float32: ~102 MB


@pytest.fixture(scope="module")
def client():
    # A worker process (Python, NumPy, distributed) already uses about 65 MB
    # before any task, so with a 64 MB limit the nanny would restart workers
    # forever: keep the limit for spilling, without pausing or terminating.
    with dask.config.set({
        "distributed.worker.memory.pause": False,
        "distributed.worker.memory.terminate": False,
    }):
        cluster = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, memory_limit="64MB",
            dashboard_address=None, silence_logs=logging.ERROR,
        )
        c = distributed.Client(cluster)
        try:
            yield c
        finally:
            c.close()
            cluster.close()


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("dask") / "s")
    a = np.random.default_rng(0).standard_normal((ROWS, COLS)).astype(np.float32)
    with Vault(path, "w") as v:
        v.save("x", a)
    return path, a


def test_default_chunks_follow_the_stored_grid(big):
    path, a = big
    x = nd.from_vault(path, "x")
    with Vault(path, "r") as v:
        cb = v.info("x")["chunk_bytes"]
    row_bytes = COLS * 4
    assert x.shape == a.shape and x.dtype == a.dtype
    assert x.chunks[1] == (COLS,)
    first = x.chunks[0][0]
    assert first * row_bytes % cb == 0 and first * row_bytes <= nd.DEFAULT_BLOCK_BYTES
    assert sum(x.chunks[0]) == ROWS
    # explicit chunks too
    y = nd.from_vault(path, "x", chunks=(100_000, 16))
    assert y.chunks == ((100_000,) * 4, (16,) * 4)


def test_tokenized_from_state_not_data(big, tmp_path):
    path, _ = big
    x1 = nd.from_vault(path, "x")
    x2 = numvault.Vault(path, "r").lazy("x").to_dask()
    assert x1.name == x2.name
    tok = numvault.Vault(path, "r").lazy("x").__dask_tokenize__()
    assert tok[1:3] == (path, "x") and not any(isinstance(t, np.ndarray) for t in tok)
    # the graph carries no data: it pickles small
    blob = pickle.dumps(dict(x1.__dask_graph__()))
    assert len(blob) < 64 << 10
    # another committed state, another name
    p2 = str(tmp_path / "t")
    with Vault(p2, "w") as v:
        v.save("x", np.zeros((10, 2)))
        n1 = nd.from_vault(p2, "x").name
        v.replace("x", [0], np.ones((1, 2)))
        n2 = nd.from_vault(p2, "x").name
    assert n1 != n2


def test_reductions_matmul_gather_on_cluster(client, big):
    path, a = big
    x = nd.from_vault(path, "x")
    assert np.isclose(x.mean().compute(), a.mean(dtype=np.float64), rtol=1e-5)
    np.testing.assert_allclose(x.std(axis=0).compute(), a.std(axis=0), rtol=1e-4)
    w = np.random.default_rng(1).standard_normal((COLS, 8)).astype(np.float32)
    np.testing.assert_allclose((x @ w).sum(axis=0).compute(), (a @ w).sum(axis=0), rtol=1e-3, atol=1)
    np.testing.assert_allclose((x.T @ x).compute(), a.T @ a, rtol=1e-3, atol=1)
    idx = np.random.default_rng(2).integers(0, ROWS, 2000)
    np.testing.assert_array_equal(x[idx].compute(), a[idx])
    np.testing.assert_array_equal(x[123_456:123_460, 5:9].compute(), a[123_456:123_460, 5:9])


@pytest.mark.parametrize("change", ["append", "replace", "compact", "drop", "overwrite"])
def test_commit_between_build_and_compute_is_an_error(client, tmp_path, change):
    path = str(tmp_path / "s")
    a = np.arange(200_000, dtype=np.int64).reshape(50_000, 4)
    with Vault(path, "w") as v:
        v.save("y", a)
        v.delete_rows("y", [0])  # so that compact has something to do
    x = nd.from_vault(path, "y", chunks=(10_000, 4))
    with Vault(path, "a") as v:
        if change == "append":
            v.append("y", a[:1])
        elif change == "replace":
            v.replace("y", [5], a[:1])
        elif change == "compact":
            v.compact("y")
        elif change == "drop":
            v.drop("y")
        else:
            v.save("y", a)
    with pytest.raises(nd.StaleSnapshotError, match="after this Dask graph was built"):
        x.sum().compute()
    # a graph built now reads the new state
    if change != "drop":
        with Vault(path, "r") as v:
            want = v.load("y")
        assert nd.from_vault(path, "y").sum().compute() == want.sum()


def test_lazy_to_dask_reads_its_snapshot(client, tmp_path):
    path = str(tmp_path / "s")
    a = np.arange(30_000, dtype=np.float64).reshape(10_000, 3)
    with Vault(path, "w") as v:
        v.save("z", a)
        v.replace("z", [7], np.full((1, 3), -1.0))
        lz = v.lazy("z")
    want = a.copy()
    want[7] = -1
    x = lz.to_dask(chunks=2_500)
    assert x.chunks[0] == (2_500,) * 4
    np.testing.assert_array_equal(x.compute(), want)


def test_store_roundtrip_one_commit(client, big, tmp_path):
    path, a = big
    x = nd.from_vault(path, "x")
    out = str(tmp_path / "out")
    shape = nd.store(x[:100_000] * 2, out, "doubled")
    assert shape == (100_000, COLS)
    with Vault(out, "r") as v:
        np.testing.assert_array_equal(v.load("doubled"), a[:100_000] * 2)
        assert v.verify()["clean"]
    # append mode, uneven blocks
    y = da.from_array(np.arange(10, dtype=np.float32).reshape(5, 2), chunks=(2, 1))
    with pytest.raises(ValueError, match="shape"):  # rows of another shape: nothing written
        nd.store(y, out, "doubled", append=True)
    with Vault(out, "r") as v:
        assert v.shape("doubled") == (100_000, COLS)
    with Vault(out, "a") as v:
        v.save("small", np.zeros((1, 2), np.float32))
    assert nd.store(y, out, "small", append=True) == (6, 2)
    with Vault(out, "r") as v:
        np.testing.assert_array_equal(v.load("small")[1:], np.arange(10).reshape(5, 2))


def _fail_on_third(block, block_info=None):
    if block_info[None]["chunk-location"][0] == 2:
        raise RuntimeError("block 2 failed")
    return block + 1


def test_store_failing_block_commits_nothing(client, tmp_path):
    out = str(tmp_path / "out")
    before = np.arange(12, dtype=np.float64).reshape(6, 2)
    with Vault(out, "w") as v:
        v.save("t", before)
    src = da.from_array(np.zeros((50, 2)), chunks=(10, 2))
    bad = src.map_blocks(_fail_on_third, dtype=src.dtype)
    for kw in ({}, {"append": True}, {"parallel": 1}):
        with pytest.raises(RuntimeError, match="block 2 failed"):
            nd.store(bad, out, "t", **kw)
        with pytest.raises(RuntimeError, match="block 2 failed"):
            nd.store(bad, out, "new", **kw)
    with Vault(out, "r") as v:
        assert v.keys() == ["t"]
        np.testing.assert_array_equal(v.load("t"), before)
        rep = v.verify()
        assert rep["clean"], rep["problems"]
