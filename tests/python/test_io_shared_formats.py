"""numvault.io through the Rust formats crate shared with the command
(crates/numvault-formats): .npy/.npz edge cases, CSV written exactly as
NumPy's savetxt writes it, the documented fallbacks to NumPy / pandas."""

import numpy as np
import pytest

from numvault import Vault, _core
from numvault import io as nio
from numvault.io import ConversionError


def load(path, name):
    with Vault(str(path), "r") as v:
        return v.load(name)


def test_npz_members_of_every_layout(tmp_path):
    arrays = {
        "empty": np.zeros((0, 3)),
        "nobytes": np.zeros((4, 0), np.int8),
        "big": np.arange(6, dtype=">i4").reshape(3, 2),
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "flags": np.array([True, False, True]),
    }
    np.savez_compressed(tmp_path / "m.npz", **arrays)
    nio.from_npy(tmp_path / "m.npz", tmp_path / "s", chunk_size=8)
    for k, a in arrays.items():
        got = load(tmp_path / "s", k)
        assert got.shape == a.shape and got.dtype == a.dtype.newbyteorder("=")
        np.testing.assert_array_equal(got, a)
    # an archive written by to_npy (zip64, streamed members) reads back
    nio.to_npy(tmp_path / "s", tmp_path / "out.npz")
    nio.from_npy(tmp_path / "out.npz", tmp_path / "t")
    for k, a in arrays.items():
        np.testing.assert_array_equal(load(tmp_path / "t", k), a)


def test_npy_scalar_and_bad_member_are_conversion_errors(tmp_path):
    np.save(tmp_path / "z.npy", np.float64(3))
    with pytest.raises(ConversionError, match="0-d"):
        nio.from_npy(tmp_path / "z.npy", tmp_path / "s")
    np.savez(tmp_path / "d.npz", a=np.arange(3), b=np.arange(4))
    raw = bytearray((tmp_path / "d.npz").read_bytes())
    raw[raw.index(b"\x93NUMPY", raw.index(b"b.npy")) + 1] ^= 0xFF  # b's magic
    (tmp_path / "d.npz").write_bytes(bytes(raw))
    with pytest.raises(ConversionError) as ei:
        nio.from_npy(tmp_path / "d.npz", tmp_path / "s")
    assert ei.value.place == "member 'b.npy'" and "magic" in str(ei.value)
    assert not (tmp_path / "s").exists()


def test_npy_header_is_numpys(tmp_path):
    for dtype in ["bool", "int8", "uint16", "float16", "complex128"]:
        h = _core._npy_header(dtype, [3, 2])
        assert len(h) % 64 == 0
        (tmp_path / "h.npy").write_bytes(h + np.zeros((3, 2), dtype).tobytes())
        a = np.load(tmp_path / "h.npy")
        assert a.dtype == np.dtype(dtype) and a.shape == (3, 2)


@pytest.mark.parametrize(
    "dtype,fmt,delimiter",
    [
        ("float64", "%.18e", ","),
        ("float32", "%.17g", ";"),
        ("float64", "%10.3f", " "),
        ("float64", "%+.4E", "\t"),
        ("float16", "%g", ","),
        ("int64", "%d", ","),
        ("uint8", "%05d", ","),
        ("int32", "%.2e", ","),
        ("bool", "%d", ","),
    ],
)
def test_to_csv_writes_what_savetxt_writes(tmp_path, dtype, fmt, delimiter):
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((40, 3)) * 1000).astype(dtype)
    if np.dtype(dtype).kind == "f":
        a[0, :] = [np.inf, -np.inf, np.nan]
        a[1, :] = [0.0, -0.0, 1e-30]
    with Vault(str(tmp_path / "s"), "a") as v:
        v.save("a", a)
    nio.to_csv(tmp_path / "s", tmp_path / "a.csv", delimiter=delimiter, fmt=fmt, chunk_size=200)
    np.savetxt(tmp_path / "ref.csv", a, delimiter=delimiter, fmt=fmt)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()


def test_to_csv_falls_back_to_savetxt(tmp_path):
    a = np.arange(6.0).reshape(3, 2)
    with Vault(str(tmp_path / "s"), "a") as v:
        v.save("a", a)
        v.save("c", np.array([1 + 2j, 3 - 1j]))
    # several conversions, a footer, complex values: NumPy's savetxt
    nio.to_csv(tmp_path / "s", tmp_path / "a.csv", array_name="a", fmt="%.1f,%d", footer="end")
    np.savetxt(tmp_path / "r.csv", a, fmt="%.1f,%d", footer="end")
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "r.csv").read_text()
    nio.to_csv(tmp_path / "s", tmp_path / "c.csv", array_name="c")
    np.savetxt(tmp_path / "rc.csv", np.array([1 + 2j, 3 - 1j]), delimiter=",", fmt="%.18e")
    assert (tmp_path / "c.csv").read_text() == (tmp_path / "rc.csv").read_text()
    with pytest.raises(ValueError):
        _core._format_csv(np.zeros((1, 1)), ",", "%s")


def test_from_csv_options_through_the_rust_reader(tmp_path):
    (tmp_path / "h.csv").write_text("\ufeffa,b\n1,2\n\n3,4.5\n")
    nio.from_csv(tmp_path / "h.csv", tmp_path / "s", header="infer")
    got = load(tmp_path / "s", "h")
    assert got.dtype == np.float64 and got.tolist() == [[1, 2], [3, 4.5]]
    (tmp_path / "t.txt").write_text("skip me\n1  2\t3\n4 5 6\n7 8 9\n")
    nio.from_txt(tmp_path / "t.txt", tmp_path / "s", skiprows=1, max_rows=2, dtype="uint16")
    got = load(tmp_path / "s", "t")
    assert got.dtype == np.uint16 and got.tolist() == [[1, 2, 3], [4, 5, 6]]
    # integers beyond int64 make uint64; then a negative one cannot be held
    (tmp_path / "u.csv").write_text("1\n18446744073709551615\n")
    nio.from_csv(tmp_path / "u.csv", tmp_path / "s")
    assert load(tmp_path / "s", "u").dtype == np.uint64
    (tmp_path / "n.csv").write_text("18446744073709551615\n-1\n")
    with pytest.raises(ConversionError, match="line 1"):
        nio.from_csv(tmp_path / "n.csv", tmp_path / "s")
    (tmp_path / "e.csv").write_text("1,,3\n")
    with pytest.raises(ConversionError) as ei:
        nio.from_csv(tmp_path / "e.csv", tmp_path / "s")
    assert ei.value.place == "line 1, column 2"


def test_from_csv_falls_back_for_pandas_keywords(tmp_path):
    pytest.importorskip("pandas")
    (tmp_path / "c.csv").write_text("# note\n1,2,9\n3,4,9\n")
    nio.from_csv(tmp_path / "c.csv", tmp_path / "s", comment="#", usecols=[0, 1])
    assert load(tmp_path / "s", "c").tolist() == [[1, 2], [3, 4]]
