"""Arrays handed out keep their memory alive: using them after the store is
closed, deleted from disk, or garbage-collected is valid or a clear Python
exception, never a segfault. Each scenario runs in a fresh interpreter so a
crash would show as a signal exit code rather than kill the test run."""

from __future__ import annotations

import textwrap

import pytest

from conftest import run_python

PRELUDE = textwrap.dedent(
    """
    import gc, shutil, sys
    import numpy as np
    import numvault
    from numvault import Vault, NumPack
    path = sys.argv[1]
    """
)

SCENARIOS = {
    "lazy_views_after_close_and_rmtree": """
        v = Vault(path)
        v.save("a", np.arange(1_000_000, dtype=np.float64))
        v.save("b", np.arange(100.0))
        v.delete_rows("b", [0])
        lz, lzb = v.lazy("a"), v.lazy("b")
        x = np.asarray(lz); m = memoryview(lz); row = lz[5]; it = iter(lz)
        xb = np.asarray(lzb)
        v.close(); del v; gc.collect()
        shutil.rmtree(path)
        del lz; gc.collect()   # the arrays alone keep the mapping alive
        assert x.sum() == np.arange(1_000_000.0).sum()
        assert bytes(m[-1:]) == np.float64(999_999).tobytes()
        assert next(it) == 0.0 and xb[0] == 1.0
        lzb[3]; len(lzb); list(lzb)
    """,
    "writable_array_after_exit_close_and_rmtree": """
        npk = NumPack(path, drop_if_exists=True)
        npk.open()
        npk.save({"a": np.zeros((1000, 10), np.float32)})
        with npk.writable_batch_mode() as wb:
            w = wb.load("a")
            view = w[10:20]
            w += 1
        npk.close()
        shutil.rmtree(path)
        gc.collect()
        assert w.sum() == 10_000
        try:
            w[0, 0] = 5
            raise SystemExit("write to a finished writable array succeeded")
        except ValueError:
            pass
        view[:] = 3   # private memory now
        assert w.sum() == 10_000 - 100 + 300
    """,
    "writable_session_closed_under_the_array": """
        v = Vault(path)
        v.save("a", np.zeros(100_000))
        s = v.writable("a")
        arr = s.array
        arr[:10] = 1
        v.close()        # ends the session
        del s, v; gc.collect()
        assert arr.sum() == 10 and not arr.flags.writeable
        with Vault(path) as v2:
            assert v2.load("a").sum() == 10 and v2.verify()["clean"]
    """,
    "batches_and_loads_after_close": """
        v = Vault(path)
        v.save("a", np.arange(10_000).reshape(1000, 10))
        it = v.batches("a", 100)
        first = next(it)
        loaded = v.load("a")
        v.close()
        rest = list(it)      # the iterator read a snapshot
        assert len(rest) == 9 and first.sum() == np.arange(1000).sum()
        shutil.rmtree(path)
        assert loaded.sum() == np.arange(10_000).sum()
        try:
            v.lazy("a")
            raise SystemExit("closed store returned a lazy array")
        except ValueError:
            pass
    """,
    "fork_child_cannot_touch_the_parents_handle": """
        import os
        v = Vault(path, sync="group", max_delay_ms=1)
        v.save("a", np.arange(10.0))
        lz = v.lazy("a")
        w = v.writable("a")
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                v.save("b", np.arange(3))
                code = 3
            except RuntimeError as e:
                code = 0 if "fork" in str(e) else 4
            if lz[3] != 3.0:
                code = 5
            # normal interpreter exit: the inherited handles are dropped, which
            # must neither close nor checkpoint the parent's store
            del v, w
            gc.collect()
            sys.exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0, status
        w.finish()
        v.append("a", np.array([10.0]))
        assert v.verify()["clean"]
        v.close()
        with Vault(path) as v2:
            assert v2.load("a").tolist() == list(np.arange(11.0)) and v2.names() == ["a"]
    """,
    "vault_garbage_collected_with_lazy_alive": """
        def make():
            v = Vault(path)
            v.save("a", np.arange(50.0))
            return v.lazy("a")
        lz = make(); gc.collect()
        assert np.asarray(lz).sum() == np.arange(50.0).sum()
        import pickle
        lz2 = pickle.loads(pickle.dumps(lz))
        assert lz2[-1] == 49.0
    """,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_no_segfault_after_close(tmp_path, name):
    code = PRELUDE + textwrap.dedent(SCENARIOS[name])
    res = run_python(code, str(tmp_path / "store"))
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"


def test_panic_is_a_python_exception():
    """A Rust panic surfaces as numvault.InternalError (a RuntimeError), with
    or without the GIL held, and the process goes on."""
    code = PRELUDE + textwrap.dedent(
        """
        from numvault import _core
        for mode in ["nogil", "gil", "nogil"]:
            try:
                _core._panic_for_test(mode)
                raise SystemExit("no exception")
            except numvault.InternalError as e:
                assert isinstance(e, RuntimeError) and "panic" in str(e)
        v = Vault(path)
        huge = np.broadcast_to(np.zeros(1), (2**22, 2**22))  # 128 TiB once contiguous
        try:
            v.save("x", huge)
            raise SystemExit("saved 128 TiB")
        except MemoryError:
            pass
        v.save("ok", np.arange(3))
        assert list(v) == ["ok"]
        """
    )
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        res = run_python(code, d + "/s")
    assert res.returncode == 0, res.stderr
