"""Import of NumPack stores (issue 12, part 3): ``numvault.io.from_numpack``
and ``numvault import STORE NUMPACK_DIR`` on stores written by the real
NumPack 0.5.2, 0.6.0 and 0.7.0 (tests/fixtures/numpack/<version>/store,
made by tests/fixtures/numpack/make_fixtures.py), compared with what
NumPack's own ``load`` returned (expected.npz); damaged copies give a clear
error and leave the target as it was.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import numvault
from numvault.io import ConversionError
from numvault.io.numpack_store import from_numpack, is_numpack_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "numpack"
VERSIONS = sorted(p.name for p in FIXTURES.iterdir() if (p / "store" / "metadata.npkm").is_file())

EXE = Path(sys.executable).with_name("numvault")


def _cli_supports_numpack() -> bool:
    if not EXE.exists():
        return False
    p = subprocess.run([str(EXE), "import", "--help"], capture_output=True, text=True)
    return "--from" in p.stdout


needs_cli = pytest.mark.skipif(
    not _cli_supports_numpack(),
    reason="the numvault binary (with NumPack import) is not installed: pip install ./crates/numvault-cli",
)


def expected(version: str) -> dict:
    with np.load(FIXTURES / version / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def store_contents(path: Path) -> dict:
    with numvault.Vault(str(path), "r") as v:
        return {n: np.asarray(v.load(n)) for n in v.names()}


def assert_same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for k, w in want.items():
        g = got[k]
        assert g.dtype == w.dtype, k
        assert g.shape == w.shape, k
        # Bytes, so NaN payloads and -0.0 count too.
        assert g.tobytes() == w.tobytes(), k


def copy_fixture(version: str, tmp_path: Path) -> Path:
    d = tmp_path / f"np-{version}"
    shutil.copytree(FIXTURES / version / "store", d)
    return d


def test_fixtures_cover_the_versions():
    assert {"0.5.2", "0.6.0", "0.7.0"} <= set(VERSIONS)
    meta = json.loads((FIXTURES / "0.7.0" / "fixture.json").read_text())
    assert meta["segmented_array"] is True
    for v in VERSIONS:
        names = set(expected(v))
        for dt in ("bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
                   "int64", "float16", "float32", "float64", "complex64", "complex128"):
            assert f"dtype_{dt}" in names and f"plain_{dt}" in names
        assert is_numpack_store(FIXTURES / v / "store")


@pytest.mark.parametrize("version", VERSIONS)
def test_from_numpack_every_value(version, tmp_path):
    dst = tmp_path / "vault"
    report = from_numpack(FIXTURES / version / "store", dst)
    want = expected(version)
    assert_same(store_contents(dst), want)
    by_name = {r["name"]: r for r in report}
    assert set(by_name) == set(want)
    assert by_name["wide_words"]["deleted_rows"] == 28
    assert by_name["dtype_int8"]["shape"] == [65, 3]
    if version == "0.7.0":
        assert by_name["segmented"]["segmented"] is True
        # 0.7 keeps a wholly dropped array, with no live rows.
        assert want["whole_drop"].shape == (0, 2)
    else:
        assert "whole_drop" not in want


def test_from_numpack_in_small_chunks_and_through_numvault_io(tmp_path):
    import numvault.io as nio

    dst = tmp_path / "vault"
    nio.from_numpack(FIXTURES / "0.7.0" / "store", dst, chunk_size=64)
    assert_same(store_contents(dst), expected("0.7.0"))


def test_options_prefix_arrays_and_drop_if_exists(tmp_path):
    dst = tmp_path / "vault"
    with numvault.Vault(str(dst), "w") as v:
        v.save("mine", np.arange(3))
    from_numpack(FIXTURES / "0.6.0" / "store", dst, arrays=["cube", "appended"], prefix="np")
    got = store_contents(dst)
    assert sorted(got) == ["mine", "np/appended", "np/cube"]
    want = expected("0.6.0")
    assert got["np/cube"].tobytes() == want["cube"].tobytes()
    from_numpack(FIXTURES / "0.6.0" / "store", dst, drop_if_exists=True, arrays=["cube"])
    assert sorted(store_contents(dst)) == ["cube"]


def test_return_npk_obj(tmp_path):
    dst = tmp_path / "vault"
    npk = from_numpack(FIXTURES / "0.5.2" / "store", dst, return_npk_obj=True)
    try:
        np.testing.assert_array_equal(npk.load("appended"), expected("0.5.2")["appended"])
    finally:
        npk.close()


def test_convert_in_place(tmp_path):
    d = copy_fixture("0.7.0", tmp_path)
    with pytest.raises(FileExistsError):
        from_numpack(d, d)
    assert is_numpack_store(d)
    from_numpack(d, d, drop_if_exists=True)
    assert not is_numpack_store(d)
    assert_same(store_contents(d), expected("0.7.0"))


# -- damaged stores -----------------------------------------------------------


def _truncate(p: Path, keep: int) -> None:
    with open(p, "r+b") as f:
        f.truncate(keep)


def _damage(kind: str, d: Path) -> str:
    """Damage the NumPack store ``d``; returns text the error must contain."""
    if kind == "truncated_data":
        f = d / "data_wide_words.npkd"
        _truncate(f, f.stat().st_size - 5)
        return "data_wide_words.npkd"
    if kind == "truncated_metadata":
        f = d / "metadata.npkm"
        _truncate(f, f.stat().st_size // 2)
        return "metadata.npkm"
    if kind == "bad_magic":
        f = d / "metadata.npkm"
        b = bytearray(f.read_bytes())
        b[0] ^= 0xFF
        f.write_bytes(bytes(b))
        return "magic"
    if kind == "truncated_bitmap":
        f = d / "deleted_cube.npkb"
        _truncate(f, 12)
        return "deleted_cube.npkb"
    if kind == "missing_data":
        (d / "data_plain_int32.npkd").unlink()
        return "data_plain_int32.npkd"
    if kind == "bad_bool":
        f = d / "data_plain_bool.npkd"
        b = bytearray(f.read_bytes())
        b[3] = 9
        f.write_bytes(bytes(b))
        return "bool value is 9"
    if kind == "truncated_segment":
        f = d / "data_segmented_segments" / "seg_000002.npkd"
        _truncate(f, 10)
        return "seg_000002.npkd"
    raise AssertionError(kind)


DAMAGE = ["truncated_data", "truncated_metadata", "bad_magic", "truncated_bitmap",
          "missing_data", "bad_bool", "truncated_segment"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_store_imports_nothing(kind, tmp_path):
    d = copy_fixture("0.7.0", tmp_path)
    needle = _damage(kind, d)
    dst = tmp_path / "vault"
    with numvault.Vault(str(dst), "w") as v:
        v.save("keep", np.arange(4, dtype=np.int16))
    before = store_contents(dst)
    err = ConversionError
    with pytest.raises(err) as ei:
        from_numpack(d, dst)
    assert needle in str(ei.value)
    assert_same(store_contents(dst), before)
    # A new target is not left behind either, and nothing beside it.
    fresh = tmp_path / "fresh"
    with pytest.raises(err):
        from_numpack(d, fresh)
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([d.name, "vault"])


def test_damage_error_names_file_array_and_offset(tmp_path):
    d = copy_fixture("0.6.0", tmp_path)
    _damage("truncated_data", d)
    with pytest.raises(ConversionError) as ei:
        from_numpack(d, tmp_path / "vault")
    e = ei.value
    assert e.source.endswith("data_wide_words.npkd")
    assert "array 'wide_words'" in e.place and "byte" in e.place
    assert "truncated" in str(e)


def test_not_a_numpack_store(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="not a NumPack store"):
        from_numpack(tmp_path / "empty", tmp_path / "vault")
    with pytest.raises(FileNotFoundError):
        from_numpack(tmp_path / "missing", tmp_path / "vault")


def test_progress_exception_cancels(tmp_path, monkeypatch):
    from numvault import _core

    dst = tmp_path / "vault"
    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _core._import_numpack(str(FIXTURES / "0.7.0" / "store"), str(dst), chunk_bytes=32, progress=progress)
    assert not dst.exists()


# -- the command ---------------------------------------------------------------


def run(*args):
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True)


@needs_cli
@pytest.mark.parametrize("version", VERSIONS)
def test_cli_import_every_value(version, tmp_path):
    dst = tmp_path / "vault"
    p = run("import", dst, FIXTURES / version / "store", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["ok"] and doc["format"] == "numpack"
    assert doc["imported"] == len(expected(version))
    assert_same(store_contents(dst), expected(version))


@needs_cli
def test_cli_from_numpack_prefix_dry_run_and_text(tmp_path):
    src = FIXTURES / "0.7.0" / "store"
    dst = tmp_path / "vault"
    p = run("import", dst, src, "--from", "numpack", "--dry-run")
    assert p.returncode == 0, p.stderr
    assert f"would import {len(expected('0.7.0'))} arrays" in p.stdout
    assert not dst.exists()
    p = run("import", dst, src, "--prefix", "old", "--include", "dtype_*", "--exclude", "dtype_bool")
    assert p.returncode == 0, p.stderr
    assert "imported 13 arrays" in p.stdout
    got = store_contents(dst)
    assert sorted(got) == sorted(f"old/{k}" for k in expected("0.7.0") if k.startswith("dtype_") and k != "dtype_bool")
    p = run("import", tmp_path / "v2", tmp_path, "--from", "numpack")
    assert p.returncode == 2 and "not a NumPack store" in p.stderr


@needs_cli
@pytest.mark.parametrize("kind", ["truncated_data", "truncated_metadata", "truncated_bitmap", "bad_bool"])
def test_cli_damaged_store_imports_nothing(kind, tmp_path):
    d = copy_fixture("0.7.0", tmp_path)
    needle = _damage(kind, d)
    dst = tmp_path / "vault"
    with numvault.Vault(str(dst), "w") as v:
        v.save("keep", np.arange(4, dtype=np.int16))
    before = store_contents(dst)
    p = run("import", dst, d)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "corrupt NumPack store" in p.stderr and needle in p.stderr
    assert_same(store_contents(dst), before)
    p = run("import", tmp_path / "fresh", d, "--json")
    assert p.returncode == 1
    assert not (tmp_path / "fresh").exists()


def test_coexists_with_an_open_numpack_instance(tmp_path):
    dst = tmp_path / "vault"
    npk = numvault.NumPack(str(dst))
    npk.open()
    try:
        npk.save({"x": np.arange(3)})
        from_numpack(FIXTURES / "0.7.0" / "store", dst, arrays=["cube"])
        npk.save({"y": np.arange(2)})
    finally:
        npk.close()
    got = store_contents(dst)
    assert sorted(got) == ["cube", "x", "y"]
    assert got["cube"].tobytes() == expected("0.7.0")["cube"].tobytes()
