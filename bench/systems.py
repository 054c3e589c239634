"""Adapters: one class per storage system, all with the same operations.

Conventions (they matter for fairness, see README.md):
- An operation's timed part ends once the data has been handed to the OS,
  i.e. is visible to another process reading the files (h5py: f.flush()).
  Nobody fsyncs in the timed part except numvault with sync="always" /
  "group" where that is the policy, and the "npy-durable" variant of npy,
  whose writes end with os.fsync of the file (and, for a save, of its
  directory): the durable reference for numvault's default sync="flush",
  which syncs at close (in the one-shot time).
- open()/close() are timed separately by the harness, so both the pure
  operation time (seed 000's method) and a one-shot open+op+close time are
  reported.
- Arrays are 2-D float32 (rows x 10), C order. Positions are row numbers.

A method raises NA when the system cannot do the operation at all.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

ARRAY = "a"  # array / dataset / table name used everywhere
CHUNK_ROWS = 16384  # chunk length for Zarr and HDF5 (16384 x 10 x 4 B = 640 KiB)


WRITE_OPS = ("replace", "append", "batch", "wbatch")


class NA(Exception):
    """The system cannot do this operation."""


def rm(path: Path) -> None:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def apply_mods(arr: np.ndarray, mods) -> None:
    one = np.float32(1.0)
    for idx in mods:
        arr[idx] += one


class System:
    name = "?"
    label = "?"
    note = ""
    variant = False  # a variant of another system (not a summary's "best peer")

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def path(self) -> Path:
        return self.root / self.name

    # handles -------------------------------------------------------------
    def open(self, op: str):
        """Handle for operation op ("load", "take", "stream", "replace",
        "append", "batch", "wbatch", "verify")."""
        return None

    def open_for_save(self):
        return None

    def close(self, h) -> None:
        pass

    # operations ----------------------------------------------------------
    def save(self, h, arr):
        raise NA

    def load(self, h) -> np.ndarray:
        raise NA

    def lazy_first(self):
        """Open + first access (row 0). Returns (row, closer)."""
        raise NA

    def take(self, h, idx) -> np.ndarray:
        raise NA

    def stream(self, h, bs: int) -> list:
        raise NA

    def replace(self, h, idx, vals) -> None:
        raise NA

    def append(self, h, rows) -> None:
        raise NA

    def batch(self, h, mods) -> None:
        raise NA

    def wbatch(self, h, mods) -> None:
        raise NA

    # verification (untimed) -----------------------------------------------
    def reload(self) -> np.ndarray:
        h = self.open("verify")
        try:
            return np.array(self.load(h), copy=True)
        finally:
            self.close(h)


# --------------------------------------------------------------------------
class NumvaultSys(System):
    name = "numvault"
    label = "numvault"
    note = "NumPack API; sync=flush (default) unless stated"

    def __init__(self, root, sync: str | None = None):
        super().__init__(root)
        import numvault  # noqa: F401

        self.nv = numvault
        self.sync = sync
        if sync:
            self.name = f"numvault-{sync}"
            self.label = f"numvault sync={sync}"
            self.note = (f"NumPack API with sync='{sync}'"
                         + ("; never synced by numvault: a close neither syncs nor "
                            "checkpoints unless the log is long (the reference is npy "
                            "without fsync)" if sync == "never" else ""))

    def _np(self, drop=False):
        kw = {}
        if drop:
            kw["drop_if_exists"] = True
        if self.sync:
            kw["sync"] = self.sync
        h = self.nv.NumPack(str(self.path), **kw)
        h.open()
        return h

    def open(self, op):
        return self._np()

    def open_for_save(self):
        # NumPack's idiom for a fresh save: the library empties the existing
        # store in one atomic commit (the old files are deleted by a later
        # checkpoint, as superseded files are: close checkpoints once they
        # pass 256 MiB), as np.save truncates its old file.
        return self._np(drop=True)

    def close(self, h):
        h.close()

    def save(self, h, arr):
        h.save({ARRAY: arr})

    def load(self, h):
        return h.load(ARRAY)

    def lazy_first(self):
        h = self._np()
        lz = h.load(ARRAY, lazy=True)
        row = np.array(lz[0])
        return row, (lambda: (_drop(lz), h.close()))

    def take(self, h, idx):
        return h.getitem(ARRAY, idx)

    def stream(self, h, bs):
        return [b for b in h.stream_load(ARRAY, buffer_size=bs)]

    def replace(self, h, idx, vals):
        h.replace({ARRAY: vals}, idx)

    def append(self, h, rows):
        h.append({ARRAY: rows})

    def batch(self, h, mods):
        one = np.float32(1.0)
        with h.batch_mode():
            for idx in mods:
                a = h.load(ARRAY)
                a[idx] += one
                h.save({ARRAY: a})

    def wbatch(self, h, mods):
        with h.writable_batch_mode() as wb:
            a = wb.load(ARRAY)
            apply_mods(a, mods)
            del a


def _drop(x):
    del x


class VaultSys(System):
    """numvault's native API: numvault.Vault(path, mode, sync)."""

    name = "numvault-vault"
    label = "numvault (Vault API)"

    def __init__(self, root, sync: str = "flush"):
        super().__init__(root)
        import numvault

        self.nv = numvault
        self.sync = sync
        if sync != "flush":
            self.name = f"numvault-vault-{sync}"
            self.label = f"numvault Vault sync={sync}"
        self.note = (f"numvault.Vault(path, sync='{sync}'): save/load/getitem/batches/replace/"
                     "append; batch = load, modify in memory, save; writable batch = "
                     "Vault.writable(name) session")

    def open(self, op):
        return self.nv.Vault(str(self.path), mode="a" if op in ("replace", "append", "batch",
                                                                "wbatch") else "r",
                             sync=self.sync)

    def open_for_save(self):
        # mode="w": the existing store is emptied in one atomic commit.
        return self.nv.Vault(str(self.path), mode="w", sync=self.sync)

    def close(self, h):
        h.close()

    def save(self, h, arr):
        h.save(ARRAY, arr)

    def load(self, h):
        return h.load(ARRAY)

    def lazy_first(self):
        h = self.nv.Vault(str(self.path), mode="r", sync=self.sync)
        lz = h.lazy(ARRAY)
        row = np.array(lz[0])
        return row, (lambda: (_drop(lz), h.close()))

    def take(self, h, idx):
        return h.getitem(ARRAY, idx)

    def stream(self, h, bs):
        return [b for b in h.batches(ARRAY, bs)]

    def replace(self, h, idx, vals):
        h.replace(ARRAY, idx, vals)

    def append(self, h, rows):
        h.append(ARRAY, rows)

    def batch(self, h, mods):
        a = h.load(ARRAY)
        apply_mods(a, mods)
        h.save(ARRAY, a)

    def wbatch(self, h, mods):
        with h.writable(ARRAY) as a:
            apply_mods(a, mods)


# --------------------------------------------------------------------------
class NpySys(System):
    name = "npy"
    label = "NumPy .npy"
    note = ("np.save/np.load; lazy/random/stream via np.load(mmap_mode='r'); replace and "
            "writable batch in place via np.load(mmap_mode='r+') (no msync); append in place "
            "(rows written at the end, header rewritten in its reserved padding); batch = "
            "load, modify in memory, np.save")

    @property
    def path(self):
        return self.root / "a.npy"

    def save(self, h, arr):
        np.save(self.path, arr)

    def load(self, h):
        return np.load(self.path)

    def lazy_first(self):
        mm = np.load(self.path, mmap_mode="r")
        row = np.array(mm[0])
        return row, (lambda: _close_mm(mm))

    def take(self, h, idx):
        mm = h["mm"]
        return mm[idx]

    def stream(self, h, bs):
        mm = h["mm"]
        n = mm.shape[0]
        return [np.array(mm[i:i + bs]) for i in range(0, n, bs)]

    def replace(self, h, idx, vals):
        h["mm"][idx] = vals

    def append(self, h, rows):
        npy_append_inplace(self.path, rows)

    def batch(self, h, mods):
        a = np.load(self.path)
        apply_mods(a, mods)
        np.save(self.path, a)

    def wbatch(self, h, mods):
        apply_mods(h["mm"], mods)


class NpyMmapHandles(NpySys):
    """npy with its 'handle' = a memory map (r for reads, r+ for writes)."""

    def open(self, op):
        if op in ("take", "stream"):
            return {"mm": np.load(self.path, mmap_mode="r")}
        if op in ("replace", "wbatch"):
            return {"mm": np.load(self.path, mmap_mode="r+")}
        return None

    def close(self, h):
        if h and "mm" in h:
            _close_mm(h.pop("mm"))


def _close_mm(mm):
    m = getattr(mm, "_mmap", None)
    del mm
    if m is not None:
        try:
            m.close()
        except BufferError:
            pass


def npy_append_inplace(path: Path, rows: np.ndarray) -> None:
    """Append rows to a C-order .npy file: write them after the data, then
    rewrite the header's shape inside its existing length (numpy reserves
    padding so the first axis can grow). Falls back to a full rewrite if the
    new header does not fit."""
    fmt = np.lib.format
    with open(path, "r+b") as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
            len_bytes = 2
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
            len_bytes = 4
        data_off = f.tell()
        if fortran or dtype != rows.dtype or tuple(shape[1:]) != rows.shape[1:]:
            raise ValueError("incompatible append")
        new_shape = (shape[0] + rows.shape[0],) + tuple(shape[1:])
        d = {"descr": fmt.dtype_to_descr(dtype), "fortran_order": False, "shape": new_shape}
        hdr = repr(d)
        # numpy writes "{...}" with a trailing ", " inside; keep the same style.
        hdr = "{" + ", ".join(f"'{k}': {v!r}" for k, v in d.items()) + ", }"
        room = data_off - 8 - len_bytes  # header bytes incl. padding and '\n'
        enc = hdr.encode("latin1")
        if len(enc) + 1 > room:
            f.close()
            a = np.load(path)
            np.save(path, np.concatenate([a, rows]))
            return
        nbytes = int(np.prod(shape)) * dtype.itemsize
        f.seek(data_off + nbytes)
        f.write(np.ascontiguousarray(rows).tobytes())
        f.truncate()
        f.seek(8 + len_bytes)
        f.write(enc + b" " * (room - len(enc) - 1) + b"\n")


def fsync_path(path: Path) -> None:
    """os.fsync of one file, by path (also flushes pages dirtied through a
    shared memory map of it)."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """os.fsync of a directory: makes a new entry in it durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def npy_save_durable(path: Path, arr: np.ndarray, new_entry: bool = True) -> None:
    """np.save into an open file, os.fsync before close; then, for a new
    directory entry, os.fsync of the directory."""
    with open(path, "wb") as f:
        np.save(f, arr)
        f.flush()
        os.fsync(f.fileno())
    if new_entry:
        fsync_dir(Path(path).parent)


class NpyDurable(NpyMmapHandles):
    """npy made durable: every write of NpyMmapHandles, then os.fsync of the
    file it wrote (and of the directory for a save). The reference for
    numvault's default sync="flush" one-shot (which syncs at close). Reads are
    npy's; it is a variant of npy, never the "best peer" of a summary."""

    name = "npy-durable"
    label = "NumPy .npy + fsync"
    variant = True
    note = ("NumPy .npy as above, each write followed by os.fsync of the file (save: "
            "np.save into an open file, fsync, close, then fsync of the directory; "
            "replace / writable batch: fsync after the r+ memmap stores, which writes the "
            "mapped pages; append: in place, then fsync; batch: load, modify, durable "
            "np.save); reads as npy")

    @property
    def path(self):
        return self.root / "a_durable.npy"

    def save(self, h, arr):
        npy_save_durable(self.path, arr, new_entry=True)

    def replace(self, h, idx, vals):
        h["mm"][idx] = vals
        fsync_path(self.path)

    def append(self, h, rows):
        npy_append_inplace(self.path, rows)
        fsync_path(self.path)

    def batch(self, h, mods):
        a = np.load(self.path)
        apply_mods(a, mods)
        npy_save_durable(self.path, a, new_entry=False)

    def wbatch(self, h, mods):
        apply_mods(h["mm"], mods)
        fsync_path(self.path)


# --------------------------------------------------------------------------
class NpzSys(System):
    name = "npz"
    label = "NumPy .npz"
    note = ("np.savez_compressed (zlib, as seed 000); every change = load + modify + "
            "savez_compressed; random access/stream decompress the whole member")

    @property
    def path(self):
        return self.root / "a.npz"

    def save(self, h, arr):
        np.savez_compressed(self.path, **{ARRAY: arr})

    def load(self, h):
        with np.load(self.path) as z:
            return z[ARRAY]

    def open(self, op):
        return np.load(self.path) if op in ("take", "stream") else None

    def close(self, h):
        if h is not None:
            h.close()

    def take(self, h, idx):
        return h[ARRAY][idx]

    def stream(self, h, bs):
        a = h[ARRAY]
        return [a[i:i + bs] for i in range(0, a.shape[0], bs)]

    def _rewrite(self, fn):
        a = self.load(None)
        a = fn(a)
        np.savez_compressed(self.path, **{ARRAY: a})

    def replace(self, h, idx, vals):
        def f(a):
            a[idx] = vals
            return a
        self._rewrite(f)

    def append(self, h, rows):
        self._rewrite(lambda a: np.concatenate([a, rows]))

    def batch(self, h, mods):
        def f(a):
            apply_mods(a, mods)
            return a
        self._rewrite(f)

    wbatch = batch


# --------------------------------------------------------------------------
class ZarrSys(System):
    name = "zarr"
    label = "Zarr"

    def __init__(self, root):
        super().__init__(root)
        import zarr

        self.zarr = zarr
        self.v3 = int(zarr.__version__.split(".")[0]) >= 3
        self.note = (f"zarr {zarr.__version__} ({'v3 format' if self.v3 else 'v2'}), "
                     f"chunks ({CHUNK_ROWS}, 10), default compressor; batch = read all, "
                     "modify, write all")

    @property
    def path(self):
        return self.root / "a.zarr"

    def open(self, op):
        return self.zarr.open_array(str(self.path), mode="r+" if op in WRITE_OPS else "r")

    def save(self, h, arr):
        if self.v3:
            z = self.zarr.create_array(store=str(self.path), shape=arr.shape,
                                       chunks=(CHUNK_ROWS, arr.shape[1]), dtype=arr.dtype,
                                       overwrite=True)
        else:
            z = self.zarr.open_array(str(self.path), mode="w", shape=arr.shape,
                                     chunks=(CHUNK_ROWS, arr.shape[1]), dtype=arr.dtype)
        z[:] = arr

    def load(self, h):
        return h[:]

    def lazy_first(self):
        z = self.zarr.open_array(str(self.path), mode="r")
        return np.array(z[0]), (lambda: None)

    def take(self, h, idx):
        return h.oindex[idx, :]

    def stream(self, h, bs):
        n = h.shape[0]
        return [h[i:i + bs] for i in range(0, n, bs)]

    def replace(self, h, idx, vals):
        if _is_contig(idx):
            h[idx[0]:idx[-1] + 1] = vals
        else:
            h.oindex[idx, :] = vals

    def append(self, h, rows):
        h.append(rows, axis=0)

    def batch(self, h, mods):
        a = h[:]
        apply_mods(a, mods)
        h[:] = a

    wbatch = batch


def _is_contig(idx) -> bool:
    idx = np.asarray(idx)
    return idx.size > 0 and bool(np.all(np.diff(idx) == 1))


# --------------------------------------------------------------------------
class H5Sys(System):
    name = "hdf5"
    label = "HDF5 (h5py)"

    def __init__(self, root):
        super().__init__(root)
        import h5py

        self.h5py = h5py
        self.note = (f"h5py {h5py.__version__} / HDF5 {h5py.version.hdf5_version}, chunked "
                     f"({CHUNK_ROWS}, 10), maxshape (None, 10), no compression; writes end "
                     "with f.flush(); fancy indexing sorted then un-permuted")

    @property
    def path(self):
        return self.root / "a.h5"

    def open(self, op):
        return self.h5py.File(self.path, "r+" if op in WRITE_OPS else "r")

    def open_for_save(self):
        rm(self.path)
        return self.h5py.File(self.path, "w")

    def close(self, h):
        h.close()

    def save(self, h, arr):
        h.create_dataset(ARRAY, data=arr, chunks=(CHUNK_ROWS, arr.shape[1]),
                         maxshape=(None, arr.shape[1]))
        h.flush()

    def load(self, h):
        return h[ARRAY][:]

    def lazy_first(self):
        f = self.h5py.File(self.path, "r")
        row = f[ARRAY][0]
        return row, f.close

    def take(self, h, idx):
        idx = np.asarray(idx)
        order = np.argsort(idx, kind="stable")
        s = idx[order]
        uniq, inv = np.unique(s, return_inverse=True)
        got = h[ARRAY][uniq]
        out = np.empty((idx.size,) + got.shape[1:], got.dtype)
        out[order] = got[inv]
        return out

    def stream(self, h, bs):
        ds = h[ARRAY]
        n = ds.shape[0]
        return [ds[i:i + bs] for i in range(0, n, bs)]

    def replace(self, h, idx, vals):
        ds = h[ARRAY]
        idx = np.asarray(idx)
        if _is_contig(idx):
            ds[idx[0]:idx[-1] + 1] = vals
        else:
            order = np.argsort(idx)
            ds[idx[order]] = vals[order]
        h.flush()

    def append(self, h, rows):
        ds = h[ARRAY]
        n = ds.shape[0]
        ds.resize(n + rows.shape[0], axis=0)
        ds[n:] = rows
        h.flush()

    def batch(self, h, mods):
        ds = h[ARRAY]
        a = ds[:]
        apply_mods(a, mods)
        ds[:] = a
        h.flush()

    wbatch = batch


# --------------------------------------------------------------------------
def _cols_table(pa, arr):
    cols = np.ascontiguousarray(arr.T)
    return pa.table({f"c{i}": cols[i] for i in range(cols.shape[0])})


def _table_to_np(tbl):
    n = tbl.num_rows
    out = np.empty((n, tbl.num_columns), np.float32)
    for i in range(tbl.num_columns):
        out[:, i] = tbl.column(i).to_numpy()
    return out


class ParquetSys(System):
    name = "parquet"
    label = "Parquet (pyarrow)"

    def __init__(self, root):
        super().__init__(root)
        import pyarrow as pa
        import pyarrow.dataset as pads
        import pyarrow.parquet as pq

        self.pa, self.pq, self.pads = pa, pq, pads
        self.note = (f"pyarrow {pa.__version__}: a directory of parquet files, 10 float32 "
                     "columns, default (snappy) compression; append = write a new file; "
                     "replace/batch = read all, modify, rewrite one file")

    @property
    def path(self):
        return self.root / "a.parquet.d"

    def _files(self):
        return sorted(str(p) for p in self.path.glob("part-*.parquet"))

    def _write_all(self, arr):
        # write the new file first, then remove the old ones
        old = self._files()
        nxt = self.path / f"part-{_next_part(old):06d}.parquet"
        self.pq.write_table(_cols_table(self.pa, arr), nxt)
        for p in old:
            os.unlink(p)

    def open(self, op):
        if op in ("load", "take", "stream", "verify"):
            return self.pads.dataset(self._files(), format="parquet")
        return None

    def save(self, h, arr):
        rm(self.path)
        self.path.mkdir(parents=True)
        self._write_all(arr)

    def load(self, h):
        ds = h if h is not None else self.pads.dataset(self._files(), format="parquet")
        return _table_to_np(ds.to_table())

    def lazy_first(self):
        pf = self.pq.ParquetFile(self._files()[0])
        b = next(pf.iter_batches(batch_size=1))
        row = np.array([b.column(i)[0].as_py() for i in range(b.num_columns)], np.float32)
        return row, pf.close

    def take(self, h, idx):
        return _table_to_np(h.take(self.pa.array(np.asarray(idx, np.int64))))

    def stream(self, h, bs):
        return [_table_to_np(self.pa.Table.from_batches([b]))
                for b in h.to_batches(batch_size=bs)]

    def replace(self, h, idx, vals):
        a = self.load(None)
        a[idx] = vals
        self._write_all(a)

    def append(self, h, rows):
        nxt = self.path / f"part-{_next_part(self._files()):06d}.parquet"
        self.pq.write_table(_cols_table(self.pa, rows), nxt)

    def batch(self, h, mods):
        a = self.load(None)
        apply_mods(a, mods)
        self._write_all(a)

    wbatch = batch


def _next_part(files) -> int:
    if not files:
        return 0
    return int(Path(files[-1]).stem.split("-")[1]) + 1


# --------------------------------------------------------------------------
class LanceSys(System):
    name = "lance"
    label = "Lance (pylance)"

    def __init__(self, root):
        super().__init__(root)
        import lance
        import pyarrow as pa

        self.lance, self.pa = lance, pa
        self.note = (f"pylance {lance.__version__}: columns id int64 + v fixed_size_list"
                     "<float32,10>; the id column is the row position (Lance moves updated "
                     "rows); replace = merge_insert on id; append = write_dataset(append); "
                     "load scatters by id; take/stream use row offsets (valid: they run "
                     "before any mutation in a round); old versions are kept (no cleanup)")

    @property
    def path(self):
        return self.root / "a.lance"

    def _tbl(self, arr, start):
        pa = self.pa
        flat = pa.array(np.ascontiguousarray(arr).reshape(-1))
        v = pa.FixedSizeListArray.from_arrays(flat, arr.shape[1])
        ids = pa.array(np.arange(start, start + arr.shape[0], dtype=np.int64))
        return pa.table({"id": ids, "v": v})

    def _tbl_idx(self, idx, vals):
        pa = self.pa
        flat = pa.array(np.ascontiguousarray(vals).reshape(-1))
        v = pa.FixedSizeListArray.from_arrays(flat, vals.shape[1])
        return pa.table({"id": pa.array(np.asarray(idx, np.int64)), "v": v})

    def open(self, op):
        return {"ds": self.lance.dataset(str(self.path))}

    def save(self, h, arr):
        self.lance.write_dataset(self._tbl(arr, 0), str(self.path), mode="overwrite")

    @staticmethod
    def _v_np(col, ncols=None):
        arr = col.combine_chunks() if hasattr(col, "combine_chunks") else col
        width = arr.type.list_size
        return arr.values.to_numpy().reshape(-1, width)

    def load(self, h):
        ds = h["ds"] if h else self.lance.dataset(str(self.path))
        t = ds.to_table(columns=["id", "v"])
        ids = t.column("id").to_numpy()
        v = self._v_np(t.column("v"))
        out = np.empty_like(v)
        out[ids] = v
        return out

    def lazy_first(self):
        ds = self.lance.dataset(str(self.path))
        t = ds.take([0], columns=["v"])
        return self._v_np(t.column("v"))[0].copy(), (lambda: None)

    def take(self, h, idx):
        t = h["ds"].take(np.asarray(idx, np.int64).tolist(), columns=["v"])
        return self._v_np(t.column("v"))

    def stream(self, h, bs):
        return [self._v_np(b.column(0)).copy()
                for b in h["ds"].to_batches(batch_size=bs, columns=["v"])]

    def replace(self, h, idx, vals):
        ds = h["ds"]
        ds.merge_insert("id").when_matched_update_all().execute(self._tbl_idx(idx, vals))

    def append(self, h, rows):
        ds = h["ds"]
        n = ds.count_rows()
        h["ds"] = self.lance.write_dataset(self._tbl(rows, n), ds, mode="append")

    def batch(self, h, mods):
        a = self.load(h)
        apply_mods(a, mods)
        h["ds"] = self.lance.write_dataset(self._tbl(a, 0), str(self.path), mode="overwrite")

    wbatch = batch


class BrokenNpy(NpyMmapHandles):
    """Deliberately wrong (harness self-test only: --systems ...,broken)."""

    name = "broken"
    label = "broken npy (self-test)"
    note = "self-test: replace writes one row off, take returns a stale first row"

    @property
    def path(self):
        return self.root / "broken.npy"

    def take(self, h, idx):
        out = np.array(h["mm"][idx])
        out[0] = 0
        return out

    def replace(self, h, idx, vals):
        idx = np.array(idx)
        idx[0] = (idx[0] + 1) % h["mm"].shape[0]
        h["mm"][idx] = vals


PEERS = {
    "npy": NpyMmapHandles,
    "npy-durable": NpyDurable,
    "npz": NpzSys,
    "zarr": ZarrSys,
    "hdf5": H5Sys,
    "parquet": ParquetSys,
    "lance": LanceSys,
    "broken": BrokenNpy,
}
