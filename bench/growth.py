#!/usr/bin/env python3
"""Costs that stay flat: numvault's open, append, replace, recovery and reads
against the size and the history of a store.

    python bench/growth.py                      # all parts but huge, full sizes
    python bench/growth.py --quick              # smoke run: tiny sizes, seconds
    python bench/growth.py --parts open,recovery
    python bench/growth.py --large              # append part up to 10^9 rows (~40 GB of disk)
    python bench/growth.py --huge [--huge-gb 40] # a store larger than RAM (never in CI)

Parts (--parts, comma-separated; default all but huge):

open      Vault(path) open to the first names(), read-only (mode="r") and writer
          (default mode and sync), for stores of 10, 1,000 and 100,000 small arrays
          saved in transactions of 1,000 (`with v.begin() as t:`, sync="never").
append    one append of 100 rows x 10 float32 to an array of 10^3 ... 10^8 rows
          (10^9 with --large), on an open writer handle (sync="flush"): median.
replace   one replace of 1,000 random rows of a 1M-row array after 0, 10^5 and 10^6
          rows were replaced before (on the same open writer handle): median.
recovery  reopen after a crash against the log's length: a child process does N
          commits (100-row appends, sync="flush") and ends with os._exit(0) (no close,
          no checkpoint); the reopen is timed, read-only then writer, for
          N = 10, 100, 1,000, 10,000 (same boot: a process crash, not a power loss).
history   load / stream (10,000-row batches) / gather of 1,000 random rows of a 1M x 10
          float32 array right after a history of 300 replace calls of 1,000 random rows,
          100 appends of 100 rows and 10 deletes of 100 rows (no checkpoint in between),
          against the same rows freshly saved in another store; target <= 1.5x.
huge      (--huge) a store larger than RAM (default 40 GB of float32): streaming
          throughput against `dd if=<data file> of=/dev/null bs=1M` of the same files,
          gather of 1,000 random rows, and the peak RssAnon (/proc/self/status, sampled by
          a thread) of each phase. The store's pages are dropped from the page cache
          (fsync + posix_fadvise DONTNEED on its own files) before each timed read.

Outputs: bench/results/growth.{json,md,png} (bench/results/quick/ with --quick);
data under target/bench-py/growth (removed afterwards; --keep keeps it). Warm page
cache except where said; every result is checked (against a NumPy model, or the
known contents).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (DEFAULT_DATA, Timer, dir_size, fmt_ms, machine_info,  # noqa: E402
                     machine_md, write_json)

import numvault  # noqa: E402

COLS = 10
DT = np.float32
ARR = "a"
ALL_PARTS = ["open", "append", "replace", "recovery", "history", "huge"]
LIBS = ["numpy", "numvault", "matplotlib"]
HISTORY_TARGET = 1.5


def log(msg):
    print(msg, flush=True)


def rm(path: Path) -> None:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def stats(samples_ns) -> dict:
    if not samples_ns:
        return {}
    s = sorted(samples_ns)
    return {"n": len(s), "best_ms": s[0] / 1e6, "median_ms": statistics.median(s) / 1e6,
            "p90_ms": s[min(len(s) - 1, int(0.9 * len(s)))] / 1e6, "max_ms": s[-1] / 1e6}


def wal_bytes(store: Path) -> int:
    return sum(f.stat().st_size for f in Path(store).glob("wal-*.log"))


def data_files(store: Path) -> list[Path]:
    return sorted((Path(store) / "data").glob("*.nvd"))


def store_info(store: Path) -> dict:
    app, alloc = dir_size(store)
    return {"bytes": app, "allocated": alloc, "log_bytes": wal_bytes(store),
            "data_files": len(data_files(store))}


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def mem_total() -> int:
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            return int(line.split()[1]) * 1024
    return 0


def int_list(s: str) -> list[int]:
    return [int(float(x)) for x in s.split(",") if x.strip()]


class Filler:
    """Deterministic big-array contents without holding the array: row i is
    base[i % C] + (i // C), with base a random C x 10 float32 block."""

    def __init__(self, chunk_rows: int, seed: int):
        self.c = chunk_rows
        self.base = np.random.default_rng(seed).random((chunk_rows, COLS), dtype=DT)

    def block(self, start: int, n: int) -> np.ndarray:
        """Rows start .. start+n; start must be a multiple of C and n <= C."""
        assert start % self.c == 0 and n <= self.c
        return self.base[:n] + DT(start // self.c)

    def rows(self, idx) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        return self.base[idx % self.c] + (idx // self.c).astype(DT)[:, None]


def grow(v, filler: Filler, have: int, want: int) -> int:
    """Append filler rows have .. want (chunk-aligned blocks) to ARR."""
    c = filler.c
    while have < want:
        k0 = (have // c) * c
        blk = filler.block(k0, min(c, want - k0))[have - k0:]
        if have == 0:
            v.save(ARR, blk)
        else:
            v.append(ARR, blk)
        have += blk.shape[0]
    return have


def drop_cache(files) -> None:
    """Make the files' pages clean (fsync) and drop them from the page cache
    (POSIX_FADV_DONTNEED): only these files, nothing system-wide."""
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------
def part_open(args, root: Path) -> dict:
    out = {"what": "Vault(path) open + first names(): read-only (mode='r') and writer "
                   "(mode='a', sync='flush'); warm page cache; median of repeats after one "
                   "discarded open of each kind",
           "array_shape": [args.open_array_rows, COLS], "commit_size": args.open_commit,
           "stores": []}
    small = np.random.default_rng(args.seed).random((args.open_array_rows, COLS), dtype=DT)
    for k in args.open_arrays:
        p = root / f"open-{k}"
        rm(p)
        t0 = time.perf_counter()
        v = numvault.Vault(str(p), sync="never")
        for start in range(0, k, args.open_commit):
            with v.begin() as t:
                for i in range(start, min(k, start + args.open_commit)):
                    t.save(f"x{i:07d}", small)
        v.close()
        build_s = time.perf_counter() - t0
        info = store_info(p)
        first = {}
        samples = {"r": [], "w": []}
        wrong = 0
        for rep in range(1 + args.open_repeats):
            for kind in (("r", "w") if rep % 2 == 0 else ("w", "r")):
                with Timer() as t:
                    h = numvault.Vault(str(p), mode="r") if kind == "r" else numvault.Vault(str(p))
                    names = h.names()
                h.close()
                if len(names) != k:
                    wrong += 1
                if rep == 0:
                    first[kind] = t.ns / 1e6
                else:
                    samples[kind].append(t.ns)
        # one array read back through a fresh reader
        with numvault.Vault(str(p), mode="r") as h:
            if not np.array_equal(h.load(f"x{k - 1:07d}"), small):
                wrong += 1
        e = {"arrays": k, "build_s": build_s, "store": info, "first_open_ms": first,
             "read_only": stats(samples["r"]), "writer": stats(samples["w"]),
             "samples_ns": samples, "wrong": wrong}
        out["stores"].append(e)
        log(f"  open {k:>9,} arrays: r {fmt_ms(e['read_only']['median_ms'])}, "
            f"w {fmt_ms(e['writer']['median_ms'])} (build {build_s:.1f} s, "
            f"{info['data_files']:,} data files, log {info['log_bytes'] / 1e6:.2f} MB)"
            + (f" WRONG {wrong}" if wrong else ""))
        if not args.keep:
            rm(p)
    return out


def part_append(args, root: Path) -> dict:
    out = {"what": "one append of 100 x 10 float32 rows on an open writer handle "
                   "(sync='flush', no flush in the timed part); array grown beforehand "
                   "with sync='never' appends of --chunk-rows rows, then closed and reopened",
           "sizes": []}
    p = root / "append"
    rm(p)
    filler = Filler(args.chunk_rows, args.seed)
    need = max(args.append_rows) * COLS * 4
    if need * 1.1 + 2**30 > free_bytes(root):
        sizes = [n for n in args.append_rows if n * COLS * 4 * 1.1 + 2**30 <= free_bytes(root)]
        out["skipped"] = (f"not enough free disk for {max(args.append_rows):,} rows "
                          f"({need / 1e9:.1f} GB); sizes up to {max(sizes or [0]):,}")
        log("  append: " + out["skipped"])
    else:
        sizes = list(args.append_rows)
    have = 0
    measured: list[tuple[int, int]] = []  # row ranges of the timed appends
    rng = np.random.default_rng(args.seed + 1)
    for n in sizes:
        t0 = time.perf_counter()
        v = numvault.Vault(str(p), sync="never")
        have = grow(v, filler, have, n)
        v.close()
        build_s = time.perf_counter() - t0
        rows = rng.random((100, COLS), dtype=DT)
        h = numvault.Vault(str(p))
        start = h.shape(ARR)[0]
        samples = []
        for rep in range(args.warmup_ops + args.repeats):
            with Timer() as t:
                h.append(ARR, rows)
            if rep >= args.warmup_ops:
                samples.append(t.ns)
        added = args.warmup_ops + args.repeats
        wrong = 0
        if h.shape(ARR)[0] != start + 100 * added:
            wrong += 1
        if not np.array_equal(h.getitem(ARR, slice(-100, None)), rows):
            wrong += 1
        # filler rows (not one of the 100-row blocks appended at a smaller size)
        chk = np.array([i for i in sorted({0, start // 3, start // 2, start - 1})
                        if not any(a <= i < b for a, b in measured)], np.int64)
        if chk.size and not np.array_equal(h.getitem(ARR, chk), filler.rows(chk)):
            wrong += 1
        h.close()
        have = start + 100 * added
        measured.append((start, have))
        info = store_info(p)
        e = {"rows": start, "build_s": build_s, "store": info, "append": stats(samples),
             "samples_ns": samples, "wrong": wrong}
        out["sizes"].append(e)
        log(f"  append to {start:>13,} rows: median {fmt_ms(e['append']['median_ms'])}, "
            f"p90 {fmt_ms(e['append']['p90_ms'])} (grown in {build_s:.1f} s; "
            f"{info['data_files']} data files)" + (f" WRONG {wrong}" if wrong else ""))
        # the appended 100-row blocks stay; the next growth continues after them
        # with the filler's rows for those positions
    if not args.keep:
        rm(p)
    return out


def part_replace(args, root: Path) -> dict:
    n, per = args.replace_rows, args.replace_per_call
    out = {"what": f"one replace of {per:,} random rows (unique, unsorted) of a {n:,} x {COLS} "
                   "float32 array on an open writer handle (sync='flush'), after the given "
                   "number of rows were replaced before on the same handle (in calls of "
                   f"{per:,} rows, untimed; the timed calls count too)",
           "rows": n, "per_call": per, "phases": []}
    p = root / "replace"
    rm(p)
    rng = np.random.default_rng(args.seed + 2)
    model = rng.random((n, COLS), dtype=DT)
    v = numvault.Vault(str(p), sync="never")
    v.save(ARR, model)
    v.close()
    h = numvault.Vault(str(p))
    done = 0

    def one():
        idx = rng.choice(n, per, replace=False).astype(np.int64)
        vals = rng.random((per, COLS), dtype=DT)
        return idx, vals

    for prior in args.replace_prior:
        t0 = time.perf_counter()
        while done < prior:
            idx, vals = one()
            h.replace(ARR, idx, vals)
            model[idx] = vals
            done += per
        fill_s = time.perf_counter() - t0
        at = {"replaced_before": done, "log_bytes": wal_bytes(p), "fill_s": fill_s}
        samples = []
        for _ in range(args.repeats):
            idx, vals = one()
            with Timer() as t:
                h.replace(ARR, idx, vals)
            samples.append(t.ns)
            model[idx] = vals
            done += per
        at["replace"] = stats(samples)
        at["samples_ns"] = samples
        out["phases"].append(at)
        log(f"  replace after {at['replaced_before']:>10,} replaced rows: median "
            f"{fmt_ms(at['replace']['median_ms'])}, max {fmt_ms(at['replace']['max_ms'])} "
            f"(log {at['log_bytes'] / 1e6:.1f} MB)")
    ok = np.array_equal(h.load(ARR), model)
    h.close()
    with numvault.Vault(str(p), mode="r") as r:
        ok = ok and np.array_equal(r.load(ARR), model)
    out["wrong"] = 0 if ok else 1
    if not ok:
        log("  replace: WRONG (array differs from the model)")
    if not args.keep:
        rm(p)
    return out


CHILD = r"""
import os, sys
import numpy as np
import numvault
path, n, sync, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rows = np.random.default_rng(seed).random((100, 10), dtype=np.float32)
v = numvault.Vault(path, sync=sync)
for i in range(n):
    v.append("a", rows + np.float32(i))
os._exit(0)
"""


def part_recovery(args, root: Path) -> dict:
    out = {"what": f"a child process opens the store (sync='{args.recovery_sync}'), makes N "
                   "commits (one 100 x 10 float32 append each) and ends with os._exit(0): no "
                   "close, no checkpoint, the records left in the log (a process crash in the "
                   "boot that wrote them). Timed in the parent, each on its own copy of the "
                   "crashed store: Vault(path, mode='r') + names(), and Vault(path) (writer: "
                   "recovery) + names(); a fresh copy of the "
                   f"{args.recovery_base:,}-row base store for each repeat",
           "base_rows": args.recovery_base, "commits": []}
    base = root / "recovery-base"
    work = root / "recovery-work"
    work2 = root / "recovery-work-w"
    rm(base)
    a0 = np.random.default_rng(args.seed + 3).random((args.recovery_base, COLS), dtype=DT)
    with numvault.Vault(str(base), sync="never") as v:
        v.save(ARR, a0)
        v.checkpoint()
    child_seed = args.seed + 4
    rows = np.random.default_rng(child_seed).random((100, COLS), dtype=DT)
    for n in args.recovery_commits:
        sr, sw, logs, child_s = [], [], [], []
        wrong = 0
        for _ in range(args.recovery_repeats):
            rm(work)
            shutil.copytree(base, work)
            t0 = time.perf_counter()
            cp = subprocess.run([sys.executable, "-c", CHILD, str(work), str(n),
                                 args.recovery_sync, str(child_seed)],
                                capture_output=True, text=True)
            child_s.append(time.perf_counter() - t0)
            if cp.returncode != 0:
                raise RuntimeError(f"recovery child failed ({cp.returncode}): {cp.stderr[-2000:]}")
            logs.append(wal_bytes(work))
            # the same crash state twice: one copy for the read-only open, one for the
            # writer's (so neither open sees what the other may have done)
            rm(work2)
            shutil.copytree(work, work2)
            with Timer() as t:
                r = numvault.Vault(str(work), mode="r")
                names = r.names()
            sr.append(t.ns)
            r_rows = r.shape(ARR)[0]
            r.close()
            with Timer() as t:
                w = numvault.Vault(str(work2))
                names_w = w.names()
            sw.append(t.ns)
            expect = args.recovery_base + 100 * n
            if (names != [ARR] or names_w != [ARR] or r_rows != expect
                    or w.shape(ARR)[0] != expect
                    or not np.array_equal(w.getitem(ARR, slice(-100, None)), rows + DT(n - 1))
                    or not np.array_equal(w.getitem(ARR, slice(0, 100)), a0[:100])):
                wrong += 1
            w.close()
        e = {"commits": n, "log_bytes": int(statistics.median(logs)),
             "child_s": statistics.median(child_s),
             "read_only": stats(sr), "writer": stats(sw),
             "samples_ns": {"r": sr, "w": sw}, "wrong": wrong}
        out["commits"].append(e)
        log(f"  recovery after {n:>7,} commits (log {e['log_bytes'] / 1e6:.2f} MB): "
            f"r {fmt_ms(e['read_only']['median_ms'])}, w {fmt_ms(e['writer']['median_ms'])}"
            + (f" WRONG {wrong}" if wrong else ""))
    if not args.keep:
        rm(work)
        rm(work2)
        rm(base)
    return out


HIST_OPS = ["load", "stream", "gather"]


def _read(h, op, idx, bs):
    if op == "load":
        return h.load(ARR)
    if op == "stream":
        return [b for b in h.batches(ARR, bs)]
    return h.getitem(ARR, idx)


def _check(op, got, model, idx):
    if op == "stream":
        return np.array_equal(np.concatenate(got), model)
    if op == "gather":
        return np.array_equal(got, model[idx])
    return np.array_equal(got, model)


def _hist_rounds(handles: dict, model, rounds, warmup, rng, bs):
    """Interleaved rounds over the handles (order rotated per round)."""
    names = list(handles)
    samples = {n: {op: [] for op in HIST_OPS} for n in names}
    wrong = {n: 0 for n in names}
    n_rows = model.shape[0]
    for rnd in range(warmup + rounds):
        idx = rng.choice(n_rows, min(1000, n_rows), replace=False).astype(np.int64)
        k = rnd % len(names)
        for name in names[k:] + names[:k]:
            h = handles[name]
            for op in HIST_OPS:
                with Timer() as t:
                    got = _read(h, op, idx, bs)
                if not _check(op, got, model, idx):
                    wrong[name] += 1
                del got
                if rnd >= warmup:
                    samples[name][op].append(t.ns)
    return samples, wrong


def part_history(args, root: Path) -> dict:
    n = args.history_rows
    out = {"what": f"{n:,} x {COLS} float32; history (one writer handle, sync='flush', shuffled "
                   f"order): {args.history_replaces} replaces of 1,000 random rows, "
                   f"{args.history_appends} appends of 100 rows, {args.history_deletes} "
                   "delete_rows of 100 random rows; then load / stream (10,000-row batches, "
                   "kept) / gather of 1,000 random rows (unique, unsorted) on: the writer "
                   "handle that made the history, a read-only handle opened after it (both "
                   "before any close or checkpoint), and after the writer's close (which "
                   "checkpoints when the log is long) a new read-only handle; against a store "
                   "where the final rows were saved in one call (writer and read-only "
                   "handles). Interleaved rounds, warm page cache",
           "target": HISTORY_TARGET}
    ph, pf = root / "history", root / "history-fresh"
    rm(ph)
    rm(pf)
    rng = np.random.default_rng(args.seed + 5)
    model = rng.random((n, COLS), dtype=DT)
    with numvault.Vault(str(ph)) as v:
        v.save(ARR, model)
    ops = (["replace"] * args.history_replaces + ["append"] * args.history_appends
           + ["delete"] * args.history_deletes)
    rng.shuffle(ops)
    hw = numvault.Vault(str(ph))
    t0 = time.perf_counter()
    for op in ops:
        m = model.shape[0]
        if op == "replace":
            idx = rng.choice(m, min(1000, m), replace=False).astype(np.int64)
            vals = rng.random((idx.size, COLS), dtype=DT)
            hw.replace(ARR, idx, vals)
            model[idx] = vals
        elif op == "append":
            rows = rng.random((100, COLS), dtype=DT)
            hw.append(ARR, rows)
            model = np.concatenate([model, rows])
        else:
            idx = rng.choice(m, 100, replace=False).astype(np.int64)
            hw.delete_rows(ARR, idx)
            model = np.delete(model, idx, axis=0)
    out["history_s"] = time.perf_counter() - t0
    out["final_rows"] = int(model.shape[0])
    out["store_after_history"] = store_info(ph)
    out["info_after_history"] = {k: v for k, v in hw.info(ARR).items()
                                 if isinstance(v, (int, float))}
    with numvault.Vault(str(pf)) as v:
        v.save(ARR, model)
    fw = numvault.Vault(str(pf))
    hr = numvault.Vault(str(ph), mode="r")
    fr = numvault.Vault(str(pf), mode="r")
    handles = {"history-writer": hw, "history-reader": hr, "fresh-writer": fw,
               "fresh-reader": fr}
    s1, w1 = _hist_rounds(handles, model, args.history_rounds, args.warmup, rng, 10_000)
    hr.close()
    t0 = time.perf_counter()
    hw.close()
    out["writer_close_ms"] = (time.perf_counter() - t0) * 1e3
    out["store_after_close"] = store_info(ph)
    hc = numvault.Vault(str(ph), mode="r")
    s2, w2 = _hist_rounds({"history-closed-reader": hc, "fresh-reader": fr}, model,
                          args.history_rounds, args.warmup, rng, 10_000)
    hc.close()
    fr.close()
    fw.close()
    out["samples_ns"] = {**s1, "history-closed-reader": s2["history-closed-reader"],
                         "fresh-reader-2": s2["fresh-reader"]}
    out["wrong"] = {**w1, "history-closed-reader": w2["history-closed-reader"],
                    "fresh-reader-2": w2["fresh-reader"]}
    out["stats"] = {name: {op: stats(v) for op, v in d.items()}
                    for name, d in out["samples_ns"].items()}
    pairs = [("history-writer", "fresh-writer", True),
             ("history-reader", "fresh-reader", True),
             ("history-closed-reader", "fresh-reader-2", False)]
    out["ratios"] = []
    for a, b, targeted in pairs:
        for op in HIST_OPS:
            ma, mb = out["stats"][a][op]["median_ms"], out["stats"][b][op]["median_ms"]
            r = ma / mb
            out["ratios"].append({"history": a, "fresh": b, "op": op, "history_ms": ma,
                                  "fresh_ms": mb, "ratio": r, "targeted": targeted,
                                  "met": (r <= HISTORY_TARGET) if targeted else None})
            log(f"  history {op:6s} {a:22s} {fmt_ms(ma):>8} vs {b:15s} {fmt_ms(mb):>8}: "
                f"{r:.2f}x")
    tr = [r for r in out["ratios"] if r["targeted"]]
    bad = sum(out["wrong"].values())
    out["target_state"] = ("WRONG results" if bad else
                           "met" if all(r["met"] for r in tr) else "NOT MET")
    if not args.keep:
        rm(ph)
        rm(pf)
    return out


class RssSampler(threading.Thread):
    """Peak RssAnon of this process per phase, sampled from /proc/self/status."""

    def __init__(self, period_s=0.02):
        super().__init__(daemon=True)
        self.period = period_s
        self.phase = "start"
        self.peak: dict[str, int] = {}
        self._halt = threading.Event()

    @staticmethod
    def read_kb(key="RssAnon:") -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
        return 0

    def sample(self):
        kb = self.read_kb()
        ph = self.phase
        if kb > self.peak.get(ph, 0):
            self.peak[ph] = kb

    def set_phase(self, ph):
        self.sample()
        self.phase = ph
        self.sample()

    def run(self):
        while not self._halt.wait(self.period):
            self.sample()

    def stop(self):
        self.sample()
        self._halt.set()
        self.join()


def part_huge(args, root: Path) -> dict:
    rows = int(args.huge_gb * 1e9 / (COLS * 4))
    nbytes = rows * COLS * 4
    ram = mem_total()
    out = {"what": "a store of one float32 array (rows x 10) built with sync='never' appends "
                   f"of {args.chunk_rows:,} rows; before each timed read the store's data files "
                   "are fsynced and dropped from the page cache (posix_fadvise DONTNEED); "
                   f"stream = Vault(path, mode='r').batches(name, {args.huge_batch:,}), batches "
                   "dropped, every 256th checked; dd = `dd if=<data file> of=/dev/null bs=1M` "
                   "for each data file of the store, in order (the same bytes); gather = "
                   "getitem of 1,000 random rows (unique, unsorted), each gather on a cold "
                   "cache; peak RssAnon per phase from a sampling thread (20 ms)",
           "rows": rows, "bytes": nbytes, "ram_bytes": ram,
           "larger_than_ram": nbytes > ram}
    if nbytes <= ram:
        log(f"  huge: {nbytes / 1e9:.2f} GB is not larger than RAM ({ram / 1e9:.1f} GB): the "
            "code runs, but this is not the larger-than-RAM measurement")
    if nbytes * 1.05 + 2**30 > free_bytes(root):
        out["skipped"] = (f"not enough free disk: need {nbytes / 1e9:.1f} GB, "
                          f"have {free_bytes(root) / 1e9:.1f} GB")
        log("  huge: " + out["skipped"])
        return out
    p = root / "huge"
    rm(p)
    filler = Filler(args.chunk_rows, args.seed + 6)
    rss = RssSampler()
    rss.start()
    try:
        rss.set_phase("build")
        t0 = time.perf_counter()
        v = numvault.Vault(str(p), sync="never")
        grow(v, filler, 0, rows)
        v.close()
        out["build_s"] = time.perf_counter() - t0
        files = data_files(p)
        out["data_files"] = len(files)
        out["data_file_bytes"] = sum(f.stat().st_size for f in files)
        log(f"  huge: built {rows:,} rows ({nbytes / 1e9:.2f} GB) in {out['build_s']:.1f} s, "
            f"{len(files)} data files")
        drop_cache(files)  # also makes them clean
        runs = {"stream_s": [], "dd_s": [], "dd_report": []}
        wrong = 0
        for rep in range(args.huge_repeats):
            rss.set_phase("stream")
            drop_cache(files)
            got = 0
            with Timer() as t:
                with numvault.Vault(str(p), mode="r") as h:
                    for i, b in enumerate(h.batches(ARR, args.huge_batch)):
                        if i % 256 == 0:
                            s = i * args.huge_batch
                            if not np.array_equal(b, filler.rows(np.arange(s, s + b.shape[0]))):
                                wrong += 1
                        got += b.shape[0]
                        del b
            if got != rows:
                wrong += 1
            runs["stream_s"].append(t.ns / 1e9)
            rss.set_phase("dd")
            drop_cache(files)
            t0 = time.perf_counter()
            rep_lines = []
            for f in files:
                cp = subprocess.run(["dd", f"if={f}", "of=/dev/null", "bs=1M"],
                                    capture_output=True, text=True)
                if cp.returncode != 0:
                    raise RuntimeError(f"dd failed: {cp.stderr}")
                rep_lines.append(cp.stderr.strip().splitlines()[-1] if cp.stderr else "")
            runs["dd_s"].append(time.perf_counter() - t0)
            runs["dd_report"].append(rep_lines[-1] if rep_lines else "")
            log(f"  huge pass {rep}: stream {nbytes / runs['stream_s'][-1] / 1e9:.2f} GB/s, "
                f"dd {out['data_file_bytes'] / runs['dd_s'][-1] / 1e9:.2f} GB/s")
        rss.set_phase("gather")
        rng = np.random.default_rng(args.seed + 7)
        gs = []
        with numvault.Vault(str(p), mode="r") as h:
            for _ in range(args.huge_gathers):
                idx = rng.choice(rows, min(1000, rows), replace=False).astype(np.int64)
                drop_cache(files)
                with Timer() as t:
                    g = h.getitem(ARR, idx)
                gs.append(t.ns)
                if not np.array_equal(g, filler.rows(idx)):
                    wrong += 1
        rss.set_phase("end")
    finally:
        rss.stop()
    out["runs"] = runs
    out["stream_gbps"] = nbytes / statistics.median(runs["stream_s"]) / 1e9
    out["dd_gbps"] = out["data_file_bytes"] / statistics.median(runs["dd_s"]) / 1e9
    out["stream_vs_dd"] = out["stream_gbps"] / out["dd_gbps"]
    out["gather"] = stats(gs)
    out["gather_samples_ns"] = gs
    out["peak_rss_anon_mb"] = {k: v / 1024 for k, v in rss.peak.items()}
    out["vm_hwm_mb"] = RssSampler.read_kb("VmHWM:") / 1024
    out["wrong"] = wrong
    log(f"  huge: stream {out['stream_gbps']:.2f} GB/s vs dd {out['dd_gbps']:.2f} GB/s "
        f"({out['stream_vs_dd']:.2f}x); gather of 1,000 rows median "
        f"{fmt_ms(out['gather']['median_ms'])}; peak RssAnon MB "
        + ", ".join(f"{k} {v:.0f}" for k, v in out["peak_rss_anon_mb"].items())
        + (f" WRONG {wrong}" if wrong else ""))
    if not args.keep:
        rm(p)
    return out


# --------------------------------------------------------------------------
def _flat(vals):
    vals = [v for v in vals if v]
    return (max(vals) / min(vals)) if len(vals) >= 2 else None


def render_md(allres) -> str:
    P = allres["parts"]
    out = ["# Costs that stay flat (bench/growth.py)", "",
           f"Command: `{allres['command']}`", "", "## Machine", "",
           machine_md(allres["machine"]), ""]
    if allres.get("quick"):
        out += ["**--quick: tiny sizes, a smoke run; not results.**", ""]
    if "open" in P:
        o = P["open"]
        out += ["## Open time against the number of arrays", "", o["what"] + ".", "",
                "| arrays | data files | log | read-only open, median (p90) | writer open, "
                "median (p90) | first open after build r / w | build |",
                "|---|---|---|---|---|---|---|"]
        for e in o["stores"]:
            out.append(
                f"| {e['arrays']:,} | {e['store']['data_files']:,} | "
                f"{e['store']['log_bytes'] / 1e6:.2f} MB | {fmt_ms(e['read_only']['median_ms'])} "
                f"({fmt_ms(e['read_only']['p90_ms'])}) | {fmt_ms(e['writer']['median_ms'])} "
                f"({fmt_ms(e['writer']['p90_ms'])}) | {fmt_ms(e['first_open_ms'].get('r'))} / "
                f"{fmt_ms(e['first_open_ms'].get('w'))} | {e['build_s']:.1f} s |"
                + (" WRONG" if e["wrong"] else ""))
        fr = _flat([e["read_only"]["median_ms"] for e in o["stores"]])
        fw = _flat([e["writer"]["median_ms"] for e in o["stores"]])
        if fr:
            out += ["", f"Largest / smallest store: read-only {fr:.2f}x, writer {fw:.2f}x."]
        out.append("")
    if "append" in P:
        a = P["append"]
        out += ["## Append of 100 rows against the array's length", "", a["what"] + ".", "",
                "| rows before | median | p90 | max | data files | grown in |",
                "|---|---|---|---|---|---|"]
        for e in a["sizes"]:
            s = e["append"]
            out.append(f"| {e['rows']:,} | {fmt_ms(s['median_ms'])} | {fmt_ms(s['p90_ms'])} | "
                       f"{fmt_ms(s['max_ms'])} | {e['store']['data_files']} | "
                       f"{e['build_s']:.1f} s |" + (" WRONG" if e["wrong"] else ""))
        f = _flat([e["append"]["median_ms"] for e in a["sizes"]])
        if f:
            out += ["", f"Longest / shortest array: {f:.2f}x (medians)."]
        if a.get("skipped"):
            out += ["", f"Skipped: {a['skipped']}"]
        out.append("")
    if "replace" in P:
        r = P["replace"]
        out += [f"## Replace of {r['per_call']:,} random rows against the rows replaced before",
                "", r["what"] + ".", "",
                "| rows replaced before | median | p90 | max | log at start |",
                "|---|---|---|---|---|"]
        for e in r["phases"]:
            s = e["replace"]
            out.append(f"| {e['replaced_before']:,} | {fmt_ms(s['median_ms'])} | "
                       f"{fmt_ms(s['p90_ms'])} | {fmt_ms(s['max_ms'])} | "
                       f"{e['log_bytes'] / 1e6:.1f} MB |")
        f = _flat([e["replace"]["median_ms"] for e in r["phases"]])
        if f:
            out += ["", f"Most / least history: {f:.2f}x (medians)."
                    + (" Result WRONG." if r["wrong"] else " Final array checked.")]
        out.append("")
    if "recovery" in P:
        r = P["recovery"]
        out += ["## Reopen after a crash against the log's length", "", r["what"] + ".", "",
                "| commits in the log | log size | read-only open, median | writer open "
                "(recovery), median | writer per commit |", "|---|---|---|---|---|"]
        for e in r["commits"]:
            out.append(f"| {e['commits']:,} | {e['log_bytes'] / 1e6:.2f} MB | "
                       f"{fmt_ms(e['read_only']['median_ms'])} | "
                       f"{fmt_ms(e['writer']['median_ms'])} | "
                       f"{fmt_ms(e['writer']['median_ms'] / e['commits'])} |"
                       + (" WRONG" if e["wrong"] else ""))
        out.append("")
    if "history" in P:
        h = P["history"]
        out += ["## Reads after a history of changes against freshly saved rows", "",
                h["what"] + ".", "",
                f"Target: history / fresh <= {h['target']}x for the handles before any close "
                f"or checkpoint: **{h['target_state']}**. History took {h['history_s']:.2f} s; "
                f"log after it {h['store_after_history']['log_bytes'] / 1e6:.1f} MB, "
                f"{h['store_after_history']['data_files']} data files; the writer's close "
                f"took {fmt_ms(h['writer_close_ms'])} (log after "
                f"{h['store_after_close']['log_bytes'] / 1e6:.2f} MB).", "",
                "| operation | history handle | median | fresh handle | median | ratio |",
                "|---|---|---|---|---|---|"]
        for e in h["ratios"]:
            tag = (" (ok)" if e["met"] else " (OVER)") if e["targeted"] else " (not targeted)"
            out.append(f"| {e['op']} | {e['history']} | {fmt_ms(e['history_ms'])} | "
                       f"{e['fresh']} | {fmt_ms(e['fresh_ms'])} | {e['ratio']:.2f}{tag} |")
        if any(h["wrong"].values()):
            out += ["", f"WRONG results: {h['wrong']}"]
        out.append("")
    if "huge" in P:
        h = P["huge"]
        out += ["## A store larger than RAM", "", h["what"] + ".", ""]
        if h.get("skipped"):
            out += [f"Skipped: {h['skipped']}", ""]
        else:
            out += [f"- {h['rows']:,} rows, {h['bytes'] / 1e9:.2f} GB in {h['data_files']} data "
                    f"files; RAM {h['ram_bytes'] / 1e9:.1f} GB "
                    f"({'larger than RAM' if h['larger_than_ram'] else 'NOT larger than RAM'}); "
                    f"built in {h['build_s']:.1f} s",
                    f"- stream: {h['stream_gbps']:.2f} GB/s; dd: {h['dd_gbps']:.2f} GB/s; "
                    f"stream / dd = {h['stream_vs_dd']:.2f} (passes: stream "
                    + ", ".join(f"{x:.2f} s" for x in h["runs"]["stream_s"]) + "; dd "
                    + ", ".join(f"{x:.2f} s" for x in h["runs"]["dd_s"]) + ")",
                    f"- gather of 1,000 random rows (cold): median "
                    f"{fmt_ms(h['gather']['median_ms'])}, max {fmt_ms(h['gather']['max_ms'])}",
                    "- peak RssAnon per phase: " + ", ".join(
                        f"{k} {v:.0f} MB" for k, v in h["peak_rss_anon_mb"].items())
                    + f"; VmHWM {h['vm_hwm_mb']:.0f} MB",
                    f"- results checked: {'WRONG ' + str(h['wrong']) if h['wrong'] else 'ok'}",
                    ""]
    return "\n".join(out)


def plot(allres, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001
        return False
    P = allres["parts"]
    panels = [k for k in ALL_PARTS if k in P and not P[k].get("skipped")]
    if not panels:
        return False
    ncol = min(3, len(panels))
    nrow = (len(panels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 4.2 * nrow), squeeze=False)
    for ax, k in zip(axes.flat, panels):
        d = P[k]
        if k == "open":
            x = [e["arrays"] for e in d["stores"]]
            for key, lab in (("read_only", "read-only"), ("writer", "writer")):
                ax.plot(x, [e[key]["median_ms"] for e in d["stores"]], "o-", label=lab)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("arrays in the store")
            ax.set_ylabel("open + names(), ms (median)")
            ax.set_title("open")
        elif k == "append":
            x = [max(1, e["rows"]) for e in d["sizes"]]
            ax.plot(x, [e["append"]["median_ms"] * 1e3 for e in d["sizes"]], "o-",
                    label="median")
            ax.plot(x, [e["append"]["p90_ms"] * 1e3 for e in d["sizes"]], "x--", label="p90")
            ax.set_xscale("log")
            ax.set_xlabel("rows in the array")
            ax.set_ylabel("append 100 rows, µs")
            ax.set_title("append")
        elif k == "replace":
            x = [str(f"{e['replaced_before']:,}") for e in d["phases"]]
            ax.bar(x, [e["replace"]["median_ms"] * 1e3 for e in d["phases"]], label="median")
            ax.scatter(x, [e["replace"]["p90_ms"] * 1e3 for e in d["phases"]], color="k",
                       marker="_", s=200, zorder=3, label="p90")
            ax.set_xlabel("rows replaced before")
            ax.set_ylabel(f"replace {d['per_call']:,} rows, µs")
            ax.set_title("replace")
        elif k == "recovery":
            x = [e["commits"] for e in d["commits"]]
            for key, lab in (("read_only", "read-only"), ("writer", "writer (recovery)")):
                ax.plot(x, [e[key]["median_ms"] for e in d["commits"]], "o-", label=lab)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("commits left in the log")
            ax.set_ylabel("reopen + names(), ms (median)")
            ax.set_title("recovery")
        elif k == "history":
            labels = [f"{e['op']}\n{e['history'].replace('history-', '').replace('-reader', '')}"
                      for e in d["ratios"]]
            cols = ["C0" if e["targeted"] else "C7" for e in d["ratios"]]
            ax.bar(range(len(labels)), [e["ratio"] for e in d["ratios"]], color=cols)
            ax.axhline(d["target"], color="r", ls="--", label=f"target {d['target']}x")
            ax.axhline(1.0, color="k", lw=0.5)
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, fontsize=6)
            ax.set_ylabel("history / fresh (median)")
            ax.set_title("reads after a history")
        elif k == "huge":
            ax.bar(["numvault stream", "dd bs=1M"], [d["stream_gbps"], d["dd_gbps"]],
                   color=["C0", "C7"])
            ax.set_ylabel("GB/s (cold cache)")
            pk = d["peak_rss_anon_mb"]
            ax.set_title(f"huge: {d['bytes'] / 1e9:.2f} GB; peak RssAnon stream "
                         f"{pk.get('stream', 0):.0f} MB", fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("numvault: costs against store size and history"
                 + (" (--quick smoke run, not results)" if allres.get("quick") else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", help=f"comma-separated, of {','.join(ALL_PARTS)} "
                    "(default: all but huge)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    ap.add_argument("--large", action="store_true", help="append part up to 10^9 rows (~40 GB)")
    ap.add_argument("--huge", action="store_true", help="add the huge part (never in CI)")
    ap.add_argument("--huge-gb", type=float, help="size of the huge store in GB (default 40; "
                    "quick 0.05)")
    ap.add_argument("--huge-batch", type=int, default=10_000, help="rows per streamed batch")
    ap.add_argument("--huge-gathers", type=int, default=5)
    ap.add_argument("--huge-repeats", type=int, default=1, help="stream + dd passes")
    ap.add_argument("--repeats", type=int, help="timed repeats per point (default 30; quick 5)")
    ap.add_argument("--warmup-ops", type=int, default=3, help="untimed appends before timing")
    ap.add_argument("--warmup", type=int, default=1, help="discarded rounds (history)")
    ap.add_argument("--open-arrays", help="default 10,1000,100000 (quick 10,100,1000)")
    ap.add_argument("--open-repeats", type=int, help="timed opens of each kind per store "
                    "(default 11; quick 3)")
    ap.add_argument("--open-array-rows", type=int, default=10, help="rows of each small array")
    ap.add_argument("--open-commit", type=int, default=1000, help="arrays per transaction")
    ap.add_argument("--append-rows", help="default 1e3,...,1e8 (+1e9 with --large; quick "
                    "1e3,1e4,1e5)")
    ap.add_argument("--chunk-rows", type=int, help="rows per growth append (default 4194304; "
                    "quick 65536)")
    ap.add_argument("--replace-rows", type=int, help="default 1000000 (quick 100000)")
    ap.add_argument("--replace-prior", help="default 0,100000,1000000 (quick 0,10000,100000)")
    ap.add_argument("--replace-per-call", type=int, default=1000)
    ap.add_argument("--recovery-commits", help="default 10,100,1000,10000 (quick 10,100,1000)")
    ap.add_argument("--recovery-repeats", type=int, help="default 5 (quick 2)")
    ap.add_argument("--recovery-base", type=int, help="rows of the base array (default "
                    "100000; quick 10000)")
    ap.add_argument("--recovery-sync", default="flush", choices=["always", "group", "flush",
                                                                 "never"])
    ap.add_argument("--history-rows", type=int, help="default 1000000 (quick 100000)")
    ap.add_argument("--history-replaces", type=int, help="default 300 (quick 30)")
    ap.add_argument("--history-appends", type=int, help="default 100 (quick 10)")
    ap.add_argument("--history-deletes", type=int, help="default 10 (quick 3)")
    ap.add_argument("--history-rounds", type=int, help="default 7 (quick 3)")
    ap.add_argument("--seed", type=int, default=20240605)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA / "growth"))
    ap.add_argument("--out", help="output dir (default bench/results; quick: bench/results/quick)")
    ap.add_argument("--tag", default="growth", help="output file name stem")
    ap.add_argument("--keep", action="store_true", help="keep the stores")
    args = ap.parse_args(argv)

    q = args.quick
    parts = ([p.strip() for p in args.parts.split(",") if p.strip()] if args.parts
             else [p for p in ALL_PARTS if p != "huge"])
    if args.huge and "huge" not in parts:
        parts.append("huge")
    bad = [p for p in parts if p not in ALL_PARTS]
    if bad:
        ap.error(f"unknown part(s) {bad}; choose from {ALL_PARTS}")
    args.repeats = args.repeats or (5 if q else 30)
    args.open_repeats = args.open_repeats or (3 if q else 11)
    args.open_arrays = int_list(args.open_arrays) if args.open_arrays else (
        [10, 100, 1000] if q else [10, 1000, 100_000])
    if args.append_rows:
        args.append_rows = int_list(args.append_rows)
    else:
        args.append_rows = [10**e for e in range(3, 6 if q else 9)]
        if args.large:
            args.append_rows.append(10**9)
    args.chunk_rows = args.chunk_rows or (65536 if q else 4_194_304)
    args.replace_rows = args.replace_rows or (100_000 if q else 1_000_000)
    args.replace_prior = int_list(args.replace_prior) if args.replace_prior else (
        [0, 10_000, 100_000] if q else [0, 100_000, 1_000_000])
    args.recovery_commits = int_list(args.recovery_commits) if args.recovery_commits else (
        [10, 100, 1000] if q else [10, 100, 1000, 10_000])
    args.recovery_repeats = args.recovery_repeats or (2 if q else 5)
    args.recovery_base = args.recovery_base or (10_000 if q else 100_000)
    args.history_rows = args.history_rows or (100_000 if q else 1_000_000)
    args.history_replaces = args.history_replaces if args.history_replaces is not None else (
        30 if q else 300)
    args.history_appends = args.history_appends if args.history_appends is not None else (
        10 if q else 100)
    args.history_deletes = args.history_deletes if args.history_deletes is not None else (
        3 if q else 10)
    args.history_rounds = args.history_rounds or (3 if q else 7)
    args.huge_gb = args.huge_gb or (0.05 if q else 40.0)

    outdir = Path(args.out) if args.out else (
        Path(__file__).resolve().parent / "results" / ("quick" if q else ""))
    outdir.mkdir(parents=True, exist_ok=True)
    root = Path(args.data_dir)
    root.mkdir(parents=True, exist_ok=True)
    m = machine_info(root, LIBS)
    log(machine_md(m))
    allres = {"machine": m, "command": "python " + " ".join([sys.argv[0]] + (argv or sys.argv[1:])),
              "quick": q, "config": {k: v for k, v in vars(args).items()}, "parts": {}}
    fns = {"open": part_open, "append": part_append, "replace": part_replace,
           "recovery": part_recovery, "history": part_history, "huge": part_huge}
    for part in [p for p in ALL_PARTS if p in parts]:
        log(f"== {part} (load {os.getloadavg()[0]:.2f})")
        t0 = time.time()
        allres["parts"][part] = fns[part](args, root)
        allres["parts"][part]["elapsed_s"] = time.time() - t0
        log(f"   {part}: {time.time() - t0:.1f} s")
    m["loadavg_end"] = list(os.getloadavg())
    m["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    write_json(outdir / f"{args.tag}.json", allres)
    md = render_md(allres)
    (outdir / f"{args.tag}.md").write_text(md)
    png = plot(allres, outdir / f"{args.tag}.png")
    log("")
    log(md)
    log(f"wrote {outdir}/{args.tag}.md, .json" + (", .png" if png else " (no matplotlib: no plot)"))
    if not args.keep:
        try:
            root.rmdir()
        except OSError:
            pass


if __name__ == "__main__":
    main()
