"""Bad input of every kind: the documented exception, and the store unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from numvault import LockedError, NumPack, Vault

GOOD = np.arange(30, dtype=np.float32).reshape(10, 3)


@pytest.fixture
def vault(store_path):
    v = Vault(store_path)
    v.save("a", GOOD)
    v.save("v", np.arange(5))
    yield v
    if not v.closed:
        v.close()


def _state(v):
    return {n: (v.load(n).tobytes(), v.shape(n), str(v.dtype(n)), v.info(n)["dead_rows"]) for n in v.names()}


BAD_NAMES = ["", "/a", "a/", "a//b", ".", "..", "a/../b", "x\x00y", "new\nline", "n" * 256]
BAD_ARRAYS = [
    np.float32(1.0),                       # 0-d
    np.array(3),                           # 0-d
    np.array(["a", "b"]),                  # strings
    np.array([b"a"]),                      # bytes
    np.array([object(), 1], dtype=object),  # objects
    np.zeros(3, dtype=[("x", "f4"), ("y", "i4")]),  # structured
    np.array(["2020-01-01"], dtype="datetime64[D]"),
    np.zeros(2, dtype=np.longdouble),
    None,
    [[1, 2], [3]],                          # ragged
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_names(vault, name):
    before = _state(vault)
    for call in (lambda: vault.save(name, GOOD), lambda: vault.commit([("save", name, GOOD)]),
                 lambda: vault.rename("a", name)):
        with pytest.raises(ValueError):
            call()
    with pytest.raises((KeyError, ValueError)):
        vault.load(name)
    assert _state(vault) == before


@pytest.mark.parametrize("bad", BAD_ARRAYS, ids=lambda b: type(b).__name__ + str(getattr(b, "dtype", "")))
def test_bad_arrays(vault, bad):
    before = _state(vault)
    with pytest.raises(ValueError):
        vault.save("new", bad)
    with pytest.raises(ValueError):
        vault.append("a", bad)
    with pytest.raises(ValueError):
        vault.commit([("save", "ok", GOOD), ("save", "new", bad)])
    if bad is not None and np.asarray(bad, dtype=object).ndim:
        with pytest.raises((ValueError, IndexError)):
            vault.replace("a", [0], bad)
    assert _state(vault) == before


def test_shape_and_dtype_mismatches(vault):
    before = _state(vault)
    cases = [
        lambda: vault.append("a", np.zeros((2, 4), np.float32)),
        lambda: vault.append("a", np.zeros(3, np.float32)),
        lambda: vault.append("a", np.zeros((2, 3), np.float64)),
        lambda: vault.append("a", np.zeros((2, 3, 1), np.float32)),
        lambda: vault.replace("a", [0, 1], np.zeros((3, 3), np.float32)),
        lambda: vault.replace("a", [0, 1], np.zeros((2, 3), np.int32)),
        lambda: vault.replace("a", slice(0, 2), np.zeros((2, 2), np.float32)),
        lambda: vault.replace("a", 0, np.zeros(4, np.float32)),
        lambda: vault.replace("a", [0], "text"),
    ]
    for case in cases:
        with pytest.raises(ValueError):
            case()
    assert _state(vault) == before


def test_bad_indexes(vault):
    before = _state(vault)
    for idx in [10, -11, [0, 10], np.array([11]), np.ones(9, bool), np.ones(11, bool), 2**64]:
        with pytest.raises(IndexError):
            vault.replace("a", idx, np.zeros((1, 3), np.float32))
        with pytest.raises(IndexError):
            vault.delete_rows("a", idx)
        with pytest.raises(IndexError):
            vault.getitem("a", idx)
        with pytest.raises(IndexError):
            vault.commit([("save", "ok", GOOD), ("delete_rows", "a", idx)])
    for idx in [np.array([0.5]), 1.5, "0", {0: 1}, object()]:
        with pytest.raises(IndexError):
            vault.delete_rows("a", idx)
        with pytest.raises(IndexError):
            vault.lazy("a")[idx]
    assert _state(vault) == before


def test_unknown_arrays(vault):
    before = _state(vault)
    for call in [
        lambda: vault.load("zz"), lambda: vault.lazy("zz"), lambda: vault.append("zz", GOOD),
        lambda: vault.replace("zz", [0], GOOD[:1]), lambda: vault.delete_rows("zz", [0]),
        lambda: vault.drop("zz"), lambda: vault.compact("zz"), lambda: vault.rename("zz", "yy"),
        lambda: vault.shape("zz"), lambda: vault.batches("zz"), lambda: vault.writable("zz"),
        lambda: vault.getitem("zz", 0), lambda: vault.commit([("save", "ok", GOOD), ("drop", "zz")]),
    ]:
        with pytest.raises(KeyError):
            call()
    assert _state(vault) == before


def test_wrong_types(vault):
    before = _state(vault)
    with pytest.raises(TypeError):
        vault.save(5, GOOD)
    with pytest.raises(TypeError):
        vault.commit([["save", "x", GOOD]])
    with pytest.raises(TypeError):
        vault.commit(5)
    with pytest.raises(ValueError):
        vault.batches("a", 0)
    with pytest.raises(ValueError):
        vault.commit([("save", "x")])
    assert _state(vault) == before


def test_read_only_closed_locked(vault, store_path):
    vault.flush()
    before = _state(vault)
    with pytest.raises(LockedError):
        Vault(store_path)
    r = Vault(store_path, "r")
    for call in (lambda: r.save("x", GOOD), lambda: r.append("a", GOOD), lambda: r.drop("a"),
                 lambda: r.delete_rows("a", [0]), lambda: r.writable("a"),
                 lambda: r.commit([("drop", "a")])):
        with pytest.raises(PermissionError):
            call()
    r.close()
    vault.close()
    with pytest.raises(ValueError, match="closed"):
        vault.save("x", GOOD)
    with pytest.raises(ValueError, match="closed"):
        vault.lazy("a")
    with Vault(store_path) as v:
        assert _state(v) == before


def test_bad_constructor_args(tmp_path):
    for kwargs in [dict(mode="rw"), dict(sync="fast"), dict(sync="group", max_delay_ms=float("nan")),
                   dict(lock_timeout=-1.0)]:
        with pytest.raises(ValueError):
            Vault(tmp_path / "s", **kwargs)
    with pytest.raises(FileNotFoundError):
        Vault(tmp_path / "missing", "r")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OSError):
        Vault(f)


def test_numpack_bad_input(store_path):
    with NumPack(store_path, drop_if_exists=True) as npk:
        npk.save({"a": GOOD})
        for bad in (GOOD, [GOOD], None, "a"):
            with pytest.raises(ValueError):
                npk.save(bad)
            with pytest.raises(ValueError):
                npk.append(bad)
            with pytest.raises(ValueError):
                npk.replace(bad, [0])
        with pytest.raises(ValueError):
            npk.stream_load("a", -1)
        with pytest.raises(KeyError):
            npk.load("b")
        with pytest.raises(IndexError):
            npk.getitem("a", [100])
        with pytest.raises(ValueError):
            npk.save({"b": np.float64(2.0)})
        np.testing.assert_array_equal(npk.load("a"), GOOD)
        assert npk.get_member_list() == ["a"]
