"""Crash tests: a subprocess runs a random workload and is killed with
SIGKILL at a random moment. After reopening, every call that returned is
present (the call in flight may or may not be), and the store is consistent
(verify() is clean). Rounds continue on the same store, so recovery is also
tested after earlier recoveries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from numvault import Vault

import crash_workload as cw

HERE = Path(__file__).parent
ROUNDS = int(os.environ.get("NUMVAULT_CRASH_ROUNDS", "4"))


def _spawn(store, journal, seed, sync, mode="ops"):
    return subprocess.Popen(
        [sys.executable, str(HERE / "crash_workload.py"), str(store), str(journal), str(seed), sync, mode],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _completed(journal: Path):
    if not journal.exists():
        return None, []
    lines = journal.read_text().split("\n")[:-1]  # the last line may be partial
    started = "start" in lines
    return started, [int(x) for x in lines if x.isdigit()]


def _same_state(got, want):
    if sorted(got) != sorted(want):
        return False
    return all(got[k].shape == want[k].shape and np.array_equal(got[k], want[k]) for k in want)


@pytest.mark.parametrize("sync", ["flush", "never", "always", "group"])
def test_sigkill_mid_workload(tmp_path, sync):
    store = tmp_path / "store"
    rng = np.random.default_rng(abs(hash(sync)) % 2**32)
    with Vault(store) as v:
        v.save("a", np.zeros((5, cw.COLS)))
    total_done = 0
    for rnd in range(ROUNDS):
        with Vault(store, "r") as v:
            start = cw.snapshot(v)
        journal = tmp_path / f"journal-{rnd}"
        seed = int(rng.integers(1, 10**6))
        p = _spawn(store, journal, seed, sync)
        # wait until the workload runs, then kill at a random moment
        deadline = time.time() + 60
        while time.time() < deadline and not (journal.exists() and journal.read_text().count("\n") > 3):
            if p.poll() is not None:
                pytest.fail(f"workload exited early: {p.stderr.read().decode()}")
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 1.0)))
        p.send_signal(signal.SIGKILL)
        p.wait()
        _, done = _completed(journal)
        k = len(done)
        assert done == list(range(k))
        gen = cw.generate(start, seed)
        states = [start]
        for _ in range(k + 1):
            op, state = next(gen)
            states.append(state)
        with Vault(store) as v:
            got = cw.snapshot(v)
            rep = v.verify()
            assert rep["clean"], rep["problems"]
        assert _same_state(got, states[k]) or _same_state(got, states[k + 1]), (
            f"round {rnd}: state after {k} returned calls is neither the state after call "
            f"{k} nor after call {k + 1} (in flight: {op[0]})")
        total_done += k
        print(f"[{sync}] round {rnd}: killed after {k} returned calls")
    assert total_done > 0


def test_sigkill_during_writable_session(tmp_path):
    store = tmp_path / "store"
    n = 200_000
    with Vault(store) as v:
        v.save("w", np.zeros(n))
        v.save("other", np.arange(10.0))
    journal = tmp_path / "journal"
    p = _spawn(store, journal, 0, "flush", "writable")
    deadline = time.time() + 60
    while time.time() < deadline and not (journal.exists() and journal.stat().st_size > 20_000):
        if p.poll() is not None:
            break
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    text = journal.read_text()
    written = [int(x) for x in text.split("\n")[:-1] if x.isdigit()]
    assert written, "the child never wrote"
    with Vault(store) as v:
        rep = v.verify()
        assert rep["clean"], rep["problems"]
        w = v.load("w")  # checksums were recomputed at recovery
        k = len(written)
        # a process crash keeps every write made
        np.testing.assert_array_equal(w[:k], np.arange(k) + 0.5)
        rest = w[k:]
        assert np.all((rest == 0) | (rest == np.arange(k, n) + 0.5))
        np.testing.assert_array_equal(v.load("other"), np.arange(10.0))
        with v.writable("w") as arr:  # a new session works after recovery
            arr[:] = 1
        assert v.load("w").sum() == n
