#!/usr/bin/env python3
"""Why the old examples/demo.py and compare.py disagreed on save and load
(see bench/README.md, "examples/demo.py and compare.py"): the timed parts
of both, side by side in interleaved rounds, in one process.

    python bench/demo_gap.py [--rows 1000000] [--rounds 9]

Save, numvault (NumPack API, sync="flush", no close in the timed part):
  fresh   compare.py's op: save into a store just emptied (the previous
          store's removal is timed apart: compare.py counts it in the open)
  remove  that removal (rm -r of the previous round's store)
  over    the old demo's: save over the array on one open handle (a new
          file is written, the superseded one released inside the call)
Save, npy: np.save over its file (both scripts), np.save to a new name
(the old file unlinked before, untimed).
Load: numvault on the handle that did the saves (old demo), on a new handle
of a closed store (compare.py), np.load.
Round 0 is reported apart (first calls in the process: the old demo had no
warm-up and ran numvault first in every pair).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA, Timer  # noqa: E402
from systems import rm  # noqa: E402

import numvault  # noqa: E402

SAVE_FRESH = "save nv: into the emptied store (compare's op)"
SAVE_OVER = "save nv: over the array, open handle (old demo)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA / "demo-gap"))
    args = ap.parse_args(argv)
    d = Path(args.data_dir)
    rm(d)
    d.mkdir(parents=True)
    a = np.random.default_rng(0).random((args.rows, 10), dtype=np.float32)
    fresh, over, npy, npy_new = d / "fresh", d / "over", d / "a.npy", d / "b.npy"
    keep = numvault.NumPack(str(over), drop_if_exists=True)
    keep.open()
    keep.save({"a": a})
    np.save(npy, a)
    np.save(npy_new, a)
    T: dict[str, list[float]] = {}

    def t(key, fn):
        with Timer() as tm:
            r = fn()
        T.setdefault(key, []).append(tm.ns / 1e6)
        return r

    def nv_fresh_round():
        t("save nv: remove previous store (compare: in open)", lambda: rm(fresh))
        h = numvault.NumPack(str(fresh), drop_if_exists=True)
        t("save nv: open", h.open)
        t(SAVE_FRESH, lambda: h.save({"a": a}))
        t("save nv: close (flush: syncs)", h.close)

    steps = [
        nv_fresh_round,
        lambda: t(SAVE_OVER, lambda: keep.save({"a": a})),
        lambda: t("save npy: np.save over its file (both)", lambda: np.save(npy, a)),
        lambda: (os.unlink(npy_new), t("save npy: np.save to a new name", lambda: np.save(npy_new, a))),
    ]
    loads = [
        lambda: t("load nv: the saving handle (old demo)", lambda: keep.load("a")),
        lambda: _load_new_handle(t, fresh),
        lambda: t("load npy: np.load", lambda: np.load(npy)),
    ]
    for rnd in range(args.rounds + 1):
        k = rnd % len(steps)
        for f in steps[k:] + steps[:k]:
            f()
        k = rnd % len(loads)
        for f in loads[k:] + loads[:k]:
            f()
    keep.close()
    print(f"{args.rows:,} x 10 float32, {args.rounds} interleaved rounds after round 0; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"| {'timed part':<52} | {'median ms':>9} | {'best':>7} | {'round 0':>8} |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 9}|{'-' * 10}|")
    for k, v in T.items():
        rest = v[1:]
        print(f"| {k:<52} | {statistics.median(rest):>9.2f} | {min(rest):>7.2f} | {v[0]:>8.2f} |")
    med = {k: statistics.median(v[1:]) for k, v in T.items()}
    ref = med["save npy: np.save over its file (both)"]
    cmp_op = med[SAVE_FRESH] / ref
    demo_op = med[SAVE_OVER] / ref
    print(f"save, numvault / np.save: as compare.py's op column {cmp_op:.2f}; "
          f"as the old demo {demo_op:.2f}")
    rm(d)


def _load_new_handle(t, path):
    h = numvault.NumPack(str(path))
    h.open()
    try:
        return t("load nv: new handle, closed store (compare)", lambda: h.load("a"))
    finally:
        h.close()


if __name__ == "__main__":
    main()
