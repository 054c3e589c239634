"""A model-checkpoint series with versions (issue 13; seed 000, Use Case 4).

20 epochs of a set of weight arrays (100 float32 arrays of 500 x 1000, 200 MB
in all) of which 10 % change each epoch; one version per epoch. Each system
keeps every epoch readable:

- numvault: the training loop saves *every* array each epoch (as a checkpoint
  routine does), then ``snapshot(tag="epoch<i>")`` and ``flush()`` (durable).
  Unchanged arrays are found equal and write nothing (FORMAT.md §15.9).
- Lance (pylance): one table (name, data); epoch 0 ``write_dataset``, then
  ``merge_insert`` of the changed rows only: one dataset version per epoch
  (Lance's cheapest path; it needs the caller to know what changed).
- Icechunk (if installed) over Zarr v3: the changed arrays written in a
  writable session, one ``commit`` per epoch (only the changed ones: its
  cheapest path too), no compression.
- ``np.savez``: one file per epoch holding every array.

Reported: time per epoch (median of epochs 1..19; epoch 0 writes everything
for all systems), bytes on disk after the series (allocated blocks), and a
check that epoch 5 reads back exactly from each. Target (issue 13): numvault's
disk <= 1.1 x (1 + 0.1 x 19) x 200 MB and time per epoch below every peer's.

    python bench/checkpoint_series.py [--epochs 20] [--arrays 100] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import numvault

ROWS, COLS = 500, 1000


def disk_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def series(n_arrays: int, epochs: int):
    """The weights at each epoch: a list of dicts name -> array (arrays are
    shared between epochs where they did not change)."""
    rng = np.random.default_rng(0)
    cur = {f"layer{i:03d}": rng.random((ROWS, COLS), dtype=np.float32) for i in range(n_arrays)}
    out = [dict(cur)]
    k = max(1, n_arrays // 10)
    for e in range(1, epochs):
        changed = [f"layer{(e * k + j) % n_arrays:03d}" for j in range(k)]
        cur = dict(cur)
        for n in changed:
            cur[n] = rng.random((ROWS, COLS), dtype=np.float32)
        out.append(cur)
    return out


def changed_names(epochs, e):
    if e == 0:
        return list(epochs[0])
    return [n for n in epochs[e] if epochs[e][n] is not epochs[e - 1][n]]


class NumvaultRun:
    """Durable: each epoch ends with ``flush()`` (fdatasync of what it wrote)."""
    name = "numvault"
    durable = True

    def __init__(self, d: Path):
        self.path = d / "nv"
        self.v = numvault.Vault(str(self.path))

    def epoch(self, epochs, e):
        for n, a in epochs[e].items():
            self.v.save(n, a)
        self.v.snapshot(tag=f"epoch{e}")
        if self.durable:
            self.v.flush()

    def read(self, e, name):
        with self.v.at(f"epoch{e}") as old:
            return old.load(name)

    def close(self):
        self.v.close()


class NumvaultNoSyncRun(NumvaultRun):
    """Like the peers: nothing fsynced per epoch (the default policy syncs
    at close)."""
    name = "numvault (no fsync)"
    durable = False


class LanceRun:
    name = "lance"

    def __init__(self, d: Path):
        import lance  # noqa: F401
        import pyarrow as pa

        self.pa = pa
        self.path = str(d / "ds.lance")
        self.versions = {}

    def table(self, arrays: dict):
        pa = self.pa
        names = list(arrays)
        data = pa.FixedSizeListArray.from_arrays(
            pa.array(np.concatenate([arrays[n].ravel() for n in names])), ROWS * COLS)
        return pa.table({"name": pa.array(names), "data": data})

    def epoch(self, epochs, e):
        import lance

        if e == 0:
            ds = lance.write_dataset(self.table(epochs[0]), self.path)
        else:
            ch = changed_names(epochs, e)
            ds = lance.dataset(self.path)
            ds.merge_insert("name").when_matched_update_all().execute(
                self.table({n: epochs[e][n] for n in ch}))
            ds = lance.dataset(self.path)
        self.versions[e] = ds.version

    def read(self, e, name):
        import lance

        ds = lance.dataset(self.path, version=self.versions[e])
        t = ds.to_table(filter=f"name = '{name}'")
        return np.asarray(t.column("data").combine_chunks().values).reshape(ROWS, COLS)

    def close(self):
        pass


class IcechunkRun:
    name = "icechunk"

    def __init__(self, d: Path):
        import icechunk

        self.ic = icechunk
        self.repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(d / "ic")))
        self.snaps = {}

    def epoch(self, epochs, e):
        import zarr

        s = self.repo.writable_session("main")
        root = zarr.group(store=s.store) if e else zarr.group(store=s.store, overwrite=True)
        for n in changed_names(epochs, e):
            if e == 0:
                arr = root.create_array(n, shape=(ROWS, COLS), dtype="float32",
                                        chunks=(ROWS, COLS), compressors=None)
            else:
                arr = root[n]
            arr[:] = epochs[e][n]
        self.snaps[e] = s.commit(f"epoch {e}")

    def read(self, e, name):
        import zarr

        s = self.repo.readonly_session(snapshot_id=self.snaps[e])
        return zarr.open_group(store=s.store, mode="r")[name][:]

    def close(self):
        pass


class NpzRun:
    name = "npz"

    def __init__(self, d: Path):
        self.dir = d / "npz"
        self.dir.mkdir()

    def epoch(self, epochs, e):
        np.savez(self.dir / f"epoch{e}.npz", **epochs[e])

    def read(self, e, name):
        with np.load(self.dir / f"epoch{e}.npz") as z:
            return z[name]

    def close(self):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--arrays", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="5 epochs of 20 arrays")
    ap.add_argument("--dir", default=None, help="where the stores go (a real disk)")
    ap.add_argument("--out", default="bench/results/checkpoint_series")
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.arrays = 5, 20
    epochs = series(args.arrays, args.epochs)
    set_mb = args.arrays * ROWS * COLS * 4 / 1e6
    runs = [NumvaultRun, NumvaultNoSyncRun, LanceRun, IcechunkRun, NpzRun]
    base = Path(args.dir or Path(__file__).resolve().parent.parent / "target" / "bench-py")
    base.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        for cls in runs:
            d = Path(tmp) / cls.name.replace(" ", "_").replace("(", "").replace(")", "")
            d.mkdir()
            try:
                r = cls(d)
            except ImportError as e:
                print(f"{cls.name}: not installed ({e}); skipped")
                continue
            times = []
            for e in range(args.epochs):
                t = time.perf_counter()
                r.epoch(epochs, e)
                times.append(time.perf_counter() - t)
            check = min(5, args.epochs - 1)
            ok = all(np.array_equal(r.read(check, n), epochs[check][n]) for n in list(epochs[check])[:12])
            r.close()
            results[cls.name] = {
                "epoch0_s": times[0],
                "epoch_median_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
                "epoch_times_s": times,
                "disk_bytes": disk_bytes(d),
                f"epoch{check}_reads_back": ok,
            }
            shutil.rmtree(d, ignore_errors=True)
            print(f"{cls.name}: epoch median {results[cls.name]['epoch_median_s'] * 1e3:.1f} ms, "
                  f"disk {results[cls.name]['disk_bytes'] / 1e6:.0f} MB, reads back: {ok}")
    target = 1.1 * (1 + 0.1 * (args.epochs - 1)) * set_mb * 1e6
    nv = results["numvault"]
    nv_like = results["numvault (no fsync)"]
    peers = {k: v for k, v in results.items() if not k.startswith("numvault")}
    lines = [
        f"# Checkpoint series: {args.epochs} epochs of {args.arrays} x ({ROWS}, {COLS}) float32 "
        f"({set_mb:.0f} MB), 10 % changed per epoch, one version per epoch",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}. "
        "Command: `python bench/checkpoint_series.py" + (" --quick" if args.quick else "") + "`.",
        "",
        "| system | epoch 0 | epoch (median of 1..) | disk after the series | epoch reads back |",
        "|---|---|---|---|---|",
    ]
    for k, v in results.items():
        ok = [x for key, x in v.items() if key.endswith("_reads_back")][0]
        lines.append(f"| {k} | {v['epoch0_s'] * 1e3:.0f} ms | {v['epoch_median_s'] * 1e3:.1f} ms | "
                     f"{v['disk_bytes'] / 1e6:.0f} MB | {ok} |")
    fastest_peer = min((v["epoch_median_s"] for v in peers.values()), default=float("inf"))
    lines += [
        "",
        f"Targets: disk <= {target / 1e6:.0f} MB: numvault {nv['disk_bytes'] / 1e6:.0f} MB "
        f"({'met' if nv['disk_bytes'] <= target else 'MISSED'}); time per epoch below every peer's "
        f"(none of which fsyncs): numvault without fsync {nv_like['epoch_median_s'] * 1e3:.1f} ms vs "
        f"fastest peer {fastest_peer * 1e3:.1f} ms "
        f"({'met' if nv_like['epoch_median_s'] < fastest_peer else 'MISSED'}); durable numvault "
        f"{nv['epoch_median_s'] * 1e3:.1f} ms.",
        "",
        "numvault saves all arrays each epoch and flushes (durable); Lance and Icechunk are "
        "given only the changed arrays (their cheapest path) and do not fsync; np.savez "
        "writes every array and does not fsync.",
    ]
    out = Path(args.out + ("_quick" if args.quick else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
