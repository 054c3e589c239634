"""Shared helpers for the numvault Python benchmarks (compare.py, ingest.py).

Nothing here is timed; it describes the machine, sizes directories and
summarises samples.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / "target" / "bench-py"


def now_ns() -> int:
    return time.perf_counter_ns()


class Timer:
    """Context manager measuring one interval with GC disabled."""

    __slots__ = ("ns", "_t0", "_gc")

    def __enter__(self):
        self._gc = gc.isenabled()
        gc.disable()
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc):
        self.ns = time.perf_counter_ns() - self._t0
        if self._gc:
            gc.enable()
        return False


def dir_size(path: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of a file or a directory tree."""
    path = Path(path)
    if not path.exists():
        return 0, 0
    if path.is_file():
        st = path.stat()
        return st.st_size, st.st_blocks * 512
    app = alloc = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except FileNotFoundError:
                continue
            app += st.st_size
            alloc += st.st_blocks * 512
    return app, alloc


def summarize(samples_ns: list[int]) -> dict:
    if not samples_ns:
        return {}
    s = sorted(samples_ns)
    return {
        "n": len(s),
        "best_ms": s[0] / 1e6,
        "median_ms": statistics.median(s) / 1e6,
        "max_ms": s[-1] / 1e6,
    }


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def _fs_of(path: Path) -> dict:
    path = Path(path).resolve()
    best = ("", "", "")
    for line in _read("/proc/mounts").splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        dev, mnt, fstype, opts = parts[:4]
        if str(path).startswith(mnt) and len(mnt) >= len(best[1]):
            best = (dev, mnt, fstype, opts)
    info = {"device": best[0], "mount": best[1], "fstype": best[2],
            "options": best[3] if len(best) > 3 else ""}
    dev = os.path.basename(best[0]) if best[0] else ""
    rot = _read(f"/sys/block/{dev}/queue/rotational").strip()
    if rot:
        info["rotational"] = rot == "1"
    try:
        st = os.statvfs(path)
        info["size_gb"] = round(st.f_blocks * st.f_frsize / 2**30, 1)
        info["free_gb"] = round(st.f_bavail * st.f_frsize / 2**30, 1)
    except OSError:
        pass
    return info


def lib_versions(names: list[str]) -> dict:
    out = {}
    for n in names:
        try:
            m = importlib.import_module(n)
            out[n] = getattr(m, "__version__", "?")
        except Exception as e:  # noqa: BLE001
            out[n] = f"not importable ({type(e).__name__}: {e})"[:200]
    return out


def git_rev() -> str:
    rev = _sh(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _sh(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return rev + ("+dirty" if dirty else "")


def numvault_build() -> str:
    try:
        import glob

        import numvault

        d = os.path.dirname(numvault.__file__)
        so = glob.glob(os.path.join(d, "_core*.so"))
        if not so:
            return d
        t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(so[0])))
        note = os.environ.get("NUMVAULT_BUILD_NOTE", "")
        return f"{so[0]} (built {t}{'; ' + note if note else ''})"
    except Exception as e:  # noqa: BLE001
        return f"not importable: {e}"


def machine_info(data_dir: Path, libs: list[str]) -> dict:
    cpu = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal"):
            mem_kb = int(line.split()[1])
    hyp = "KVM" if "hypervisor" in _read("/proc/cpuinfo") else ""
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "virtualized": hyp or "no",
        "ram_gb": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "data_dir": str(data_dir),
        "filesystem": _fs_of(data_dir),
        "loadavg_start": list(os.getloadavg()),
        "libraries": lib_versions(libs),
        "repo_commit": git_rev(),
        "numvault_build": numvault_build(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def machine_md(m: dict) -> str:
    fs = m["filesystem"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    disk = f"{fs.get('fstype')} on {fs.get('device')} (mount {fs.get('mount')}"
    if "rotational" in fs:
        disk += (", kernel flags it rotational (virtual disk)" if fs["rotational"]
                 else ", non-rotational")
    disk += f", {fs.get('free_gb')} of {fs.get('size_gb')} GB free)"
    lines = [
        f"- CPU: {m['cpu']}, {m['cores']} cores (virtualized: {m['virtualized']})",
        f"- RAM: {m['ram_gb']} GiB; kernel {m['kernel']}; Python {m['python']}",
        f"- Disk: {disk}; data dir {m['data_dir']}",
        f"- Libraries: {libs}",
        f"- numvault repo commit at run time: {m['repo_commit']}; installed build: "
        f"{m.get('numvault_build')}; started {m['started']}",
        f"- Load average at start {fmt_load(m['loadavg_start'])}"
        + (f", at end {fmt_load(m['loadavg_end'])}" if m.get("loadavg_end") else "")
        + " (shared VM: other work was running)",
    ]
    return "\n".join(lines)


def fmt_load(l) -> str:
    return "/".join(f"{x:.2f}" for x in l)


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    if ms >= 1:
        return f"{ms:.2f} ms"
    if ms >= 0.01:
        return f"{ms * 1000:.0f} µs"
    return f"{ms * 1000:.1f} µs"


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=str)
    os.replace(tmp, path)
