"""numvault.io.pack / unpack / get_package_info: round trips with history,
the container of docs/PACKAGE.md (built here independently of the
implementation), consistency under a concurrent writer, untrusted packages
(unsafe names, sizes, decompression bombs) and a hypothesis fuzz of
mutated packages: each either unpacks to the identical store or raises
PackageError, and never leaves a target or a temporary directory."""

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

blake3 = pytest.importorskip("blake3").blake3
zstandard = pytest.importorskip("zstandard")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import numvault  # noqa: E402
from numvault import NumPack, Vault  # noqa: E402
from numvault.io import PackageError, get_package_info, pack, unpack  # noqa: E402

MAGIC = b"\x89NVPKG\r\n"


def snapshot(path):
    with Vault(str(path), "r") as v:
        return {n: (str(v.dtype(n)), v.shape(n), v.load(n).tobytes()) for n in v.names()}


def make_store(path):
    """A store with several dtypes, deletions, replaces, a checkpoint (so a
    HISTORY file) and commits after it (a live log with records)."""
    rng = np.random.default_rng(1)
    with Vault(str(path), "a") as v:
        v.save("f32", rng.standard_normal((300, 8)).astype(np.float32))
        v.save("i64", np.arange(1000, dtype=np.int64).reshape(100, 10))
        v.save("b", rng.random((50, 3)) > 0.5)
        v.save("c", (rng.standard_normal(20) + 1j).astype(np.complex128))
        v.save("g/u16", np.arange(7, dtype=np.uint16))
        v.checkpoint()
        v.delete_rows("i64", [0, 5, 9])
        v.replace("f32", [3, 4], np.ones((2, 8), np.float32))
        v.append("i64", np.full((2, 10), -1, np.int64))
        v.drop("b")
    return path


def leftovers(directory, keep):
    return sorted(p.name for p in Path(directory).iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def store_and_pkg(tmp_path_factory):
    d = tmp_path_factory.mktemp("pk")
    src = make_store(d / "src.npk")
    pkg = pack(src, d / "src.npkg")
    return src, pkg, snapshot(src)


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [True, False])
def test_roundtrip_keeps_arrays_and_history(tmp_path, compression):
    src = make_store(tmp_path / "s")
    before = snapshot(src)
    history = (src / "HISTORY").read_bytes()
    pkg = pack(src, tmp_path / "p.npkg", compression=compression)
    out = unpack(pkg, tmp_path / "r")
    assert out == tmp_path / "r"
    assert snapshot(out) == before
    assert (out / "HISTORY").read_bytes().startswith(history)
    with Vault(str(out), "r") as v:
        assert v.verify()["clean"]
        assert v.info("i64")["dead_rows"] == 3
    assert leftovers(tmp_path, {"s", "p.npkg", "r"}) == []


def test_roundtrip_carries_versions_and_tags(tmp_path):
    src = tmp_path / "s"
    with Vault(str(src)) as v:
        v.save("a", np.arange(10.0))
        v1 = v.snapshot(tag="first")
        v.save("a", np.arange(5.0))
        v.checkpoint()  # v1 now has its version file
        v.save("b", np.ones(3))
        v2 = v.snapshot()  # v2 is still in the log
        v.replace("a", [0], np.array([9.0]))
    pkg = pack(src, tmp_path / "p.npkg")
    out = unpack(pkg, tmp_path / "r")
    with Vault(str(out), "r") as v:
        assert [(x["id"], x["tag"]) for x in v.versions()] == [(v1, "first"), (v2, None)]
        with v.at("first") as old:
            np.testing.assert_array_equal(old.load("a"), np.arange(10.0))
            assert "b" not in old
        with v.at(v2) as old:
            np.testing.assert_array_equal(old.load("a"), np.arange(5.0))
        np.testing.assert_array_equal(v.load("a")[:2], [9.0, 1.0])
        assert v.verify()["clean"]


def test_defaults_and_numpack_calls(tmp_path):
    npk = tmp_path / "sample.npk"
    with NumPack(npk) as n:
        n.save({"a": np.arange(10.0)})
    p = pack(npk)
    assert p == tmp_path / "sample.npk.npkg" and p.suffix == ".npkg"
    assert pack(npk, tmp_path / "noext") == tmp_path / "noext.npkg"
    with pytest.raises(FileExistsError):
        pack(npk)
    pack(npk, overwrite=True)
    import shutil

    shutil.rmtree(npk)
    r = unpack(p)
    assert r == tmp_path / "sample.npk"
    with NumPack(r) as n:
        np.testing.assert_array_equal(n.load("a"), np.arange(10.0))
    with pytest.raises(FileExistsError):
        unpack(p)
    with NumPack(r) as n:
        n.save({"extra": np.arange(3)})
    unpack(p, overwrite=True)
    with NumPack(r) as n:
        assert n.get_member_list() == ["a"]


def test_package_info(store_and_pkg, tmp_path):
    src, pkg, before = store_and_pkg
    info = get_package_info(pkg)
    assert info["version"] == 1 and info["file_count"] == len(info["files"])
    names = {f["name"] for f in info["files"]}
    assert {"MANIFEST", "HISTORY"} <= names and any(n.startswith("wal-") for n in names)
    assert all(n.startswith("data/") for n in names - {"MANIFEST", "HISTORY"} if not n.startswith("wal-"))
    on_disk = {str(p.relative_to(src)) for p in src.rglob("*") if p.is_file()} - {"LOCK"}
    assert names == {n for n in on_disk if not n.startswith("data/stage-")}
    assert info["total_original_size"] == sum((src / f["name"]).stat().st_size for f in info["files"])
    assert 0 < info["compression_ratio"] <= 1.0
    arrays = {a["name"]: a for a in info["arrays"]}
    assert sorted(arrays) == sorted(before)
    assert arrays["i64"]["shape"] == (99, 10) and arrays["i64"]["dtype"] == "int64"
    assert arrays["f32"]["nbytes"] > 0
    raw = pack(src, tmp_path / "raw.npkg", compression=False)
    assert get_package_info(raw)["compression_ratio"] == 1.0
    assert get_package_info(raw)["compression"] == 0


def test_invalid_sources(tmp_path):
    with pytest.raises(ValueError):
        pack(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ValueError):
        pack(tmp_path / "f.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="metadata.npkm"):
        pack(tmp_path / "empty")
    with pytest.raises(ValueError):
        unpack(tmp_path / "nope.npkg")
    (tmp_path / "bad.npkg").write_bytes(b"not a valid npkg file")
    with pytest.raises(PackageError, match="Invalid"):
        unpack(tmp_path / "bad.npkg")
    with pytest.raises(PackageError, match="Invalid"):
        get_package_info(tmp_path / "bad.npkg")


def test_pack_waits_for_the_writer_lock(tmp_path):
    src = make_store(tmp_path / "s")
    v = Vault(str(src), "a")
    try:
        with pytest.raises(numvault.LockedError, match="locked by a writer"):
            pack(src, tmp_path / "p.npkg", lock_timeout=0.2)
    finally:
        v.close()
    assert not (tmp_path / "p.npkg").exists()
    pack(src, tmp_path / "p.npkg")


def test_unpack_overwrite_refuses_a_store_in_use(store_and_pkg, tmp_path):
    _, pkg, before = store_and_pkg
    tgt = tmp_path / "t"
    with Vault(str(tgt), "a") as v:
        v.save("mine", np.arange(4))
    v = Vault(str(tgt), "a")
    try:
        with pytest.raises(numvault.LockedError):
            unpack(pkg, tgt, overwrite=True)
    finally:
        v.close()
    assert snapshot(tgt) == {"mine": ("int64", (4,), np.arange(4).tobytes())}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="neither a store nor empty"):
        unpack(pkg, tmp_path / "other", overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    assert leftovers(tmp_path, {"t", "other"}) == []


WRITER = textwrap.dedent("""
    import sys, time, numpy as np, numvault
    path, stop = sys.argv[1], float(sys.argv[2])
    v = numvault.Vault(path, "a", "never", shared=True)
    n = 0
    while time.time() < stop:
        with v.begin() as tx:  # each commit appends to both arrays: they stay equal in length
            tx.append("a", np.full((64, 4), n, np.int64))
            tx.append("b", np.full((64,), n, np.int64))
        n += 1
    v.close()
""")


def test_pack_under_a_concurrent_writer_is_consistent(tmp_path):
    import time

    src = tmp_path / "s"
    with Vault(str(src), "a") as v:
        v.save("a", np.zeros((0, 4), np.int64))
        v.save("b", np.zeros((0,), np.int64))
    stop = time.time() + 4.0
    w = subprocess.Popen([sys.executable, "-c", WRITER, str(src), str(stop)])
    try:
        time.sleep(0.5)
        for i in range(3):
            p = pack(src, tmp_path / f"p{i}.npkg", compression=bool(i % 2), lock_timeout=30)
            r = unpack(p, tmp_path / f"r{i}")
            snap = snapshot(r)
            rows = snap["a"][1][0]
            assert rows == snap["b"][1][0] and rows % 64 == 0
            a = np.frombuffer(snap["a"][2], np.int64).reshape(-1, 4)
            assert (a[::64, 0] == np.arange(rows // 64)).all()
            time.sleep(0.2)
    finally:
        w.wait(timeout=60)
    assert w.returncode == 0


# ---------------------------------------------------------------------------
# crafted packages (the format of docs/PACKAGE.md, built independently)
# ---------------------------------------------------------------------------


def build(members, summary=None, version=1, flags=0):
    """A package of ``members``: (name, original bytes, method[, declared
    original size[, digest]]) with method 0 (stored) or 1 (zstd)."""
    body = bytearray(MAGIC + struct.pack("<II", version, flags))
    entries = []
    for m in members:
        name, data, method = m[:3]
        stored = data if method == 0 else zstandard.ZstdCompressor().compress(data)
        declared = m[3] if len(m) > 3 and m[3] is not None else len(data)
        digest = m[4] if len(m) > 4 else blake3(data).digest()
        entries.append((name, method, len(body), len(stored), declared, digest))
        body += stored
    idx = bytearray(b"NVPKIDX\x00" + struct.pack("<I", len(entries)))
    for name, method, off, ssz, osz, dg in entries:
        nb = name.encode()
        idx += struct.pack("<H", len(nb)) + nb + struct.pack("<BQQQ", method, off, ssz, osz) + dg
    sb = json.dumps(summary if summary is not None else {"arrays": []}).encode()
    idx += struct.pack("<I", len(sb)) + sb
    off = len(body)
    body += idx
    body += struct.pack("<QQ", off, len(idx)) + blake3(bytes(idx)).digest() + b"NVPKEND\x00"
    return bytes(body)


def store_members(src):
    names = [str(p.relative_to(src)) for p in sorted(src.rglob("*")) if p.is_file() and p.name != "LOCK"]
    return [(n, (src / n).read_bytes(), 1) for n in names]


def test_independent_builder_matches_the_spec(store_and_pkg, tmp_path):
    src, _, before = store_and_pkg
    p = tmp_path / "b.npkg"
    p.write_bytes(build(store_members(src)))
    assert snapshot(unpack(p, tmp_path / "r")) == before


@pytest.mark.parametrize("bad_name", ["../evil", "/abs/path", "data/../../x", "data/../MANIFEST", "data\\x.nvd",
                                      "data/0000000000000001.nvd/x", "LOCK", "data", "", "MANIFEST\x00"])
def test_unsafe_member_names_are_refused(store_and_pkg, tmp_path, bad_name):
    src, _, _ = store_and_pkg
    members = store_members(src) + [(bad_name, b"payload", 0)]
    p = tmp_path / "x.npkg"
    p.write_bytes(build(members))
    with pytest.raises(PackageError):
        unpack(p, tmp_path / "r")
    assert leftovers(tmp_path, {"x.npkg"}) == []
    assert not (tmp_path.parent / "evil").exists() and not Path("/abs/path").exists()


def test_duplicate_and_missing_members(store_and_pkg, tmp_path):
    src, _, _ = store_and_pkg
    ms = store_members(src)
    p = tmp_path / "x.npkg"
    p.write_bytes(build(ms + [ms[0]]))
    with pytest.raises(PackageError, match="twice"):
        unpack(p, tmp_path / "r")
    p.write_bytes(build([m for m in ms if m[0] != "MANIFEST"]))
    with pytest.raises(PackageError, match="MANIFEST"):
        unpack(p, tmp_path / "r")
    assert leftovers(tmp_path, {"x.npkg"}) == []


def test_decompression_bomb_is_stopped(store_and_pkg, tmp_path):
    src, _, _ = store_and_pkg
    ms = store_members(src)
    bomb = b"\x00" * (64 << 20)
    p = tmp_path / "x.npkg"
    # declares 1000 bytes, decompresses to 64 MiB: stopped at the 1001st byte
    p.write_bytes(build(ms + [("data/00000000000000ff.nvd", bomb, 1, 1000)]))
    assert p.stat().st_size < (1 << 20)
    with pytest.raises(PackageError, match="more than the 1000 bytes"):
        unpack(p, tmp_path / "r")
    # declares a petabyte: refused before anything is written
    p.write_bytes(build(ms + [("data/00000000000000ff.nvd", b"\x00" * 10, 1, 1 << 50)]))
    with pytest.raises(PackageError, match="over the cap"):
        unpack(p, tmp_path / "r")
    # a configurable cap
    p.write_bytes(build(ms))
    with pytest.raises(PackageError, match="over the cap"):
        unpack(p, tmp_path / "r", max_size=100)
    assert leftovers(tmp_path, {"x.npkg"}) == []


def test_sizes_that_do_not_match(store_and_pkg, tmp_path):
    src, _, _ = store_and_pkg
    ms = store_members(src)
    p = tmp_path / "x.npkg"
    # a stored member whose declared size differs from its stored bytes
    p.write_bytes(build(ms[:-1] + [(ms[-1][0], ms[-1][1], 0, len(ms[-1][1]) + 1)]))
    with pytest.raises(PackageError):
        unpack(p, tmp_path / "r")
    # a compressed member that holds fewer bytes than declared
    p.write_bytes(build(ms[:-1] + [(ms[-1][0], ms[-1][1], 1, len(ms[-1][1]) + 10)]))
    with pytest.raises(PackageError, match="declares"):
        unpack(p, tmp_path / "r")
    # a wrong checksum
    p.write_bytes(build(ms[:-1] + [(ms[-1][0], ms[-1][1], 1, None, b"\x00" * 32)]))
    with pytest.raises(PackageError, match="checksum"):
        unpack(p, tmp_path / "r")
    # consistent members that do not make a valid store (a data file altered)
    altered = [(n, (d[:-1] + bytes([d[-1] ^ 1])) if n.startswith("data/") and len(d) else d, m)
               for n, d, m in ms]
    p.write_bytes(build(altered))
    with pytest.raises(PackageError, match="does not verify|does not open"):
        unpack(p, tmp_path / "r")
    assert leftovers(tmp_path, {"x.npkg"}) == []


# ---------------------------------------------------------------------------
# fuzz: mutated packages
# ---------------------------------------------------------------------------


def _small_package(tmp_path_factory, compression):
    d = tmp_path_factory.mktemp("fz")
    src = d / "s"
    with Vault(str(src), "a") as v:
        v.save("a", np.arange(200, dtype=np.int32).reshape(50, 4))
        v.checkpoint()
        v.append("a", np.full((3, 4), 7, np.int32))
        v.save("z", np.linspace(0, 1, 33))
    return pack(src, d / "p.npkg", compression=compression).read_bytes(), snapshot(src)


@pytest.fixture(scope="module")
def small_packages(tmp_path_factory):
    return {c: _small_package(tmp_path_factory, c) for c in (True, False)}


def _index_span(data):
    off, ln = struct.unpack("<QQ", data[-56:-40])
    return off, ln


def _edit_index(data, pos, value):
    """Change index byte ``pos`` and recompute the trailer's index hash (an
    edit a checksum alone cannot catch)."""
    off, ln = _index_span(data)
    if ln == 0 or off + ln + 56 != len(data):
        return data  # no index where the trailer says: nothing to edit
    idx = bytearray(data[off : off + ln])
    idx[pos % ln] = value
    tr = struct.pack("<QQ", off, ln) + blake3(bytes(idx)).digest() + b"NVPKEND\x00"
    return data[:off] + bytes(idx) + tr


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 30), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 30), st.just(0)),
    st.tuples(st.just("index"), st.integers(0, 1 << 30), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 30), st.integers(0, 255)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(compression=st.booleans(), muts=st.lists(mutation, min_size=1, max_size=3))
def test_fuzz_mutated_packages(small_packages, tmp_path_factory, compression, muts):
    data, expected = small_packages[compression]
    for kind, pos, val in muts:
        if kind == "flip" and data:
            p = pos % len(data)
            data = data[:p] + bytes([data[p] ^ (1 << val)]) + data[p + 1 :]
        elif kind == "truncate":
            data = data[: pos % (len(data) + 1)]
        elif kind == "index" and len(data) > 72:
            try:
                data = _edit_index(data, pos, val)
            except (struct.error, ZeroDivisionError):
                pass
        elif kind == "insert":
            p = pos % (len(data) + 1)
            data = data[:p] + bytes([val]) + data[p:]
    d = tmp_path_factory.mktemp("m")
    pkg = d / "m.npkg"
    pkg.write_bytes(data)
    try:
        out = unpack(pkg, d / "out")
    except PackageError as e:
        event(f"refused: {str(e).split(': ', 2)[-1][:40]}")
        assert leftovers(d, {"m.npkg"}) == []
        return
    event("unpacked")
    assert snapshot(out) == expected
    assert leftovers(d, {"m.npkg", "out"}) == []


def test_more_than_the_free_space_is_refused(store_and_pkg, tmp_path):
    from numvault.io.package_io import PackageTooLargeError

    src, _, _ = store_and_pkg
    st_ = os.statvfs(tmp_path)
    free = st_.f_bavail * st_.f_frsize
    p = tmp_path / "x.npkg"
    p.write_bytes(build(store_members(src) + [("data/00000000000000fe.nvd", b"\x00" * 10, 1, free + 1)]))
    with pytest.raises(PackageTooLargeError) as ei:
        unpack(p, tmp_path / "r", max_size=1 << 62)
    assert isinstance(ei.value, OSError) and ei.value.errno == 28 and isinstance(ei.value, PackageError)
    assert leftovers(tmp_path, {"x.npkg"}) == []
