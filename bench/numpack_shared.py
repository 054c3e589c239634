"""What NumPack instances pay for sharing a store (issue 12): the same calls
through ``NumPack(path, shared=True)`` (the default: the writer lock is
taken per commit, after catching up with other instances) and
``NumPack(path, shared=False)`` (the lock held from open to close), measured
in interleaved rounds, medians reported.

    python bench/numpack_shared.py [--rounds 7] [--ops 300]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import numvault


def one_round(root: Path, shared: bool, ops: int) -> dict:
    path = root / f"s-{shared}"
    rows = np.ones((10, 16), np.float32)
    with numvault.NumPack(path, drop_if_exists=True, shared=shared) as npk:
        npk.save({"a": np.zeros((1000, 16), np.float32)})
    out = {}
    t = time.perf_counter()
    for _ in range(ops // 10):
        with numvault.NumPack(path, shared=shared) as npk:
            npk.append({"a": rows})
    out["one-shot open+append+close (ms)"] = (time.perf_counter() - t) / (ops // 10) * 1e3
    with numvault.NumPack(path, shared=shared) as npk:
        t = time.perf_counter()
        for _ in range(ops):
            npk.append({"a": rows})
        out["append, open instance (us)"] = (time.perf_counter() - t) / ops * 1e6
        t = time.perf_counter()
        for i in range(ops):
            npk.replace({"a": rows[:1]}, [i])
        out["replace 1 row, open instance (us)"] = (time.perf_counter() - t) / ops * 1e6
        t = time.perf_counter()
        for i in range(ops):
            npk.getitem("a", [i])
        out["getitem 1 row, open instance (us)"] = (time.perf_counter() - t) / ops * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--ops", type=int, default=300)
    a = ap.parse_args()
    res: dict = {True: {}, False: {}}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.rounds):
            for shared in (False, True):
                for k, v in one_round(Path(d), shared, a.ops).items():
                    res[shared].setdefault(k, []).append(v)
    print(f"NumPack API, shared=True vs shared=False, median of {a.rounds} interleaved rounds")
    print("| operation | shared=False | shared=True | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for k in res[False]:
        x, y = statistics.median(res[False][k]), statistics.median(res[True][k])
        print(f"| {k} | {x:.3g} | {y:.3g} | {y / x:.2f} |")


if __name__ == "__main__":
    main()
