"""numvault.io converters: round trips of every dtype each format holds,
bad inputs (typed errors naming the file and place, the target store left
unchanged), missing optional libraries, NumPack's signatures."""

import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import numvault
from numvault import NumPack, Vault
from numvault import io as nio
from numvault.io import ConversionError, DependencyError

ALL = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
       "float16", "float32", "float64", "complex64", "complex128"]
NO_COMPLEX = [d for d in ALL if not d.startswith("complex")]


def sample(dtype, shape=(37, 3), seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == bool:
        return rng.integers(0, 2, shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
        a.flat[0] = info.min
        a.flat[-1] = info.max
        return a
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    a = (rng.standard_normal(shape) * 1000).astype(dt)
    a.flat[0] = np.finfo(dt).max
    a.flat[-1] = np.finfo(dt).tiny
    return a


def snapshot(path):
    """Names, dtypes, shapes and contents of a store (to compare before/after)."""
    with Vault(str(path), "r") as v:
        return {n: (str(v.dtype(n)), v.shape(n), v.load(n).tobytes()) for n in v.names()}


def make_store(path, **arrays):
    with Vault(str(path), "a") as v:
        for k, a in arrays.items():
            v.save(k, a)


def siblings(path):
    """Entries beside ``path`` other than those given (leftover temp dirs)."""
    return sorted(p.name for p in Path(path).parent.iterdir())


# ---------------------------------------------------------------------------
# npy / npz
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("shape", [(41,), (23, 4), (7, 3, 2)])
def test_npy_roundtrip(tmp_path, dtype, shape):
    a = sample(dtype, shape)
    np.save(tmp_path / "x.npy", a)
    # a small chunk: several batches
    nio.from_npy(tmp_path / "x.npy", tmp_path / "s", chunk_size=64)
    with Vault(str(tmp_path / "s"), "r") as v:
        assert v.dtype("x") == a.dtype and v.shape("x") == a.shape
        np.testing.assert_array_equal(v.load("x"), a)
    nio.to_npy(tmp_path / "s", tmp_path / "y.npy", chunk_size=64)
    b = np.load(tmp_path / "y.npy")
    assert b.dtype == a.dtype
    np.testing.assert_array_equal(b, a)


def test_npy_fortran_and_bigendian(tmp_path):
    a = np.asfortranarray(sample("float64", (9, 5)))
    np.save(tmp_path / "f.npy", a)
    be = sample("int32", (11, 2)).astype(">i4")
    np.save(tmp_path / "be.npy", be)
    nio.from_npy(tmp_path / "f.npy", tmp_path / "s", chunk_size=40)
    nio.from_npy(tmp_path / "be.npy", tmp_path / "s", chunk_size=40)
    with Vault(str(tmp_path / "s"), "r") as v:
        np.testing.assert_array_equal(v.load("f"), a)
        np.testing.assert_array_equal(v.load("be"), be)
        assert v.dtype("be") == np.dtype("int32")


@pytest.mark.parametrize("compressed", [True, False])
def test_npz_roundtrip_all_dtypes(tmp_path, compressed):
    arrays = {f"a_{d}": sample(d, (19, 2)) for d in ALL}
    np.savez_compressed(tmp_path / "x.npz", **arrays) if compressed else np.savez(tmp_path / "x.npz", **arrays)
    r = nio.from_npy(tmp_path / "x.npz", tmp_path / "s", chunk_size=50, return_npk_obj=True)
    try:
        assert isinstance(r, NumPack)
        assert sorted(r.get_member_list()) == sorted(arrays)
        for k, a in arrays.items():
            np.testing.assert_array_equal(r.load(k), a)
    finally:
        r.close()
    nio.to_npy(tmp_path / "s", tmp_path / "y.npz", compressed=compressed, chunk_size=50)
    with np.load(tmp_path / "y.npz") as z:
        assert sorted(z.files) == sorted(arrays)
        for k, a in arrays.items():
            assert z[k].dtype == a.dtype
            np.testing.assert_array_equal(z[k], a)


def test_npy_empty_rows(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 5), np.float32))
    nio.from_npy(tmp_path / "e.npy", tmp_path / "s")
    with Vault(str(tmp_path / "s"), "r") as v:
        assert v.shape("e") == (0, 5) and v.dtype("e") == np.float32


def test_npy_truncated_leaves_store_unchanged(tmp_path):
    make_store(tmp_path / "s", keep=np.arange(10))
    before = snapshot(tmp_path / "s")
    a = sample("float64", (1000, 8))
    np.save(tmp_path / "t.npy", a)
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-100])
    with pytest.raises(ConversionError) as ei:
        nio.from_npy(tmp_path / "t.npy", tmp_path / "s", chunk_size=4096)
    msg = str(ei.value)
    assert "t.npy" in msg and "truncated" in msg and "offset" in msg
    assert snapshot(tmp_path / "s") == before


def test_npy_truncated_into_new_store_leaves_nothing(tmp_path):
    np.save(tmp_path / "t.npy", sample("int16", (100, 3)))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:50])
    entries = siblings(tmp_path / "new")
    with pytest.raises(ConversionError):
        nio.from_npy(tmp_path / "t.npy", tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert siblings(tmp_path / "new") == entries


def test_npz_damaged_member_names_it(tmp_path):
    make_store(tmp_path / "s", keep=np.arange(3.0))
    before = snapshot(tmp_path / "s")
    np.savez(tmp_path / "d.npz", good=np.arange(1000), bad=np.arange(5000, dtype=np.int64))
    with zipfile.ZipFile(tmp_path / "d.npz") as z:
        info = z.getinfo("bad.npy")
    raw = bytearray((tmp_path / "d.npz").read_bytes())
    # flip a byte of member 'bad's data (past its local header and .npy header)
    pos = info.header_offset + 30 + len(info.filename) + 200
    raw[pos] ^= 0xFF
    (tmp_path / "d.npz").write_bytes(bytes(raw))
    with pytest.raises(ConversionError) as ei:
        nio.from_npy(tmp_path / "d.npz", tmp_path / "s", chunk_size=1024)
    assert "bad.npy" in str(ei.value)
    assert snapshot(tmp_path / "s") == before


def test_from_npy_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        nio.from_npy(tmp_path / "missing.npy", tmp_path / "s")
    (tmp_path / "x.xyz").write_text("x")
    with pytest.raises(ValueError):
        nio.from_npy(tmp_path / "x.xyz", tmp_path / "s")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConversionError, match="object"):
        nio.from_npy(tmp_path / "o.npy", tmp_path / "s")
    np.save(tmp_path / "u.npy", np.array(["ab", "c"]))
    with pytest.raises(ConversionError, match="not supported"):
        nio.from_npy(tmp_path / "u.npy", tmp_path / "s")
    assert not (tmp_path / "s").exists()
    make_store(tmp_path / "two", a=np.arange(3), b=np.arange(4))
    with pytest.raises(ValueError, match="can only store one array"):
        nio.to_npy(tmp_path / "two", tmp_path / "out.npy")
    assert not (tmp_path / "out.npy").exists()
    with pytest.raises(ValueError, match="not a numvault store"):
        nio.to_npy(tmp_path, tmp_path / "o.npz")


def test_drop_if_exists_is_atomic(tmp_path):
    make_store(tmp_path / "s", old=np.arange(5))
    np.save(tmp_path / "new.npy", np.arange(3.0))
    nio.from_npy(tmp_path / "new.npy", tmp_path / "s")  # adds
    assert sorted(snapshot(tmp_path / "s")) == ["new", "old"]
    before = snapshot(tmp_path / "s")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ConversionError):
        nio.from_npy(tmp_path / "bad.npy", tmp_path / "s", drop_if_exists=True)
    assert snapshot(tmp_path / "s") == before
    nio.from_npy(tmp_path / "new.npy", tmp_path / "s", drop_if_exists=True)
    assert sorted(snapshot(tmp_path / "s")) == ["new"]


def test_existing_non_store_target(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("keep me")
    np.save(tmp_path / "x.npy", np.arange(3))
    with pytest.raises(FileExistsError):
        nio.from_npy(tmp_path / "x.npy", tmp_path / "d")
    assert (tmp_path / "d" / "f.txt").read_text() == "keep me"
    nio.from_npy(tmp_path / "x.npy", tmp_path / "d", drop_if_exists=True)
    assert list(snapshot(tmp_path / "d")) == ["x"]
    assert not (tmp_path / "d" / "f.txt").exists()


# ---------------------------------------------------------------------------
# csv / txt
# ---------------------------------------------------------------------------

TEXT_DTYPES = NO_COMPLEX


def _fmt(dtype):
    return "%d" if np.dtype(dtype).kind in "biu" else "%.17g"


@pytest.mark.parametrize("dtype", TEXT_DTYPES)
@pytest.mark.parametrize("pandas", [True, False])
def test_csv_roundtrip(tmp_path, monkeypatch, dtype, pandas):
    if not pandas:
        if np.dtype(dtype) in (np.dtype("uint64"), np.dtype("int64")):
            pytest.skip("NumPy's fallback parses float64, which holds 53-bit integers")
        monkeypatch.setitem(sys.modules, "pandas", None)
    else:
        pytest.importorskip("pandas")
    a = sample(dtype, (53, 4))
    make_store(tmp_path / "s", m=a)
    nio.to_csv(tmp_path / "s", tmp_path / "m.csv", fmt=_fmt(dtype), chunk_size=100)
    nio.from_csv(tmp_path / "m.csv", tmp_path / "t", dtype=a.dtype, chunk_size=200)
    with Vault(str(tmp_path / "t"), "r") as v:
        assert v.dtype("m") == a.dtype
        np.testing.assert_array_equal(v.load("m"), a)


@pytest.mark.parametrize("dtype", ["int32", "float64", "uint8"])
def test_txt_roundtrip(tmp_path, dtype):
    a = sample(dtype, (31, 3))
    make_store(tmp_path / "s", m=a)
    nio.to_txt(tmp_path / "s", tmp_path / "m.txt", fmt=_fmt(dtype), chunk_size=64)
    r = nio.from_txt(tmp_path / "m.txt", tmp_path / "t", dtype=dtype, chunk_size=64, return_npk_obj=True)
    try:
        np.testing.assert_array_equal(r.load("m"), a)
    finally:
        r.close()


def test_csv_inferred_dtype_widens_across_chunks(tmp_path):
    pytest.importorskip("pandas")
    rows = [f"{i},{i * 2}" for i in range(3000)] + ["1.5,2"] + [f"{i},{i}" for i in range(10)]
    (tmp_path / "w.csv").write_text("\n".join(rows) + "\n")
    nio.from_csv(tmp_path / "w.csv", tmp_path / "s", chunk_size=4096)
    with Vault(str(tmp_path / "s"), "r") as v:
        got = v.load("w")
    assert got.dtype == np.float64 and got.shape == (3011, 2)
    assert got[3000, 0] == 1.5 and got[2999, 1] == 5998


@pytest.mark.parametrize("pandas", [True, False])
def test_csv_bad_cell_names_line_and_leaves_store(tmp_path, monkeypatch, pandas):
    if not pandas:
        monkeypatch.setitem(sys.modules, "pandas", None)
    else:
        pytest.importorskip("pandas")
    make_store(tmp_path / "s", keep=np.arange(4))
    before = snapshot(tmp_path / "s")
    lines = [f"{i}.0,{i}.5" for i in range(5000)]
    lines[4321] = "1.0,oops"
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConversionError) as ei:
        nio.from_csv(tmp_path / "b.csv", tmp_path / "s", chunk_size=8192)
    msg = str(ei.value)
    assert "b.csv" in msg and "4322" in msg  # line numbers are 1-based
    assert snapshot(tmp_path / "s") == before


def test_csv_ragged_row(tmp_path):
    pytest.importorskip("pandas")
    lines = ["1,2,3"] * 100 + ["1,2,3,4"] + ["1,2,3"] * 10
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConversionError) as ei:
        nio.from_csv(tmp_path / "r.csv", tmp_path / "s")
    assert "r.csv" in str(ei.value) and "101" in str(ei.value)
    assert not (tmp_path / "s").exists()


def test_csv_forced_dtype_refuses_lossy_cast(tmp_path):
    pytest.importorskip("pandas")
    (tmp_path / "f.csv").write_text("1,2\n3,4.5\n")
    with pytest.raises(ConversionError, match="line 2"):
        nio.from_csv(tmp_path / "f.csv", tmp_path / "s", dtype=np.int32)
    (tmp_path / "g.csv").write_text("1,2\n3,300\n")
    with pytest.raises(ConversionError, match="int8"):
        nio.from_csv(tmp_path / "g.csv", tmp_path / "s", dtype=np.int8)
    assert not (tmp_path / "s").exists()


def test_csv_header_skiprows_max_rows(tmp_path):
    pytest.importorskip("pandas")
    (tmp_path / "h.csv").write_text("# junk\na,b\n1,2\n3,4\n5,6\n")
    nio.from_csv(tmp_path / "h.csv", tmp_path / "s", skiprows=1, header=0, max_rows=2)
    with Vault(str(tmp_path / "s"), "r") as v:
        np.testing.assert_array_equal(v.load("h"), [[1, 2], [3, 4]])


def test_to_csv_header_and_errors(tmp_path):
    make_store(tmp_path / "s", m=np.arange(6.0).reshape(3, 2), cube=np.zeros((2, 2, 2)))
    nio.to_csv(tmp_path / "s", tmp_path / "o.csv", array_name="m", header=True, fmt="%g")
    assert (tmp_path / "o.csv").read_text().splitlines()[0] == "# col0,col1"
    with pytest.raises(ValueError, match="array_name"):
        nio.to_csv(tmp_path / "s", tmp_path / "o2.csv")
    with pytest.raises(ValueError, match="1-D or 2-D"):
        nio.to_csv(tmp_path / "s", tmp_path / "o3.csv", array_name="cube")
    with pytest.raises(KeyError):
        nio.to_csv(tmp_path / "s", tmp_path / "o4.csv", array_name="nope")
    assert not (tmp_path / "o2.csv").exists() and not (tmp_path / "o3.csv").exists()


# ---------------------------------------------------------------------------
# hdf5
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL)
def test_hdf5_roundtrip(tmp_path, dtype):
    h5py = pytest.importorskip("h5py")
    a = sample(dtype, (29, 3))
    b = sample(dtype, (5,))
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("a", data=a)
        f.create_group("g").create_dataset("b", data=b)
    nio.from_hdf5(tmp_path / "x.h5", tmp_path / "s", chunk_size=64)
    with Vault(str(tmp_path / "s"), "r") as v:
        assert sorted(v.names()) == ["a", "g/b"]
        np.testing.assert_array_equal(v.load("a"), a)
        np.testing.assert_array_equal(v.load("g/b"), b)
        assert v.dtype("a") == a.dtype
    nio.to_hdf5(tmp_path / "s", tmp_path / "y.h5", chunk_size=64)
    with h5py.File(tmp_path / "y.h5", "r") as f:
        np.testing.assert_array_equal(f["a"][...], a)
        np.testing.assert_array_equal(f["g/b"][...], b)
        assert f["a"].dtype == a.dtype


def test_hdf5_group_and_names(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("top", data=np.arange(3))
        g = f.create_group("grp")
        g.create_dataset("p", data=np.arange(4.0))
        g.create_dataset("q", data=np.arange(5))
    nio.from_hdf5(tmp_path / "x.h5", tmp_path / "s", dataset_names=["q"], group="/grp")
    assert list(snapshot(tmp_path / "s")) == ["q"]
    with pytest.raises(KeyError):
        nio.from_hdf5(tmp_path / "x.h5", tmp_path / "s", dataset_names=["zz"], group="/grp")
    nio.to_hdf5(tmp_path / "s", tmp_path / "o.h5", group="/out", compression=None)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        np.testing.assert_array_equal(f["out/q"][...], np.arange(5))


def test_hdf5_truncated_leaves_store(tmp_path):
    h5py = pytest.importorskip("h5py")
    make_store(tmp_path / "s", keep=np.arange(4))
    before = snapshot(tmp_path / "s")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("a", data=np.arange(200000.0))
    raw = (tmp_path / "x.h5").read_bytes()
    (tmp_path / "x.h5").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ConversionError) as ei:
        nio.from_hdf5(tmp_path / "x.h5", tmp_path / "s")
    assert "x.h5" in str(ei.value)
    assert snapshot(tmp_path / "s") == before


# ---------------------------------------------------------------------------
# zarr
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL)
def test_zarr_roundtrip(tmp_path, dtype):
    zarr = pytest.importorskip("zarr")
    a = sample(dtype, (33, 2))
    nested = sample(dtype, (6,))
    make_store(tmp_path / "s", a=a, **{"sub/n": nested})
    nio.to_zarr(tmp_path / "s", tmp_path / "z.zarr", chunk_size=64)
    g = zarr.open(str(tmp_path / "z.zarr"), mode="r")
    np.testing.assert_array_equal(g["a"][...], a)
    nio.from_zarr(tmp_path / "z.zarr", tmp_path / "t", chunk_size=64)
    with Vault(str(tmp_path / "t"), "r") as v:
        assert sorted(v.names()) == ["a", "sub/n"]
        assert v.dtype("a") == a.dtype
        np.testing.assert_array_equal(v.load("a"), a)
        np.testing.assert_array_equal(v.load("sub/n"), nested)


def test_zarr_damaged_chunk_leaves_store(tmp_path):
    zarr = pytest.importorskip("zarr")
    make_store(tmp_path / "s", keep=np.arange(4))
    before = snapshot(tmp_path / "s")
    make_store(tmp_path / "src", a=np.arange(100000.0))
    nio.to_zarr(tmp_path / "src", tmp_path / "z.zarr")
    chunks = [p for p in (tmp_path / "z.zarr").rglob("*") if p.is_file() and "zarr.json" not in p.name
              and not p.name.startswith(".z")]
    assert chunks
    chunks[0].write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ConversionError) as ei:
        nio.from_zarr(tmp_path / "z.zarr", tmp_path / "s")
    assert "array 'a'" in str(ei.value)
    assert snapshot(tmp_path / "s") == before
    del zarr


# ---------------------------------------------------------------------------
# parquet / feather / arrow tables
# ---------------------------------------------------------------------------

ARROW_DTYPES = NO_COMPLEX


@pytest.mark.parametrize("dtype", ARROW_DTYPES)
@pytest.mark.parametrize("shape", [(40,), (40, 3), (40, 2, 3)])
@pytest.mark.parametrize("fmt", ["parquet", "feather"])
def test_arrow_file_roundtrip(tmp_path, dtype, shape, fmt):
    pytest.importorskip("pyarrow")
    if fmt == "parquet" and dtype == "float16":
        import pyarrow as pa

        if tuple(int(x) for x in pa.__version__.split(".")[:1]) < (15,):
            pytest.skip("Parquet float16 needs pyarrow >= 15")
    a = sample(dtype, shape)
    make_store(tmp_path / "s", m=a)
    f = tmp_path / f"m.{fmt}"
    if fmt == "parquet":
        nio.to_parquet_file(tmp_path / "s", f, row_group_size=7, chunk_size=64)
        nio.from_parquet_file(f, tmp_path / "t", chunk_size=64)
    else:
        nio.to_feather_file(tmp_path / "s", f)
        nio.from_feather_file(f, tmp_path / "t")
    with Vault(str(tmp_path / "t"), "r") as v:
        assert v.dtype("m") == a.dtype and v.shape("m") == a.shape
        np.testing.assert_array_equal(v.load("m"), a)


@pytest.mark.parametrize("dtype", ARROW_DTYPES)
def test_arrow_table_roundtrip(tmp_path, dtype):
    pytest.importorskip("pyarrow")
    a = sample(dtype, (17, 4))
    make_store(tmp_path / "s", m=a)
    for to, frm in ((nio.to_table, nio.from_table), (nio.to_parquet_table, nio.from_parquet_table)):
        t = to(tmp_path / "s")
        assert t.column_names == ["col0", "col1", "col2", "col3"]
        frm(t, tmp_path / "t", array_name="back", drop_if_exists=True)
        with Vault(str(tmp_path / "t"), "r") as v:
            np.testing.assert_array_equal(v.load("back"), a)
            assert v.dtype("back") == a.dtype


def test_plain_parquet_columns_and_nulls(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    n = 5000
    ints = list(range(n))
    ints[4500] = None  # a null in a late row group: the array becomes float64
    t = pa.table({"i": pa.array(ints, pa.int64()), "f": np.arange(n, dtype=np.float32),
                  "e": pa.FixedSizeListArray.from_arrays(pa.array(np.arange(2 * n, dtype=np.float64)), 2)})
    pq.write_table(t, tmp_path / "p.parquet", row_group_size=500)
    nio.from_parquet(tmp_path / "p.parquet", tmp_path / "s", chunk_size=4096)
    with Vault(str(tmp_path / "s"), "r") as v:
        got = v.load("p")
    assert got.shape == (n, 4) and got.dtype == np.float64
    assert np.isnan(got[4500, 0]) and got[4499, 0] == 4499 and got[10, 3] == 21
    nio.from_parquet(tmp_path / "p.parquet", tmp_path / "s", array_name="f_only", columns=["f"])
    with Vault(str(tmp_path / "s"), "r") as v:
        assert v.shape("f_only") == (n, 1) and v.dtype("f_only") == np.float32
    s = pa.table({"name": ["a", "b"]})
    pq.write_table(s, tmp_path / "str.parquet")
    with pytest.raises(ConversionError, match="column 'name'"):
        nio.from_parquet(tmp_path / "str.parquet", tmp_path / "s")


@pytest.mark.parametrize("fmt", ["parquet", "feather"])
def test_arrow_file_truncated_leaves_store(tmp_path, fmt):
    pytest.importorskip("pyarrow")
    make_store(tmp_path / "s", keep=np.arange(4))
    make_store(tmp_path / "src", m=sample("float64", (20000, 4)))
    before = snapshot(tmp_path / "s")
    f = tmp_path / f"m.{fmt}"
    if fmt == "parquet":
        nio.to_parquet(tmp_path / "src", f, row_group_size=1000)
    else:
        nio.to_feather(tmp_path / "src", f, compression="uncompressed")
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(ConversionError) as ei:
        (nio.from_parquet if fmt == "parquet" else nio.from_feather)(f, tmp_path / "s")
    assert f.name in str(ei.value)
    assert snapshot(tmp_path / "s") == before


# ---------------------------------------------------------------------------
# pandas
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL)
def test_dataframe_roundtrip(tmp_path, dtype):
    pd = pytest.importorskip("pandas")
    a = sample(dtype, (25, 3))
    df = pd.DataFrame(a, columns=["x", "y", "z"])
    nio.from_dataframe(df, tmp_path / "s", chunk_size=64)
    back = nio.to_dataframe(tmp_path / "s")
    assert list(back.columns) == ["col0", "col1", "col2"]
    np.testing.assert_array_equal(back.to_numpy(), a)
    assert back.to_numpy().dtype == a.dtype


def test_dataframe_non_numeric_column(tmp_path):
    pd = pytest.importorskip("pandas")
    make_store(tmp_path / "s", keep=np.arange(2))
    before = snapshot(tmp_path / "s")
    with pytest.raises(ConversionError, match="column 'name'"):
        nio.from_dataframe(pd.DataFrame({"a": [1, 2], "name": ["x", "y"]}), tmp_path / "s")
    assert snapshot(tmp_path / "s") == before


# ---------------------------------------------------------------------------
# safetensors / tensor dicts
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", NO_COMPLEX)
def test_safetensors_roundtrip(tmp_path, dtype):
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file, save_file

    tensors = {"w": sample(dtype, (21, 3)), "b": sample(dtype, (4,)), "e": np.zeros((0, 2), dtype)}
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata={"k": "v"})
    nio.from_safetensors_file(tmp_path / "m.safetensors", tmp_path / "s", chunk_size=64)
    nio.to_safetensors_file(tmp_path / "s", tmp_path / "o.safetensors", metadata={"who": "numvault"})
    back = load_file(str(tmp_path / "o.safetensors"))  # the library reads what numvault wrote
    assert sorted(back) == sorted(tensors)
    for k, a in tensors.items():
        assert back[k].dtype == a.dtype and back[k].shape == a.shape
        np.testing.assert_array_equal(back[k], a)
    md = nio.get_safetensors_metadata(tmp_path / "o.safetensors")
    assert md["metadata"] == {"who": "numvault"}
    assert md["tensors"]["w"] == {"dtype": str(np.dtype(dtype)), "shape": (21, 3)}
    assert dict((k, v.shape) for k, v in nio.iter_safetensors(tmp_path / "o.safetensors", keys=["b"])) == {"b": (4,)}


@pytest.mark.parametrize("dtype", ALL)
def test_tensor_dict_roundtrip(tmp_path, dtype):
    d = {"a": sample(dtype, (9, 2)), "b/c": sample(dtype, (3,))}
    nio.from_tensor_dict(d, tmp_path / "s")
    back = nio.to_tensor_dict(tmp_path / "s")
    assert sorted(back) == ["a", "b/c"]
    for k in d:
        np.testing.assert_array_equal(back[k], d[k])
    assert list(nio.to_tensor_dict(tmp_path / "s", array_names=["a"])) == ["a"]


def test_safetensors_damaged(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    make_store(tmp_path / "s", keep=np.arange(2))
    before = snapshot(tmp_path / "s")
    save_file({"w": np.arange(10000.0)}, str(tmp_path / "m.safetensors"))
    raw = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(raw[:-1000])
    with pytest.raises(ConversionError, match="m.safetensors"):
        nio.from_safetensors_file(tmp_path / "m.safetensors", tmp_path / "s")
    (tmp_path / "m.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(ConversionError, match="header"):
        nio.from_safetensors_file(tmp_path / "m.safetensors", tmp_path / "s")
    assert snapshot(tmp_path / "s") == before
    with pytest.raises(ValueError, match="complex"):
        make_store(tmp_path / "c", z=np.zeros(3, np.complex64))
        nio.to_safetensors_file(tmp_path / "c", tmp_path / "c.safetensors")
    assert not (tmp_path / "c.safetensors").exists()


# ---------------------------------------------------------------------------
# torch (only where torch is installed)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32",
                                   "float64", "complex64", "complex128"])
def test_torch_roundtrip(tmp_path, dtype):
    torch = pytest.importorskip("torch")
    a = sample(dtype, (13, 3))
    nio.from_tensor(torch.from_numpy(a.copy()), tmp_path / "s", array_name="t")
    t = nio.to_tensor(tmp_path / "s")
    np.testing.assert_array_equal(t.numpy(), a)
    torch.save({"x": torch.from_numpy(a.copy()), "n": {"y": torch.from_numpy(a[:2].copy())}}, tmp_path / "m.pt")
    nio.from_pt(tmp_path / "m.pt", tmp_path / "p", chunk_size=64)
    with Vault(str(tmp_path / "p"), "r") as v:
        assert sorted(v.names()) == ["n/y", "x"]
        np.testing.assert_array_equal(v.load("x"), a)
    nio.to_pt(tmp_path / "p", tmp_path / "o.pt")
    back = torch.load(tmp_path / "o.pt", weights_only=True)
    np.testing.assert_array_equal(back["x"].numpy(), a)


# ---------------------------------------------------------------------------
# optional dependencies, s3, helpers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("module,call", [
    ("h5py", lambda p: nio.from_hdf5(p / "x.h5", p / "s")),
    ("h5py", lambda p: nio.to_hdf5(p / "s", p / "x.h5")),
    ("zarr", lambda p: nio.from_zarr(p / "x.zarr", p / "s")),
    ("pyarrow", lambda p: nio.from_parquet_file(p / "x.parquet", p / "s")),
    ("pyarrow", lambda p: nio.to_feather(p / "s", p / "x.feather")),
    ("pyarrow", lambda p: nio.from_table(object(), p / "s")),
    ("pandas", lambda p: nio.from_dataframe(object(), p / "s")),
    ("pandas", lambda p: nio.to_dataframe(p / "s")),
    ("torch", lambda p: nio.from_pt(p / "x.pt", p / "s")),
    ("torch", lambda p: nio.to_tensor(p / "s")),
    ("safetensors", lambda p: nio.from_safetensors_file(p / "x.safetensors", p / "s")),
    ("blake3", lambda p: nio.pack(p / "s")),
    ("zstandard", lambda p: nio.pack(p / "s", compression=True)),
])
def test_missing_dependency(tmp_path, monkeypatch, module, call):
    make_store(tmp_path / "s", a=np.arange(3))
    before = snapshot(tmp_path / "s")
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(DependencyError) as ei:
        call(tmp_path)
    assert f"pip install {module}" in str(ei.value)
    assert isinstance(ei.value, ImportError)
    assert snapshot(tmp_path / "s") == before


def test_s3_not_supported(tmp_path):
    with pytest.raises(NotImplementedError, match="not supported yet"):
        nio.from_s3("s3://bucket/x.npy", tmp_path / "s")
    with pytest.raises(NotImplementedError, match="not supported yet"):
        nio.to_s3(tmp_path / "s", "s3://bucket/x.npy")


def test_size_helpers(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 1234)
    assert nio.get_file_size(tmp_path / "f") == 1234
    assert nio.get_file_size(tmp_path / "missing") == 0
    assert nio.is_large_file(tmp_path / "f", threshold=1000)
    assert not nio.is_large_file(tmp_path / "f")
    assert nio.estimate_chunk_rows((1000, 10), np.dtype("float64"), 800) == 10
    assert nio.estimate_chunk_rows((5, 10), np.dtype("float64"), 1 << 30) == 5
    assert nio.estimate_chunk_rows((), np.dtype("float64")) == 1
    assert nio.LARGE_FILE_THRESHOLD == 1 << 30 and nio.DEFAULT_CHUNK_SIZE == 100 << 20
    assert nio.DEFAULT_BATCH_ROWS == 100000


def test_every_numpack_io_name_is_exported():
    names = """DependencyError get_file_size is_large_file estimate_chunk_rows from_npy to_npy from_csv to_csv
    from_txt to_txt from_hdf5 to_hdf5 from_zarr to_zarr from_parquet to_parquet from_parquet_file
    to_parquet_file from_parquet_table to_parquet_table from_feather to_feather from_feather_file
    to_feather_file from_table to_table from_dataframe to_dataframe from_pt to_pt from_tensor to_tensor
    from_safetensors_file to_safetensors_file from_tensor_dict to_tensor_dict get_safetensors_metadata
    iter_safetensors from_s3 to_s3 pack unpack get_package_info LARGE_FILE_THRESHOLD DEFAULT_CHUNK_SIZE
    DEFAULT_BATCH_ROWS DLPackBuffer to_dlpack from_dlpack numpy_to_arrow_zero_copy arrow_to_numpy_zero_copy
    table_to_numpy_zero_copy numpy_to_torch_zero_copy torch_to_numpy_zero_copy ZeroCopyArray
    wrap_for_zero_copy""".split()
    missing = [n for n in names if not hasattr(nio, n)]
    assert missing == []
    assert set(names) <= set(nio.__all__)


def test_progress_bar_only_on_a_terminal(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    from numvault.io.utils import Progress

    p = Progress(100, "x")
    assert p._bar is None  # stderr is captured: not a terminal
    p.close()

    class Tty:
        def __init__(self):
            self.out = []

        def isatty(self):
            return True

        def write(self, s):
            self.out.append(s)

        def flush(self):
            pass

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    with Progress(100, "x") as p:
        assert p._bar is not None
        p.update(10)
    assert "".join(tty.out) == ""  # closed within the 1 s delay: nothing shown


def test_lazy_view_and_zero_copy_helpers(tmp_path):
    make_store(tmp_path / "s", a=np.arange(12.0).reshape(3, 4))
    with Vault(str(tmp_path / "s"), "r") as v:
        lz = v.lazy("a")
        w = nio.wrap_for_zero_copy(lz)
        assert w.shape == (3, 4) and w.nbytes == 96
        np.testing.assert_array_equal(np.asarray(w), np.arange(12.0).reshape(3, 4))
        buf = nio.to_dlpack(np.arange(5))
        np.testing.assert_array_equal(nio.from_dlpack(buf), np.arange(5))
        del w, lz
    assert os.path.isdir(tmp_path / "s")
    assert numvault.__name__ == "numvault"


# ---------------------------------------------------------------------------
# Transaction.save_batches (the engine's streamed save that io stages with)
# ---------------------------------------------------------------------------


def test_transaction_save_batches(tmp_path):
    make_store(tmp_path / "s", old=np.arange(3))
    with Vault(str(tmp_path / "s"), "a") as v:
        with v.begin() as tx:
            n = tx.save_batches("a", (np.full((5, 2), i, np.int16) for i in range(7)))
            assert n == 35 and tx.shape("a") == (35, 2)
            assert tx.save_batches("nothing", iter([])) == 0 and "nothing" not in tx
        got = v.load("a")
    assert got.dtype == np.int16 and (got[::5, 0] == np.arange(7)).all()

    def bad():
        yield np.zeros((4, 2))
        raise RuntimeError("source failed")

    before = snapshot(tmp_path / "s")
    with Vault(str(tmp_path / "s"), "a") as v:
        tx = v.begin()
        with pytest.raises(RuntimeError, match="source failed"):
            tx.save_batches("b", bad())
        with pytest.raises(ValueError, match="does not stack"):
            tx.save_batches("c", [np.zeros((2, 3)), np.zeros((2, 4))])
        with pytest.raises(ValueError, match="does not stack"):
            tx.save_batches("d", [np.zeros((2, 3)), np.zeros((2, 3), np.float32)])
        tx.discard()
    assert snapshot(tmp_path / "s") == before
    assert [p.name for p in (tmp_path / "s" / "data").iterdir() if p.name.startswith("stage-")] == []


def test_import_beside_an_open_numpack(tmp_path):
    """A converter writes by turns, as NumPack instances do: it commits into
    a store another handle has open, and that handle sees the new array."""
    np.save(tmp_path / "x.npy", np.arange(6.0))
    with NumPack(tmp_path / "s") as npk:
        npk.save({"mine": np.arange(3)})
        nio.from_npy(tmp_path / "x.npy", tmp_path / "s")
        npk.save({"after": np.arange(2)})
    assert sorted(snapshot(tmp_path / "s")) == ["after", "mine", "x"]


def test_damaged_pt_file_leaves_store(tmp_path):
    torch = pytest.importorskip("torch")
    make_store(tmp_path / "s", keep=np.arange(4))
    before = snapshot(tmp_path / "s")
    torch.save({"x": torch.arange(100000)}, tmp_path / "m.pt")
    raw = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "m.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ConversionError, match="m.pt"):
        nio.from_pt(tmp_path / "m.pt", tmp_path / "s")
    assert snapshot(tmp_path / "s") == before


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    make_store(tmp_path / "s", a=np.arange(1000.0), b=np.arange(10))
    (tmp_path / "out.h5").write_bytes(b"old contents")
    import numvault.io.hdf5_io as h

    real = h.store_batches

    def failing(v, name, chunk):
        if name == "b":
            raise OSError("disk on fire")
        return real(v, name, chunk)

    monkeypatch.setattr(h, "store_batches", failing)
    with pytest.raises(OSError, match="disk on fire"):
        nio.to_hdf5(tmp_path / "s", tmp_path / "out.h5")
    assert (tmp_path / "out.h5").read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "s"]
    del h5py


def test_arrow_refuses_rows_of_zero_elements(tmp_path):
    pytest.importorskip("pyarrow")
    make_store(tmp_path / "s", z=np.zeros((5, 0)), y=np.zeros((4, 2, 0), np.int8))
    for name in ("z", "y"):
        with pytest.raises(ValueError, match="zero elements"):
            nio.to_parquet(tmp_path / "s", tmp_path / f"{name}.parquet", array_name=name)
        with pytest.raises(ValueError, match="zero elements"):
            nio.to_table(tmp_path / "s", array_name=name)
        assert not (tmp_path / f"{name}.parquet").exists()
