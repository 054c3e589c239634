"""Integration tests of the ``numvault`` command: the installed binary (the
numvault-cli wheel) run in a subprocess on stores built here, including
damaged ones. Each test checks the output (text or ``--json``), the exit
status and the data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import numvault

EXE = Path(sys.executable).with_name("numvault")
CMD = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "numvault"]
VERBS = ["info", "ls", "show", "verify", "log", "compact", "import", "status", "export", "bench"]


def nv(*args: str, code: int = 0, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the command; assert its exit status."""
    p = subprocess.run(CMD + [str(a) for a in args], capture_output=True, text=True,
                       input=input, timeout=300)
    assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def nvj(*args: str, code: int = 0) -> dict:
    """Run with --json; the output must be one JSON document."""
    p = nv(*args, "--json", code=code)
    return json.loads(p.stdout)


@pytest.fixture
def store(tmp_path: Path):
    """A store with a modified array, a 3-d array and a small int array;
    returns (path, model dict)."""
    path = tmp_path / "s"
    rng = np.random.default_rng(1)
    a = rng.random((1000, 4), dtype=np.float32)
    b = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    with numvault.Vault(path) as v:
        v.save("feat/a", a)
        v.append("feat/a", a[:10])
        a = np.concatenate([a, a[:10]])
        v.replace("feat/a", [3, 7], np.zeros((2, 4), np.float32))
        a[[3, 7]] = 0
        v.delete_rows("feat/a", [0, 1, 2])
        a = a[3:]
        v.save("b", b)
        v.save("labels", np.arange(5, dtype=np.uint8))
    return path, {"feat/a": a, "b": b, "labels": np.arange(5, dtype=np.uint8)}


def test_help_on_every_verb():
    out = nv("--help").stdout
    for verb in VERBS:
        assert verb in out
        h = nv(verb, "--help").stdout
        assert "Usage: numvault " + verb in h
    assert "Exit status" in out
    nv("no-such-verb", code=2)
    nv(code=2)


def test_info_ls_show(store):
    path, model = store
    info = nvj("info", path)
    arrays = {a["name"]: a for a in info["arrays"]}
    assert set(arrays) == set(model)
    for name, arr in model.items():
        assert arrays[name]["shape"] == list(arr.shape)
        assert arrays[name]["dtype"] == str(arr.dtype)
        assert arrays[name]["bytes_on_disk"] > 0
    # 3 deleted rows + 2 superseded copies of replaced rows.
    assert arrays["feat/a"]["dead_rows"] == 5
    assert info["format_version"] == numvault.FORMAT_VERSION
    assert info["totals"]["arrays"] == 3
    assert info["totals"]["rows"] == sum(len(a) for a in model.values())
    assert info["last_commit"].endswith("Z")
    text = nv("info", path).stdout
    assert "feat/a" in text and "(1007, 4)" in text and "totals:" in text

    ls = nvj("ls", path)
    assert [a["name"] for a in ls["arrays"]] == sorted(model)
    assert nvj("ls", path, "--prefix", "feat/")["arrays"][0]["name"] == "feat/a"
    assert "int16" in nv("ls", path).stdout

    got = nvj("show", path, "feat/a", "--rows", "2:6")
    assert (got["start"], got["stop"]) == (2, 6)
    np.testing.assert_array_equal(np.array(got["rows"], np.float32), model["feat/a"][2:6])
    got = nvj("show", path, "b", "--rows", "-1:")
    np.testing.assert_array_equal(np.array(got["rows"]), model["b"][-1:])
    text = nv("show", path, "labels").stdout
    assert "0: 0" in text and "4: 4" in text
    assert len(nvj("show", path, "feat/a")["rows"]) == 10  # default: the first 10
    nv("show", path, "nope", code=2)
    nv("show", path, "labels", "--rows", "x:y", code=2)


def test_log_lists_every_commit_and_checks_the_chain(store):
    path, _ = store
    log = nvj("log", path)
    assert log["ok"] is True
    ops = [(c["ops"][0]["op"], c["ops"][0]["array"], c["ops"][0]["rows"]) for c in log["commits"]]
    assert ops == [("save", "feat/a", 1000), ("append", "feat/a", 10), ("replace", "feat/a", 2),
                   ("delete_rows", "feat/a", 3), ("save", "b", 2), ("save", "labels", 5)]
    assert [c["seq"] for c in log["commits"]] == list(range(1, 7))
    for prev, cur in zip(log["commits"], log["commits"][1:]):
        assert cur["prev_hash"] == prev["hash"]
    assert log["head_hash"] == log["commits"][-1]["hash"]
    assert [c["seq"] for c in nvj("log", path, "--since", "4")["commits"]] == [5, 6]
    assert [c["seq"] for c in nvj("log", path, "--last", "2")["commits"]] == [5, 6]
    assert len(nvj("log", path, "--since", "1h")["commits"]) == 6
    assert nvj("log", path, "--since", "2000-01-01T00:00:00Z")["commits"][0]["seq"] == 1
    assert nvj("log", path, "--since", "2999-01-01 00:00:00")["commits"] == []
    nv("log", path, "--since", "last tuesday", code=2)
    assert "hash chain OK: 6 commits" in nv("log", path).stdout
    # Uncheckpointed commits come from the live log; checkpointed ones
    # from HISTORY (a close no longer checkpoints: issue 11, so the
    # checkpoint is explicit).
    with numvault.Vault(path) as v:
        v.checkpoint()
        v.append("labels", np.array([9], np.uint8))
        log = nvj("log", path)
        assert log["commits"][-1]["source"] == "log" and log["ok"]
        assert log["commits"][0]["source"] == "history"


def test_verify_clean_and_damaged(store, tmp_path):
    path, _ = store
    rep = nvj("verify", path)
    assert rep["ok"] and rep["problems"] == [] and rep["chunks"] >= 3
    assert rep["data_bytes"] > 0
    assert "OK: no problems" in nv("verify", path).stdout
    assert nvj("verify", path, "--quick")["chunks"] == 0

    # One flipped byte in a data file: exit 1, the array, chunk and range named.
    bad = tmp_path / "flip"
    shutil.copytree(path, bad)
    info = {a["name"]: a for a in nvj("info", bad)["arrays"]}
    f = bad / info["feat/a"]["file"]
    data = bytearray(f.read_bytes())
    data[100] ^= 0x01
    f.write_bytes(bytes(data))
    rep = nvj("verify", bad, code=1)
    assert rep["ok"] is False
    (p,) = rep["problems"]
    assert p["array"] == "feat/a" and p["chunk"] == 0 and p["range"][0] <= 100 < p["range"][1]
    assert p["file"].endswith(info["feat/a"]["file"])
    assert "PROBLEM" in nv("verify", bad, code=1).stdout
    nv("verify", bad, "--quick")  # data chunks are not read
    # The damaged array cannot be exported (checksums are verified on read).
    nv("export", bad, "feat/a", "--to", tmp_path / "x.npy", code=1)

    # A truncated data file.
    trunc = tmp_path / "trunc"
    shutil.copytree(path, trunc)
    f = trunc / info["b"]["file"]
    f.write_bytes(f.read_bytes()[:10])
    rep = nvj("verify", trunc, code=1)
    assert any(p["array"] == "b" for p in rep["problems"])

    # A damaged MANIFEST: the store cannot be opened; the file is named.
    man = tmp_path / "man"
    shutil.copytree(path, man)
    m = bytearray((man / "MANIFEST").read_bytes())
    m[40] ^= 0xFF
    (man / "MANIFEST").write_bytes(bytes(m))
    for verb in ("info", "verify", "ls", "log"):
        err = nvj(verb, man, code=1)
        assert err["ok"] is False and "MANIFEST" in err["error"] and err["kind"] == "damage"
    assert "MANIFEST" in nv("verify", man, code=1).stderr

    # A damaged HISTORY: data is fine, the audit trail reports the gap.
    # (HISTORY is written by checkpoints, and a close no longer makes one:
    # issue 11.)
    with numvault.Vault(path) as v:
        v.checkpoint()
    hist = tmp_path / "hist"
    shutil.copytree(path, hist)
    h = bytearray((hist / "HISTORY").read_bytes())
    h[len(h) // 2] ^= 0x10
    (hist / "HISTORY").write_bytes(bytes(h))
    log = nvj("log", hist, code=1)
    assert any(p["file"].endswith("HISTORY") for p in log["problems"])
    assert len(log["commits"]) < 6
    assert nvj("verify", hist, code=1)["ok"] is False
    nv("verify", hist, "--json", code=1)


def test_missing_store_and_locked_store(store, tmp_path):
    path, _ = store
    err = nvj("info", tmp_path / "nothing", code=3)
    assert "no such store" in err["error"]
    nv("verify", tmp_path / "nothing", code=3)
    with numvault.Vault(path):
        # A writer holds the lock: compaction (a writer) is refused, reads work.
        err = nvj("compact", path, code=3)
        assert "locked" in err["error"]
        nv("info", path)
        nv("verify", path)


def test_compact_reports_bytes_freed_and_keeps_data(store):
    path, model = store
    before = nvj("info", path)["totals"]["data_file_bytes"]
    rep = nvj("compact", path)
    assert [a["name"] for a in rep["arrays"]] == ["feat/a"]
    assert rep["bytes_freed"] == 5 * 16
    info = nvj("info", path)
    assert info["totals"]["dead_rows"] == 0
    assert info["totals"]["data_file_bytes"] == before - 80
    with numvault.Vault(path, "r") as v:
        for name, arr in model.items():
            np.testing.assert_array_equal(v.load(name), arr)
    assert "nothing to compact" in nv("compact", path).stdout
    assert nvj("compact", path, "labels")["bytes_freed"] == 0
    nv("compact", path, "nope", code=2)
    assert nvj("log", path)["commits"][-1]["ops"][0]["op"] == "compact"


def make_sources(root: Path) -> dict:
    """Files of every supported kind; returns array name -> expected array."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    (root / "sub" / "deep").mkdir(parents=True)
    exp = {}
    a = np.arange(60, dtype=np.float32).reshape(20, 3)
    np.save(root / "a.npy", a)
    exp["a"] = a
    be = np.arange(10, dtype=">i4")
    np.save(root / "sub" / "be.npy", be)
    exp["sub/be"] = be.astype("<i4")
    fo = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    np.save(root / "sub" / "deep" / "fortran.npy", fo)
    exp["sub/deep/fortran"] = np.ascontiguousarray(fo)
    np.savez_compressed(root / "z.npz", x=np.ones((4, 2)), y=np.arange(3, dtype=np.uint16))
    exp["z/x"] = np.ones((4, 2))
    exp["z/y"] = np.arange(3, dtype=np.uint16)
    (root / "t.csv").write_text("u,v\n1.5,2\n3,4.25\nnan,-inf\n")
    exp["t"] = np.array([[1.5, 2], [3, 4.25], [np.nan, -np.inf]])
    (root / "ints.csv").write_text("1\n2\n-3\n")
    exp["ints"] = np.array([1, 2, -3], np.int64)
    tbl = pa.table({"c0": pa.array(np.arange(5, dtype=np.float32)),
                    "c1": pa.array(np.arange(5, 10, dtype=np.float32))})
    pq.write_table(tbl, root / "p.parquet", compression="snappy")
    exp["p"] = np.stack([np.arange(5), np.arange(5, 10)], axis=1).astype(np.float32)
    (root / "notes.txt").write_text("ignored")
    return exp


def check_arrays(path: Path, exp: dict, prefix: str = "") -> None:
    with numvault.Vault(path, "r") as v:
        for name, arr in exp.items():
            got = v.load(prefix + name)
            assert got.dtype == arr.dtype, name
            np.testing.assert_array_equal(got, arr, err_msg=name)


def test_import_every_format_incrementally(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    exp = make_sources(src)
    s = tmp_path / "s"
    rep = nvj("import", s, src, "--jobs", "2")
    assert rep["ok"] and rep["imported"] == 7 and rep["failed"] == 0  # 7 files, 8 arrays
    check_arrays(s, exp)
    assert sorted(a["name"] for a in nvj("ls", s)["arrays"]) == sorted(exp)
    # Second run: everything unchanged, nothing read.
    rep = nvj("import", s, src)
    assert rep["imported"] == 0 and rep["unchanged"] == 7
    commits = len(nvj("log", s)["commits"])
    # Touch one file (same content), change another, add, delete.
    os.utime(src / "a.npy", ns=(1, 1))
    np.save(src / "sub" / "be.npy", np.arange(11, dtype="<i4"))
    np.save(src / "new.npy", np.eye(2))
    (src / "ints.csv").unlink()
    st = nvj("status", s)
    states = {Path(e["path"]).name: e["state"] for e in st["sources"]}
    assert states == {"a.npy": "touched", "be.npy": "modified", "new.npy": "new",
                      "ints.csv": "disappeared", "fortran.npy": "unchanged", "z.npz": "unchanged",
                      "t.csv": "unchanged", "p.parquet": "unchanged"}
    assert st["counts"]["modified"] == 1 and st["changed"] == 3
    text = nv("status", s).stdout
    assert "modified" in text and "disappeared" in text
    rep = nvj("import", s, src)
    by = {Path(e["path"]).name: e["state"] for e in rep["sources"]}
    assert by["be.npy"] == "re-imported" and by["new.npy"] == "imported"
    assert by["a.npy"] == "unchanged"
    # The whole import is one atomic commit (changed on purpose, issue 11:
    # it was one per source).
    assert len(nvj("log", s)["commits"]) == commits + 1
    with numvault.Vault(s, "r") as v:
        np.testing.assert_array_equal(v.load("sub/be"), np.arange(11, dtype="<i4"))
        np.testing.assert_array_equal(v.load("new"), np.eye(2))
    assert nvj("status", s)["changed"] == 1  # only the deleted ints.csv
    # --rehash detects a content change that kept size and mtime.
    st_before = os.stat(src / "a.npy")
    arr = np.load(src / "a.npy")
    arr[0, 0] = 99
    np.save(src / "a.npy", arr)
    os.utime(src / "a.npy", ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    assert nvj("import", s, src)["imported"] == 0
    assert nvj("import", s, src, "--rehash")["imported"] == 1
    with numvault.Vault(s, "r") as v:
        assert v.load("a")[0, 0] == 99


def test_import_globs_prefix_hashes_and_bad_sources(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    exp = make_sources(src)
    s = tmp_path / "s"
    rep = nvj("import", s, src, "--include", "**/*.npy", "--exclude", "sub/deep/**",
              "--prefix", "g", "--hash", "blake3")
    names = sorted(a for e in rep["sources"] for a in e["arrays"])
    assert names == ["g/a", "g/sub/be"]
    check_arrays(s, {k: exp[k] for k in ("a", "sub/be")}, prefix="g/")
    for algo in ("sha256", "xxh3"):
        # Another hash algorithm: size and mtime unchanged, so unchanged; the
        # record switches to the new algorithm.
        rep = nvj("import", s, src, "--include", "**/*.npy", "--exclude", "sub/deep/**",
                  "--prefix", "g", "--hash", algo)
        assert rep["imported"] == 0, algo
    tracking = json.loads((s / "imports.json").read_text())
    assert {v["hash_algo"] for v in tracking["sources"].values()} == {"xxh3"}
    # A single file, a dry run.
    rep = nvj("import", s, src / "t.csv", "--dry-run")
    assert rep["sources"][0]["state"] == "would import"
    assert "t" not in [a["name"] for a in nvj("ls", s)["arrays"]]
    # Bad sources: a ragged CSV and a truncated npy fail with a message naming
    # the file; the good ones are imported; exit 1.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ragged.csv").write_text("1,2\n3\n")
    (bad / "trunc.npy").write_bytes((src / "a.npy").read_bytes()[:100])
    np.save(bad / "ok.npy", np.arange(3))
    rep = nvj("import", s, bad, code=1)
    failed = {Path(e["path"]).name: e["error"] for e in rep["sources"] if e["state"] == "failed"}
    assert set(failed) == {"ragged.csv", "trunc.npy"}
    assert all(name in msg for name, msg in failed.items())
    with numvault.Vault(s, "r") as v:
        np.testing.assert_array_equal(v.load("ok"), np.arange(3))
        assert "ragged" not in v and "trunc" not in v
    nv("import", s, tmp_path / "missing", code=3)
    nv("import", s, src / "notes.txt", code=2)
    nv("import", s, src, "--jobs", "0", code=2)
    # Two sources that would become one array name are refused up front.
    clash = tmp_path / "clash"
    clash.mkdir()
    np.save(clash / "x.npy", np.arange(2))
    (clash / "x.csv").write_text("1\n")
    assert "x" in nvj("import", s, clash, code=2)["error"]


def test_export_round_trips(store, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path, model = store
    for name in ("feat/a", "b", "labels"):
        out = tmp_path / (name.replace("/", "_") + ".npy")
        rep = nvj("export", path, name, "--to", out)
        assert rep["bytes_written"] == out.stat().st_size
        got = np.load(out)
        assert got.dtype == model[name].dtype
        np.testing.assert_array_equal(got, model[name])
    csv = tmp_path / "a.csv"
    nv("export", path, "feat/a", "--to", csv)
    np.testing.assert_array_equal(np.loadtxt(csv, delimiter=",", dtype=np.float32), model["feat/a"])
    pqf = tmp_path / "a.parquet"
    nv("export", path, "feat/a", "--to", pqf)
    t = pq.read_table(pqf)
    np.testing.assert_array_equal(np.stack([c.to_numpy() for c in t.columns], axis=1),
                                  model["feat/a"])
    # An export imports back to the same array (shape kept for 3-d via metadata).
    nv("export", path, "b", "--to", tmp_path / "b.parquet")
    s2 = tmp_path / "s2"
    nv("import", s2, tmp_path / "b.parquet", tmp_path / "a.csv")
    with numvault.Vault(s2, "r") as v:
        np.testing.assert_array_equal(v.load("b"), model["b"].astype(v.load("b").dtype))
        # CSV holds the shortest text of each float32; read as float64, it
        # rounds back to the same float32.
        assert v.load("a").dtype == np.float64
        np.testing.assert_array_equal(v.load("a").astype(np.float32), model["feat/a"])
    nv("export", path, "feat/a", "--to", csv, code=2)  # exists
    nv("export", path, "feat/a", "--to", csv, "--force")
    nv("export", path, "feat/a", "--to", tmp_path / "a.xlsx", code=2)
    nv("export", path, "nope", "--to", tmp_path / "n.npy", code=2)


def test_bench_and_hash_bench(tmp_path):
    rep = nvj("bench", "--rows", "20000", "--repeats", "2", "--dir", tmp_path)
    ops = {o["op"]: o for o in rep["ops"]}
    assert set(ops) >= {"save", "load", "lazy open+row", "replace 100", "append 100", "gather 1000"}
    assert all(o["median_s"] > 0 for o in ops.values())
    assert ops["save"]["plain_file_median_s"] > 0
    assert list(tmp_path.iterdir()) == []  # cleaned up
    text = nv("bench", "--rows", "5000", "--repeats", "1", "--dir", tmp_path).stdout
    assert "replace 100" in text
    h = nvj("bench", "--hash", "--hash-mib", "4", "--repeats", "1")
    assert [a["algorithm"] for a in h["algorithms"]] == ["xxh3", "blake3", "sha256", "crc32c"]
    assert all(a["gb_per_s"] > 0 for a in h["algorithms"])
    nv("bench", "--rows", "10", code=2)


def test_output_into_a_closed_pipe_is_quiet(store):
    path, _ = store
    cmd = " ".join(f"'{c}'" for c in CMD) + f" show '{path}' feat/a --rows 0:1000 | head -n 1"
    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True)
    assert p.stdout.startswith("feat/a:")
    assert "panic" not in p.stderr and "Traceback" not in p.stderr


def test_installed_command_is_the_binary_and_python_m_runs_it(capsys, monkeypatch):
    # The numvault-cli wheel installs the Rust binary itself next to the
    # interpreter (no Python console script in between).
    from numvault import cli

    assert EXE.exists(), "pip install ./crates/numvault-cli"
    assert cli.find_binary() == str(EXE)
    if os.name == "posix":
        assert EXE.read_bytes()[:2] != b"#!"
    # python -m numvault runs it: same output, same exit status.
    direct = nv("--version").stdout
    p = subprocess.run([sys.executable, "-m", "numvault", "--version"], capture_output=True,
                       text=True)
    assert (p.returncode, p.stdout) == (0, direct)
    p = subprocess.run([sys.executable, "-m", "numvault", "no-such-verb"], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert cli.main(["info", "/nonexistent/store"]) == 3
    # Without the binary: a clear message, exit status 3.
    capsys.readouterr()
    monkeypatch.setattr(cli, "find_binary", lambda: None)
    assert cli.main(["--version"]) == 3
    assert "pip install ./crates/numvault-cli" in capsys.readouterr().err
    # A 'numvault' that calls back into the wrapper (an old console script)
    # does not loop.
    monkeypatch.setenv("NUMVAULT_CLI_SHIM", "1")
    assert cli.main(["--version"]) == 3
    assert "not the command's binary" in capsys.readouterr().err
