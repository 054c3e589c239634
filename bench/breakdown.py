"""Where the time goes in the three operations where numvault and npy are
at parity (1M x 10 float32): streaming, batch mode and writable batch mode,
each split into its parts, numvault next to npy, medians of N rounds run
side by side. This is the profile behind the README's explanation.

    python bench/breakdown.py [--rounds 15] [--rows 1000000]
"""
from __future__ import annotations

import argparse
import os
import statistics as st
import tempfile
import time

import numpy as np

import numvault


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    n, bs = args.rows, 10_000
    rng = np.random.default_rng(1)
    a = rng.random((n, 10), dtype=np.float32)
    mods = [rng.choice(n, min(1000, n), replace=False) for _ in range(100)]
    one = np.float32(1)
    t: dict[str, list[float]] = {}

    def add(k: str, s: float) -> None:
        t.setdefault(k, []).append(s * 1e3)

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as d:
        store, npy = os.path.join(d, "store"), os.path.join(d, "a.npy")
        with numvault.NumPack(store, drop_if_exists=True) as npk:
            npk.save({"a": a})
        np.save(npy, a)
        model = a.copy()
        for _ in range(args.rounds):
            # Streaming, batches dropped as they come (a streaming consumer)
            # and batches kept (what compare.py does, to check them).
            with numvault.NumPack(store) as npk:
                for keep in (False, True):
                    out = []
                    t0 = time.perf_counter()
                    for b in npk.stream_load("a", buffer_size=bs):
                        if keep:
                            out.append(b)
                    add(f"stream, batches {'kept' if keep else 'dropped'}: numvault", time.perf_counter() - t0)
                    del out
            mm = np.load(npy, mmap_mode="r")
            for keep in (False, True):
                out = []
                t0 = time.perf_counter()
                for i in range(0, n, bs):
                    b = np.array(mm[i:i + bs])
                    if keep:
                        out.append(b)
                add(f"stream, batches {'kept' if keep else 'dropped'}: npy", time.perf_counter() - t0)
                del out
            del mm
            # Batch mode: first load, 100 in-memory modifications, commit.
            with numvault.NumPack(store) as npk:
                t0 = time.perf_counter()
                with npk.batch_mode():
                    x = npk.load("a")
                    t1 = time.perf_counter()
                    for idx in mods:
                        x = npk.load("a")
                        x[idx] += one
                        npk.save({"a": x})
                    t2 = time.perf_counter()
                t3 = time.perf_counter()
            add("batch: load, numvault", t1 - t0)
            add("batch: 100 modifications, numvault", t2 - t1)
            add("batch: commit (write + checksums), numvault", t3 - t2)
            t0 = time.perf_counter()
            y = np.load(npy)
            t1 = time.perf_counter()
            for idx in mods:
                y[idx] += one
            t2 = time.perf_counter()
            np.save(npy, y)
            t3 = time.perf_counter()
            add("batch: load, npy", t1 - t0)
            add("batch: 100 modifications, npy", t2 - t1)
            add("batch: save, npy", t3 - t2)
            for idx in mods:
                model[idx] += one
            # Writable batch mode: start (durable log record + map),
            # modifications through the map, end.
            with numvault.NumPack(store) as npk:
                t0 = time.perf_counter()
                with npk.writable_batch_mode() as wb:
                    x = wb.load("a")
                    t1 = time.perf_counter()
                    for idx in mods:
                        x[idx] += one
                    t2 = time.perf_counter()
                    del x
                t3 = time.perf_counter()
            add("wbatch: start + map, numvault", t1 - t0)
            add("wbatch: 100 modifications, numvault", t2 - t1)
            add("wbatch: end (checksums handed to a helper), numvault", t3 - t2)
            t0 = time.perf_counter()
            y = np.load(npy, mmap_mode="r+")
            t1 = time.perf_counter()
            for idx in mods:
                y[idx] += one
            t2 = time.perf_counter()
            del y
            t3 = time.perf_counter()
            add("wbatch: map, npy", t1 - t0)
            add("wbatch: 100 modifications, npy", t2 - t1)
            add("wbatch: unmap, npy", t3 - t2)
            for idx in mods:
                model[idx] += one
        with numvault.NumPack(store) as npk:
            assert np.array_equal(npk.load("a"), model), "numvault ended with wrong data"
        assert np.array_equal(np.load(npy), model), "npy ended with wrong data"
    print(f"{args.rows:,} x 10 float32, medians of {args.rounds} rounds (ms)")
    for k, v in t.items():
        print(f"  {k:58s} {st.median(v):8.2f}")


if __name__ == "__main__":
    main()
