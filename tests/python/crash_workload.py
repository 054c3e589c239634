"""A deterministic random workload for the crash tests, shared by the child
process that runs it (and is killed) and by the test that checks the store.

Run as a script: ``python crash_workload.py STORE JOURNAL SEED SYNC [MODE]``.
It opens the store, reads its current contents as the starting model,
generates operations from SEED, and after each call returns appends the
call's number to JOURNAL (unbuffered, so a SIGKILL cannot lose a line of a
call that returned).
"""

from __future__ import annotations

import os
import sys
from typing import Dict, Iterator, List, Tuple

import numpy as np

NAMES = ["a", "b", "grp/c"]
COLS = 8  # float64 rows of 64 bytes: appends above 1024 rows exceed the inline payload size


def generate(model: Dict[str, np.ndarray], seed: int) -> Iterator[Tuple[tuple, Dict[str, np.ndarray]]]:
    """Operations valid against the evolving model, each with the model after
    it (a new dict each time; arrays are never changed in place)."""
    rng = np.random.default_rng(seed)
    model = dict(model)
    counter = [int(seed) * 1000]

    def rows(n):
        counter[0] += 1
        return (np.arange(n * COLS, dtype=np.float64).reshape(n, COLS) + counter[0] * 1e6)

    def one_op(m):
        name = NAMES[rng.integers(len(NAMES))]
        kind = rng.choice(["save", "append", "append_big", "replace", "delete", "compact", "drop"],
                          p=[0.1, 0.3, 0.08, 0.25, 0.15, 0.07, 0.05])
        if name not in m or kind == "save":
            a = rows(int(rng.integers(1, 300)))
            m[name] = a
            return ("save", name, a)
        cur = m[name]
        if kind in ("append", "append_big"):
            a = rows(int(rng.integers(1, 3000 if kind == "append_big" else 50)))
            m[name] = np.concatenate([cur, a])
            return ("append", name, a)
        if kind == "replace" and len(cur):
            idx = np.unique(rng.integers(0, len(cur), int(rng.integers(1, 20))))
            vals = rows(len(idx))
            nxt = cur.copy()
            nxt[idx] = vals
            m[name] = nxt
            return ("replace", name, idx, vals)
        if kind == "delete" and len(cur) > 1:
            idx = np.unique(rng.integers(0, len(cur), int(rng.integers(1, 10))))
            m[name] = np.delete(cur, idx, axis=0)
            return ("delete_rows", name, idx)
        if kind == "compact":
            return ("compact", name)
        if kind == "drop":
            del m[name]
            return ("drop", name)
        a = rows(3)
        m[name] = np.concatenate([cur, a])
        return ("append", name, a)

    while True:
        if rng.random() < 0.15:
            op: tuple = ("commit", [one_op(model) for _ in range(int(rng.integers(2, 5)))])
        else:
            op = one_op(model)
        yield op, dict(model)


def apply(v, op: tuple) -> None:
    kind = op[0]
    if kind == "commit":
        v.commit(op[1])
    elif kind == "save":
        v.save(op[1], op[2])
    elif kind == "append":
        v.append(op[1], op[2])
    elif kind == "replace":
        v.replace(op[1], op[2], op[3])
    elif kind == "delete_rows":
        v.delete_rows(op[1], op[2])
    elif kind == "compact":
        v.compact(op[1])
    elif kind == "drop":
        v.drop(op[1])
    else:  # pragma: no cover
        raise ValueError(kind)


def snapshot(v) -> Dict[str, np.ndarray]:
    return {name: v.load(name) for name in v.names()}


def main(argv: List[str]) -> None:
    import numvault

    store, journal, seed, sync = argv[:4]
    mode = argv[4] if len(argv) > 4 else "ops"
    v = numvault.Vault(store, sync=sync, max_delay_ms=2)
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    if mode == "writable":
        # Rows are overwritten one by one in place; each returned write is journaled.
        with v.writable("w") as arr:
            for i in range(len(arr)):
                arr[i] = float(i) + 0.5
                os.write(fd, b"%d\n" % i)
        os.write(fd, b"done\n")
        v.close()
        return
    os.write(fd, b"start\n")
    for i, (op, _) in enumerate(generate(snapshot(v), int(seed))):
        apply(v, op)
        os.write(fd, b"%d\n" % i)


if __name__ == "__main__":
    main(sys.argv[1:])
