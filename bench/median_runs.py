#!/usr/bin/env python3
"""The median of several bench/compare.py runs, as issue targets 1, 2 and 4 ask
("the median of at least five interleaved compare.py runs").

    python bench/median_runs.py --runs 5            # run compare.py 5 times, then aggregate
    python bench/median_runs.py --only JSON...      # aggregate earlier runs' JSON files

Each run is a full compare.py run (interleaved rounds, its own medians) written as
bench/results/runs/run<i>.{json,md,png}; this script then takes, per operation, the
median over the runs of numvault's median, of the best correct peer's median and of
their ratio, and the same for each one-shot pair, and writes
bench/results/compare_median.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import statistics as st
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_compare(n: int, out: Path, extra: list[str]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(1, n + 1):
        print(f"== compare.py run {i} of {n}", flush=True)
        subprocess.run([sys.executable, str(HERE / "compare.py"), "--out", str(out),
                        "--tag", f"run{i}", *extra], check=True)
        files.append(out / f"run{i}.json")
    return files


def med(xs):
    xs = [x for x in xs if x is not None]
    return st.median(xs) if xs else None


def fmt(x, nd=3):
    return "–" if x is None else f"{x:.{nd}f}"


def aggregate(files: list[Path]) -> tuple[str, dict]:
    runs = [json.loads(f.read_text()) for f in files]
    first = runs[0]
    lines = [f"# Median of {len(runs)} compare.py runs", "",
             f"Runs: {', '.join(f.name for f in files)}. Per operation: the median over the "
             "runs of each run's median time (ms) and of each run's ratio; the ratios of "
             "every run are listed in run order.", ""]
    if "machine" in first:
        m = first["machine"]
        fs = m.get("filesystem", {})
        libs = ", ".join(f"{k} {v}" for k, v in m.get("libraries", {}).items())
        lines += [f"Machine (first run): {m.get('cpu')}, {m.get('cores')} cores ({m.get('virtualized')}), "
                  f"{m.get('ram_gb')} GiB RAM, kernel {m.get('kernel')}, Python {m.get('python')}; "
                  f"{fs.get('fstype')} on {fs.get('device')}; load average at start "
                  f"{m.get('loadavg_start')}; {libs}.", ""]
    out: dict = {"runs": [str(f) for f in files], "sizes": []}
    for si, size in enumerate(first["sizes"]):
        rows = size["rows"]
        lines += [f"## {rows:,} rows", "",
                  "numvault (NumPack API, sync='flush') op time against the best correct peer "
                  "(target 4: <= 1.0 at 1M rows, <= 1.05 at 100K):", "",
                  "| operation | numvault ms | best peer (per run) | peer ms | ratio per run | median ratio |",
                  "|---|---|---|---|---|---|"]
        sz = {"rows": rows, "ops": [], "pairs": []}
        for oi, op in enumerate(size["summary"]):
            rs = [run["sizes"][si]["summary"][oi] for run in runs]
            ratios = [r.get("ratio") for r in rs]
            e = {"op": op["op"], "label": op["label"],
                 "numvault_ms": med([r.get("baseline_ms") for r in rs]),
                 "peer_ms": med([r.get("best_peer_ms") for r in rs]),
                 "peers": [r.get("best_peer") for r in rs],
                 "ratios": ratios, "ratio": med(ratios)}
            sz["ops"].append(e)
            lines.append(f"| {e['label']} | {fmt(e['numvault_ms'])} | {'/'.join(sorted(set(map(str, e['peers']))))} "
                         f"| {fmt(e['peer_ms'])} | {' '.join(fmt(r, 2) for r in ratios)} | **{fmt(e['ratio'], 2)}** |")
        for pi, pair in enumerate(size.get("pairs", [])):
            lines += ["", f"One-shot (open + op + close), {pair['title']}:", "",
                      f"| operation | {pair['nv']} ms | {pair['ref']} ms | ratio per run | median ratio | <= {pair['target']} |",
                      "|---|---|---|---|---|---|"]
            pe = {"key": pair["key"], "title": pair["title"], "target": pair["target"], "rows": []}
            for ri, row in enumerate(pair["rows"]):
                rr = [run["sizes"][si]["pairs"][pi]["rows"][ri] for run in runs]
                ratios = [r.get("ratio") for r in rr]
                m = med(ratios)
                e = {"op": row["op"], "label": row["label"], "nv_ms": med([r.get("nv_ms") for r in rr]),
                     "ref_ms": med([r.get("ref_ms") for r in rr]), "ratios": ratios, "ratio": m,
                     "met": m is not None and m <= pair["target"]}
                pe["rows"].append(e)
                lines.append(f"| {e['label']} | {fmt(e['nv_ms'])} | {fmt(e['ref_ms'])} | "
                             f"{' '.join(fmt(r, 2) for r in ratios)} | **{fmt(m, 2)}** | "
                             f"{'yes' if e['met'] else 'NO'} |")
            sz["pairs"].append(pe)
        out["sizes"].append(sz)
        lines.append("")
    return "\n".join(lines) + "\n", out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", nargs="+", help="aggregate these JSON files, run nothing")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("extra", nargs="*", help="arguments passed on to compare.py (after --)")
    a = ap.parse_args()
    out = Path(a.out)
    files = [Path(f) for f in a.only] if a.only else run_compare(a.runs, out / "runs", a.extra)
    md, js = aggregate(files)
    (out / "compare_median.md").write_text(md)
    (out / "compare_median.json").write_text(json.dumps(js, indent=1))
    print(md)
    print(f"wrote {out / 'compare_median.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
