"""Versions (docs/FORMAT.md §15) through the Python API: snapshot, versions,
time travel (``Vault.at``, ``Vault(path, "r", version=...)``), diff,
restore, delete_snapshot, gc, the format upgrade, pickled LazyArrays of a
version, NumPack's methods, a model-based state machine reading every
retained version after every step, and bad input."""

from __future__ import annotations

import copy
import multiprocessing as mp
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import numvault
from numvault import ArrayInUseError, NeedsUpgradeError, NumPack, Vault, VersionInUseError

from conftest import make_array

FIXTURE_V1 = Path(__file__).resolve().parents[2] / "crates/numvault/tests/fixtures/v1/checkpointed"


def assert_reads(h: Vault, model: dict) -> None:
    """Every read API of handle ``h`` shows exactly ``model`` (name -> array)."""
    names = sorted(model)
    assert h.names() == names and h.keys() == names and list(h) == names
    assert len(h) == len(names)
    assert "no/such/array" not in h and not h.has("no/such/array")
    for n, want in model.items():
        assert n in h and h.has(n)
        assert h.shape(n) == want.shape and h.dtype(n) == want.dtype
        info = h.info(n)
        assert info["shape"] == want.shape and info["dtype"] == want.dtype and info["name"] == n
        assert isinstance(h.mtime_ns(n), int)
        got = h.load(n)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(h[n], want)
        lz = h.lazy(n)
        assert lz.version == h.version and lz.shape == want.shape
        np.testing.assert_array_equal(np.asarray(lz), want)
        np.testing.assert_array_equal(lz[::-1], want[::-1])
        if len(want):
            np.testing.assert_array_equal(h.getitem(n, slice(1, None, 2)), want[1::2])
            idx = [len(want) - 1, 0, len(want) // 2]
            np.testing.assert_array_equal(h.getitem(n, idx), want[idx])
            np.testing.assert_array_equal(h.getitem(n, -1), want[-1])
        parts = list(h.batches(n, 3))
        assert sum(len(p) for p in parts) == len(want)
        if parts:
            np.testing.assert_array_equal(np.concatenate(parts), want)
    for prefix in {n.split("/")[0] for n in names if "/" in n}:
        assert h.names(prefix) == [n for n in names if n.startswith(prefix + "/")]
    report = h.verify()
    assert report["clean"], report["problems"]


def fill(v: Vault) -> dict:
    model = {
        "saved": make_array(np.float32, (20, 3), 1),
        "appended": make_array(np.int64, (10,), 2),
        "replaced": make_array(np.complex64, (12, 2), 3),
        "deleted": make_array(np.uint16, (15,), 4),
        "dropped": make_array(np.bool_, (7, 2), 5),
        "g/renamed": make_array(np.float16, (9,), 6),
        "g/same": make_array(np.int8, (5, 2, 2), 7),
        "empty": np.empty((0, 4), np.float64),
    }
    v.commit([("save", n, a) for n, a in model.items()])
    return copy.deepcopy(model)


def change_everything(v: Vault, model: dict) -> dict:
    """One of each change, applied to the store and to a copy of ``model``."""
    m = copy.deepcopy(model)
    m["saved"] = make_array(np.float32, (4, 3), 11)
    v.save("saved", m["saved"])
    extra = make_array(np.int64, (6,), 12)
    v.append("appended", extra)
    m["appended"] = np.concatenate([m["appended"], extra])
    vals = make_array(np.complex64, (3, 2), 13)
    v.replace("replaced", [0, 5, 11], vals)
    m["replaced"][[0, 5, 11]] = vals
    rows = [0, 7, 8, len(m["deleted"]) - 1]
    v.delete_rows("deleted", rows)
    m["deleted"] = np.delete(m["deleted"], rows)
    if "dropped" in m:
        v.drop("dropped")
        del m["dropped"]
    else:
        m["dropped"] = make_array(np.bool_, (3, 2), 16)
        v.save("dropped", m["dropped"])
    src, dst = ("g/renamed", "g/moved") if "g/renamed" in m else ("g/moved", "g/renamed")
    v.rename(src, dst)
    m[dst] = m.pop(src)
    more = make_array(np.float64, (2, 4), 14)
    v.append("empty", more)
    m["empty"] = np.concatenate([m["empty"], more])
    m["new"] = make_array(np.uint8, (3,), 15)
    v.save("new", m["new"])
    return m


# -- snapshot and time travel -------------------------------------------------


def test_old_version_reads_as_at_snapshot_through_every_read_api(store_path):
    with Vault(store_path) as v:
        assert v.format_version == 2 and v.version is None and v.versions() == []
        m0 = fill(v)
        t0 = time.time()
        id0 = v.snapshot()
        assert isinstance(id0, int)
        m1 = change_everything(v, m0)
        id1 = v.snapshot("after")
        assert id1 > id0
        m2 = change_everything(v, m1)
        assert_reads(v, m2)
        with v.at(id0) as old:
            assert old.version == id0 and old.read_only and old.mode == "r"
            assert f"version={id0}" in repr(old)
            assert_reads(old, m0)
        with v.at("after") as mid:
            assert mid.version == id1
            assert_reads(mid, m1)
        # Compaction of the current arrays leaves the versions alone.
        for n in v.names():
            v.compact(n)
        v.checkpoint()
        assert_reads(v.at(id0), m0)
        assert_reads(v.at(id1), m1)
        vs = v.versions()
        assert [x["id"] for x in vs] == [id0, id1]
        assert [x["tag"] for x in vs] == [None, "after"]
        assert vs[0]["arrays"] == sorted(m0) and vs[1]["arrays"] == sorted(m1)
        for x in vs:
            assert set(x) == {"id", "tag", "time", "time_ns", "arrays", "own_bytes"}
            assert abs(x["time"] - t0) < 60 and x["time_ns"] // 10**9 == int(x["time"])
            assert isinstance(x["own_bytes"], int) and x["own_bytes"] >= 0
        # versions(name): those in which the array changed.
        assert [x["id"] for x in v.versions("new")] == [id1]
        assert [x["id"] for x in v.versions("g/same")] == [id0]
        assert v.versions("no/such/array") == []


def test_view_stays_valid_after_writer_closes_and_lazy_survives(store_path):
    v = Vault(store_path)
    m0 = fill(v)
    vid = v.snapshot()
    change_everything(v, m0)
    old = v.at(vid)
    lz = old.lazy("replaced")
    v.close()
    assert_reads(old, m0)
    old.close()
    assert old.closed
    np.testing.assert_array_equal(lz[:], m0["replaced"])
    with pytest.raises(ValueError):
        old.load("saved")


def test_reopen_and_open_by_id_and_tag(store_path):
    with Vault(store_path) as v:
        m0 = fill(v)
        id0 = v.snapshot("v0")
        m1 = change_everything(v, m0)
        id1 = v.snapshot()
        m2 = change_everything(v, m1)
    for ref, want in [(id0, m0), ("v0", m0), (np.int64(id0), m0), (id1, m1)]:
        with Vault(store_path, "r", version=ref) as r:
            assert r.version == (id1 if want is m1 else id0)
            assert_reads(r, want)
            # A view knows the other versions too.
            assert [x["id"] for x in r.versions()] == [id0, id1]
            assert_reads(r.at(id1), m1)
    with Vault(store_path, "r") as r:
        assert r.version is None
        assert_reads(r, m2)
        assert_reads(r.at("v0"), m0)
    with Vault(store_path) as v:
        assert [(x["id"], x["tag"]) for x in v.versions()] == [(id0, "v0"), (id1, None)]
        assert_reads(v.at(id1), m1)
        assert_reads(v, m2)


def test_read_only_handle_sees_versions_taken_after_it_opened(store_path):
    with Vault(store_path) as v:
        m0 = fill(v)
        with Vault(store_path, "r") as r:
            vid = v.snapshot("late")
            v.flush()
            change_everything(v, m0)
            v.flush()
            assert_reads(r.at("late"), m0)
            r.refresh()
            assert [x["id"] for x in r.versions()] == [vid]


# -- restore ------------------------------------------------------------------


def test_restore_all_and_named(store_path):
    with Vault(store_path) as v:
        m0 = fill(v)
        id0 = v.snapshot("start")
        m1 = change_everything(v, m0)
        id1 = v.snapshot()
        change_everything(v, m1)

        v.restore(id0, ["replaced", "dropped"])
        cur = v.load("saved")
        assert cur.shape == (4, 3)  # not restored
        np.testing.assert_array_equal(v.load("replaced"), m0["replaced"])
        np.testing.assert_array_equal(v.load("dropped"), m0["dropped"])
        v.restore("start", "deleted")  # one name
        np.testing.assert_array_equal(v.load("deleted"), m0["deleted"])

        v.restore("start")
        assert_reads(v, m0)
        # Restored arrays take every change afterwards...
        m = copy.deepcopy(m0)
        extra = make_array(np.int64, (5,), 20)
        v.append("appended", extra)
        m["appended"] = np.concatenate([m["appended"], extra])
        v.append("replaced", m["replaced"][:2])
        m["replaced"] = np.concatenate([m["replaced"], m["replaced"][:2]])
        v.replace("deleted", [1], np.array([7], np.uint16))
        m["deleted"][1] = 7
        v.delete_rows("g/same", [0])
        m["g/same"] = m["g/same"][1:]
        assert_reads(v, m)
        # ...and the versions never change.
        assert_reads(v.at(id0), m0)
        assert_reads(v.at(id1), m1)
    with Vault(store_path) as v:
        assert_reads(v, m)
        assert_reads(v.at(id0), m0)
        assert_reads(v.at(id1), m1)
        # Restoring twice in a row is a no-op the second time.
        v.restore(id1)
        v.restore(id1)
        assert_reads(v, m1)


def test_restore_of_array_missing_from_version_changes_nothing(store_path):
    with Vault(store_path) as v:
        v.save("a", np.arange(3))
        vid = v.snapshot()
        v.save("b", np.arange(4))
        v.append("a", np.arange(2))
        with pytest.raises(KeyError):
            v.restore(vid, ["a", "b"])
        assert v.shape("a") == (5,) and v.shape("b") == (4,)
        v.restore(vid)
        assert v.names() == ["a"] and v.shape("a") == (3,)


# -- delete and gc ------------------------------------------------------------


def test_delete_snapshot_and_gc_free_a_big_array(store_path):
    big = np.arange(1 << 20, dtype=np.float64)  # 8 MiB
    with Vault(store_path) as v:
        v.save("big", big)
        v.save("small", np.arange(10))
        v.checkpoint()
        vid = v.snapshot("keep")
        v.drop("big")
        v.append("small", np.arange(3))
        v.gc()  # the version keeps big's file: nothing of it is freed
        np.testing.assert_array_equal(v.at("keep").load("big"), big)
        (info,) = v.versions()
        assert info["own_bytes"] >= big.nbytes
        v.delete_snapshot(vid)
        assert v.versions() == []
        with pytest.raises(KeyError):
            v.at(vid)
        with pytest.raises(KeyError):
            v.at("keep")
        freed = v.gc()
        assert freed >= big.nbytes
        assert v.gc() == 0
        np.testing.assert_array_equal(v.load("small"), np.concatenate([np.arange(10), np.arange(3)]))
        assert v.verify()["clean"]
        # The tag can be used again.
        v.snapshot("keep")
    data_bytes = sum(f.stat().st_size for f in (store_path / "data").iterdir())
    assert data_bytes < big.nbytes


def test_deleting_one_version_keeps_the_rows_another_shares(store_path):
    with Vault(store_path) as v:
        a = make_array(np.int32, (50, 2), 1)
        v.save("a", a)
        id0 = v.snapshot()
        v.append("a", a[:5])
        id1 = v.snapshot()
        v.save("a", a[:1])
        v.delete_snapshot(id0)
        v.gc()
        np.testing.assert_array_equal(v.at(id1).load("a"), np.concatenate([a, a[:5]]))
    with Vault(store_path, "r", version=id1) as r:
        assert r.verify()["clean"]
        np.testing.assert_array_equal(r.load("a"), np.concatenate([a, a[:5]]))


def test_open_handle_leases_its_version(store_path):
    with Vault(store_path) as v:
        v.save("a", np.arange(5))
        vid = v.snapshot()
        old = v.at(vid)
        by_open = Vault(store_path, "r", version=vid)
        lz = old.lazy("a")
        with pytest.raises(VersionInUseError) as ei:
            v.delete_snapshot(vid)
        assert isinstance(ei.value, ValueError) and str(vid) in str(ei.value)
        old.close()
        with pytest.raises(VersionInUseError):
            v.delete_snapshot(vid)
        by_open.close()
        v.drop("a")
        v.delete_snapshot(vid)
        assert v.gc() > 0
        # A LazyArray holds no lease and stays readable.
        np.testing.assert_array_equal(np.asarray(lz), np.arange(5))


def test_retention_keep_last_and_keep_for(store_path):
    with Vault(store_path, keep_last=2) as v:
        v.save("a", np.arange(3))
        untagged = [v.snapshot() for _ in range(4)]
        tagged = v.snapshot("kept")
        untagged.append(v.snapshot())
        assert len(v.versions()) == 6
        v.checkpoint()
        assert [x["id"] for x in v.versions()] == sorted(untagged[-2:] + [tagged])
    with Vault(store_path, keep_for=3600.0) as v:
        v.snapshot()
        v.gc()
        assert len(v.versions()) == 4
    with Vault(store_path, keep_for=0.0) as v:
        v.gc()
        assert [(x["id"], x["tag"]) for x in v.versions()] == [(tagged, "kept")]
    with NumPack(store_path, keep_last=0, warn_no_context=False) as npk:
        npk.snapshot()
        npk.gc()
        assert [x["tag"] for x in npk.versions()] == ["kept"]
    for bad in ({"keep_last": -1}, {"keep_for": -1.0}, {"keep_for": float("inf")}):
        with pytest.raises(ValueError):
            Vault(store_path, **bad)
    with pytest.raises(ValueError):
        Vault(store_path, "r", keep_last=1)
    with pytest.raises(ValueError):
        NumPack(store_path, read_only=True, keep_for=1.0)


# -- diff ---------------------------------------------------------------------


def test_diff_of_a_known_sequence(store_path):
    with Vault(store_path) as v:
        m0 = fill(v)
        id0 = v.snapshot("base")
        m1 = change_everything(v, m0)
        id1 = v.snapshot()
        _check_diff(v.diff(id0), m0, m1)
        d = v.diff(id0, id1)
        assert d == v.diff("base")  # b=None: the current state, equal to id1's
        f32, i64 = np.dtype(np.float32), np.dtype(np.int64)
        assert set(d) == {"saved", "appended", "replaced", "deleted", "dropped", "g/moved",
                          "empty", "new"}
        for e in d.values():
            assert set(e) == {"kind", "renamed_from", "before", "after", "deleted",
                              "appended", "replaced"}
        assert d["saved"]["kind"] == "rewritten"
        assert d["saved"]["before"] == {"dtype": f32, "shape": (20, 3)}
        assert d["saved"]["after"] == {"dtype": f32, "shape": (4, 3)}
        assert d["appended"] == {
            "kind": "modified", "renamed_from": None,
            "before": {"dtype": i64, "shape": (10,)}, "after": {"dtype": i64, "shape": (16,)},
            "deleted": [], "appended": [(10, 16)], "replaced": [],
        }
        assert d["replaced"]["kind"] == "modified"
        assert d["replaced"]["replaced"] == [(0, 1), (5, 6), (11, 12)]
        assert d["replaced"]["deleted"] == [] and d["replaced"]["appended"] == []
        assert d["deleted"]["kind"] == "modified"
        assert d["deleted"]["deleted"] == [(0, 1), (7, 9), (14, 15)]
        assert d["deleted"]["after"]["shape"] == (11,)
        assert d["dropped"]["kind"] == "dropped" and d["dropped"]["after"] is None
        assert d["dropped"]["before"] == {"dtype": np.dtype(bool), "shape": (7, 2)}
        assert d["g/moved"]["kind"] == "renamed" and d["g/moved"]["renamed_from"] == "g/renamed"
        assert d["empty"]["appended"] == [(0, 2)]
        assert d["new"]["kind"] == "added" and d["new"]["before"] is None
        assert d["new"]["after"] == {"dtype": np.dtype(np.uint8), "shape": (3,)}
        assert "g/same" not in d
        # Another dtype under the same name.
        v.save("new", np.zeros((3,), np.int16))
        assert v.diff(id1)["new"]["kind"] == "retyped"
        assert v.diff(id1, id1) == {}
        # The reverse direction: what was added is dropped.
        back = v.diff(id1, id0)
        assert back["new"]["kind"] == "dropped" and back["dropped"]["kind"] == "added"
        # On a view, b defaults to the view's version.
        with v.at(id0) as old:
            assert old.diff(id0) == {}
            assert old.diff(id1) == v.diff(id1, id0)


def test_diff_reports_rows_a_restore_brings_back(store_path):
    with Vault(store_path) as v:
        v.save("a", np.arange(2.0))
        v1 = v.snapshot()
        v.delete_rows("a", [0])
        v2 = v.snapshot()
        v.restore(v1)
        v.delete_rows("a", [1])  # now [0.0]; v2 holds [1.0]
        e = v.diff(v2)["a"]
        assert e["deleted"] == [(0, 1)]
        # The row now there is not one of v2's: it is reported as appended.
        assert e["appended"] == [(0, 1)] and e["replaced"] == []


# -- the format upgrade -------------------------------------------------------


def _v1_store(tmp_path: Path) -> Path:
    dst = tmp_path / "v1"
    shutil.copytree(FIXTURE_V1, dst)
    return dst


def test_format_1_store_needs_upgrade(tmp_path):
    path = _v1_store(tmp_path)
    with Vault(path) as v:
        assert v.format_version == 1
        before = {n: v.load(n) for n in v.names()}
        for call in (lambda: v.snapshot(), lambda: v.snapshot("t"),
                     lambda: v.delete_snapshot(1), lambda: v.restore(1)):
            with pytest.raises(NeedsUpgradeError) as ei:
                call()
            assert isinstance(ei.value, ValueError) and "upgrade" in str(ei.value)
        assert v.versions() == []
        assert v.format_version == 1
    with Vault(path, "r") as r:
        assert r.format_version == 1
    with pytest.raises(ValueError):
        Vault(path, "r", upgrade=True)
    with Vault(path, upgrade=True) as v:
        assert v.format_version == 2
        assert v.upgrade() is False
        vid = v.snapshot("first")
        v.save(v.names()[0], np.zeros(3))
        assert_reads(v.at(vid), before)
    with Vault(path, "r", version="first") as r:
        assert_reads(r, before)


def test_upgrade_method_and_numpack_upgrade(tmp_path):
    path = _v1_store(tmp_path)
    with Vault(path) as v:
        assert v.upgrade() is True and v.format_version == 2
        assert v.upgrade() is False
        v.snapshot()
    path2 = tmp_path / "v1b"
    shutil.copytree(FIXTURE_V1, path2)
    with NumPack(path2, warn_no_context=False) as npk:
        assert npk.format_version == 1
        with pytest.raises(NeedsUpgradeError):
            npk.snapshot()
    with NumPack(path2, warn_no_context=False, upgrade=True) as npk:
        assert npk.format_version == 2
        assert isinstance(npk.snapshot("x"), int)


# -- pickling a LazyArray of a version ----------------------------------------


def _child_read(blob: bytes):
    lz = pickle.loads(blob)
    return lz.version, np.asarray(lz).copy(), lz[2:5].copy()


def test_pickled_lazy_of_a_version_reads_it_in_a_spawn_child(store_path):
    a = make_array(np.float64, (30, 4), 1)
    with Vault(store_path) as v:
        v.save("a", a)
        vid = v.snapshot()
        lz = v.at(vid).lazy("a")
        assert lz.version == vid and f"version={vid}" in repr(lz)
        reshaped = lz.reshape(30, 2, 2)
        # The parent changes the array every way since.
        v.replace("a", [2, 3], np.zeros((2, 4)))
        v.append("a", a)
        v.delete_rows("a", [0])
        v.compact("a")
        v.checkpoint()
        blob = pickle.dumps(lz)
        ctx = mp.get_context("spawn")
        with ctx.Pool(1) as pool:
            got_version, got, part = pool.apply(_child_read, (blob,))
        assert got_version == vid
        np.testing.assert_array_equal(got, a)
        np.testing.assert_array_equal(part, a[2:5])
        r2 = pickle.loads(pickle.dumps(reshaped))
        assert r2.version == vid and r2.shape == (30, 2, 2)
        np.testing.assert_array_equal(np.asarray(r2), a.reshape(30, 2, 2))
        # The current state's lazy array pickles without a version.
        cur = pickle.loads(pickle.dumps(v.lazy("a")))
        assert cur.version is None and cur.shape == (59, 4)
        # A deleted version cannot be reopened.
        v.delete_snapshot(vid)
        with pytest.raises(KeyError):
            pickle.loads(blob)
        # Lazy arrays made before stay readable (their mapping).
        np.testing.assert_array_equal(np.asarray(lz), a)


def test_dask_and_torch_read_a_version(store_path):
    a = np.arange(40, dtype=np.int32).reshape(20, 2)
    with Vault(store_path) as v:
        v.save("a", a)
        vid = v.snapshot("t")
        d = v.at("t").lazy("a")
        v.save("a", -a)
        try:
            import numvault.dask as nvd

            np.testing.assert_array_equal(d.to_dask(chunks=(7, 2)).compute(), a)
            np.testing.assert_array_equal(nvd.from_vault(store_path, "a", version="t").compute(), a)
            np.testing.assert_array_equal(nvd.from_vault(store_path, "a").compute(), -a)
        except ImportError:
            pass
        try:
            from numvault.torch import ArrayDataset
        except ImportError:
            return
        ds = ArrayDataset(store_path, "a", version="t")
        assert ds.version == vid
        ds2 = pickle.loads(pickle.dumps(ds))
        v.append("a", a)
        assert len(ds2) == 20
        np.testing.assert_array_equal(ds2[3].numpy(), a[3])


# -- NumPack ------------------------------------------------------------------


def test_numpack_versions(tmp_path):
    path = tmp_path / "np"
    with NumPack(path, warn_no_context=False) as npk:
        a, b = np.arange(10), make_array(np.float32, (4, 3), 1)
        npk.save({"a": a, "b": b})
        vid = npk.snapshot("v1")
        npk.append({"a": np.arange(3)})
        npk.drop("b", [0])
        npk.save({"c": np.ones(2)})
        assert [x["id"] for x in npk.versions()] == [vid]
        assert [x["id"] for x in npk.versions("a")] == [vid]
        d = npk.diff("v1")
        assert d["a"]["appended"] == [(10, 13)] and d["c"]["kind"] == "added"
        old = npk.at("v1")
        assert isinstance(old, NumPack) and old.version == vid and npk.version is None
        assert f"version={vid}" in repr(old)
        assert old.get_member_list() == ["a", "b"] and len(old) == 2 and "c" not in old
        np.testing.assert_array_equal(old.load("a"), a)
        np.testing.assert_array_equal(old["b"], b)
        np.testing.assert_array_equal(np.asarray(old.load("b", lazy=True)), b)
        np.testing.assert_array_equal(old.getitem("a", 2), a[[2]])
        np.testing.assert_array_equal(np.concatenate(list(old.stream_load("a", 4))), a)
        assert old.get_shape("b") == (4, 3) and old.has_array("a")
        assert old.get_metadata()["total_arrays"] == 2
        with pytest.raises(PermissionError):
            old.save({"a": a})
        with pytest.raises(PermissionError):
            old.append({"a": a})
        with pytest.raises(PermissionError):
            old.snapshot()
        old.close()
        with pytest.raises(RuntimeError):
            with npk.batch_mode():
                npk.save({"a": a})
                npk.snapshot()
        with pytest.raises(RuntimeError):
            with npk.batch_mode():
                npk.restore(vid)
        npk.restore("v1", ["b"])
        np.testing.assert_array_equal(npk.load("b"), b)
        npk.restore(vid)
        assert npk.get_member_list() == ["a", "b"]
        np.testing.assert_array_equal(npk.load("a"), a)
        npk.append({"a": a})
        npk.delete_snapshot("v1")
        assert npk.versions() == [] and npk.gc() >= 0
        assert npk.upgrade() is False and npk.format_version == 2
        vid2 = npk.snapshot()
    with NumPack(path, version=vid2, warn_no_context=False) as old:
        np.testing.assert_array_equal(old.load("a"), np.concatenate([a, a]))
        with pytest.raises(PermissionError):
            old.save({"x": a})
    with pytest.raises(ValueError):
        NumPack(path, version=vid2, drop_if_exists=True)


# -- bad input ----------------------------------------------------------------


def test_bad_input(store_path):
    with Vault(store_path) as v:
        v.save("a", np.arange(4))
        vid = v.snapshot("t")
        calls = (v.at, v.diff, v.restore, v.delete_snapshot)
        for bad in (99, 10**30, -1, "nope"):
            for call in calls:
                with pytest.raises(KeyError):
                    call(bad)
        with pytest.raises(KeyError):
            v.diff(vid, 99)
        with pytest.raises(KeyError):
            Vault(store_path, "r", version=99)
        with pytest.raises(KeyError):
            Vault(store_path, "r", version="nope")
        for bad in (1.0, True, np.bool_(True), None.__class__, b"t", [vid], (vid,)):
            for call in calls:
                with pytest.raises(TypeError):
                    call(bad)
        with pytest.raises(TypeError):
            Vault(store_path, "r", version=2.0)
        with pytest.raises(TypeError):
            v.restore(vid, [1, 2])
        # Tags: unique, str, a valid name.
        with pytest.raises(ValueError):
            v.snapshot("t")
        for bad in (1, 2.5, b"x", ["t"]):
            with pytest.raises(TypeError):
                v.snapshot(bad)
        for bad in ("", "a//b", "../x"):
            with pytest.raises(ValueError):
                v.snapshot(bad)
        # version= means a read-only view; upgrade= a writer.
        with pytest.raises(ValueError):
            Vault(store_path, "a", version=vid)
        with pytest.raises(ValueError):
            Vault(store_path, "w", version=vid)
        # Nothing above took a version.
        assert [x["id"] for x in v.versions()] == [vid]
        # A snapshot while this handle writes an array in place.
        w = v.writable("a")
        with pytest.raises(ArrayInUseError):
            v.snapshot()
        w.array[0] = 100
        w.finish()
        v.snapshot()
        np.testing.assert_array_equal(v.at(vid).load("a"), np.arange(4))
    with Vault(store_path, "r") as r:
        with pytest.raises(PermissionError):
            r.snapshot()
        with pytest.raises(PermissionError):
            r.restore(vid)
        with pytest.raises(PermissionError):
            r.delete_snapshot(vid)
        with pytest.raises(PermissionError):
            r.gc()
        with pytest.raises(PermissionError):
            r.upgrade()
    with Vault(store_path) as v:
        old = v.at(vid)
        mutations = [
            lambda: old.save("b", np.arange(2)),
            lambda: old.append("a", np.arange(2)),
            lambda: old.replace("a", [0], np.array([5])),
            lambda: old.delete_rows("a", [0]),
            lambda: old.drop("a"),
            lambda: old.rename("a", "z"),
            lambda: old.compact("a"),
            lambda: old.commit([("drop", "a")]),
            lambda: old.__setitem__("b", np.arange(2)),
            lambda: old.__delitem__("a"),
            lambda: old.writable("a"),
            lambda: old.begin(),
            lambda: old.snapshot(),
            lambda: old.restore(vid),
            lambda: old.delete_snapshot(vid),
            lambda: old.gc(),
            lambda: old.upgrade(),
        ]
        for m in mutations:
            with pytest.raises(PermissionError):
                m()
        old.refresh()
        old.flush()
        np.testing.assert_array_equal(old.load("a"), np.arange(4))
        assert [x["id"] for x in v.versions()][0] == vid
        old.close()


def test_exports_and_docs():
    assert issubclass(NeedsUpgradeError, ValueError)
    assert issubclass(VersionInUseError, ValueError)
    assert numvault.NeedsUpgradeError is NeedsUpgradeError
    assert numvault.VersionInUseError is VersionInUseError
    for name in ("snapshot", "versions", "at", "diff", "restore", "delete_snapshot", "gc",
                 "upgrade"):
        assert getattr(Vault, name).__doc__, name
        assert getattr(NumPack, name).__doc__, name
    assert Vault.version.__doc__ and Vault.format_version.__doc__
    assert numvault.LazyArray.version.__doc__


# -- model-based: every retained version after every step ----------------------

NAMES = ["a", "b", "g/c"]
DTYPES = [np.float32, np.int64, np.uint8, np.complex64, np.bool_]
MAX_VERSIONS = 4


def _check_diff(d: dict, old: dict, new: dict, rows_unknown=frozenset()) -> None:
    """``d`` (a diff from ``old`` to ``new``) reports every difference, with
    the shapes and dtypes of both sides; its row ranges of a "modified" array
    account for the values, except for the arrays of ``rows_unknown`` (see
    ``test_diff_reports_rows_a_restore_brings_back``)."""
    renamed_from = {e["renamed_from"] for e in d.values() if e["renamed_from"]}
    for n in set(old) | set(new):
        a, b = old.get(n), new.get(n)
        same = (a is not None and b is not None and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b))
        if not same:
            assert n in d or n in renamed_from, (n, d)
    for n, e in d.items():
        if e["kind"] == "dropped":
            assert n in old and n not in new and e["after"] is None
            continue
        b = new[n]
        assert e["after"] == {"dtype": b.dtype, "shape": b.shape}
        src = e["renamed_from"] or n
        if e["kind"] == "added":
            assert e["before"] is None and n not in old
            continue
        a = old[src]
        assert e["before"] == {"dtype": a.dtype, "shape": a.shape}
        if e["kind"] not in ("modified", "renamed") or n in rows_unknown:
            continue
        gone = np.zeros(len(a), bool)
        for s, t in e["deleted"]:
            gone[s:t] = True
        kept = a[~gone]
        fresh = np.zeros(len(b), bool)
        for s, t in e["appended"]:
            fresh[s:t] = True
        changed = np.zeros(len(b), bool)
        for s, t in e["replaced"]:
            changed[s:t] = True
        assert not (fresh & changed).any()
        assert (~fresh).sum() == len(kept), (n, e)
        same_rows = ~changed[~fresh]
        np.testing.assert_array_equal(b[~fresh][same_rows], kept[same_rows])


class VersionsModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="nv-versions-")
        self.path = self.dir + "/s"
        self.v = Vault(self.path)
        self.model: dict = {}
        self.versions: dict = {}  # id -> (tag, model copy)
        # id -> names restored since that version was taken.
        self.restored: dict = {}
        self.deleted: list = []
        self.tags = 0

    def teardown(self):
        self.v.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _name(self, data, cond=lambda a: True):
        return data.draw(st.sampled_from(sorted(n for n, a in self.model.items() if cond(a))))

    # -- changes -----------------------------------------------------------------
    @rule(name=st.sampled_from(NAMES), dtype=st.sampled_from(DTYPES), rows=st.integers(0, 12),
          cols=st.integers(1, 3), seed=st.integers(0, 1000))
    def save(self, name, dtype, rows, cols, seed):
        a = make_array(dtype, (rows, cols), seed)
        self.v.save(name, a)
        self.model[name] = a.copy()

    @precondition(lambda self: self.model)
    @rule(data=st.data(), rows=st.integers(0, 6), seed=st.integers(0, 1000))
    def append(self, data, rows, seed):
        name = self._name(data)
        cur = self.model[name]
        a = make_array(cur.dtype, (rows,) + cur.shape[1:], seed)
        self.v.append(name, a)
        self.model[name] = np.concatenate([cur, a])

    @precondition(lambda self: any(len(a) for a in self.model.values()))
    @rule(data=st.data(), seed=st.integers(0, 1000))
    def replace(self, data, seed):
        name = self._name(data, len)
        cur = self.model[name].copy()
        idx = data.draw(st.lists(st.integers(0, len(cur) - 1), min_size=1, max_size=4, unique=True))
        vals = make_array(cur.dtype, (len(idx),) + cur.shape[1:], seed)
        self.v.replace(name, idx, vals)
        cur[idx] = vals
        self.model[name] = cur

    @precondition(lambda self: any(len(a) for a in self.model.values()))
    @rule(data=st.data())
    def delete(self, data):
        name = self._name(data, len)
        cur = self.model[name]
        idx = data.draw(st.lists(st.integers(0, len(cur) - 1), min_size=1, max_size=4, unique=True))
        self.v.delete_rows(name, idx)
        self.model[name] = np.delete(cur, idx, axis=0)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def drop(self, data):
        name = self._name(data)
        self.v.drop(name)
        del self.model[name]

    @precondition(lambda self: self.model and len(self.model) < len(NAMES))
    @rule(data=st.data())
    def rename(self, data):
        src = self._name(data)
        dst = data.draw(st.sampled_from(sorted(set(NAMES) - set(self.model))))
        self.v.rename(src, dst)
        self.model[dst] = self.model.pop(src)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def compact(self, data):
        self.v.compact(self._name(data))

    # -- versions ----------------------------------------------------------------
    @precondition(lambda self: len(self.versions) < MAX_VERSIONS)
    @rule(tagged=st.booleans())
    def snapshot(self, tagged):
        tag = None
        if tagged:
            self.tags += 1
            tag = f"t{self.tags}"
        vid = self.v.snapshot(tag)
        assert all(vid > old for old in self.versions)
        self.versions[vid] = (tag, copy.deepcopy(self.model))
        self.restored[vid] = set()

    @precondition(lambda self: self.versions)
    @rule(data=st.data(), all_arrays=st.booleans())
    def restore(self, data, all_arrays):
        vid = data.draw(st.sampled_from(sorted(self.versions)))
        tag, vm = self.versions[vid]
        ref = tag if tag is not None and data.draw(st.booleans()) else vid
        if all_arrays:
            self.v.restore(ref)
            for names in self.restored.values():
                names.update(vm, self.model)
            self.model = copy.deepcopy(vm)
            return
        names = data.draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True))
        if all(n in vm for n in names):
            self.v.restore(ref, names)
            for n in names:
                self.model[n] = vm[n].copy()
            for done in self.restored.values():
                done.update(names)
        else:
            with pytest.raises(KeyError):
                self.v.restore(ref, names)

    @precondition(lambda self: self.versions)
    @rule(data=st.data())
    def delete_snapshot(self, data):
        vid = data.draw(st.sampled_from(sorted(self.versions)))
        tag, _ = self.versions.pop(vid)
        del self.restored[vid]
        self.v.delete_snapshot(tag if tag is not None else vid)
        self.deleted.append(vid)
        with pytest.raises(KeyError):
            self.v.at(vid)

    @rule()
    def gc(self):
        assert self.v.gc() >= 0

    @rule(check_files=st.booleans())
    def reopen(self, check_files):
        self.v.close()
        if check_files and self.versions:
            vid = max(self.versions)
            tag, vm = self.versions[vid]
            with Vault(self.path, "r", version=tag if tag is not None else vid) as r:
                assert r.version == vid
                assert_reads(r, vm)
        self.v = Vault(self.path)
        report = self.v.verify()
        assert report["clean"], report["problems"]

    # -- the check ---------------------------------------------------------------
    @invariant()
    def every_version_reads_as_taken(self):
        v = self.v
        assert v.names() == sorted(self.model)
        for n, want in self.model.items():
            got = v.load(n)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
        listed = v.versions()
        assert [x["id"] for x in listed] == sorted(self.versions)
        assert [x["tag"] for x in listed] == [self.versions[i][0] for i in sorted(self.versions)]
        for vid, (tag, vm) in self.versions.items():
            with v.at(vid) as h:
                assert h.version == vid
                assert h.names() == sorted(vm) and len(h) == len(vm)
                for n, want in vm.items():
                    assert h.shape(n) == want.shape and h.dtype(n) == want.dtype
                    np.testing.assert_array_equal(h.load(n), want)
                    np.testing.assert_array_equal(np.asarray(h.lazy(n)), want)
                    if len(want):
                        np.testing.assert_array_equal(h.getitem(n, [-1, 0]), want[[-1, 0]])
            _check_diff(v.diff(vid), vm, self.model)
        for vid in self.deleted[-2:]:
            with pytest.raises(KeyError):
                v.at(vid)


TestVersionsModel = VersionsModel.TestCase
TestVersionsModel.settings = settings(max_examples=50, stateful_step_count=25, deadline=None)


def test_compact_of_an_array_a_version_keeps_says_what_it_duplicated(store_path):
    with Vault(store_path) as v:
        v.save("a", np.arange(100_000.0))
        v.delete_rows("a", list(range(10)))
        vid = v.snapshot()
        r = v.compact_report("a")
        assert r == {"reclaimed_bytes": 0, "duplicated_bytes": 99_990 * 8}
        with v.at(vid) as old:
            np.testing.assert_array_equal(old.load("a"), np.arange(10.0, 100_000.0))
        v.delete_rows("a", [0])
        v.delete_snapshot(vid)
        assert v.compact_report("a") == {"reclaimed_bytes": 8, "duplicated_bytes": 0}
