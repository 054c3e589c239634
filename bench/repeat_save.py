"""Repeated saves of one array on one open handle, numvault vs np.save.

Users who keep checkpoints or features in a store save the same array over
and over without closing it. Each numvault save writes a new file (the old
one stays valid until the new one is committed); np.save truncates and
rewrites its file in place (not atomic). This measures the time of every
save in a run of N saves of a 1M x 10 float32 array (38 MiB) under the
default policy (sync="flush", no flush in between) and prints the times and
their medians. Before superseded files were released at once (FORMAT.md
§7.1 step 7) they piled up, with their page cache, until the next
checkpoint, and on the development VM each save after the first few took
110-220 ms.

    python bench/repeat_save.py [--saves 20] [--rows 1000000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import numvault


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--saves", type=int, default=20)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    a = np.random.default_rng(0).random((args.rows, 10), dtype=np.float32)
    with tempfile.TemporaryDirectory() as d:
        npk = numvault.NumPack(os.path.join(d, "store"), drop_if_exists=True)
        npk.open()
        nv = []
        for _ in range(args.saves):
            t = time.perf_counter()
            npk.save({"a": a})
            nv.append((time.perf_counter() - t) * 1e3)
        files = len(os.listdir(os.path.join(d, "store", "data")))
        npk.close()
        with numvault.NumPack(os.path.join(d, "store")) as r:
            assert np.array_equal(r.load("a"), a)
        path = os.path.join(d, "a.npy")
        npy = []
        for _ in range(args.saves):
            t = time.perf_counter()
            np.save(path, a)
            npy.append((time.perf_counter() - t) * 1e3)
    print(f"{args.saves} saves of {args.rows:,} x 10 float32 ({a.nbytes / 2**20:.1f} MiB) on one handle")
    print("numvault ms:", " ".join(f"{x:.0f}" for x in nv))
    print("np.save  ms:", " ".join(f"{x:.0f}" for x in npy))
    print(f"median numvault {statistics.median(nv):.1f} ms, np.save {statistics.median(npy):.1f} ms, "
          f"ratio {statistics.median(nv) / statistics.median(npy):.2f}; "
          f"data files in the store before close: {files}")


if __name__ == "__main__":
    main()
