"""NumPack drop-in: every method with NumPack's signatures."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from numvault import LazyArray, NumPack

from conftest import ALL_DTYPES, make_array


def test_signatures_match_numpack():
    sig = inspect.signature(NumPack.__init__)
    params = list(sig.parameters.values())[1:6]
    assert [(p.name, p.default) for p in params] == [
        ("filename", inspect.Parameter.empty), ("drop_if_exists", False),
        ("strict_context_mode", False), ("warn_no_context", None), ("force_gc_on_close", False)]
    expected = {
        "open": [], "close": ["force_gc"], "save": ["arrays"], "load": ["array_name", "lazy"],
        "replace": ["arrays", "indexes"], "append": ["arrays"], "drop": ["array_name", "indexes"],
        "getitem": ["array_name", "indexes"], "stream_load": ["array_name", "buffer_size"],
        "update": ["array_name"], "clone": ["source_name", "target_name"],
        "get_shape": ["array_name"], "get_member_list": [], "has_array": ["array_name"],
        "get_modify_time": ["array_name"], "get_metadata": [], "reset": [],
        "batch_mode": ["memory_limit"], "writable_batch_mode": [],
    }
    for meth, names in expected.items():
        got = list(inspect.signature(getattr(NumPack, meth)).parameters)[1:]
        assert got == names, meth
        assert getattr(NumPack, meth).__doc__, meth
    for prop in ["is_opened", "is_closed"]:
        assert isinstance(getattr(NumPack, prop), property)


def test_lifecycle(store_path):
    npk = NumPack(store_path)
    assert npk.is_closed and not npk.is_opened
    with pytest.raises(RuntimeError, match="not opened"):
        npk.save({"a": np.arange(3)})
    npk.open()
    npk.open()  # no-op
    assert npk.is_opened
    npk.save({"a": np.arange(3)})
    npk.close()
    npk.close()  # idempotent
    assert npk.is_closed
    npk.open()  # reopen
    np.testing.assert_array_equal(npk.load("a"), np.arange(3))
    npk.close(force_gc=True)
    with NumPack(store_path) as npk2:
        assert npk2.is_opened and npk2.has_array("a")
    assert npk2.is_closed
    assert "closed" in repr(npk2)


def test_drop_if_exists(store_path, tmp_path):
    with NumPack(store_path) as npk:
        npk.save({"a": np.arange(3)})
    with NumPack(store_path, drop_if_exists=True) as npk:
        assert npk.get_member_list() == []
    # a non-store file or directory at the path is replaced, as NumPack did
    f = tmp_path / "plainfile"
    f.write_text("x")
    with NumPack(f, drop_if_exists=True) as npk:
        npk.save({"a": np.arange(2)})
    d = tmp_path / "plaindir"
    d.mkdir()
    (d / "junk").write_text("x")
    with NumPack(d, drop_if_exists=True) as npk:
        assert npk.get_member_list() == []


def test_strict_context_mode_and_warning(store_path):
    npk = NumPack(store_path, strict_context_mode=True)
    npk.open()
    with pytest.raises(RuntimeError, match="strict context mode"):
        npk.get_member_list()
    npk.close()
    with npk:
        npk.get_member_list()
    with pytest.warns(UserWarning, match="strict context mode"):
        NumPack(store_path, warn_no_context=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NumPack(store_path)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_save_load_every_dtype(store_path, dtype):
    a1, a2 = make_array(dtype, (50, 4), 1), make_array(dtype, (7,), 2)
    with NumPack(store_path, drop_if_exists=True) as npk:
        npk.save({"a1": a1, "a2": a2})
        for name, a in [("a1", a1), ("a2", a2)]:
            out = npk.load(name)
            assert isinstance(out, np.ndarray) and out.dtype == a.dtype
            np.testing.assert_array_equal(out, a)
            lz = npk.load(name, lazy=True)
            assert isinstance(lz, LazyArray)
            np.testing.assert_array_equal(np.asarray(lz), a)
            np.testing.assert_array_equal(npk[name], a)
        npk.append({"a1": a1[:3]})
        np.testing.assert_array_equal(npk.load("a1"), np.concatenate([a1, a1[:3]]))


def test_every_method(store_path):
    rng = np.random.default_rng(0)
    x = rng.random((100, 5)).astype(np.float32)
    y = np.arange(100, dtype=np.int64)
    with NumPack(store_path, drop_if_exists=True) as npk:
        npk.save({"x": x, "y": y})
        assert npk.get_member_list() == ["x", "y"] == list(npk)
        assert len(npk) == 2 and "x" in npk and "z" not in npk
        assert npk.get_shape("x") == (100, 5)
        assert npk.has_array("x") and not npk.has_array("z")
        t = npk.get_modify_time("x")
        assert isinstance(t, int) and t > 1_600_000_000 * 10**6
        assert npk.get_modify_time("z") is None
        md = npk.get_metadata()
        # NumPack 0.7's keys and dtype names, plus numvault's
        assert set(md) >= {"arrays", "base_dir", "total_arrays", "version", "total_size"}
        assert md["total_arrays"] == 2 and md["base_dir"] == str(store_path)
        mx = md["arrays"]["x"]
        assert set(mx) >= {"shape", "data_file", "last_modified", "size_bytes", "dtype"}
        assert mx["shape"] == [100, 5] and mx["dtype"] == "Float32" and mx["numpy_dtype"] == "float32"
        assert md["arrays"]["y"]["dtype"] == "Int64" and mx["size_bytes"] == x.nbytes
        assert mx["last_modified"] == t
        assert md["total_size"] == x.nbytes + y.nbytes
        assert npk.get_io_stats() == {"stats_available": False}

        # save overwrites
        npk.save({"y": y * 2})
        np.testing.assert_array_equal(npk.load("y"), y * 2)
        # replace with a dict: the indexes apply to every array
        npk.replace({"x": np.zeros((2, 5), np.float32), "y": np.array([-1, -2])}, [0, 99])
        assert npk.load("x")[[0, 99]].sum() == 0 and npk.load("y")[[0, 99]].tolist() == [-1, -2]
        npk.replace({"x": np.ones(5, np.float32)}, 3)
        # an int selects a one-row array, as in NumPack 0.7 (not NumPy's row)
        assert npk.getitem("x", 3).shape == (1, 5) and npk.getitem("x", -1).shape == (1, 5)
        np.testing.assert_array_equal(npk.getitem("x", 3), np.ones((1, 5), np.float32))
        np.testing.assert_array_equal(npk.getitem("x", np.int64(-100)), npk.load("x")[:1])
        assert npk.vault.getitem("x", 3).shape == (5,)  # Vault keeps NumPy's rule
        with pytest.raises(ValueError, match="indexes must be int or list"):
            npk.getitem("x", "3")
        with pytest.raises(ValueError, match="indexes must be int or list"):
            npk.replace({"x": np.ones(5, np.float32)}, 3.0)
        # append
        npk.append({"x": x[:10], "y": y[:10]})
        assert npk.get_shape("x") == (110, 5) and npk.get_shape("y") == (110,)
        # getitem forms
        np.testing.assert_array_equal(npk.getitem("y", [105, -1]), [5, 9])
        np.testing.assert_array_equal(npk.getitem("y", slice(100, None, 5)), y[:10:5])
        # stream_load
        batches = list(npk.stream_load("x", buffer_size=32))
        assert [len(b) for b in batches] == [32, 32, 32, 14]
        assert len(list(npk.stream_load("y"))) == 110  # one row per batch by default
        with pytest.raises(ValueError):
            npk.stream_load("x", buffer_size=0)
        # drop rows, then compact with update
        npk.drop("x", [0, 1, 2])
        assert npk.get_shape("x") == (107, 5)
        npk.update("x")
        assert npk.get_shape("x") == (107, 5)
        # clone
        npk.clone("x", "x2")
        np.testing.assert_array_equal(npk.load("x2"), npk.load("x"))
        with pytest.raises(ValueError):
            npk.clone("x", "y")
        with pytest.raises(KeyError):
            npk.clone("nope", "z")
        # drop empties the array and keeps it listed, as NumPack 0.7 does
        npk.drop("x2")
        assert npk.has_array("x2") and npk.get_shape("x2") == (0, 5)
        assert npk.load("x2").dtype == np.float32
        npk.drop(["x", "y", "never-saved"])  # unknown names are ignored
        assert npk.get_member_list() == ["x", "x2", "y"]
        assert npk.get_shape("x") == (0, 5) and npk.get_shape("y") == (0,)
        assert npk.load("y").dtype == np.int64
        npk.append({"y": y[:3]})  # an emptied array takes appends
        np.testing.assert_array_equal(npk.load("y"), y[:3])
        npk.vault.drop("x2")  # Vault.drop removes the array
        assert not npk.has_array("x2")
        npk.reset()
        npk.save({"a": y, "b": y})
        npk.reset()
        assert npk.get_member_list() == []
        with pytest.raises(ValueError):
            npk.save([("a", y)])  # NumPack requires a dict
        with pytest.raises(KeyError):
            npk.load("nope")
        npk.drop("nope")  # silently ignored, as in NumPack 0.7
        assert not npk.has_array("nope")
        with pytest.raises(KeyError):
            npk.drop("nope", [0])  # row deletion in an unknown array raises
        with pytest.raises(KeyError):
            npk.get_shape("nope")


def test_multi_array_calls_are_atomic(store_path):
    with NumPack(store_path, drop_if_exists=True) as npk:
        npk.save({"a": np.arange(5), "b": np.arange(5.0)})
        with pytest.raises(ValueError):
            npk.append({"a": np.arange(2), "b": np.arange(2)})  # b: dtype mismatch
        assert npk.get_shape("a") == (5,)
        with pytest.raises(IndexError):
            npk.replace({"a": np.arange(2), "b": np.arange(2.0)}, [0, 9])
        np.testing.assert_array_equal(npk.load("a"), np.arange(5))
        with pytest.raises(KeyError):
            npk.drop(["a", "missing"], [0])
        assert npk.get_shape("a") == (5,)  # nothing deleted from "a" either
        with pytest.raises(IndexError):
            npk.drop(["a", "b"], [4, 5])
        assert npk.get_shape("a") == (5,) and npk.get_shape("b") == (5,)
        assert npk.get_member_list() == ["a", "b"]
        with pytest.raises(ValueError):
            npk.save({"ok": np.arange(3), "": np.arange(3)})
        assert npk.get_member_list() == ["a", "b"]


def test_read_only_and_sync_options(store_path):
    with NumPack(store_path, sync="always") as npk:
        npk.save({"a": np.arange(3)})
    with NumPack(store_path, read_only=True) as npk:
        np.testing.assert_array_equal(npk.load("a"), np.arange(3))
        with pytest.raises(PermissionError):
            npk.save({"a": np.arange(3)})


def test_console_script_and_version():
    import subprocess
    import sys
    from pathlib import Path

    import numvault
    from numvault.cli import main

    assert main(["--version"]) == 0
    exe = Path(sys.executable).with_name("numvault")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "numvault"]
    out = subprocess.run(cmd + ["--version"], capture_output=True, text=True, check=True)
    assert numvault.__version__ in out.stdout
    out = subprocess.run([sys.executable, "-m", "numvault", "--version"], capture_output=True,
                         text=True, check=True)
    assert numvault.__version__ in out.stdout
    # No verb is a usage error (exit 2), with the verbs listed.
    assert main([]) == 2


def test_stubs_and_docstrings():
    from pathlib import Path

    import numvault

    pkg = Path(numvault.__file__).parent
    assert (pkg / "py.typed").exists() and (pkg / "_core.pyi").exists()
    for name in numvault.__all__:
        obj = getattr(numvault, name)
        if isinstance(obj, type):
            assert obj.__doc__, name
            for attr, val in vars(obj).items():
                if attr.startswith("_") or not callable(val) and not isinstance(val, property):
                    continue
                assert getattr(obj, attr).__doc__, f"{name}.{attr}"


@pytest.mark.parametrize("version", ["0.5.2", "0.6.0", "0.7.0"])
def test_numpack_directory_is_refused_with_how_to_convert(tmp_path, version):
    import shutil
    from pathlib import Path

    src = Path(__file__).parent.parent / "fixtures" / "numpack" / version / "store"
    d = tmp_path / "np"
    shutil.copytree(src, d)
    before = sorted((p.name, p.stat().st_size) for p in d.rglob("*"))
    for kw in ({}, {"read_only": True}):
        npk = NumPack(d, **kw)
        with pytest.raises(ValueError, match="written by NumPack") as e:
            npk.open()
        assert "numvault import" in str(e.value) and "from_numpack" in str(e.value)
    assert sorted((p.name, p.stat().st_size) for p in d.rglob("*")) == before
    # drop_if_exists replaces it, as NumPack would
    with NumPack(d, drop_if_exists=True) as npk:
        npk.save({"a": np.arange(3)})
    assert not (d / "metadata.npkm").exists()
