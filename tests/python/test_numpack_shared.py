"""Many NumPack(path) instances on one store, in threads and in processes,
as NumPack users write them: reads never fail because another instance is
open, writes take turns through the per-commit writer lock (no lost update),
batch_mode conflicts are reported, and a lock wait that times out names the
holder."""

import multiprocessing as mp
import os
import threading

import numpy as np
import pytest

import numvault
from numvault import NumPack

ROWS = 25


def _writer(path, wid, rows=ROWS):
    """Append `rows` one-row batches tagged (wid, i), each through a new
    instance (the `with NumPack(path)` idiom), and replace a cell of its own
    row 0 in the 'own' array."""
    for i in range(rows):
        with NumPack(path) as npk:
            npk.append({"log": np.array([[wid, i]], dtype=np.int64)})
    with NumPack(path) as npk:
        npk.replace({"own": np.array([wid], dtype=np.int64)}, [wid])


def _proc_writer(path, wid, q):
    try:
        _writer(path, wid)
        q.put((wid, None))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        q.put((wid, repr(e)))


def test_threads_and_processes_append_through_separate_instances(tmp_path):
    path = str(tmp_path / "store")
    with NumPack(path, drop_if_exists=True) as npk:
        npk.save({"log": np.zeros((0, 2), np.int64), "own": np.full(8, -1, np.int64)})
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_proc_writer, args=(path, w, q)) for w in (4, 5, 6, 7)]
    for p in procs:
        p.start()
    errors = []

    def run(wid):
        try:
            _writer(path, wid)
        except BaseException as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert errors == [] and all(err is None for _, err in results), (errors, results)
    with NumPack(path) as npk:
        log = npk.load("log")
        own = npk.load("own")
        assert npk.vault.verify()["clean"]
    # every operation present once, each writer's in its order
    assert len(log) == 8 * ROWS
    for wid in range(8):
        mine = log[log[:, 0] == wid, 1]
        assert mine.tolist() == list(range(ROWS)), wid
    assert own.tolist() == list(range(8))


def test_readers_never_fail_while_another_instance_is_open(tmp_path):
    path = str(tmp_path / "store")
    holder = NumPack(path, drop_if_exists=True, shared=False)  # holds the writer lock
    holder.open()
    holder.save({"a": np.arange(10)})
    try:
        readers = [NumPack(path) for _ in range(5)]
        for r in readers:
            r.open()
            np.testing.assert_array_equal(r.load("a"), np.arange(10))
            assert r.get_member_list() == ["a"]
            r.close()
        # a write from another instance waits for the lock; with a short
        # timeout it fails naming the process that holds it
        with NumPack(path, lock_timeout=0.3) as other:
            with pytest.raises(numvault.LockedError, match=str(os.getpid())):
                other.append({"a": np.arange(3)})
            np.testing.assert_array_equal(other.load("a"), np.arange(10))
        late = NumPack(path, lock_timeout=5)  # opened while the lock is held
        late.open()
        lazy = late.load("a", lazy=True)
    finally:
        holder.close()
    late.append({"a": np.array([7])})  # becomes a writer now that the lock is free
    assert late.get_shape("a") == (11,) and late.load("a")[-1] == 7
    np.testing.assert_array_equal(lazy[:], np.arange(10))  # its earlier snapshot
    late.close()
    with NumPack(path, lock_timeout=0.3) as other:  # free again
        other.append({"a": np.arange(3)})
        assert other.get_shape("a") == (14,)


def test_writer_waits_for_a_commit_in_progress(tmp_path):
    path = str(tmp_path / "store")
    with NumPack(path, drop_if_exists=True) as npk:
        npk.save({"a": np.arange(4)})
    holder = NumPack(path, shared=False)
    holder.open()
    done = threading.Event()

    def write():
        with NumPack(path) as npk:  # default wait: 30 s
            npk.append({"a": np.array([99])})
        done.set()

    t = threading.Thread(target=write)
    t.start()
    assert not done.wait(0.5)  # waiting for the lock
    holder.close()
    t.join(timeout=30)
    assert done.is_set()
    with NumPack(path) as npk:
        assert npk.load("a").tolist() == [0, 1, 2, 3, 99]


def test_batch_mode_conflict_is_reported_and_commits_nothing(tmp_path):
    path = str(tmp_path / "store")
    with NumPack(path, drop_if_exists=True) as npk:
        npk.save({"a": np.arange(100), "b": np.arange(5)})
    a = NumPack(path)
    a.open()
    b = NumPack(path)
    b.open()
    try:
        with pytest.raises(numvault.ConflictError):
            with a.batch_mode():
                a.replace({"a": np.array([-1])}, [90])
                a.save({"b": np.zeros(5, np.int64)})
                b.drop("a", slice(10, None))  # another instance shrinks 'a'
        # nothing of the batch was committed; the other instance's change was
        np.testing.assert_array_equal(b.load("b"), np.arange(5))
        assert b.get_shape("a") == (10,)
        # a later batch on the same instance sees the new state and commits
        with a.batch_mode():
            a.replace({"a": np.array([-1])}, [9])
        b.vault.refresh()  # an instance sees others' commits at its next write or refresh
        assert b.load("a")[9] == -1
    finally:
        a.close()
        b.close()


def test_appends_from_two_instances_in_one_thread_interleave(tmp_path):
    path = str(tmp_path / "store")
    a = NumPack(path, drop_if_exists=True)
    a.open()
    a.save({"x": np.arange(2)})
    b = NumPack(path)
    b.open()
    try:
        a.append({"x": np.array([2])})
        b.append({"x": np.array([3])})  # catches up with a's append first
        a.append({"x": np.array([4])})
    finally:
        a.close()
        b.close()
    with NumPack(path) as npk:
        assert npk.load("x").tolist() == [0, 1, 2, 3, 4]
