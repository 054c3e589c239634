"""Fork safety of the native handles: a Vault inherited across fork() is
refused in the child with a clear error (never a deadlock, never a write to
the parent's store), the child can open its own handles, the parent's handle
keeps working, inherited LazyArrays read correctly, and a child that lives on
does not keep the parent's writer lock."""

import json
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from numvault import LockedError, Vault

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")

A = np.arange(40_000, dtype=np.float64).reshape(10_000, 4)


def in_child(fn, timeout=30.0):
    """Run fn() in a forked child; return what it returned (JSON) or raise if
    it crashed or did not finish within `timeout` (a deadlock)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            out = fn()
            os.write(w, json.dumps({"ok": out}).encode())
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(w, json.dumps({"err": f"{type(e).__name__}: {e}"}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            raise AssertionError("child did not finish: deadlock?")
        time.sleep(0.01)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    assert data, f"child died (status {status})"
    res = json.loads(data)
    if "err" in res:
        raise AssertionError(res["err"])
    return res["ok"]


def expect_fork_error(call):
    try:
        call()
    except RuntimeError as e:
        assert "fork" in str(e) and "open the store again" in str(e), str(e)
        return str(e)
    raise AssertionError("the inherited handle was used without an error")


@pytest.mark.parametrize("sync", ["flush", "group", "always"])
def test_inherited_writer_is_refused_and_parent_keeps_working(tmp_path, sync):
    path = str(tmp_path / "s")
    v = Vault(path, "a", sync=sync)
    v.save("a", A)
    v.append("a", A[:10])

    def child():
        msgs = [
            expect_fork_error(lambda: v.save("b", A)),
            expect_fork_error(lambda: v.append("a", A[:1])),
            expect_fork_error(lambda: v.load("a")),
            expect_fork_error(lambda: v.lazy("a")),
            expect_fork_error(lambda: v.keys()),
            expect_fork_error(v.flush),
            expect_fork_error(v.checkpoint),
        ]
        assert str(os.getpid()) in msgs[0]
        # its own handles: read-only works, a writer is locked out (the
        # parent holds the store), at once and not a hang
        with Vault(path, "r") as r:
            got = r.load("a")
            assert got.shape == (10_010, 4) and (got[:10_000] == A).all()
        try:
            Vault(path, "a")
        except LockedError:
            pass
        else:
            raise AssertionError("child got the writer lock the parent holds")
        v.close()  # gives the handle up without touching the store
        del_ok = True
        return {"msgs": len(msgs), "del": del_ok}

    assert in_child(child) == {"msgs": 7, "del": True}
    # the parent's handle still works
    v.append("a", A[:5])
    v.save("c", A[:3])
    assert v.shape("a") == (10_015, 4)
    v.flush()
    rep = v.verify()
    assert rep["clean"], rep["problems"]
    v.close()
    with Vault(path, "r") as r:
        assert r.keys() == ["a", "c"]
        np.testing.assert_array_equal(r.load("a")[:10_000], A)


def test_child_dropping_inherited_handle_leaves_store_alone(tmp_path):
    path = str(tmp_path / "s")
    v = Vault(path, "a", sync="group")
    v.save("a", A)

    def child():
        global _held
        _held = None
        import gc

        w = v
        del w
        gc.collect()
        return True

    assert in_child(child)
    for i in range(20):
        v.append("a", A[i : i + 1])
    v.close()
    with Vault(path, "r") as r:
        assert r.verify()["clean"]
        assert r.shape("a") == (10_020, 4)


def test_inherited_lazy_arrays_read_in_child(tmp_path):
    path = str(tmp_path / "s")
    with Vault(path, "w") as v:
        v.save("a", A)
        v.save("b", A)
        v.delete_rows("b", [0, 1])
        la, lb = v.lazy("a"), v.lazy("b")

    def child():
        assert (np.asarray(la) == A).all()
        assert (la[[5, 7, -1]] == A[[5, 7, -1]]).all()
        assert (lb[:] == A[2:]).all()
        return float(np.asarray(la).sum())

    assert in_child(child) == float(A.sum())


def test_living_child_does_not_keep_the_writer_lock(tmp_path):
    """A forked child that lives on (a DataLoader worker, a Pool process)
    shares the parent's open files: the parent's close must still release
    the store for the next writer."""
    path = str(tmp_path / "s")
    v = Vault(path, "a")
    v.save("a", A[:10])
    ctx = mp.get_context("fork")
    p = ctx.Process(target=time.sleep, args=(60,))
    p.start()
    try:
        v.close()
        with Vault(path, "a") as w:  # not LockedError
            w.append("a", A[:1])
        # and the same for a writer reopened while the child still lives
        w2 = Vault(path, "a")
        q = ctx.Process(target=time.sleep, args=(60,))
        q.start()
        try:
            w2.close()
            with Vault(path, "a", lock_timeout=0) as w3:
                assert w3.shape("a") == (11, 4)
        finally:
            q.kill()
            q.join()
    finally:
        p.kill()
        p.join()


def _use_inherited(_):
    try:
        _GLOBAL_VAULT.load("a")
    except RuntimeError as e:
        return "fork" in str(e)
    return False


def _sum_inherited_lazy(rows):
    a, b = rows
    return float(_GLOBAL_LAZY[a:b].sum())


def _own_handle(_):
    with Vault(_GLOBAL_PATH, "r") as r:
        return float(r.load("a").sum())


def test_multiprocessing_fork_pool(tmp_path):
    global _GLOBAL_VAULT, _GLOBAL_LAZY, _GLOBAL_PATH
    path = str(tmp_path / "s")
    _GLOBAL_PATH = path
    _GLOBAL_VAULT = Vault(path, "a")
    _GLOBAL_VAULT.save("a", A)
    _GLOBAL_LAZY = _GLOBAL_VAULT.lazy("a")
    try:
        with mp.get_context("fork").Pool(2) as pool:
            assert pool.map(_use_inherited, range(4)) == [True] * 4
            parts = pool.map(_sum_inherited_lazy, [(0, 5000), (5000, 10_000)])
            assert sum(parts) == float(A.sum())
            assert pool.map(_own_handle, range(2)) == [float(A.sum())] * 2
            # the parent's handle works while the workers live
            _GLOBAL_VAULT.append("a", A[:2])
            assert _GLOBAL_VAULT.shape("a") == (10_002, 4)
        _GLOBAL_VAULT.close()
        with Vault(path, "a", lock_timeout=0) as w:
            assert w.verify()["clean"]
    finally:
        _GLOBAL_VAULT.close()
        _GLOBAL_VAULT = _GLOBAL_LAZY = None


def test_inherited_transaction_is_refused_and_its_staging_kept(tmp_path):
    path = str(tmp_path / "s")
    v = Vault(path, "a")
    v.save("a", A)
    box = [v.begin()]  # the only reference: the child can drop it
    box[0].append("a", A[:5])
    box[0].save("big", np.zeros((300_000, 8)))  # staged in a file under data/
    staged = sorted(os.listdir(os.path.join(path, "data")))
    assert any(f.startswith("stage-") for f in staged), staged

    def child():
        t = box[0]
        msgs = []
        for call in (lambda: t.append("a", A[:1]), t.commit, t.discard):
            try:
                call()
            except RuntimeError as e:
                msgs.append(str(e))
        del t
        box.clear()  # the child's last reference: dropped here
        import gc

        gc.collect()
        return msgs

    msgs = in_child(child)
    assert len(msgs) == 3 and all("fork" in m and "process" in m for m in msgs), msgs
    # the child's drop removed none of the staged data: the parent's commit
    # lands whole
    assert sorted(os.listdir(os.path.join(path, "data"))) == staged
    box[0].commit()
    assert v.shape("a") == (10_005, 4) and v.shape("big") == (300_000, 8)
    assert v.verify()["clean"]
    v.close()
