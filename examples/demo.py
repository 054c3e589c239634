"""numvault demo: the everyday operations side by side with NumPy .npy files.

Generates 1M x 10 float32 (38 MB) and times each operation for numvault and
for NumPy .npy with the code of bench/compare.py (imported from bench/, so the
demo measures exactly what compare.py's tables measure): the same system
definitions (numvault's NumPack API; npy through np.save / np.load / memory
maps, appends in place), one process, interleaved rounds with the system order
rotated, one warm-up round discarded, each operation timed with the garbage
collector off, medians. Every result is checked against a NumPy model.

Two tables: the op time (the handle's open and close not timed: compare.py's
main table), and the one-shot time (open + op + close) of the two pairs behind
the targets: numvault sync="never" against npy (neither syncs), numvault's
default sync="flush" (which syncs at close) against npy + os.fsync.

Needs only numpy and numvault (no peer library), and bench/ next to examples/.

    python examples/demo.py [--rows N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

import numvault

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
try:
    import compare  # bench/compare.py: numpy-only at import; peers load only when asked for
except ImportError as e:  # pragma: no cover - only outside a checkout
    sys.exit(f"examples/demo.py runs bench/compare.py's code and needs bench/ next to "
             f"examples/ (a checkout of the repository): {e}")

SYSTEMS = ["numvault", "numvault-never", "npy", "npy-durable"]


def ms(e, key="op", stat="median_ms"):
    st = compare.status(e)
    if st == "ok":
        return e[key][stat]
    return None


def fmt(x):
    return f"{x:>10.3f}" if x is not None else f"{'—':>10}"


def fmt_ratio(a, b):
    return f"{a / b:>6.2f}" if a is not None and b else f"{'—':>6}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=7, help="recorded rounds (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up rounds, discarded")
    ap.add_argument("--data-dir", help="where the files go (default: a temporary directory "
                    "under the repository's target/, a real disk, else the current directory)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args()

    parent = args.data_dir or (str(REPO / "target") if (REPO / "target").is_dir() else os.getcwd())
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix="demo-") as tmp:
        cargs = compare.make_parser().parse_args([
            "--rows", str(args.rows), "--rounds", str(args.rounds),
            "--warmup", str(args.warmup), "--systems", ",".join(SYSTEMS),
            "--data-dir", tmp])

        def log(msg):
            if not args.quiet or "WRONG" in msg or "ERROR" in msg:
                print(msg, flush=True)

        res = compare.bench_size(args.rows, SYSTEMS, cargs, log)

    ops = res["ops"]
    print(f"numvault {numvault.__version__} vs NumPy {np.__version__}; {args.rows:,} x 10 float32; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; medians of "
          f"{args.rounds} interleaved rounds after {args.warmup} warm-up (bench/compare.py's "
          f"method and systems)")
    print()
    print("Op time (open and close of the handle not timed; compare.py's main table), ms:")
    print(f"| {'operation':<38} | {'numvault':>10} | {'NumPy .npy':>10} | {'ratio':>6} |")
    print(f"|{'-' * 40}|{'-' * 12}|{'-' * 12}|{'-' * 8}|")
    for op, label in compare.OPS:
        a, b = ms(ops[op].get("numvault")), ms(ops[op].get("npy"))
        print(f"| {label:<38} | {fmt(a)} | {fmt(b)} | {fmt_ratio(a, b)} |")
    print()
    print("One-shot (open + op + close), ms: never vs npy (target <= 1.1), "
          "flush (default) vs npy + fsync (target <= 1.15):")
    print(f"| {'operation':<38} | {'nv never':>10} | {'npy':>10} | {'ratio':>6} | "
          f"{'nv flush':>10} | {'npy+fsync':>10} | {'ratio':>6} |")
    print(f"|{'-' * 40}|{'-' * 12}|{'-' * 12}|{'-' * 8}|{'-' * 12}|{'-' * 12}|{'-' * 8}|")
    for op, label in compare.OPS:
        row = ops[op]
        cells = []
        for nv, ref in (("numvault-never", "npy"), ("numvault", "npy-durable")):
            a, b = ms(row.get(nv), "oneshot"), ms(row.get(ref), "oneshot")
            cells.append(f"{fmt(a)} | {fmt(b)} | {fmt_ratio(a, b)}")
        print(f"| {label:<38} | " + " | ".join(cells) + " |")
    print("ratio = numvault / npy (< 1: numvault faster). Save: numvault saves into a store "
          "emptied before the op (the removal of the previous store is in the one-shot time, "
          "not in the op time), np.save truncates its previous file inside the op; compare "
          "saves one-shot.")

    wrong = {(op, n): e for op in ops for n, e in ops[op].items()
             if e["wrong"] or e["errors"]}
    checked = sum(e["checked"] for op in ops for e in ops[op].values())
    if wrong:
        for (op, n), e in wrong.items():
            print(f"WRONG: {n} {op}: {e['wrong']}/{e['checked']} {e['errors'][:1]}")
        sys.exit(1)
    print(f"all {checked} results checked equal to the NumPy model")


if __name__ == "__main__":
    main()
