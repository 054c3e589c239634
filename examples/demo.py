"""numvault demo: the everyday operations side by side with NumPy .npy files.

Generates 1M x 10 float32 (38 MB) in a temporary directory and times each
operation for numvault and for the honest NumPy baseline (np.save / np.load,
np.load(mmap_mode="r+") for in-place replace, re-saving for append), checking
that both give the same data. Medians of several rounds, interleaved.

    python examples/demo.py [--rows N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import numpy as np

import numvault


def timed(fn, rounds):
    times = []
    result = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    data = rng.random((args.rows, 10), dtype=np.float32)
    idx = rng.choice(args.rows, 100, replace=False)
    new_rows = rng.random((100, 10), dtype=np.float32)
    gather_idx = rng.integers(0, args.rows, 1000)

    with tempfile.TemporaryDirectory(dir=os.getcwd()) as tmp:
        npy = os.path.join(tmp, "features.npy")
        store = os.path.join(tmp, "store.nv")
        rows = []

        def row(op, nv, np_):
            rows.append((op, nv * 1e3, np_ * 1e3))

        with numvault.NumPack(store, drop_if_exists=True) as npk:
            t_nv, _ = timed(lambda: npk.save({"features": data}), args.rounds)
            t_np, _ = timed(lambda: np.save(npy, data), args.rounds)
            row("save", t_nv, t_np)

            t_nv, a = timed(lambda: npk.load("features"), args.rounds)
            t_np, b = timed(lambda: np.load(npy), args.rounds)
            assert np.array_equal(a, b)
            row("full load", t_nv, t_np)

            t_nv, lazy = timed(lambda: npk.load("features", lazy=True), args.rounds)
            t_np, mm = timed(lambda: np.load(npy, mmap_mode="r"), args.rounds)
            row("lazy load", t_nv, t_np)

            t_nv, a = timed(lambda: lazy[gather_idx], args.rounds)
            t_np, b = timed(lambda: mm[gather_idx], args.rounds)
            assert np.array_equal(a, b)
            row("random access (1K rows)", t_nv, t_np)

            def np_replace():
                m = np.load(npy, mmap_mode="r+")
                m[idx] = new_rows
                m.flush()
                del m

            t_nv, _ = timed(lambda: npk.replace({"features": new_rows}, idx), args.rounds)
            t_np, _ = timed(np_replace, args.rounds)
            row("replace 100 rows", t_nv, t_np)

            def np_append():
                arr = np.load(npy)
                np.save(npy, np.concatenate([arr, new_rows]))

            t_nv, _ = timed(lambda: npk.append({"features": new_rows}), 1)
            t_np, _ = timed(np_append, 1)
            row("append 100 rows", t_nv, t_np)

            expected = np.load(npy)
            assert np.array_equal(npk.load("features"), expected), "numvault and NumPy disagree"

        print(f"numvault {numvault.__version__} vs NumPy {np.__version__}; "
              f"{args.rows:,} x 10 float32; {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores; median of {args.rounds} rounds (append: 1)")
        print(f"| {'operation':<24} | {'numvault ms':>12} | {'NumPy .npy ms':>14} | {'ratio':>6} |")
        print(f"|{'-' * 26}|{'-' * 14}|{'-' * 16}|{'-' * 8}|")
        for op, nv, np_ in rows:
            print(f"| {op:<24} | {nv:>12.3f} | {np_:>14.3f} | {nv / np_:>6.2f} |")
        print("all results checked equal to NumPy's")


if __name__ == "__main__":
    main()
