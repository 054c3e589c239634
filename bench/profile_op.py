#!/usr/bin/env python3
"""Repeat one operation of one system in a loop, for a profiler.

    py-spy record --native --format raw -o prof.txt -- \
        python bench/profile_op.py --system numvault --op append --rows 1000000 --seconds 20
    python bench/profile_op.py --system numvault --op append --pyinstrument

Prints the mean/median time per operation (op only, handle kept open for
handle-based operations, as in compare.py). With --collapse FILE it also
summarises a py-spy raw (collapsed-stack) file: the top self and inclusive
frames.
"""
from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA  # noqa: E402
from compare import COLS, DT, apply_model, op_params  # noqa: E402
from systems import PEERS, NumvaultSys, VaultSys, rm  # noqa: E402


def summarize_collapsed(path, top=25, focus=None):
    self_c = collections.Counter()
    incl = collections.Counter()
    total = 0
    for line in open(path):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, n = line.rpartition(" ")
        n = int(n)
        frames = stack.split(";")
        if focus and not any(focus in f for f in frames):
            continue
        total += n
        self_c[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    print(f"{total} samples" + (f" in stacks through {focus!r}" if focus else ""))
    print("-- self --")
    for f, n in self_c.most_common(top):
        print(f"{100 * n / total:6.1f}%  {f[:160]}")
    print("-- inclusive --")
    for f, n in incl.most_common(top):
        print(f"{100 * n / total:6.1f}%  {f[:160]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", default="numvault")
    ap.add_argument("--op", default="append",
                    help="append, append1k (1,000-row batches, ingest), replace_rand, "
                         "replace_contig, take, load, stream, batch, wbatch")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--sync", default=None)
    ap.add_argument("--pyinstrument", action="store_true")
    ap.add_argument("--collapse", help="summarise a py-spy --format raw file and exit")
    ap.add_argument("--focus", help="with --collapse: only stacks with a frame containing this")
    args = ap.parse_args()
    if args.collapse:
        summarize_collapsed(args.collapse, focus=args.focus)
        return
    root = DEFAULT_DATA / "profile"
    rm(root)
    root.mkdir(parents=True)
    if args.system == "numvault":
        s = NumvaultSys(root, sync=args.sync)
    elif args.system == "vault":
        s = VaultSys(root, sync=args.sync or "flush")
    else:
        s = PEERS[args.system](root)
    base = np.random.default_rng(1).random((args.rows, COLS), dtype=DT)
    h = s.open_for_save()
    s.save(h, base)
    s.close(h)
    model = base.copy()
    opname = "replace" if args.op.startswith("replace") else args.op.replace("append1k", "append")
    h = s.open(opname)
    prof = None
    if args.pyinstrument:
        from pyinstrument import Profiler
        prof = Profiler(interval=0.0002)
        prof.start()
    pool = [np.random.default_rng(k).random((1000, COLS), dtype=DT) for k in range(16)]
    times = []
    t_end = time.time() + args.seconds
    i = 0
    while time.time() < t_end:
        if args.op == "append1k":
            p = {"rows": pool[i % len(pool)]}
        else:
            p = op_params(args.op, model.shape[0], [7, i])
        t0 = time.perf_counter_ns()
        if args.op in ("append", "append1k"):
            s.append(h, p["rows"])
        elif args.op.startswith("replace"):
            s.replace(h, p["idx"], p["vals"])
        elif args.op == "take":
            s.take(h, p["idx"])
        elif args.op == "load":
            s.load(h)
        elif args.op == "stream":
            s.stream(h, 10000)
        elif args.op in ("batch", "wbatch"):
            getattr(s, args.op)(h, p["mods"])
        else:
            raise SystemExit(f"unsupported op {args.op}")
        times.append(time.perf_counter_ns() - t0)
        model = apply_model(model, "append" if args.op == "append1k" else args.op, p)
        i += 1
    if prof:
        prof.stop()
    s.close(h)
    got = s.reload()
    print(f"{s.name} {args.op}: {len(times)} ops, median {statistics.median(times) / 1e3:.1f} µs, "
          f"mean {statistics.mean(times) / 1e3:.1f} µs, best {min(times) / 1e3:.1f} µs; "
          f"correct: {np.array_equal(got, model)}")
    t = np.array(times)
    med = np.median(t)
    slow = np.nonzero(t > 10 * med)[0]
    print(f"ops slower than 10x median: {slow.size}; share of total time: "
          f"{t[slow].sum() / t.sum() * 100:.1f} %; slowest (index: µs): "
          + ", ".join(f"{k}: {t[k] / 1e3:.0f}" for k in np.argsort(t)[-8:][::-1]))
    if slow.size > 2:
        print(f"gaps between slow ops (ops): median {np.median(np.diff(slow)):.0f}, "
              f"first {list(np.diff(slow)[:12])}")
    if prof:
        print(prof.output_text(unicode=True, color=False, show_all=False))
    rm(root)


if __name__ == "__main__":
    main()
