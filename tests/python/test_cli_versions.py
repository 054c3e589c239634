"""Integration tests of the ``numvault`` command's versions (FORMAT.md §15):
snapshot, versions, diff, restore, delete-snapshot, gc, upgrade and the
``--version V`` of info/ls/show/verify/export, run as the installed binary
in a subprocess (as test_cli.py does) on a copy of the format-1 fixture
``checkpointed`` and on new stores. Data changes go through numvault.Vault;
every version operation goes through the command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import numvault

EXE = Path(sys.executable).with_name("numvault")
CMD = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "numvault"]
FIXTURE = (Path(__file__).resolve().parents[2]
           / "crates" / "numvault" / "tests" / "fixtures" / "v1" / "checkpointed")
VERSION_VERBS = ["snapshot", "versions", "diff", "restore", "delete-snapshot", "gc", "upgrade"]


def nv(*args, code: int = 0) -> subprocess.CompletedProcess:
    """Run the command; assert its exit status."""
    p = subprocess.run(CMD + [str(a) for a in args], capture_output=True, text=True, timeout=300)
    assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "panicked" not in p.stderr, p.stderr
    return p


def nvj(*args, code: int = 0) -> dict:
    """Run with --json; the output must be one JSON document."""
    return json.loads(nv(*args, "--json", code=code).stdout)


def load_all(path: Path) -> dict[str, np.ndarray]:
    with numvault.Vault(path, "r") as v:
        return {n: v.load(n) for n in v.names()}


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for n, a in want.items():
        assert got[n].dtype == a.dtype, n
        np.testing.assert_array_equal(got[n], a, err_msg=n)


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    """A fresh copy of the format-1 fixture (never the checked-in files)."""
    path = tmp_path / "v1"
    shutil.copytree(FIXTURE, path)
    return path


@pytest.fixture
def upgraded(v1: Path):
    """The fixture upgraded through the command, with its data."""
    before = load_all(v1)
    assert nvj("upgrade", v1)["upgraded"] is True
    return v1, before


def change(path: Path) -> None:
    """One change of every kind diff reports, on the fixture's arrays."""
    with numvault.Vault(path) as v:
        v.append("big/f32", np.ones((5, 4), np.float32))    # rows 2150..2155
        v.replace("big/f32", [0, 5, 6], np.zeros((3, 4), np.float32))
        v.delete_rows("big/f32", [1, 2])                     # -> 2153 rows
        v.rename("grid/3d", "grid/cube")
        v.drop("flags/bool")
        v.save("added", np.arange(4))
        v.save("dtypes/int8", np.arange(5, dtype=np.int16))  # another dtype
        v.save("dtypes/uint16", np.arange(45, dtype=np.uint16))  # same type, new file


def test_help_names_the_version_verbs():
    out = nv("--help").stdout
    for verb in VERSION_VERBS:
        assert verb in out
        assert "Usage: numvault " + verb in nv(verb, "--help").stdout
    assert "--version" in out and "numvault upgrade" in out
    for verb in ["info", "ls", "show", "verify", "export"]:
        assert "--version <V>" in nv(verb, "--help").stdout, verb
    # The program's version is still `numvault --version`.
    version = nv("--version").stdout
    assert version.startswith("numvault ")
    assert f"format version {numvault.FORMAT_VERSION}" in version
    assert nv("-V").stdout == version


def test_format1_store_needs_upgrade_and_upgrades(v1):
    manifest = (v1 / "MANIFEST").read_bytes()
    files = sorted(p.relative_to(v1) for p in v1.rglob("*"))
    info = nvj("info", v1)
    assert (info["format_version"], info["versions"], info["version"]) == (1, 0, None)
    assert info["engine_format_version"] == numvault.FORMAT_VERSION == 2
    assert f"numvault upgrade {v1}" in nv("info", v1).stdout
    for args in [("snapshot", v1), ("snapshot", v1, "--tag", "t"), ("versions", v1),
                 ("diff", v1, "1"), ("restore", v1, "1"), ("delete-snapshot", v1, "1"),
                 ("info", v1, "--version", "1"), ("ls", v1, "--version", "1"),
                 ("show", v1, "big/f32", "--version", "1"), ("verify", v1, "--version", "1"),
                 ("export", v1, "big/f32", "--to", v1.parent / "x.npy", "--version", "1")]:
        err = nv(*args, code=3).stderr
        assert "is format version 1" in err and f"numvault upgrade {v1}" in err, (args, err)
        doc = nvj(*args, code=3)
        assert doc["ok"] is False and "numvault upgrade" in doc["error"]
    # Nothing was written.
    assert (v1 / "MANIFEST").read_bytes() == manifest
    assert sorted(p.relative_to(v1) for p in v1.rglob("*")) == files
    assert not (v1.parent / "x.npy").exists()

    before = load_all(v1)
    up = nvj("upgrade", v1)
    assert up == {"ok": True, "upgraded": True, "format_version_before": 1, "format_version": 2}
    assert nvj("upgrade", v1)["upgraded"] is False
    assert "already format version 2; nothing to do" in nv("upgrade", v1).stdout
    info = nvj("info", v1)
    assert (info["format_version"], info["versions"]) == (2, 0)
    assert "versions:       0" in nv("info", v1).stdout
    assert_same(load_all(v1), before)
    assert nvj("verify", v1)["ok"] is True
    assert nvj("versions", v1)["versions"] == []
    assert "no versions" in nv("versions", v1).stdout


def test_snapshot_versions_diff_and_reading_old_versions(upgraded, tmp_path):
    path, before = upgraded
    base = int(nv("snapshot", path, "--tag", "base").stdout)
    snap = nvj("snapshot", path)
    second = snap["id"]
    assert second > base and snap["tag"] is None and snap["arrays"] == len(before)
    assert snap["time"].endswith("Z")
    vs = nvj("versions", path)["versions"]
    assert [(v["id"], v["tag"], v["array_count"]) for v in vs] == [
        (base, "base", len(before)), (second, None, len(before))]
    assert vs[0]["arrays"] == sorted(before)
    assert all(isinstance(v["own_bytes"], int) for v in vs)
    text = nv("versions", path).stdout.splitlines()
    assert text[0].split() == ["ID", "TAG", "TIME", "ARRAYS", "OWN", "BYTES"]
    assert text[1].split()[:2] == [str(base), "base"] and text[2].split()[:2] == [str(second), "-"]
    info = nvj("info", path)
    assert info["versions"] == 2 and info["version"] is None
    assert "versions:       2" in nv("info", path).stdout

    # Nothing changed between the two versions, nor since.
    d = nvj("diff", path, "base", second)
    assert d["arrays"] == [] and d["from"]["id"] == base and d["to"]["id"] == second
    assert "no differences" in nv("diff", path, base).stdout

    change(path)
    third = nvj("snapshot", path, "--tag", "after")["id"]
    d = nvj("diff", path, "base")
    assert d["from"] == {**d["from"], "id": base, "tag": "base"} and d["to"] is None
    arrays = {a["name"]: a for a in d["arrays"]}
    assert {n: a["kind"] for n, a in arrays.items()} == {
        "added": "added", "big/f32": "modified", "dtypes/int8": "retyped",
        "dtypes/uint16": "rewritten", "flags/bool": "dropped", "grid/cube": "renamed"}
    big = arrays["big/f32"]
    assert big["before"] == {"dtype": "float32", "shape": [2150, 4]}
    assert big["after"] == {"dtype": "float32", "shape": [2153, 4]}
    # Deleted rows in the old numbering; appended and replaced in the new.
    assert big["deleted"] == [[1, 3]] and big["rows_deleted"] == 2
    assert big["appended"] == [[2148, 2153]] and big["rows_appended"] == 5
    assert big["replaced"] == [[0, 1], [3, 5]] and big["rows_replaced"] == 3
    assert arrays["grid/cube"]["renamed_from"] == "grid/3d"
    assert arrays["flags/bool"]["after"] is None and arrays["added"]["before"] is None
    assert arrays["dtypes/int8"]["before"] == {"dtype": "int8", "shape": [72]}
    assert arrays["dtypes/int8"]["after"] == {"dtype": "int16", "shape": [5]}
    # The same against the snapshot taken after the changes; nothing since.
    assert nvj("diff", path, "base", "after")["arrays"] == d["arrays"]
    assert nvj("diff", path, second, third)["arrays"] == d["arrays"]
    assert nvj("diff", path, "after")["arrays"] == []
    text = nv("diff", path, "base").stdout
    assert f"version {base} ('base') -> the current state: 6 arrays differ" in text
    for want in ["deleted 2 rows: 1..3", "appended 5 rows: 2148..2153",
                 "replaced 3 rows: 0..1, 3..5", "grid/3d -> grid/cube",
                 "(2150, 4) float32 -> (2153, 4) float32", "(72,) int8 -> (5,) int16"]:
        assert want in text, want
    # versions ARRAY: the versions in which that array changed.
    assert [v["id"] for v in nvj("versions", path, "big/f32")["versions"]] == [base, third]
    assert [v["id"] for v in nvj("versions", path, "dtypes/int32")["versions"]] == [base]
    assert nvj("versions", path, "nothing")["versions"] == []

    # --version: the old data, by tag and by id, read-only.
    now = load_all(path)
    for ref in ["base", str(base), str(second)]:
        info = nvj("info", path, "--version", ref)
        assert info["version"]["id"] in (base, second)
        shapes = {a["name"]: a["shape"] for a in info["arrays"]}
        assert shapes == {n: list(a.shape) for n, a in before.items()}
        assert [a["name"] for a in nvj("ls", path, "--version", ref)["arrays"]] == sorted(before)
        got = nvj("show", path, "big/f32", "--version", ref, "--rows", "0:3")
        np.testing.assert_array_equal(np.array(got["rows"], np.float32), before["big/f32"][:3])
        rep = nvj("verify", path, "--version", ref)
        assert rep["ok"] is True and rep["arrays"] == len(before)
    shown = nv("info", path, "--version", "base").stdout
    assert f"showing:        version {base} ('base')" in shown
    assert "(version" in nv("show", path, "big/f32", "--version", "base").stdout
    assert "OK: no problems" in nv("verify", path, "--version", "base").stdout
    assert [a["name"] for a in nvj("ls", path)["arrays"]] == sorted(now)
    for name in ["flags/bool", "big/f32", "grid/3d"]:
        out = tmp_path / (name.replace("/", "_") + ".npy")
        rep = nvj("export", path, name, "--to", out, "--version", "base")
        assert rep["version"] == base
        np.testing.assert_array_equal(np.load(out), before[name])
    nv("export", path, "flags/bool", "--to", tmp_path / "gone.npy", code=2)  # dropped since
    out = tmp_path / "now.npy"
    nvj("export", path, "big/f32", "--to", out)
    np.testing.assert_array_equal(np.load(out), now["big/f32"])
    # Reading versions changed nothing.
    assert_same(load_all(path), now)


def test_restore_delete_snapshot_gc_and_the_log(upgraded):
    path, before = upgraded
    base = nvj("snapshot", path, "--tag", "base")["id"]
    change(path)

    # Named arrays only: the others stay as they are.
    r = nvj("restore", path, "base", "big/f32", "dtypes/int32")
    assert r["version"]["id"] == base
    assert (r["restored"], r["dropped"], r["unchanged"]) == (["big/f32"], [], ["dtypes/int32"])
    now = load_all(path)
    np.testing.assert_array_equal(now["big/f32"], before["big/f32"])
    assert "grid/cube" in now and "flags/bool" not in now
    err = nvj("restore", path, "base", "no/such", code=2)
    assert "no/such" in err["error"]
    err = nvj("restore", path, "base", "added", code=2)  # not in that version
    assert "added" in err["error"]

    # Everything: arrays the version lacks are dropped; one commit.
    seq = nvj("info", path)["last_seq"]
    text = nv("restore", path, base).stdout
    assert f"restored from version {base} ('base')" in text and "dropped" in text
    assert nvj("info", path)["last_seq"] == seq + 1
    assert_same(load_all(path), before)
    assert nvj("diff", path, "base")["arrays"] == []
    r = nvj("restore", path, "base")
    assert (r["restored"], r["dropped"]) == ([], [])
    assert "nothing to restore" in nv("restore", path, "base").stdout
    assert nvj("verify", path)["ok"] is True

    # The log shows the version ops.
    log = nvj("log", path)
    ops = [o for c in log["commits"] for o in c["ops"]]
    snap = [o for o in ops if o["op"] == "snapshot"]
    assert snap == [{"op": "snapshot", "array": "", "to": None, "rows": 0,
                     "version": base, "tag": "base"}]
    restores = [o for o in ops if o["op"] == "restore"]
    assert {"op": "restore", "array": "big/f32", "to": None, "rows": 0, "version": base,
            "tag": None} in restores
    assert {o["array"] for o in restores} >= {"big/f32", "flags/bool", "grid/3d"}
    text = nv("log", path).stdout
    assert f"version {base} 'base'" in text and f"big/f32 <- version {base}" in text

    # Delete it; its data stays until gc.
    d = nvj("delete-snapshot", path, "base")
    assert d["deleted"]["id"] == base and d["deleted"]["tag"] == "base"
    assert nvj("versions", path)["versions"] == []
    err = nvj("delete-snapshot", path, "base", code=2)
    assert "no version 'base'" in err["error"]
    deletions = [o for c in nvj("log", path)["commits"] for o in c["ops"]
                 if o["op"] == "delete_snapshot"]
    assert deletions == [{"op": "delete_snapshot", "array": "", "to": None, "rows": 0,
                          "version": base, "tag": None}]
    assert f"version {base}" in nv("log", path, "--last", "1").stdout
    g = nvj("gc", path)
    assert g["ok"] is True and g["bytes_freed"] >= 0
    assert "freed" in nv("gc", path).stdout
    assert_same(load_all(path), before)
    assert nvj("verify", path)["ok"] is True


def test_gc_frees_what_only_a_deleted_version_kept(tmp_path):
    path = tmp_path / "s"
    big = np.arange(300_000, dtype=np.float64).reshape(-1, 3)  # 2.4 MB
    with numvault.Vault(path) as v:
        v.save("x", big)
    first = int(nv("snapshot", path).stdout)
    with numvault.Vault(path) as v:
        v.save("x", big[:10])  # a new file; only the version keeps the old one
    vs = nvj("versions", path)["versions"]
    assert vs[0]["own_bytes"] >= big.nbytes
    assert "2.3 MiB" in nv("versions", path).stdout
    np.testing.assert_array_equal(
        np.array(nvj("show", path, "x", "--version", first, "--rows", "-1:")["rows"]), big[-1:])
    before = nvj("info", path)["totals"]["store_bytes"]
    text = nv("delete-snapshot", path, first).stdout
    assert f"deleted version {first}" in text and "numvault gc" in text
    g = nvj("gc", path)
    assert g["bytes_freed"] >= big.nbytes
    assert g["store_bytes_after"] < g["store_bytes_before"]
    assert nvj("info", path)["totals"]["store_bytes"] < before - big.nbytes // 2
    assert nvj("gc", path)["bytes_freed"] == 0
    with numvault.Vault(path, "r") as v:
        np.testing.assert_array_equal(v.load("x"), big[:10])


def test_bad_versions_tags_and_locks(tmp_path):
    path = tmp_path / "s"
    with numvault.Vault(path) as v:
        v.save("a", np.arange(3, dtype=np.int32))
    assert nvj("info", path)["format_version"] == 2
    for args in [("info", path, "--version", "99"), ("ls", path, "--version", "nope"),
                 ("show", path, "a", "--version", "99"), ("verify", path, "--version", "99"),
                 ("export", path, "a", "--to", tmp_path / "a.npy", "--version", "99"),
                 ("diff", path, "99"), ("restore", path, "99"), ("delete-snapshot", path, "99")]:
        err = nvj(*args, code=2)
        assert err["ok"] is False and err["kind"] == "usage", args
        assert "has no version" in err["error"] and "numvault versions" in err["error"], args
        assert "has no version" in nv(*args, code=2).stderr
    assert not (tmp_path / "a.npy").exists()
    base = int(nv("snapshot", path, "--tag", "base").stdout)
    assert "has no version 99" in nvj("diff", path, "base", "99", code=2)["error"]
    assert "has no version 'nope'" in nvj("diff", path, "nope", "base", code=2)["error"]
    # Tags: unique, valid names.
    assert "already used by version" in nvj("snapshot", path, "--tag", "base", code=2)["error"]
    nvj("snapshot", path, "--tag", "a//b", code=2)
    nvj("snapshot", path, "--tag", "", code=2)
    # A tag made of digits names an id first, itself when no id matches.
    digits = nvj("snapshot", path, "--tag", "2024")["id"]
    assert digits != 2024
    assert nvj("info", path, "--version", "2024")["version"] == {
        **nvj("info", path, "--version", "2024")["version"], "id": digits, "tag": "2024"}
    assert nvj("info", path, "--version", base)["version"]["tag"] == "base"
    assert len(nvj("versions", path)["versions"]) == 2
    # Usage errors from the parser.
    nv("info", path, "--version", code=2)
    nv("log", path, "--version", "1", code=2)
    nv("diff", path, code=2)
    nv("delete-snapshot", path, code=2)
    # No store; a store locked by a writer (reads still work).
    assert "no such store" in nvj("snapshot", tmp_path / "none", code=3)["error"]
    nvj("versions", tmp_path / "none", code=3)
    with numvault.Vault(path):
        for verb in ["snapshot", "gc", "upgrade"]:
            assert "locked" in nvj(verb, path, code=3)["error"], verb
        assert "locked" in nvj("restore", path, "base", code=3)["error"]
        assert "locked" in nvj("delete-snapshot", path, "base", code=3)["error"]
        assert len(nvj("versions", path)["versions"]) == 2
        assert nvj("diff", path, "base")["arrays"] == []
        assert nvj("info", path, "--version", "base")["version"]["id"] == base


def test_a_damaged_version_file(tmp_path):
    path = tmp_path / "s"
    with numvault.Vault(path) as v:
        v.save("a", np.arange(10))
    nv("snapshot", path, "--tag", "t")
    nv("gc", path)  # a checkpoint: the version file is written
    (vfile,) = (path / "versions").glob("*.nvv")
    data = bytearray(vfile.read_bytes())
    data[40] ^= 0x01
    vfile.write_bytes(bytes(data))
    # info still shows the store (it counts versions from the MANIFEST,
    # without reading their files); verify names the file; reading it is
    # damage.
    info = nvj("info", path)
    assert info["versions"] == 1 and info["arrays"][0]["name"] == "a"
    rep = nvj("verify", path, code=1)
    assert any(vfile.name in p["detail"] or vfile.name in p["file"] for p in rep["problems"])
    for args in [("versions", path), ("info", path, "--version", "t"), ("diff", path, "t")]:
        err = nvj(*args, code=1)
        assert err["kind"] == "damage" and vfile.name in err["error"], args
    assert nvj("ls", path)["arrays"][0]["name"] == "a"


def test_a_version_being_read_is_not_deleted(tmp_path):
    path = tmp_path / "s"
    with numvault.Vault(path) as v:
        v.save("a", np.arange(10))
    vid = int(nv("snapshot", path, "--tag", "t").stdout)
    with numvault.Vault(path, "r", version="t"):
        err = nvj("delete-snapshot", path, "t", code=3)
        assert "being read" in err["error"]
        # Reading it through the command at the same time is fine.
        assert nvj("info", path, "--version", "t")["version"]["id"] == vid
    assert [v["id"] for v in nvj("versions", path)["versions"]] == [vid]
    # The command's own reads of the version leave no lease behind.
    nv("show", path, "a", "--version", vid)
    assert nvj("delete-snapshot", path, vid)["deleted"]["id"] == vid
    assert nvj("versions", path)["versions"] == []
    leases = path / "leases"
    assert not leases.exists() or list(leases.glob("*.lease")) == []
