"""Dask ``mean`` over a store bigger than the cluster's memory limit:
numvault (``numvault.dask.from_vault``) against the same over a Zarr array
(its default codec, zstd, and uncompressed), same chunks.

The cluster is a ``LocalCluster`` of 2 worker processes, 1 thread each,
``memory_limit="64MB"`` each (128 MB in all) and the array is 2M x 128
float32 (1 GiB). A bare worker process (Python, NumPy, distributed) already
takes about 65 MB, so the nanny's pause and terminate thresholds are turned
off (with them, workers are restarted in a loop before any task runs); the
limit still drives spilling. Files are read once before timing (page cache
warm); runs are interleaved and the median of ``--runs`` is reported.

    python bench/dask_mean.py [--rows 2000000] [--runs 3]

Writes bench/results/dask_mean.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from _common import DEFAULT_DATA  # noqa: E402

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import distributed  # noqa: E402
import zarr  # noqa: E402

import numvault  # noqa: E402
import numvault.dask as nd  # noqa: E402

COLS = 128


def make_data(root: Path, rows: int, chunk_rows: int) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    paths = {"numvault": root / "nv", "zarr (zstd)": root / "x.zarr", "zarr (raw)": root / "raw.zarr"}
    marker = root / f"rows-{rows}-{chunk_rows}"
    if not marker.exists():
        rng = np.random.default_rng(0)
        step = 1 << 18
        with numvault.Vault(str(paths["numvault"]), "w") as v:
            for a0 in range(0, rows, step):
                part = rng.standard_normal((min(step, rows - a0), COLS), dtype=np.float32)
                (v.save if a0 == 0 else v.append)("x", part)
        src = numvault.Vault(str(paths["numvault"]), "r").lazy("x")
        for key, comp in (("zarr (zstd)", "auto"), ("zarr (raw)", None)):
            z = zarr.create_array(store=str(paths[key]), shape=(rows, COLS), chunks=(chunk_rows, COLS),
                                  dtype="float32", compressors=comp, overwrite=True)
            for a0 in range(0, rows, step):
                z[a0 : a0 + step] = src[a0 : a0 + step]
        for m in root.glob("rows-*"):
            m.unlink()
        marker.touch()
    return paths


def warm(paths: dict) -> None:
    for p in paths.values():
        for f in p.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    while fh.read(64 << 20):
                        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA / "dask")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dask_mean")
    args = ap.parse_args()
    nbytes = args.rows * COLS * 4
    # the same blocks for both: numvault's default (whole stored chunks, ~16 MiB)
    chunk_rows = nd.default_chunks((args.rows, COLS), np.float32)[0]
    paths = make_data(args.data, args.rows, chunk_rows)
    warm(paths)
    with dask.config.set({"distributed.worker.memory.pause": False,
                          "distributed.worker.memory.terminate": False}):
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           memory_limit="64MB", dashboard_address=None,
                                           silence_logs=logging.ERROR)
        client = distributed.Client(cluster)
        try:
            limit = sum(w["memory_limit"] for w in client.scheduler_info()["workers"].values())
            systems = list(paths)
            secs: dict = {s: [] for s in systems}
            values = {}
            for run in range(args.runs):
                order = systems[run % len(systems):] + systems[: run % len(systems)]
                for s in order:
                    if s == "numvault":
                        x = nd.from_vault(paths[s], "x")
                    else:
                        x = da.from_zarr(str(paths[s]))
                    assert x.chunks[0][0] == chunk_rows
                    t0 = time.perf_counter()
                    m = float(x.mean().compute())
                    dt = time.perf_counter() - t0
                    secs[s].append(dt)
                    values[s] = m
                    print(f"run {run} {s:12s} {dt:6.2f} s  {nbytes / dt / 1e9:5.2f} GB/s  mean={m:.6g}",
                          flush=True)
        finally:
            client.close()
            cluster.close()
    assert len({round(v, 6) for v in values.values()}) == 1, values
    med = {s: statistics.median(v) for s, v in secs.items()}
    info = {"rows": args.rows, "cols": COLS, "bytes": nbytes, "chunk_rows": chunk_rows,
            "cluster_memory_limit": limit, "runs": args.runs, "seconds": secs, "median_s": med,
            "dask": dask.__version__, "zarr": zarr.__version__,
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1))
    lines = [
        f"# Dask mean of {args.rows:,} x {COLS} float32 ({nbytes / 2**30:.2f} GiB) on a cluster "
        f"limited to {limit / 1e6:.0f} MB",
        "",
        f"LocalCluster: 2 worker processes x 1 thread, memory_limit=64MB each (pause/terminate off); "
        f"blocks of {chunk_rows:,} rows ({chunk_rows * COLS * 4 / 2**20:.0f} MiB) for every system; "
        f"median of {args.runs} runs, page cache warm; dask {dask.__version__}, zarr {zarr.__version__}, "
        f"{info['when']}.",
        "",
        "| system | seconds | GB/s |",
        "| --- | ---: | ---: |",
    ]
    for s in systems:
        lines.append(f"| {s} | {med[s]:.2f} | {nbytes / med[s] / 1e9:.2f} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
