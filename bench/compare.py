#!/usr/bin/env python3
"""Side-by-side benchmark: numvault vs NumPy .npy/.npz, Zarr, HDF5, Parquet, Lance.

One command:  python bench/compare.py [--quick] [--rows 1000000,100000]

All systems run in one process, interleaved: in every round each system runs
each operation once (more repetitions for sub-millisecond operations), in an
order rotated per round. A warm-up round is discarded. Every result is
checked against a NumPy model of what the array must be; wrong results are
marked and never ranked. Outputs go to bench/results/ (markdown, JSON, PNG).

The one-shot (open + op + close) pairs and their targets: numvault
sync="never" against npy (neither syncs), numvault's default sync="flush"
(syncs at close) against npy made durable (os.fsync of the file it wrote,
and of its directory for a save). examples/demo.py runs the same code.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (DEFAULT_DATA, Timer, dir_size, fmt_ms, machine_info,  # noqa: E402
                     machine_md, summarize, write_json)
from systems import NA, PEERS, NumvaultSys, VaultSys, rm  # noqa: E402

COLS = 10
DT = np.float32

OPS = [
    ("save", "Save"),
    ("load", "Full load"),
    ("lazy", "Lazy load (open + first row)"),
    ("take", "Random access, 1,000 rows"),
    ("stream", "Stream all rows, 10,000-row batches"),
    ("replace_rand", "Replace 100 rows, scattered"),
    ("replace_contig", "Replace 100 rows, contiguous"),
    ("append", "Append 100 rows"),
    ("batch", "Batch mode, 100 modifications"),
    ("wbatch", "Writable batch mode, 100 modifications"),
]
OP_LABEL = dict(OPS)
MUTATING = {"save", "replace_rand", "replace_contig", "append", "batch", "wbatch"}
SYNC_POLICIES = ["always", "group", "flush", "never"]

DEFAULT_SYSTEMS = "numvault,numvault-never,vault,npy,npy-durable,npz,zarr,hdf5,parquet,lance"
# One-shot pairs (open + op + close): (numvault system, reference, target ratio).
PAIRS = [
    {"key": "never", "nv": "numvault-never", "ref": "npy", "target": 1.10,
     "title": "target 1: numvault sync=never one-shot <= 1.1x npy (no fsync), every operation"},
    {"key": "flush", "nv": "numvault", "ref": "npy-durable", "target": 1.15,
     "title": "target 2: numvault sync=flush (default) one-shot <= 1.15x durable npy "
              "(write + os.fsync of the file, and of the directory for a save), "
              "every operation"},
]

LIBS = ["numpy", "numvault", "zarr", "h5py", "pyarrow", "lance", "matplotlib"]


# --------------------------------------------------------------------------
class State:
    def __init__(self, sys_):
        self.sys = sys_
        self.model: np.ndarray | None = None
        self.results: dict[str, dict] = {}
        self.sizes: dict[str, list] = {}

    def res(self, op):
        return self.results.setdefault(op, {"op_ns": [], "oneshot_ns": [], "open_ns": [],
                                            "close_ns": [], "wrong": 0, "checked": 0,
                                            "errors": [], "na": None})


def timed(fn, *a):
    with Timer() as t:
        r = fn(*a)
    return r, t.ns


def op_params(op, n, seed):
    rng = np.random.default_rng(seed)
    if op == "take":
        return {"idx": rng.choice(n, 1000, replace=False).astype(np.int64)}
    if op == "replace_rand":
        return {"idx": rng.choice(n, 100, replace=False).astype(np.int64),
                "vals": rng.random((100, COLS), dtype=DT)}
    if op == "replace_contig":
        s = int(rng.integers(0, n - 100))
        return {"idx": np.arange(s, s + 100, dtype=np.int64),
                "vals": rng.random((100, COLS), dtype=DT)}
    if op == "append":
        return {"rows": rng.random((100, COLS), dtype=DT)}
    if op in ("batch", "wbatch"):
        k = min(1000, n)
        return {"mods": [rng.choice(n, k, replace=False).astype(np.int64) for _ in range(100)]}
    return {}


def apply_model(model, op, p):
    if op in ("replace_rand", "replace_contig"):
        model[p["idx"]] = p["vals"]
        return model
    if op == "append":
        return np.concatenate([model, p["rows"]])
    if op in ("batch", "wbatch"):
        one = DT(1.0)
        for idx in p["mods"]:
            model[idx] += one
        return model
    return model


def run_op(st: State, op: str, base: np.ndarray, rnd: int, record: bool, args, log):
    """Run one operation of one system for one round (1..inner repetitions)."""
    s = st.sys
    r = st.res(op)
    if r["na"]:
        return
    spent = 0
    reps = 0
    max_reps = 1 if op == "save" else args.inner
    while reps < max_reps:
        if st.model is None and op != "save":
            return
        n = st.model.shape[0] if st.model is not None else base.shape[0]
        p = op_params(op, n, [args.seed, rnd, OPS.index((op, OP_LABEL[op])), reps])
        t_open = t_close = 0
        ok = True
        try:
            if op == "save":
                h, t_open = timed(s.open_for_save)
                _, t_op = timed(s.save, h, base)
                _, t_close = timed(s.close, h)
                st.model = base.copy()
            elif op == "lazy":
                (row, closer), t_op = timed(s.lazy_first)
                ok = np.array_equal(np.asarray(row).reshape(-1), st.model[0])
                _, t_close = timed(closer)
            else:
                h, t_open = timed(s.open, "replace" if op.startswith("replace") else op)
                try:
                    if op == "load":
                        res, t_op = timed(s.load, h)
                        ok = (isinstance(res, np.ndarray) and res.dtype == DT
                              and np.array_equal(res, st.model))
                        del res
                    elif op == "take":
                        res, t_op = timed(s.take, h, p["idx"])
                        ok = np.array_equal(np.asarray(res), st.model[p["idx"]])
                        del res
                    elif op == "stream":
                        res, t_op = timed(s.stream, h, args.stream_batch)
                        ok = (all(np.asarray(b).shape[0] <= args.stream_batch for b in res)
                              and np.array_equal(np.concatenate([np.asarray(b) for b in res]),
                                                 st.model))
                        del res
                    elif op in ("replace_rand", "replace_contig"):
                        _, t_op = timed(s.replace, h, p["idx"], p["vals"])
                    elif op == "append":
                        _, t_op = timed(s.append, h, p["rows"])
                    elif op == "batch":
                        _, t_op = timed(s.batch, h, p["mods"])
                    elif op == "wbatch":
                        _, t_op = timed(s.wbatch, h, p["mods"])
                    else:
                        raise ValueError(op)
                finally:
                    _, t_close = timed(s.close, h)
                st.model = apply_model(st.model, op, p)
        except NA as e:
            r["na"] = str(e) or "not supported"
            log(f"    {s.name:16s} {op:15s} N/A {r['na']}")
            return
        except Exception as e:  # noqa: BLE001
            msg = f"{type(e).__name__}: {e}"[:300]
            r["errors"].append(msg)
            r["wrong"] += 1
            r["checked"] += 1
            log(f"    {s.name:16s} {op:15s} ERROR {msg}")
            if args.verbose:
                traceback.print_exc()
            _resync(st, log)
            return
        if record:
            r["op_ns"].append(t_op)
            r["oneshot_ns"].append(t_open + t_op + t_close)
            r["open_ns"].append(t_open)
            r["close_ns"].append(t_close)
        if op not in MUTATING:
            r["checked"] += 1
            if not ok:
                r["wrong"] += 1
                log(f"    {s.name:16s} {op:15s} WRONG result")
        reps += 1
        spent += t_open + t_op + t_close
        if spent > args.rep_budget_ms * 1e6:
            break
    if op in MUTATING:
        # verification: reopen through the system's own reader, compare to the model
        r["checked"] += 1
        try:
            got = s.reload()
            good = (got.dtype == DT and got.shape == st.model.shape
                    and np.array_equal(got, st.model))
        except Exception as e:  # noqa: BLE001
            good = False
            r["errors"].append(f"verify: {type(e).__name__}: {e}"[:300])
            got = None
        if not good:
            r["wrong"] += 1
            log(f"    {s.name:16s} {op:15s} WRONG after reload")
            if got is not None:
                st.model = got.copy()
            else:
                _resync(st, log)


def _resync(st, log):
    try:
        st.model = st.sys.reload().copy()
    except Exception as e:  # noqa: BLE001
        log(f"    {st.sys.name}: cannot reload after error ({type(e).__name__}: {e}); "
            "skipping the rest of this round")
        st.model = None


# --------------------------------------------------------------------------
def make_systems(names, root, log):
    systems, skipped = [], {}
    for name in names:
        try:
            if name == "numvault":
                s = NumvaultSys(root)
            elif name == "numvault-never":
                s = NumvaultSys(root, sync="never")
            elif name == "vault":
                s = VaultSys(root)
            else:
                s = PEERS[name](root)
            systems.append(s)
        except Exception as e:  # noqa: BLE001
            skipped[name] = f"{type(e).__name__}: {e}"[:300]
            log(f"  {name}: not available ({skipped[name]})")
    return systems, skipped


def bench_size(nrows, names, args, log):
    root = Path(args.data_dir) / f"cmp-{nrows}"
    rm(root)
    root.mkdir(parents=True)
    systems, skipped = make_systems(names, root, log)
    states = [State(s) for s in systems]
    base = np.random.default_rng(args.seed).random((nrows, COLS), dtype=DT)
    log(f"== {nrows:,} x {COLS} float32 ({base.nbytes / 2**20:.1f} MiB): "
        f"{', '.join(s.name for s in systems)}; {args.rounds} rounds + {args.warmup} warm-up")
    total = args.warmup + args.rounds
    for rnd in range(total):
        record = rnd >= args.warmup
        t0 = time.time()
        k = rnd % max(1, len(states))
        order = states[k:] + states[:k]
        for op, _label in OPS:
            for st in order:
                run_op(st, op, base, rnd, record, args, log)
            if op == "stream" and rnd == 0:
                for st in states:  # size right after the fresh save (+ reads)
                    st.sizes["fresh"] = list(dir_size(st.sys.path))
        if rnd == 0:
            for st in states:
                st.sizes["after"] = list(dir_size(st.sys.path))
        log(f"  round {rnd}{'' if record else ' (warm-up)'} {time.time() - t0:.1f}s "
            f"load {os.getloadavg()[0]:.2f}")
    out = {
        "rows": nrows, "cols": COLS, "dtype": "float32", "raw_bytes": int(base.nbytes),
        "systems": {st.sys.name: {"label": st.sys.label, "note": st.sys.note,
                                  "variant": bool(getattr(st.sys, "variant", False))}
                    for st in states},
        "unavailable": skipped,
        "ops": {},
        "file_size": {st.sys.name: st.sizes for st in states},
    }
    for op, _ in OPS:
        out["ops"][op] = {}
        for st in states:
            r = st.res(op)
            out["ops"][op][st.sys.name] = {
                "na": r["na"],
                "wrong": r["wrong"], "checked": r["checked"], "errors": r["errors"][:5],
                "op": summarize(r["op_ns"]), "oneshot": summarize(r["oneshot_ns"]),
                "open": summarize(r["open_ns"]), "close": summarize(r["close_ns"]),
                "samples_ns": r["op_ns"],
            }
    rm(root) if not args.keep else None
    return out


# --------------------------------------------------------------------------
def bench_sync(nrows, args, log):
    """numvault replace/append under each sync policy + one 4 KiB write+fsync."""
    root = Path(args.data_dir) / f"sync-{nrows}"
    rm(root)
    root.mkdir(parents=True)
    states = []
    skipped = {}
    for pol in SYNC_POLICIES:
        try:
            states.append(State(VaultSys(root, sync=pol)))
        except Exception as e:  # noqa: BLE001
            skipped[pol] = f"{type(e).__name__}: {e}"[:300]
    base = np.random.default_rng(args.seed).random((nrows, COLS), dtype=DT)
    fpath = root / "fsync-probe.bin"
    fd = os.open(fpath, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"\0" * 65536, 0)
    os.fsync(fd)
    buf = os.urandom(4096)
    fs = {"write4k_fsync": [], "write4k_fdatasync": []}
    ops = ["save", "replace_rand", "append"]
    log(f"== sync policies, {nrows:,} rows: {', '.join(s.sys.name for s in states)}")
    for rnd in range(args.warmup + args.rounds):
        record = rnd >= args.warmup
        k = rnd % max(1, len(states))
        order = states[k:] + states[:k]
        for op in ops:
            for st in order:
                run_op(st, op, base, rnd, record, args, log)
        for rep in range(args.inner):
            off = 4096 * (rep % 16)
            with Timer() as t:
                os.pwrite(fd, buf, off)
                os.fsync(fd)
            if record:
                fs["write4k_fsync"].append(t.ns)
            with Timer() as t:
                os.pwrite(fd, buf, off)
                os.fdatasync(fd)
            if record:
                fs["write4k_fdatasync"].append(t.ns)
    os.close(fd)
    out = {"rows": nrows, "unavailable": skipped, "baseline": {k: summarize(v) for k, v in fs.items()},
           "baseline_samples_ns": fs, "policies": {}}
    for st in states:
        pol = st.sys.sync
        out["policies"][pol] = {}
        for op in ops:
            r = st.res(op)
            out["policies"][pol][op] = {"na": r["na"], "wrong": r["wrong"], "checked": r["checked"],
                                        "errors": r["errors"][:5], "op": summarize(r["op_ns"]),
                                        "oneshot": summarize(r["oneshot_ns"]),
                                        "close": summarize(r["close_ns"]),
                                        "samples_ns": r["op_ns"]}
    rm(root) if not args.keep else None
    return out


# --------------------------------------------------------------------------
def status(e):
    if e is None:
        return "absent"
    if e["na"]:
        return "na"
    if e["wrong"]:
        return "wrong"
    if not e["op"]:
        return "absent"
    return "ok"


def cell(e, key, stat, base_ms):
    st = status(e)
    if st == "absent":
        return "—"
    if st == "na":
        return "N/A"
    ms = e[key][stat]
    if st == "wrong":
        return f"WRONG ({e['wrong']}/{e['checked']}) {fmt_ms(ms)}"
    if base_ms:
        return f"{fmt_ms(ms)} (×{ms / base_ms:.2g})" if ms / base_ms < 10 else \
            f"{fmt_ms(ms)} (×{ms / base_ms:.0f})"
    return fmt_ms(ms)


def table(res, key, stat, baseline):
    names = list(res["systems"])
    order = [baseline] + [n for n in names if n != baseline] if baseline in names else names
    hdr = "| Operation | " + " | ".join(res["systems"][n]["label"] for n in order) + " |"
    lines = [hdr, "|" + "---|" * (len(order) + 1)]
    for op, label in OPS:
        row = res["ops"][op]
        b = row.get(baseline)
        base_ms = b[key][stat] if b and status(b) == "ok" else None
        cells = []
        for n in order:
            c = cell(row.get(n), key, stat, None if n == baseline else base_ms)
            cells.append(f"**{c}**" if n == baseline and status(row.get(n)) == "ok" else c)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_rows(res, baseline, key="op", stat="median_ms"):
    rows = []
    for op, label in OPS:
        row = res["ops"][op]
        b = row.get(baseline)
        peers = [(n, e[key][stat]) for n, e in row.items()
                 if n != baseline and not n.startswith("numvault") and status(e) == "ok"
                 and not res["systems"][n].get("variant")]
        best = min(peers, key=lambda x: x[1]) if peers else None
        bst = status(b)
        rows.append({
            "op": op, "label": label, "baseline_status": bst,
            "baseline_ms": b[key][stat] if bst in ("ok", "wrong") else None,
            "best_peer": best[0] if best else None,
            "best_peer_ms": best[1] if best else None,
            "ratio": (b[key][stat] / best[1]) if (best and bst == "ok") else None,
        })
    return rows


def summary_table(res, baseline):
    lines = [f"| Operation | {baseline} median | best correct peer | peer median | "
             f"{baseline} / peer (median) | {baseline} / peer (best-of-runs) |",
             "|---|---|---|---|---|---|"]
    best_rows = {r["op"]: r for r in summary_rows(res, baseline, stat="best_ms")}
    for r in summary_rows(res, baseline):
        rb = best_rows[r["op"]]
        bms = fmt_ms(r["baseline_ms"]) if r["baseline_ms"] is not None else "—"
        if r["baseline_status"] == "wrong":
            bms = "WRONG " + bms
        elif r["baseline_status"] == "na":
            bms = "N/A"
        peer = res["systems"][r["best_peer"]]["label"] if r["best_peer"] else "—"
        ratio = f"{r['ratio']:.3g}" if r["ratio"] is not None else "—"
        ratio_b = f"{rb['ratio']:.3g}" if rb["ratio"] is not None else "—"
        if r["ratio"] is not None:
            ratio += " (behind)" if r["ratio"] > 1.1 else (" (ahead)" if r["ratio"] < 0.9 else " (par)")
        lines.append(f"| {r['label']} | {bms} | {peer} | {fmt_ms(r['best_peer_ms'])} | "
                     f"{ratio} | {ratio_b} |")
    return "\n".join(lines)


def size_table(res, baseline):
    names = list(res["systems"])
    order = [baseline] + [n for n in names if n != baseline] if baseline in names else names
    raw = res["raw_bytes"]
    lines = ["| | " + " | ".join(res["systems"][n]["label"] for n in order) + " |",
             "|" + "---|" * (len(order) + 1)]
    for key, label in (("fresh", "after save (apparent MB, × raw)"),
                       ("fresh", "after save (allocated MB, du)"),
                       ("after", "after one round of mutations (apparent MB)")):
        cells = []
        for n in order:
            v = res["file_size"].get(n, {}).get(key)
            if not v:
                cells.append("—")
                continue
            b = v[1] if "allocated" in label else v[0]
            c = f"{b / 1e6:.2f}"
            if "× raw" in label:
                c += f" (×{b / raw:.3f})"
            cells.append(c)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sync_table(sres):
    bl = sres["baseline"]
    f = bl.get("write4k_fsync", {}).get("median_ms")
    lines = [f"One 4 KiB pwrite + fsync on the same filesystem, same run: median "
             f"{fmt_ms(f)}, best {fmt_ms(bl.get('write4k_fsync', {}).get('best_ms'))}; "
             f"with fdatasync: median {fmt_ms(bl.get('write4k_fdatasync', {}).get('median_ms'))}.",
             "",
             "| sync policy | save median | replace 100 scattered: median (best) | × 4K-fsync | "
             "append 100: median (best) | × 4K-fsync |",
             "|---|---|---|---|---|---|"]
    for pol, ops in sres["policies"].items():
        cells = []
        for op in ("save", "replace_rand", "append"):
            e = ops[op]
            stt = status(e)
            if stt != "ok":
                cells.append(stt.upper() + (f" {e['errors'][:1]}" if e["errors"] else ""))
                if op != "save":
                    cells.append("—")
                continue
            m, b = e["op"]["median_ms"], e["op"]["best_ms"]
            if op == "save":
                cells.append(fmt_ms(m))
            else:
                cells.append(f"{fmt_ms(m)} ({fmt_ms(b)})")
                cells.append(f"{m / f:.2f}" if f else "—")
        lines.append(f"| {pol} | " + " | ".join(cells) + " |")
    if sres.get("unavailable"):
        lines.append("")
        lines.append(f"Unavailable policies: {sres['unavailable']}")
    return "\n".join(lines)


def pair_rows(res):
    """One-shot (open + op + close) ratios of each PAIRS entry, per operation."""
    out = []
    for pr in PAIRS:
        rows = []
        for op, label in OPS:
            row = res["ops"].get(op, {})
            a, b = row.get(pr["nv"]), row.get(pr["ref"])
            sa, sb = status(a), status(b)
            r = {"op": op, "label": label, "nv_status": sa, "ref_status": sb,
                 "nv_ms": None, "ref_ms": None, "nv_best_ms": None, "ref_best_ms": None,
                 "ratio": None, "ratio_best": None, "met": None}
            if sa in ("ok", "wrong"):
                r["nv_ms"], r["nv_best_ms"] = (a["oneshot"]["median_ms"],
                                               a["oneshot"]["best_ms"])
            if sb in ("ok", "wrong"):
                r["ref_ms"], r["ref_best_ms"] = (b["oneshot"]["median_ms"],
                                                 b["oneshot"]["best_ms"])
            if sa == "ok" and sb == "ok":
                r["ratio"] = r["nv_ms"] / r["ref_ms"]
                r["ratio_best"] = r["nv_best_ms"] / r["ref_best_ms"]
                r["met"] = r["ratio"] <= pr["target"]
            rows.append(r)
        out.append({"key": pr["key"], "nv": pr["nv"], "ref": pr["ref"],
                    "target": pr["target"], "title": pr["title"], "rows": rows})
    return out


def _pcell(ms, stt):
    if stt == "absent":
        return "—"
    if stt == "na":
        return "N/A"
    return ("WRONG " if stt == "wrong" else "") + fmt_ms(ms)


def pairs_table(res):
    prs = pair_rows(res)
    lab = lambda n: res["systems"].get(n, {}).get("label", n)  # noqa: E731
    hdr = ["Operation"]
    for p in prs:
        hdr += [lab(p["nv"]), lab(p["ref"]),
                f"ratio: median (vs ≤ {p['target']:g}); best"]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for i, (op, label) in enumerate(OPS):
        cells = [label]
        for p in prs:
            r = p["rows"][i]
            cells += [_pcell(r["nv_ms"], r["nv_status"]), _pcell(r["ref_ms"], r["ref_status"])]
            if r["ratio"] is None:
                cells.append("—")
            else:
                cells.append(f"{r['ratio']:.2f} ({'ok' if r['met'] else 'OVER'}); "
                             f"{r['ratio_best']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(allres):
    """Per size and pair: met / NOT MET / incomplete, with the operations over."""
    out = []
    for res in allres["sizes"]:
        for p in pair_rows(res):
            measured = [r for r in p["rows"] if r["ratio"] is not None]
            over = [r for r in measured if not r["met"]]
            missing = [r["op"] for r in p["rows"] if r["ratio"] is None]
            worst = max(measured, key=lambda r: r["ratio"]) if measured else None
            out.append({
                "rows": res["rows"], "key": p["key"], "title": p["title"],
                "target": p["target"], "nv": p["nv"], "ref": p["ref"],
                "state": ("not measured" if not measured else
                          "NOT MET" if over else "incomplete" if missing else "met"),
                "over": {r["op"]: round(r["ratio"], 3) for r in over},
                "missing": missing,
                "worst": ({"op": worst["op"], "ratio": round(worst["ratio"], 3)}
                          if worst else None),
            })
    return out


def targets_md(allres):
    lines = ["Ratios are medians of one-shot times (open + op + close) of the two systems of a "
             "pair, measured in the same interleaved rounds; per-operation tables under each "
             "size.", ""]
    for pr in PAIRS:
        lines.append(f"- **{pr['title'][0].upper() + pr['title'][1:]}**")
        for t in targets(allres):
            if t["key"] != pr["key"]:
                continue
            s = f"  - {t['rows']:,} rows: **{t['state']}**"
            if t["worst"]:
                s += f"; worst: {OP_LABEL[t['worst']['op']].lower()} {t['worst']['ratio']:.2f}x"
            if t["over"]:
                s += "; over (" + str(len(t["over"])) + "): " + "; ".join(
                    f"{OP_LABEL[o].lower()} {v:.2f}x" for o, v in t["over"].items())
            if t["missing"] and t["state"] != "not measured":
                s += "; not measured or wrong: " + ", ".join(t["missing"])
            if t["state"] == "not measured":
                s += f" ({t['nv']} and {t['ref']} both needed in --systems)"
            lines.append(s)
    return "\n".join(lines)


def chart(res, baseline, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    names = list(res["systems"])
    order = [baseline] + [n for n in names if n != baseline] if baseline in names else names
    ops = [op for op, _ in OPS]
    fig, ax = plt.subplots(figsize=(15, 6.5))
    w = 0.8 / max(1, len(order))
    colors = plt.cm.tab10.colors
    na_marks = []
    for i, n in enumerate(order):
        xs, ys, bests, hatches = [], [], [], []
        for j, op in enumerate(ops):
            e = res["ops"][op].get(n)
            stt = status(e)
            if stt in ("ok", "wrong"):
                xs.append(j + (i - (len(order) - 1) / 2) * w)
                ys.append(e["op"]["median_ms"])
                bests.append(e["op"]["best_ms"])
                hatches.append("xx" if stt == "wrong" else "")
            elif stt == "na":
                na_marks.append((j + (i - (len(order) - 1) / 2) * w, colors[i % 10]))
        bars = ax.bar(xs, ys, w, color=colors[i % 10], label=res["systems"][n]["label"])
        for b, h in zip(bars, hatches):
            if h:
                b.set_hatch(h)
                b.set_edgecolor("red")
        ax.scatter(xs, bests, marker="_", color="black", s=30, zorder=3)
    ax.set_yscale("log")
    allv = [e["op"]["best_ms"] for op in ops for e in res["ops"][op].values()
            if status(e) in ("ok", "wrong")]
    lo = 10 ** np.floor(np.log10(min(allv) / 2)) if allv else 1e-3
    ax.set_ylim(bottom=lo)
    for x, c in na_marks:
        ax.text(x, lo * 1.15, "N/A", rotation=90, ha="center", va="bottom", fontsize=6, color=c)
    ax.set_xticks(range(len(ops)))
    ax.set_xticklabels([OP_LABEL[o].replace(", ", ",\n") for o in ops], fontsize=8)
    ax.set_ylabel("time per operation, ms (log; bar = median, tick = best)")
    mb = res["raw_bytes"] / 2**20
    ax.set_title(f"{res['rows']:,} x {res['cols']} float32 ({mb:.1f} MiB): lower is better; "
                 "hatched red = WRONG result")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="white", edgecolor="red", hatch="xx"))
    labels.append("wrong result")
    ax.legend(handles, labels, fontsize=8, ncol=4)
    ax.grid(axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


METHOD = """\
Method. All systems run in one Python process on the same data (uniform random float32,
seed fixed). Round r runs every operation of every system once (sub-millisecond
operations are repeated up to --inner times within the round, each repetition timed
separately), system order rotated per round; a warm-up round is discarded; the page cache
is warm. Times are per operation: median and best over all recorded samples.
"Op" times exclude opening and closing the handle for systems that have one (seed 000's
method: numvault NumPack, h5py File, zarr array, Lance dataset, the np.load mmap for npy
replace/random access/stream); "one-shot" times include open + op + close. Lazy load is
always open + first row. A write counts as done when the data has been handed to the OS
(h5py: after f.flush()); no system fsyncs in a timed write except numvault's
"always"/"group" policies, numvault's writable session, whose start is logged
durably by design, and "NumPy .npy + fsync" (npy-durable) (numvault's default "flush" syncs at close, which is in the one-shot
time). Every result is compared with a NumPy model (reads: returned values;
writes: the array re-read through a fresh handle after close); a mismatch or an exception
is shown as WRONG (k/n) and never ranked. N/A: the system has no way to do it.
Ratios in cells: system time / numvault time (>1 = numvault faster).
Pairs (one-shot, the targets): numvault sync="never" against npy, neither syncing; numvault's
default sync="flush", which syncs at close, against "npy + fsync" (npy's write, then os.fsync of
the file, and for a save of its directory too). numvault's save opens the previous round's
store with NumPack(path, drop_if_exists=True) (Vault: mode="w"), which empties it in one
atomic commit (in the one-shot time, as the open; the old files are deleted by a later
checkpoint, which a close runs once such garbage passes 256 MiB), while npy's np.save
truncates its previous file inside the op; compare save times one-shot.
"""


def render_md(allres, baseline):
    m = allres["machine"]
    out = ["# numvault vs peers (bench/compare.py)", "",
           f"Command: `{allres['command']}`", "", "## Machine", "", machine_md(m), "",
           "## Method", "", METHOD, "## Targets (one-shot pairs)", "", targets_md(allres), ""]
    if allres.get("unavailable_note"):
        out += [allres["unavailable_note"], ""]
    for res in allres["sizes"]:
        mb = res["raw_bytes"] / 2**20
        out += [f"## {res['rows']:,} rows x {res['cols']} float32 ({mb:.1f} MiB raw)", "",
                f"### Summary: {baseline} vs the best correct peer (op times)", "",
                summary_table(res, baseline), "",
                "### Median op time (ratio = system / numvault)", "",
                table(res, "op", "median_ms", baseline), "",
                "### Best op time", "", table(res, "op", "best_ms", baseline), "",
                "### One-shot: open + op + close, median", "",
                table(res, "oneshot", "median_ms", baseline), "",
                "### One-shot pairs: numvault sync=never vs npy, sync=flush vs npy + fsync", "",
                pairs_table(res), "",
                "### File size on disk", "", size_table(res, baseline), ""]
        if res.get("unavailable"):
            out += [f"Not run: {res['unavailable']}", ""]
    if allres.get("sync"):
        s = allres["sync"]
        out += [f"## numvault sync policies ({s['rows']:,} rows; op time on a freshly opened handle, open and close not timed)", "",
                sync_table(s), ""]
    out += ["## Systems", ""]
    seen = {}
    for res in allres["sizes"]:
        for n, d in res["systems"].items():
            seen[n] = d
    for n, d in seen.items():
        out.append(f"- **{d['label']}**: {d['note']}")
    out.append("")
    return "\n".join(out)


def make_parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--quick", action="store_true", help="small sizes, few rounds (development)")
    ap.add_argument("--rows", help="comma-separated row counts (default 1000000,100000)")
    ap.add_argument("--rounds", type=int, help="recorded rounds (default 7; quick 3)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--inner", type=int, default=5, help="max repetitions per op per round")
    ap.add_argument("--rep-budget-ms", type=float, default=50.0,
                    help="stop repeating an op within a round after this much time")
    ap.add_argument("--systems", default=DEFAULT_SYSTEMS,
                    help="numvault = NumPack API (sync=flush), numvault-never = the same with "
                         "sync=never, vault = numvault.Vault API, then peers (npy-durable = npy "
                         "+ fsync)")
    ap.add_argument("--baseline", default="numvault",
                    help="system the ratios are computed against (if unavailable: npy)")
    ap.add_argument("--no-sync", action="store_true", help="skip the sync-policy section")
    ap.add_argument("--sync-rows", type=int, help="rows for the sync section (default: smallest)")
    ap.add_argument("--stream-batch", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=20240605)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA))
    ap.add_argument("--out", help="output dir (default bench/results, quick: bench/results/quick)")
    ap.add_argument("--tag", default="compare", help="output file name stem")
    ap.add_argument("--keep", action="store_true", help="keep data files")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--render", metavar="JSON", help="only re-render the markdown and charts "
                    "of an earlier run's JSON (written next to it)")
    return ap


def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.render:
        import json

        p = Path(args.render)
        allres = json.loads(p.read_text())
        md = render_md(allres, allres["baseline"])
        p.with_suffix(".md").write_text(md)
        for res in allres["sizes"]:
            chart(res, allres["baseline"], p.parent / f"{p.stem}_{res['rows']}.png")
        print(md)
        return

    if args.rows:
        rows = [int(x.replace("_", "")) for x in args.rows.split(",")]
    else:
        rows = [100_000, 10_000] if args.quick else [1_000_000, 100_000]
    if args.rounds is None:
        args.rounds = 3 if args.quick else 7
    outdir = Path(args.out) if args.out else (
        Path(__file__).resolve().parent / "results" / ("quick" if args.quick else ""))
    outdir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, flush=True)

    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    m = machine_info(data_dir, LIBS)
    log(machine_md(m))
    baseline = args.baseline
    try:
        import numvault  # noqa: F401
    except Exception as e:  # noqa: BLE001
        log(f"numvault not importable: {e}")
        if baseline == "numvault":
            baseline = "npy"
    allres = {"machine": m, "command": "python " + " ".join([sys.argv[0]] + (argv or sys.argv[1:])),
              "config": {k: v for k, v in vars(args).items()}, "baseline": baseline, "sizes": []}
    for n in rows:
        allres["sizes"].append(bench_size(n, names, args, log))
    if not args.no_sync and "numvault" in names:
        try:
            import numvault  # noqa: F401,F811
            allres["sync"] = bench_sync(args.sync_rows or min(rows), args, log)
        except ImportError:
            pass
    m["loadavg_end"] = list(os.getloadavg())
    m["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    for res in allres["sizes"]:
        res["summary"] = summary_rows(res, baseline)
        res["pairs"] = pair_rows(res)
    allres["targets"] = targets(allres)
    write_json(outdir / f"{args.tag}.json", allres)
    md = render_md(allres, baseline)
    (outdir / f"{args.tag}.md").write_text(md)
    for res in allres["sizes"]:
        chart(res, baseline, outdir / f"{args.tag}_{res['rows']}.png")
    log("")
    log(md)
    log(f"wrote {outdir}/{args.tag}.md, .json, _<rows>.png")


if __name__ == "__main__":
    main()
