"""numvault.io streams in bounded memory: for each file format, a
subprocess exports a 128 MiB array from a store to the format and imports
it back with a 32 MiB chunk size; its peak RSS (ru_maxrss) may exceed its
baseline (its resident size once the libraries are imported) by at most the
chunk size plus 64 MiB; export and import run in separate processes.
A converter that held the array (or the file) whole would exceed it by
more than 128 MiB. Time is never asserted."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from numvault import Vault

CHUNK = 32 << 20
ROWS, COLS = (128 << 20) // (16 * 8), 16  # 128 MiB of float64
LIMIT = CHUNK + (64 << 20)

SCRIPT = textwrap.dedent("""
    import json, os, resource, sys
    import numpy as np
    import numvault, numvault.io as nio
    fmt, step, store, work = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    chunk = int(sys.argv[5])
    for mod in {mods!r}:
        try:
            __import__(mod)
        except ImportError:
            pass
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # The conversion runs in a child forked after the imports: a forked
    # child's ru_maxrss starts at its resident size, so the peak measures
    # the conversion, not the transient peaks of importing the libraries.
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    base = peak()
    out = os.path.join(work, "x." + fmt)
    back = os.path.join(work, "back")
    if step == "export":
        if fmt == "npy":
            nio.to_npy(store, out, chunk_size=chunk)
        elif fmt == "npz":
            nio.to_npy(store, out, compressed=False, chunk_size=chunk)
        elif fmt == "h5":
            nio.to_hdf5(store, out, compression=None, chunk_size=chunk)
        elif fmt == "zarr":
            nio.to_zarr(store, out, compressor=None, chunk_size=chunk)
        elif fmt == "parquet":
            nio.to_parquet(store, out, compression="none", row_group_size=16384, chunk_size=chunk)
        elif fmt == "feather":
            nio.to_feather(store, out, compression="uncompressed")
        elif fmt == "safetensors":
            nio.to_safetensors_file(store, out)
        elif fmt == "npkg":
            nio.pack(store, out, compression=True)
        result = None
    else:
        if fmt in ("npy", "npz"):
            nio.from_npy(out, back, chunk_size=chunk)
        elif fmt == "h5":
            nio.from_hdf5(out, back, chunk_size=chunk)
        elif fmt == "zarr":
            nio.from_zarr(out, back, chunk_size=chunk)
        elif fmt == "parquet":
            nio.from_parquet(out, back, chunk_size=chunk)
        elif fmt == "feather":
            nio.from_feather(out, back)
        elif fmt == "safetensors":
            nio.from_safetensors_file(out, back, chunk_size=chunk)
        elif fmt == "csv":
            nio.from_csv(os.path.abspath("ints.csv"), back, chunk_size=chunk)
        elif fmt == "npkg":
            nio.unpack(out, back)
        with numvault.Vault(back, "r") as v:
            result = [list(v.shape(n)) for n in v.names()]
    print(json.dumps({{"base": base, "peak": peak(), "shape": result}}), flush=True)
    os._exit(0)
""")

MODS = {
    "npy": [], "npz": ["zipfile"], "h5": ["h5py"], "zarr": ["zarr"], "csv": ["pandas"],
    # pyarrow imports pandas (when installed) on its first NumPy conversion: a
    # library load of ~50 MiB, imported before the baseline like the others
    "parquet": ["pyarrow", "pyarrow.parquet", "pandas"], "feather": ["pyarrow", "pyarrow.ipc", "pyarrow.feather", "pandas"],
    "safetensors": ["safetensors", "safetensors.numpy"], "npkg": ["blake3", "zstandard"],
}


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("mem")
    rng = np.random.default_rng(0)
    with Vault(str(d / "store"), "a") as v:
        step = ROWS // 8
        v.save("big", rng.standard_normal((step, COLS)))
        for _ in range(7):
            v.append("big", rng.standard_normal((step, COLS)))
    # 32 MiB of CSV text that parses into 128 MiB of int64
    line = b"1,2,3,4,5,6,7,8\n"
    with open(d / "ints.csv", "wb") as f:
        for _ in range(16):
            f.write(line * ((2 << 20) // 16))
    return d


FORMATS = ["npy", "npz", "h5", "zarr", "parquet", "feather", "safetensors", "csv", "npkg"]


def _run(fmt, step, store_dir, work):
    """Run one step in a subprocess; returns (growth in bytes, shape)."""
    script = SCRIPT.format(mods=MODS[fmt])
    r = subprocess.run([sys.executable, "-c", script, fmt, step, str(store_dir / "store"), str(work), str(CHUNK)],
                       capture_output=True, text=True, timeout=300, cwd=str(store_dir))
    assert r.returncode == 0, f"{fmt} {step}: " + r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    return res["peak"] - res["base"], res["shape"]


def _pair(fmt, store_dir, work):
    work.mkdir()
    out = []
    if fmt != "csv":
        out.append((fmt, "export") + _run(fmt, "export", store_dir, work))
    out.append((fmt, "import") + _run(fmt, "import", store_dir, work))
    shutil.rmtree(work)  # 256 MiB per format: keep the disk footprint small
    return out


@pytest.mark.slow
def test_peak_rss_is_bounded(big_store, tmp_path):
    """Each format's export (from the store) and import (back into a new
    store), each in its own process measured from its own baseline; two
    formats at a time."""
    from concurrent.futures import ThreadPoolExecutor

    fmts = []
    for fmt in FORMATS:
        try:
            for m in MODS[fmt]:
                if m != "pandas" or fmt == "csv":
                    __import__(m.split(".")[0])
            fmts.append(fmt)
        except ImportError:
            pass
    assert "npy" in fmts and "npkg" in fmts
    with ThreadPoolExecutor(max_workers=2) as ex:
        results = [r for rs in ex.map(lambda f: _pair(f, big_store, tmp_path / f), fmts) for r in rs]
    report = "; ".join(f"{f} {s}: +{g / 2**20:.1f} MiB" for f, s, g, _ in results)
    over = [(f, s, g) for f, s, g, _ in results if g > LIMIT]
    assert not over, f"peak RSS over chunk + 64 MiB ({LIMIT / 2**20:.0f} MiB): {over}; all: {report}"
    for f, s, g, shape in results:
        if s == "import":
            want = [[16 * ((2 << 20) // 16), 8]] if f == "csv" else [[ROWS, COLS]]
            assert shape == want, (f, shape)
