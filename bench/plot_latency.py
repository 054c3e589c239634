"""Plot the latency eCDFs written by the `latency` example.

    .venv-bench/bin/python bench/plot_latency.py                      # bench/results
    .venv-bench/bin/python bench/plot_latency.py --csv bench/results/quick/latency_ecdf.csv

Reads `latency_ecdf.csv` (columns sync, op, latency_us, cumulative_fraction) and
writes `latency_ecdf.png` next to it (or `--out`): one column per operation, one
line per sync policy, log-scale x in µs. Top row: fraction of operations at or
below a latency (the eCDF). Bottom row: the same as 1 - fraction on a log scale,
so p99 and p99.9 can be read off. The 4 KiB write + fdatasync reference of the
same run is drawn in grey in every panel. Run parameters and the load average come
from `latency.json` in the same directory, if present.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent
POLICY_ORDER = ["always", "group", "on_flush", "never"]
COLORS = {"always": "#d62728", "group": "#ff7f0e", "on_flush": "#1f77b4", "never": "#2ca02c"}
REFERENCE_STYLE = {
    "write4k_inplace_fdatasync": ("4 KiB write in place + fdatasync", "--"),
    "write4k_append_fdatasync": ("4 KiB write at EOF + fdatasync", ":"),
}
OP_TITLES = {"append": "append 100 rows x 10 f32", "replace": "replace 100 random rows of 1M"}


def policy_key(sync: str) -> str:
    return "group" if sync.startswith("group") else sync


def read_csv(path: Path) -> dict[tuple[str, str], tuple[list[float], list[float]]]:
    series: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            xs, ys = series[(row["sync"], row["op"])]
            xs.append(float(row["latency_us"]))
            ys.append(float(row["cumulative_fraction"]))
    return dict(series)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=ROOT / "results" / "latency_ecdf.csv")
    ap.add_argument("--out", type=Path, default=None, help="PNG path (default: next to the CSV)")
    args = ap.parse_args()
    out = args.out or args.csv.with_name("latency_ecdf.png")

    series = read_csv(args.csv)
    ops = [op for op in ("append", "replace") if any(o == op for _, o in series)]
    ops += sorted({o for s, o in series if s != "reference" and o not in ops})
    refs = {o: v for (s, o), v in series.items() if s == "reference"}
    if not ops:
        raise SystemExit(f"{args.csv}: no series")

    fig, axes = plt.subplots(2, len(ops), figsize=(6.5 * len(ops), 8.5), squeeze=False,
                             sharex="col", gridspec_kw={"height_ratios": [3, 2]})
    for j, op in enumerate(ops):
        top, bottom = axes[0][j], axes[1][j]
        syncs = sorted((s for s, o in series if o == op and s != "reference"),
                       key=lambda s: (POLICY_ORDER.index(policy_key(s))
                                      if policy_key(s) in POLICY_ORDER else 99, s))
        for sync in syncs:
            xs, ys = series[(sync, op)]
            color = COLORS.get(policy_key(sync))
            # An eCDF is a step function: hold each fraction until the next value.
            top.step(xs, ys, where="post", color=color, label=sync, lw=1.6)
            tail = [max(1.0 - y, 1e-9) for y in ys]
            bottom.step(xs, tail, where="post", color=color, label=sync, lw=1.6)
        for rop, (xs, ys) in sorted(refs.items()):
            label, ls = REFERENCE_STYLE.get(rop, (rop, "-."))
            top.step(xs, ys, where="post", color="0.45", ls=ls, lw=1.2, label=label)
            bottom.step(xs, [max(1.0 - y, 1e-9) for y in ys], where="post", color="0.45", ls=ls,
                        lw=1.2, label=label)
        top.set_xscale("log")
        top.set_ylim(0, 1.0)
        top.set_ylabel("fraction of operations <= latency")
        top.set_title(OP_TITLES.get(op, op))
        for q in (0.5, 0.9, 0.99):
            top.axhline(q, color="0.85", lw=0.8, zorder=0)
        top.grid(True, which="both", axis="x", color="0.92", lw=0.6)
        top.legend(loc="lower right", fontsize=8)
        bottom.set_xscale("log")
        bottom.set_yscale("log")
        # Down to the decade holding 1/n, so the step to the max shows.
        tails = [1.0 - y for (s, o), (_, ys) in series.items() if o == op or s == "reference"
                 for y in ys if 1.0 - y > 1e-9]
        decades = max(2, math.ceil(-math.log10(min(tails)))) if tails else 4
        bottom.set_ylim(10.0 ** -decades, 1.0)
        bottom.invert_yaxis()
        bottom.set_yticks([10.0 ** -k for k in range(decades + 1)])
        bottom.set_yticklabels(["p0"] + [f"p{100 - 10.0 ** (2 - k):.{max(0, k - 2)}f}"
                                         for k in range(1, decades + 1)])
        bottom.set_ylabel("tail (1 - fraction, log)")
        bottom.set_xlabel("latency per operation (µs, log scale)")
        bottom.grid(True, which="both", color="0.92", lw=0.6)

    title = "numvault: latency eCDF per sync policy"
    meta = args.csv.with_name("latency.json")
    if meta.exists():
        m = json.loads(meta.read_text())
        title += (f"  ({m.get('ops')} ops per series, {m.get('ops_always')} under always; "
                  f"{m.get('cpus')} CPUs, load avg {m.get('load_average_start')} -> "
                  f"{m.get('load_average_end')}; {m.get('generated_utc')} UTC)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
