"""Vault.begin(): the engine's staged transaction from Python, and Vaults
that write by turns (shared=True) in threads and processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import numvault
from numvault import Vault


@pytest.fixture
def vault(store_path):
    v = Vault(store_path)
    v.save("a", np.arange(10, dtype=np.int64))
    yield v
    v.close()


def test_changes_are_checked_against_the_staged_state(vault):
    t = vault.begin()
    t.append("a", np.array([10, 11], dtype=np.int64))
    assert t.shape("a") == (12,)
    # Index 11 and -1 exist only after the staged append; slices and masks
    # resolve against the staged rows too.
    t.replace("a", [11, 0], np.array([110, 100], dtype=np.int64))
    t.replace("a", slice(2, 4), 7)
    with pytest.raises(IndexError):
        t.replace("a", 12, 0)
    with pytest.raises(ValueError):
        t.append("a", np.zeros(1, np.float32))
    t.delete_rows("a", [1])
    t.rename("a", "b")
    with pytest.raises(KeyError):
        t.append("a", np.zeros(1, np.int64))
    assert "b" in t and "a" not in t and t.names() == ["b"]
    np.testing.assert_array_equal(t.load("b"), [100, 7, 7, 4, 5, 6, 7, 8, 9, 10, 110])
    assert vault.names() == ["a"], "nothing is visible before the commit"
    t.commit()
    np.testing.assert_array_equal(vault.load("b"), [100, 7, 7, 4, 5, 6, 7, 8, 9, 10, 110])
    with pytest.raises(ValueError):
        t.commit()


def test_repeated_indices_keep_the_last_value(vault):
    with vault.begin() as t:
        t.replace("a", [3, 3, -7], np.array([1, 2, 9], dtype=np.int64))
    assert vault.load("a")[3] == 9


def test_an_exception_discards_and_an_empty_block_commits_nothing(vault):
    seq = vault.verify()["records"]
    with pytest.raises(RuntimeError):
        with vault.begin() as t:
            t.save("z", np.ones(3))
            raise RuntimeError("boom")
    assert "z" not in vault
    with vault.begin():
        pass
    assert vault.verify()["records"] == seq


def test_a_change_that_no_longer_applies_is_a_conflict(vault):
    t = vault.begin()
    t.replace("a", 9, 0)
    vault.delete_rows("a", [0, 1])
    with pytest.raises(numvault.ConflictError, match="replace in 'a'"):
        t.commit()
    assert vault.shape("a") == (8,)


def test_a_large_transaction_stays_out_of_memory_and_commits_whole(vault):
    big = np.arange(3_000_000, dtype=np.float64)  # 24 MB
    with vault.begin() as t:
        t.save("big", big)
        for k in range(8):
            t.append("a", np.full(200_000, k, dtype=np.int64))
    np.testing.assert_array_equal(vault.load("big"), big)
    assert vault.shape("a") == (10 + 1_600_000,)
    assert vault.verify()["clean"]


def test_vault_commit_resolves_indexes_through_the_engine(vault):
    vault.commit([
        ("append", "a", np.array([10], dtype=np.int64)),
        ("replace", "a", -1, 99),
        ("delete_rows", "a", slice(0, 5)),
        ("rename", "a", "c"),
    ])
    np.testing.assert_array_equal(vault.load("c"), [5, 6, 7, 8, 9, 99])
    with pytest.raises(IndexError):
        vault.commit([("delete_rows", "c", [0]), ("replace", "c", 5, 0)])
    assert vault.shape("c") == (6,), "a failed commit changed nothing"


def test_shared_vaults_in_threads_lose_no_update(store_path):
    with Vault(store_path) as v:
        v.save("log", np.zeros((0, 2), np.int64))
    n, per = 4, 50

    def writer(w):
        with Vault(store_path, shared=True) as v:
            for k in range(per):
                v.append("log", np.array([[w, k]], np.int64))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    with Vault(store_path, "r") as v:
        log = v.load("log")
    assert len(log) == n * per
    for w in range(n):
        np.testing.assert_array_equal(log[log[:, 0] == w][:, 1], np.arange(per))


def test_shared_vaults_in_processes_lose_no_update(store_path):
    with Vault(store_path) as v:
        v.save("log", np.zeros((0, 2), np.int64))
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from numvault import Vault
        w = int(sys.argv[1])
        with Vault({str(store_path)!r}, shared=True) as v:
            for k in range(40):
                with v.begin() as t:
                    t.append("log", np.array([[w, k]], np.int64))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)]) for w in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    with Vault(store_path, "r") as v:
        log = v.load("log")
        assert v.verify()["clean"]
    assert len(log) == 160
    for w in range(4):
        np.testing.assert_array_equal(log[log[:, 0] == w][:, 1], np.arange(40))


def test_a_shared_vault_that_waits_in_vain_names_the_holder(store_path):
    import os
    with Vault(store_path) as v:
        v.save("a", np.zeros(1))
    s = Vault(store_path, shared=True, lock_timeout=0.05)
    holder = Vault(store_path)  # an exclusive writer holds the lock until closed
    try:
        with pytest.raises(numvault.LockedError, match=f"pid {os.getpid()}"):
            s.save("b", np.zeros(1))
    finally:
        holder.close()
    s.save("b", np.zeros(1))
    s.close()
