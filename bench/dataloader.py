"""A PyTorch DataLoader epoch over a 1M x 128 float32 array (512 MB) in
shuffled batches of 256, with num_workers 0 and 2: numvault's ArrayDataset
against the same loop over ``np.load(mmap_mode="r")`` and over h5py.

Every system gets the same Dataset shape: ``__getitems__`` gathers a batch
(256 random rows) into one array and returns it as a tensor, and the
DataLoader passes it through (``collate_fn=numvault.torch.collate``), so the
loop measures the gather plus the DataLoader's own cost. Workers are forked;
each worker opens its own h5py file (h5py handles are not fork-safe). The
files are read once before timing, so every run is from the page cache (the
machine has RAM for all three copies). Runs are interleaved (system order
rotates) and the median of ``--runs`` epochs is reported.

    python bench/dataloader.py [--rows 1000000] [--runs 3]

Writes bench/results/dataloader.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from _common import DEFAULT_DATA  # noqa: E402

import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

import numvault  # noqa: E402
from numvault.torch import ArrayDataset, collate  # noqa: E402

COLS = 128
BATCH = 256


def _pass(batch):
    return collate(batch)


class NpyDataset(Dataset):
    """The same loop over np.load(mmap_mode='r')."""

    def __init__(self, path):
        self.path = path
        self._mm = None
        self._pid = None
        self._len = np.load(path, mmap_mode="r").shape[0]

    def _arr(self):
        if self._mm is None or self._pid != os.getpid():
            self._mm = np.load(self.path, mmap_mode="r")
            self._pid = os.getpid()
        return self._mm

    def __len__(self):
        return self._len

    def __getitem__(self, i):
        return torch.from_numpy(np.array(self._arr()[i]))

    def __getitems__(self, idx):
        out = np.take(self._arr(), np.asarray(idx, dtype=np.int64), axis=0)
        return numvault.torch.Batch(torch.from_numpy(out))


class H5Dataset(Dataset):
    """The same loop over h5py (one file handle per process)."""

    def __init__(self, path):
        import h5py

        self.path = path
        self._f = None
        self._pid = None
        with h5py.File(path, "r") as f:
            self._len = f["x"].shape[0]

    def _ds(self):
        import h5py

        if self._f is None or self._pid != os.getpid():
            self._f = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._f["x"]

    def __getstate__(self):
        d = self.__dict__.copy()
        d["_f"] = None
        return d

    def __len__(self):
        return self._len

    def __getitem__(self, i):
        return torch.from_numpy(self._ds()[i])

    def __getitems__(self, idx):
        # h5py wants increasing, unique indices for a fancy selection.
        u, inv = np.unique(np.asarray(idx, dtype=np.int64), return_inverse=True)
        out = self._ds()[u][inv]
        return numvault.torch.Batch(torch.from_numpy(out))


def make_data(root: Path, rows: int) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    paths = {"numvault": root / "nv", "npy": root / "x.npy", "h5py": root / "x.h5"}
    marker = root / f"rows-{rows}"
    if not marker.exists():
        rng = np.random.default_rng(0)
        a = rng.standard_normal((rows, COLS), dtype=np.float32)
        with numvault.Vault(str(paths["numvault"]), "w") as v:
            v.save("x", a)
        np.save(paths["npy"], a)
        import h5py

        with h5py.File(paths["h5py"], "w") as f:
            f.create_dataset("x", data=a)
        for m in root.glob("rows-*"):
            m.unlink()
        marker.touch()
    return paths


def warm(paths: dict) -> None:
    for p in paths.values():
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        for f in files:
            with open(f, "rb") as fh:
                while fh.read(64 << 20):
                    pass


def dataset(system: str, paths: dict):
    if system == "numvault":
        return ArrayDataset(str(paths["numvault"]), "x")
    if system == "npy":
        return NpyDataset(str(paths["npy"]))
    return H5Dataset(str(paths["h5py"]))


def epoch(ds, workers: int) -> tuple[float, int]:
    dl = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers, collate_fn=_pass,
                    multiprocessing_context="fork" if workers else None)
    t0 = time.perf_counter()
    n = 0
    for xb in dl:
        n += xb.shape[0]
    return time.perf_counter() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--systems", default="numvault,npy,h5py")
    ap.add_argument("--workers", default="0,2")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA / "dataloader")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dataloader")
    args = ap.parse_args()
    systems = args.systems.split(",")
    workers = [int(w) for w in args.workers.split(",")]
    torch.set_num_threads(1)
    paths = make_data(args.data, args.rows)
    warm(paths)
    samples: dict = {f"{s}/{w}": [] for s in systems for w in workers}
    for run in range(args.runs):
        order = systems[run % len(systems):] + systems[: run % len(systems)]
        for w in workers:
            for s in order:
                dt, n = epoch(dataset(s, paths), w)
                assert n == args.rows, (s, n)
                samples[f"{s}/{w}"].append(n / dt)
                print(f"run {run} {s:9s} workers={w}: {n / dt:12,.0f} samples/s ({dt:.2f} s)", flush=True)
    med = {k: statistics.median(v) for k, v in samples.items()}
    info = {
        "rows": args.rows, "cols": COLS, "dtype": "float32", "batch": BATCH, "runs": args.runs,
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "samples_per_s": samples, "median": med,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1))
    lines = [
        f"# DataLoader epoch: {args.rows:,} x {COLS} float32, shuffled batches of {BATCH}",
        "",
        f"Median of {args.runs} epochs (samples/s, higher is better), page cache warm, workers forked; "
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {info['when']}.",
        "",
        "| system | " + " | ".join(f"num_workers={w}" for w in workers) + " |",
        "| --- | " + " | ".join("---:" for _ in workers) + " |",
    ]
    for s in systems:
        label = {"numvault": "numvault ArrayDataset", "npy": "np.load(mmap_mode='r')", "h5py": "h5py"}[s]
        lines.append(f"| {label} | " + " | ".join(f"{med[f'{s}/{w}']:,.0f}" for w in workers) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
