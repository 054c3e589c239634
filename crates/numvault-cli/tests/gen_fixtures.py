"""Cross-check numvault-cli's formats module against NumPy and pyarrow.

    python gen_fixtures.py gen DIR    # write .npy/.npz/.parquet files + DIR/expected.json
    NUMVAULT_FIXTURES=DIR cargo test -p numvault-cli --lib -- --ignored fixtures
                                      # loads them, and exports DIR/out/* + exported.json
    python gen_fixtures.py check DIR  # np.load / pyarrow / np.loadtxt read the exports

Nothing generated here is committed.
"""

import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DTYPES = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"]
NAMES = {np.dtype(d).name: d for d in DTYPES}


def sample(code, shape):
    n = int(np.prod(shape))
    x = np.arange(n, dtype=np.int64) * 37 - 50
    dt = np.dtype(code)
    if dt.kind == "b":
        a = x % 3 == 0
    elif dt.kind in "iu":
        a = x.astype(dt)
    elif dt.kind == "c":
        a = (x / 3.0 - 1j * x).astype(dt)
    else:
        a = (x / 7.0).astype(dt)
    return a.reshape(shape)


def entry(file, member, a):
    a = np.asarray(a)
    le = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"))
    shape = list(a.shape) or [1]
    return {"file": file, "member": member, "dtype": a.dtype.name, "shape": shape,
            "hex": le.tobytes().hex()}


def gen(d):
    os.makedirs(d, exist_ok=True)
    exp = []
    for code in DTYPES:
        name = np.dtype(code).name
        for tag, arr in [
            ("c", sample(code, (3, 4))),
            ("be", sample(">" + code if code != "?" else code, (2, 3, 2))),
            ("f", np.asfortranarray(sample(code, (3, 4, 2)))),
            ("bef", np.asfortranarray(sample(code, (4, 3)).astype(np.dtype(code).newbyteorder(">")))),
            ("0d", sample(code, ())),
            ("empty", sample(code, (0, 3))),
        ]:
            f = f"{name}_{tag}.npy"
            np.save(os.path.join(d, f), arr)
            exp.append(entry(f, None, arr))
    for v in [(2, 0), (3, 0)]:
        f = f"v{v[0]}.npy"
        arr = sample("f8", (5,))
        with open(os.path.join(d, f), "wb") as fh:
            np.lib.format.write_array(fh, arr, version=v)
        exp.append(entry(f, None, arr))
    members = {"a": sample("f4", (2, 3)), "sub/b": sample(">c16", (4,)), "s": sample("i8", ()),
               "f": np.asfortranarray(sample("u2", (3, 5)))}
    for f, fn in [("plain.npz", np.savez), ("compressed.npz", np.savez_compressed)]:
        fn(os.path.join(d, f), **members)
        exp += [entry(f, k, v) for k, v in members.items()]

    cols = {k: sample(k, (6,)) for k in ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"]}
    table = pa.table({np.dtype(k).name: v for k, v in cols.items()})
    pq.write_table(table, os.path.join(d, "mixed.parquet"))
    exp += [entry("mixed.parquet", np.dtype(k).name, v) for k, v in cols.items()]
    same = sample("f8", (40, 3))
    t = pa.table({f"c{j}": same[:, j] for j in range(3)})
    for comp in ["snappy", "zstd", "gzip", "lz4", "none"]:
        for page in ["1.0", "2.0"]:
            f = f"same_{comp}_{page}.parquet"
            pq.write_table(t, os.path.join(d, f), compression=comp, data_page_version=page,
                           row_group_size=16)
            exp.append(entry(f, None, same))
    for page in ["1.0", "2.0"]:
        f = f"bss_{page}.parquet"
        pq.write_table(t, os.path.join(d, f), use_dictionary=False, use_byte_stream_split=True,
                       data_page_version=page, compression="zstd")
        exp.append(entry(f, None, same))
    one = sample("i4", (7,))
    pq.write_table(pa.table({"x": one}), os.path.join(d, "one.parquet"), use_dictionary=False)
    exp.append(entry("one.parquet", None, one))
    pq.write_table(pa.table({"n": pa.array([1.0, None, 3.0])}), os.path.join(d, "nulls.parquet"))
    exp.append({"file": "nulls.parquet", "error": "null"})
    np.save(os.path.join(d, "str.npy"), np.array(["ab", "cde"]))
    exp.append({"file": "str.npy", "error": "'<U3'"})
    with open(os.path.join(d, "expected.json"), "w") as fh:
        json.dump(exp, fh)
    print(f"wrote {len(exp)} expectations to {d}")


def check(d):
    out = os.path.join(d, "out")
    with open(os.path.join(out, "exported.json")) as fh:
        exported = json.load(fh)
    bad = 0
    for e in exported:
        path = os.path.join(out, e["file"])
        want = np.frombuffer(bytes.fromhex(e["hex"]), dtype=np.dtype(NAMES[e["dtype"]]).newbyteorder("<"))
        want = want.reshape(e["shape"])
        if path.endswith(".npy"):
            got = np.load(path)
            ok = got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()
        elif path.endswith(".parquet"):
            t = pq.read_table(path)
            shape = json.loads(t.schema.metadata[b"numvault.shape"])
            cols = [c.to_numpy() for c in t.columns]
            got = np.stack(cols, axis=1).reshape(shape) if cols else np.zeros(shape, want.dtype)
            ok = got.dtype == want.dtype and list(got.shape) == e["shape"] and got.tobytes() == want.tobytes()
        else:
            if want.size == 0:
                ok = os.path.getsize(path) == 0
                if not ok:
                    bad += 1
                continue
            got = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
            w = want.reshape(want.shape[0], -1).astype(np.float64)
            if want.dtype.kind == "f" and want.dtype.itemsize < 8:
                got = got.astype(want.dtype).astype(np.float64)
            ok = got.shape == w.shape and np.array_equal(got, w, equal_nan=True)
        if not ok:
            bad += 1
            print("MISMATCH", e["file"], e["dtype"], e["shape"], getattr(got, "dtype", None), getattr(got, "shape", None))
    print(f"checked {len(exported)} exported files, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    cmd, d = sys.argv[1], sys.argv[2]
    sys.exit(gen(d) if cmd == "gen" else check(d))
