#!/usr/bin/env python3
"""Ingestion throughput (seed 004's concern) through numvault's Python API.

    python bench/ingest.py [--quick] [--rows 10000000] [--sync flush,never,group,always]

Streams appends of 1,000-row batches into one 10-column float32 array and
reports rows/s (target >= 20M rows/s with sync="flush"), per-batch latency
percentiles (p50/p99/p99.9/max), and bytes on disk per row (target: raw 40 B
+ < 1 % overhead). Reference writers run interleaved in the same process:
"raw" (os.write of the bytes to one file: the ceiling for any format), npy
(in-place append, header rewritten per batch) and HDF5 (resizable chunked
dataset, flushed per batch). Each writer's result is read back and compared
with what was written.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (DEFAULT_DATA, dir_size, fmt_ms, machine_info, machine_md,  # noqa: E402
                     write_json)
from systems import ARRAY, CHUNK_ROWS, npy_append_inplace, rm  # noqa: E402

COLS = 10
POOL = 64  # distinct pre-generated batches, cycled


class Writer:
    name = "?"
    sync = None

    def __init__(self, root):
        self.root = Path(root)

    @property
    def path(self):
        return self.root / self.name

    def open(self, first):  # writes the first batch (creation)
        raise NotImplementedError

    def append(self, batch):
        raise NotImplementedError

    def close(self):
        pass

    def read_all(self) -> np.ndarray:
        raise NotImplementedError


class NumvaultWriter(Writer):
    """numvault.Vault(path, sync=...): save(name, a) then append(name, batch)."""

    def __init__(self, root, sync):
        super().__init__(root)
        import numvault

        self.nv = numvault
        self.sync = sync
        self.name = f"numvault-{sync}"

    def _open(self):
        return self.nv.Vault(str(self.path), mode="a", sync=self.sync)

    def open(self, first):
        self.h = self._open()
        self.h.save(ARRAY, first)

    def append(self, batch):
        self.h.append(ARRAY, batch)

    def close(self):
        self.h.close()

    def read_all(self):
        h = self._open()
        try:
            return np.array(h.load(ARRAY))
        finally:
            h.close()


class NumPackWriter(NumvaultWriter):
    """numvault.NumPack (NumPack-compatible API, default sync): save/append dicts."""

    def __init__(self, root):
        super().__init__(root, "flush")
        self.name = "numpack-api"
        self.sync = None

    def _open(self, drop=False):
        h = self.nv.NumPack(str(self.path), drop_if_exists=drop)
        h.open()
        return h

    def open(self, first):
        self.h = self._open(drop=True)
        self.h.save({ARRAY: first})

    def append(self, batch):
        self.h.append({ARRAY: batch})

    def close(self):
        self.h.close()

class RawWriter(Writer):
    name = "raw-file"

    def open(self, first):
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(self.fd, first.tobytes())

    def append(self, batch):
        os.write(self.fd, batch.data)

    def close(self):
        os.close(self.fd)

    def read_all(self):
        return np.fromfile(self.path, np.float32).reshape(-1, COLS)


class NpyWriter(Writer):
    name = "npy-inplace"

    @property
    def path(self):
        return self.root / "ingest.npy"

    def open(self, first):
        np.save(self.path, first)

    def append(self, batch):
        npy_append_inplace(self.path, batch)

    def read_all(self):
        return np.load(self.path)


class H5Writer(Writer):
    name = "hdf5"

    def __init__(self, root):
        super().__init__(root)
        import h5py

        self.h5py = h5py

    @property
    def path(self):
        return self.root / "ingest.h5"

    def open(self, first):
        self.f = self.h5py.File(self.path, "w")
        self.ds = self.f.create_dataset(ARRAY, data=first, chunks=(CHUNK_ROWS, COLS),
                                        maxshape=(None, COLS))
        self.n = first.shape[0]
        self.f.flush()

    def append(self, batch):
        n = self.n + batch.shape[0]
        self.ds.resize(n, axis=0)
        self.ds[self.n:n] = batch
        self.n = n
        self.f.flush()

    def close(self):
        self.f.close()

    def read_all(self):
        with self.h5py.File(self.path, "r") as f:
            return f[ARRAY][:]


def run_one(w: Writer, pool, nbatches, log):
    rm(w.path)
    lat = np.empty(nbatches, np.int64)
    pc = time.perf_counter_ns
    t0 = pc()
    w.open(pool[0])
    t1 = pc()
    lat[0] = t1 - t0
    prev = t1
    npool = len(pool)
    for i in range(1, nbatches):
        w.append(pool[i % npool])
        now = pc()
        lat[i] = now - prev
        prev = now
    t_end = prev
    w.close()
    t_closed = pc()
    rows = nbatches * pool[0].shape[0]
    app, alloc = dir_size(w.path)
    # verify
    got = w.read_all()
    ok = got.shape == (rows, COLS) and got.dtype == np.float32
    if ok:
        g = got.reshape(nbatches, -1, COLS)
        for i in range(min(npool, nbatches)):
            if not np.array_equal(g[i::npool], np.broadcast_to(pool[i], g[i::npool].shape)):
                ok = False
                break
    del got
    app_lat = lat[1:] if nbatches > 1 else lat
    res = {
        "rows": rows, "batches": nbatches,
        "seconds": (t_end - t0) / 1e9,
        "seconds_incl_close": (t_closed - t0) / 1e9,
        "rows_per_s": rows / ((t_end - t0) / 1e9),
        "rows_per_s_incl_close": rows / ((t_closed - t0) / 1e9),
        "create_ms": lat[0] / 1e6,
        "close_ms": (t_closed - t_end) / 1e6,
        "lat_p50_us": float(np.percentile(app_lat, 50)) / 1e3,
        "lat_p99_us": float(np.percentile(app_lat, 99)) / 1e3,
        "lat_p999_us": float(np.percentile(app_lat, 99.9)) / 1e3,
        "lat_max_us": float(app_lat.max()) / 1e3,
        "bytes_apparent": app, "bytes_allocated": alloc,
        "bytes_per_row": app / rows,
        "overhead_pct": (app / (rows * COLS * 4) - 1) * 100,
        "alloc_overhead_pct": (alloc / (rows * COLS * 4) - 1) * 100,
        "correct": bool(ok),
    }
    log(f"  {w.name:18s} {res['rows_per_s'] / 1e6:7.2f} M rows/s "
        f"(incl. close {res['rows_per_s_incl_close'] / 1e6:6.2f})  p50 {res['lat_p50_us']:.1f} µs "
        f"p99 {res['lat_p99_us']:.1f} µs  max {res['lat_max_us']:.0f} µs  "
        f"{res['bytes_per_row']:.3f} B/row ({res['overhead_pct']:+.3f} %)"
        f"{'' if ok else '  WRONG'}")
    rm(w.path)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description="numvault ingestion throughput")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int, help="rows per run (default 10,000,000; quick 1,000,000)")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--sync", default="flush,never,group,always",
                    help="numvault sync policies to run (flush is the target)")
    ap.add_argument("--always-rows", type=int, default=200_000,
                    help="rows for sync=always (one fsync per batch)")
    ap.add_argument("--peers", default="numpack,raw,npy,hdf5",
                    help="other writers: numpack (numvault's NumPack API), raw, npy, hdf5")
    ap.add_argument("--repeats", type=int, help="runs per writer (default 5; quick 2)")
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA))
    ap.add_argument("--out", help="output dir (default bench/results[/quick])")
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args(argv)
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    repeats = args.repeats or (2 if args.quick else 5)
    outdir = Path(args.out) if args.out else (
        Path(__file__).resolve().parent / "results" / ("quick" if args.quick else ""))
    outdir.mkdir(parents=True, exist_ok=True)
    root = Path(args.data_dir) / "ingest"
    rm(root)
    root.mkdir(parents=True)

    def log(m):
        print(m, flush=True)

    m = machine_info(root, ["numpy", "numvault", "h5py"])
    log(machine_md(m))
    rng = np.random.default_rng(args.seed)
    pool = [rng.random((args.batch, COLS), dtype=np.float32) for _ in range(POOL)]

    writers, unavailable = [], {}
    for pol in [p for p in args.sync.split(",") if p]:
        try:
            writers.append(NumvaultWriter(root, pol))
        except Exception as e:  # noqa: BLE001
            unavailable[f"numvault-{pol}"] = f"{type(e).__name__}: {e}"
    for p in [p for p in args.peers.split(",") if p]:
        try:
            writers.append({"raw": RawWriter, "npy": NpyWriter, "hdf5": H5Writer,
                            "numpack": NumPackWriter}[p](root))
        except Exception as e:  # noqa: BLE001
            unavailable[p] = f"{type(e).__name__}: {e}"
    for k, v in unavailable.items():
        log(f"  {k}: unavailable ({v})")

    def nb(w):
        r = args.always_rows if w.sync == "always" else rows
        return max(1, r // args.batch)

    results = {w.name: [] for w in writers}
    for rep in range(repeats + 1):  # first pass is a warm-up
        k = rep % max(1, len(writers))
        log(f"pass {rep}{' (warm-up)' if rep == 0 else ''}, load {os.getloadavg()[0]:.2f}")
        for w in writers[k:] + writers[:k]:
            try:
                r = run_one(w, pool, nb(w), log)
            except Exception as e:  # noqa: BLE001
                r = {"error": f"{type(e).__name__}: {e}"[:300], "correct": False}
                log(f"  {w.name}: ERROR {r['error']}")
            if rep > 0:
                results[w.name].append(r)
    m["loadavg_end"] = list(os.getloadavg())

    summary = {}
    for name, runs in results.items():
        good = [r for r in runs if "error" not in r]
        if not good:
            summary[name] = {"error": runs[0].get("error") if runs else "no runs"}
            continue
        tps = sorted(r["rows_per_s"] for r in good)
        summary[name] = {
            "rows": good[0]["rows"],
            "correct": all(r["correct"] for r in runs),
            "rows_per_s_best": tps[-1],
            "rows_per_s_median": float(np.median(tps)),
            "rows_per_s_incl_close_median": float(np.median([r["rows_per_s_incl_close"] for r in good])),
            "lat_p50_us_median": float(np.median([r["lat_p50_us"] for r in good])),
            "lat_p99_us_median": float(np.median([r["lat_p99_us"] for r in good])),
            "lat_p99_us_best": min(r["lat_p99_us"] for r in good),
            "lat_p999_us_median": float(np.median([r["lat_p999_us"] for r in good])),
            "lat_max_us_worst": max(r["lat_max_us"] for r in good),
            "close_ms_median": float(np.median([r["close_ms"] for r in good])),
            "bytes_per_row": good[0]["bytes_per_row"],
            "overhead_pct": good[0]["overhead_pct"],
            "alloc_overhead_pct": good[0]["alloc_overhead_pct"],
        }

    lines = ["# Ingestion throughput (bench/ingest.py)", "",
             f"Command: `python {' '.join([sys.argv[0]] + (argv or sys.argv[1:]))}`", "",
             "## Machine", "", machine_md(m), "",
             f"Workload: appends of {args.batch:,}-row batches x {COLS} float32 "
             f"({args.batch * COLS * 4 / 1024:.0f} KiB) into one array; the first batch creates "
             f"it (save). {rows:,} rows per run ({args.always_rows:,} for sync=always), "
             f"{repeats} runs per writer after a warm-up pass, writers interleaved. Rows/s = "
             "rows / time from the first save to the return of the last append (close "
             "separately: 'incl. close'). Latency = per append call. Size = apparent bytes "
             "after close. Each result read back and compared.", "",
             "Targets (seed 004 / issue 5): >= 20M rows/s with sync=flush; bytes/row <= "
             "40 B x 1.01.", "",
             "| writer | rows/s median (best) | incl. close | p50 µs | p99 µs median (best) | "
             "p99.9 µs | max µs | close | B/row | overhead (apparent / du) | correct |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        if "error" in s:
            lines.append(f"| {name} | ERROR: {s['error']} |||||||||| |")
            continue
        lines.append(
            f"| {name} | {s['rows_per_s_median'] / 1e6:.2f} M ({s['rows_per_s_best'] / 1e6:.2f} M) | "
            f"{s['rows_per_s_incl_close_median'] / 1e6:.2f} M | {s['lat_p50_us_median']:.1f} | "
            f"{s['lat_p99_us_median']:.1f} ({s['lat_p99_us_best']:.1f}) | "
            f"{s['lat_p999_us_median']:.0f} | {s['lat_max_us_worst']:.0f} | "
            f"{fmt_ms(s['close_ms_median'])} | {s['bytes_per_row']:.3f} | "
            f"{s['overhead_pct']:+.3f} % / {s['alloc_overhead_pct']:+.3f} % | "
            f"{'yes' if s['correct'] else 'WRONG'} |")
    nvf = summary.get("numvault-flush")
    if nvf and "error" not in nvf:
        lines += ["", f"numvault sync=flush vs targets: throughput {nvf['rows_per_s_median'] / 1e6:.2f}M "
                  f"rows/s median ({'meets' if nvf['rows_per_s_median'] >= 20e6 else 'BELOW'} 20M); "
                  f"size overhead {nvf['overhead_pct']:+.3f} % "
                  f"({'meets' if nvf['overhead_pct'] < 1 else 'ABOVE'} 1 %)."]
        raw = summary.get("raw-file")
        if raw and "error" not in raw:
            lines.append(f"The raw os.write ceiling on this machine: {raw['rows_per_s_median'] / 1e6:.2f}M "
                         f"rows/s; numvault reaches {nvf['rows_per_s_median'] / raw['rows_per_s_median'] * 100:.0f} % of it.")
    if unavailable:
        lines += ["", f"Unavailable: {unavailable}"]
    md = "\n".join(lines) + "\n"
    write_json(outdir / "ingest.json", {"machine": m, "args": vars(args), "summary": summary,
                                        "runs": results, "unavailable": unavailable})
    (outdir / "ingest.md").write_text(md)
    log("")
    log(md)
    rm(root)


if __name__ == "__main__":
    main()
