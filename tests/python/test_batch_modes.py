"""batch_mode (cached loads, deferred atomic commit, errors raise) and
writable_batch_mode (in-place mapping, checksums after, safe after exit)."""

from __future__ import annotations

import numpy as np

import numvault
import pytest

from numvault import NumPack, Vault


@pytest.fixture
def npk(store_path):
    n = NumPack(store_path, drop_if_exists=True)
    n.open()
    n.save({"a": np.arange(20, dtype=np.float64).reshape(10, 2), "b": np.arange(5)})
    yield n
    n.close()


def _reader_view(store_path, name):
    with Vault(store_path, "r") as r:
        return r.load(name) if name in r else None


def test_batch_caches_and_defers(npk, store_path):
    with npk.batch_mode():
        a = npk.load("a")
        assert npk.load("a") is a  # cached: the same object
        a *= 2
        npk.save({"a": a})
        npk.save({"c": np.ones(3)})
        npk.append({"b": np.array([5, 6])})
        npk.replace({"b": np.array([-1])}, 0)
        npk.drop("b", [1])
        # nothing reached the store yet
        npk.vault.flush()
        assert _reader_view(store_path, "c") is None
        np.testing.assert_array_equal(_reader_view(store_path, "b"), np.arange(5))
        # reads see the pending state
        assert npk.get_member_list() == ["a", "b", "c"]
        assert npk.get_shape("b") == (6,) and npk.has_array("c")
        np.testing.assert_array_equal(npk.load("b"), [-1, 2, 3, 4, 5, 6])
        np.testing.assert_array_equal(npk.getitem("b", [0, -1]), [-1, 6])
        np.testing.assert_array_equal(np.concatenate(list(npk.stream_load("b", 4))), [-1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(npk.load("a"), np.arange(20).reshape(10, 2) * 2)
    np.testing.assert_array_equal(npk.load("b"), [-1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(npk.load("c"), np.ones(3))
    assert npk.vault.verify()["clean"]


def test_batch_incremental_ops_without_loading(npk):
    with npk.batch_mode():
        for i in range(10):
            npk.append({"a": np.full((1, 2), 100.0 + i)})
        npk.replace({"a": np.zeros((1, 2))}, -1)
        npk.drop("a", slice(0, 5))
        npk.update("a")
        assert npk.get_shape("a") == (15, 2)
    out = npk.load("a")
    assert out.shape == (15, 2) and out[-1].tolist() == [0, 0] and out[5, 0] == 100.0
    assert npk.vault.info("a")["dead_rows"] == 0


def test_batch_seed_pattern(npk):
    with npk.batch_mode():
        for _ in range(100):
            a = npk.load("a")
            a *= 1.1
            npk.save({"a": a})
    np.testing.assert_allclose(npk.load("a"), np.arange(20).reshape(10, 2) * 1.1**100)


def test_batch_exception_discards_everything(npk):
    with pytest.raises(RuntimeError, match="boom"):
        with npk.batch_mode():
            npk.save({"a": np.zeros(1), "z": np.zeros(1)})
            npk.drop("b")
            raise RuntimeError("boom")
    assert npk.get_member_list() == ["a", "b"]
    np.testing.assert_array_equal(npk.load("b"), np.arange(5))


def test_batch_errors_raise_at_the_call(npk):
    with npk.batch_mode():
        with pytest.raises(ValueError):
            npk.append({"b": np.zeros(2)})  # dtype mismatch
        with pytest.raises(ValueError):
            npk.append({"a": np.zeros((1, 3))})  # shape mismatch
        with pytest.raises(IndexError):
            npk.replace({"b": np.array([1])}, [10])
        with pytest.raises(IndexError):
            npk.drop("b", [-6])
        with pytest.raises(KeyError):
            npk.append({"nope": np.zeros(2)})
        npk.drop("nope")  # NumPack 0.7: an unknown array is ignored
        with pytest.raises(KeyError):
            npk.drop("nope", [0])
        with pytest.raises(ValueError):
            npk.save({"": np.zeros(2)})
        with pytest.raises(ValueError):
            npk.save({"s": np.float64(1.0)})
        with pytest.raises(ValueError):
            npk.save({"s": np.array(["text"])})
        with pytest.raises(ValueError):
            npk.replace({"a": np.zeros((2, 3))}, [0, 1])
        npk.save({"ok": np.ones(2)})
    assert npk.get_member_list() == ["a", "b", "ok"]


def test_batch_commit_error_raises(npk):
    # Changed on purpose (issue 11): a staged change that no longer applies
    # at the commit is a ConflictError naming it (was the engine's KeyError).
    with pytest.raises(numvault.ConflictError, match="replace in 'b'"):
        with npk.batch_mode():
            npk.replace({"b": np.array([7])}, 0)
            npk.vault.drop("b")  # behind the batch's back: the commit must fail
    assert not npk.has_array("b")


def test_batch_memory_limit_and_close_commits(npk, store_path):
    big = np.zeros((1 << 17,), np.float64)  # 1 MiB
    npk.save({"big1": big, "big2": big})
    with npk.batch_mode(memory_limit=1.5):
        x = npk.load("big1")
        npk.load("big2")
        assert npk.load("big1") is not x  # evicted (clean cache bounded)
        npk.save({"new": np.arange(3)})
        npk.close()  # commits the pending batch
    npk.open()
    np.testing.assert_array_equal(npk.load("new"), np.arange(3))


def test_batch_nesting_joins_the_outer_batch(npk):
    with npk.batch_mode() as outer:
        with npk.batch_mode() as inner:
            assert inner is outer
            npk.save({"c": np.arange(3)})
        # the inner block's exit committed nothing
        assert not npk.vault.has("c") and npk.has_array("c")
    assert npk.vault.has("c")
    with pytest.raises(RuntimeError, match="boom"):
        with npk.batch_mode():
            with npk.batch_mode():
                npk.save({"d": np.arange(3)})
            raise RuntimeError("boom")
    assert not npk.has_array("d")  # discarded with the outer block


def test_batch_lazy_and_clone(npk):
    with npk.batch_mode():
        npk.clone("a", "a2")
        npk.drop("b")  # emptied, still listed (NumPack 0.7)
        assert npk.get_member_list() == ["a", "a2", "b"] and npk.get_shape("b") == (0,)
        assert isinstance(npk.load("a2", lazy=True), np.ndarray)
        assert npk.get_modify_time("b") is not None
        npk.vault  # the store is unchanged until the block exits
        assert npk.vault.shape("b") == (5,)
        npk.reset()
        assert npk.get_member_list() == []
        npk.save({"b": np.arange(2)})
    assert npk.get_member_list() == ["b"]


# -- writable_batch_mode -------------------------------------------------------

def test_writable_changes_persist_with_checksums(npk, store_path):
    with npk.writable_batch_mode() as wb:
        a = wb.load("a")
        assert wb.load("a") is a
        assert a.flags.writeable and not a.flags.owndata
        a *= 3
        a[0] = [-1, -2]
        wb.save({"a": a})  # no-op
        wb.save({"b": np.full(5, 9)})  # copies values in
    want = np.arange(20, dtype=np.float64).reshape(10, 2) * 3
    want[0] = [-1, -2]
    np.testing.assert_array_equal(npk.load("a"), want)
    np.testing.assert_array_equal(npk.load("b"), np.full(5, 9))
    rep = npk.vault.verify()
    assert rep["clean"] and rep["unchecksummed_bytes"] == 0
    npk.close()
    with Vault(store_path, "r") as v:
        np.testing.assert_array_equal(v.load("a"), want)


def test_writable_array_after_exit_is_safe(npk):
    with npk.writable_batch_mode() as wb:
        a = wb.load("a")
        view = a[2:4]  # a view created inside the session
        a[:] = 1
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 5
    view[:] = 42  # private copy now: must not reach the store
    np.testing.assert_array_equal(npk.load("a"), np.ones((10, 2)))
    assert npk.vault.verify()["clean"]
    npk.close()
    assert a.sum() == 20 - 4 + 42 * 4  # memory still valid after close


def test_writable_refuses_deleted_rows_and_compacts_replaced(npk):
    npk.replace({"b": np.array([50])}, 2)
    with npk.writable_batch_mode() as wb:
        b = wb.load("b")  # replaced rows are compacted first
        np.testing.assert_array_equal(b, [0, 1, 50, 3, 4])
    npk.drop("a", [0])
    with npk.writable_batch_mode() as wb:
        with pytest.raises(ValueError, match="deleted rows.*update"):
            wb.load("a")
    npk.update("a")
    with npk.writable_batch_mode() as wb:
        assert wb.load("a").shape == (9, 2)


def test_writable_blocks_other_writes_and_finishes_on_error(npk):
    with pytest.raises(RuntimeError):
        with npk.writable_batch_mode() as wb:
            a = wb.load("a")
            a[:] = 7
            with pytest.raises(ValueError, match="in-place"):
                npk.append({"a": np.zeros((1, 2))})
            raise RuntimeError("stop")
    np.testing.assert_array_equal(npk.load("a"), np.full((10, 2), 7.0))
    npk.append({"a": np.zeros((1, 2))})  # the session ended
    with pytest.raises(KeyError):
        with npk.writable_batch_mode() as wb:
            wb.load("nope")


def test_vault_writable_session(store_path):
    with Vault(store_path) as v:
        v.save("x", np.zeros(8, np.int32))
        w = v.writable("x")
        assert not w.finished and "open" in repr(w)
        w.array[::2] = 1
        w.finish()
        w.finish()
        assert w.finished
        with v.writable("x") as arr:
            arr += 1
        np.testing.assert_array_equal(v.load("x"), [2, 1, 2, 1, 2, 1, 2, 1])
        v.save("empty", np.zeros((0, 3)))
        with v.writable("empty") as e:
            assert e.shape == (0, 3)
        w2 = v.writable("x")
    # close ended the open session
    assert w2.finished
