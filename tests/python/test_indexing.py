"""Every index form, checked against NumPy as the model: reads through
LazyArray / Vault.getitem / NumPack.getitem, writes through replace, deletes
through drop(indexes)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numvault import NumPack, Vault

ROWS = 12
BASE = np.arange(ROWS * 3, dtype=np.int64).reshape(ROWS, 3)

# Fixed index forms, each with NumPy's meaning on an array of ROWS rows.
READ_KEYS = [
    0, 5, -1, -ROWS, np.int32(3), np.int64(-2), np.uint8(4),
    slice(None), slice(2, 9), slice(None, 4), slice(-3, None), slice(None, None, 2),
    slice(1, None, 3), slice(None, None, -1), slice(10, 2, -3), slice(5, 5), slice(-100, 100),
    slice(100, 200),
    [], [0], [3, 1, 3, -1], np.array([2, 0]), np.array([[1, 2], [3, 4]]),
    np.array([1, -2], dtype=np.int32), np.array([7, 1], dtype=np.uint16),
    np.array([4, 2, 0], dtype=np.int64)[::-1],  # non-contiguous index array
    np.arange(ROWS) % 3 == 0, [True, False] * (ROWS // 2), np.zeros(ROWS, bool),
    Ellipsis,
    (slice(None), 1), (3, 2), (slice(1, 5), slice(0, 2)), ([0, 2], slice(1, None)),
    (np.array([1, 2]), -1), ([1, 2], [0, 2]), (Ellipsis, 0), (None,), (slice(None), None),
    (np.arange(ROWS) > 5, 0), (),
]

BAD_KEYS = [ROWS, -ROWS - 1, [0, ROWS], np.array([ROWS + 5]), np.ones(ROWS + 1, bool),
            np.array([0.5]), 1.5, "a", (ROWS, 0), 2**70]


@pytest.fixture
def vault(store_path):
    v = Vault(store_path)
    v.save("x", BASE)
    v.save("v", BASE[:, 0].copy())
    yield v
    v.close()


def _same(got, want):
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    else:
        assert got == want
        assert type(got) is type(want)


@pytest.mark.parametrize("key", READ_KEYS, ids=repr)
@pytest.mark.parametrize("holes", [False, True], ids=["compact", "with-deleted-rows"])
def test_read_index_forms(vault, key, holes):
    model_x, model_v = BASE, BASE[:, 0].copy()
    if holes:
        # Deleted and replaced rows must be invisible: the model is the same data.
        extra = np.full((3, 3), -9, np.int64)
        vault.save("x", np.concatenate([extra[:1], BASE[:6], extra[1:], BASE[6:]]))
        vault.delete_rows("x", [0, 7, 8])
        vault.replace("x", [2], BASE[2:3])
    lz = vault.lazy("x")
    assert lz.zero_copy is not holes
    _same(lz[key], model_x[key])
    _same(vault.getitem("x", key), model_x[key])
    if not isinstance(key, tuple):
        _same(vault.lazy("v")[key], model_v[key])
    res = lz[key]
    if isinstance(res, np.ndarray):
        assert res.flags.writeable and res.flags.owndata or res.base is not None
        res[...] = 0  # results are independent copies
        np.testing.assert_array_equal(vault.load("x")[model_x[:, 0] >= 0] if not holes else vault.load("x"), BASE)


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_bad_read_indexes(vault, key):
    lz = vault.lazy("x")
    with pytest.raises(IndexError):
        lz[key]
    with pytest.raises(IndexError):
        vault.getitem("x", key)
    with pytest.raises(IndexError):
        BASE[key]  # the model agrees


WRITE_KEYS = [k for k in READ_KEYS if not isinstance(k, tuple)]


@pytest.mark.parametrize("key", WRITE_KEYS, ids=repr)
def test_replace_index_forms(vault, key):
    model = BASE.copy()
    n = model[key].reshape(-1, 3).shape[0] if not isinstance(key, (int, np.integer)) else 1
    values = (np.arange(n * 3, dtype=np.int64).reshape(n, 3) + 1000)
    if isinstance(key, (int, np.integer)):
        model[key] = values[0]
        vault.replace("x", key, values[0])
    else:
        sel = model[key]
        vals = values.reshape(sel.shape)
        model[key] = vals
        vault.replace("x", key, vals)
    np.testing.assert_array_equal(vault.load("x"), model)
    # scalar broadcast, as NumPy assignment
    model[key] = 7
    vault.replace("x", key, 7)
    np.testing.assert_array_equal(vault.load("x"), model)


@pytest.mark.parametrize("key", WRITE_KEYS, ids=repr)
def test_delete_index_forms(vault, key):
    if key is Ellipsis:
        model = BASE[:0]
    elif isinstance(key, np.ndarray) and key.ndim > 1:
        model = np.delete(BASE, key.ravel(), axis=0)
    else:
        model = np.delete(BASE, key, axis=0)
    vault.delete_rows("x", key)
    np.testing.assert_array_equal(vault.load("x"), model)
    np.testing.assert_array_equal(np.asarray(vault.lazy("x")), model)


@pytest.mark.parametrize("key", [k for k in BAD_KEYS if not isinstance(k, tuple)], ids=repr)
def test_bad_write_indexes_change_nothing(vault, key):
    with pytest.raises(IndexError):
        vault.replace("x", key, np.zeros((1, 3), np.int64))
    with pytest.raises(IndexError):
        vault.delete_rows("x", key)
    np.testing.assert_array_equal(vault.load("x"), BASE)


def test_replace_repeated_indexes_last_wins(vault):
    model = BASE.copy()
    idx = [1, 4, 1, -11]
    vals = np.arange(12, dtype=np.int64).reshape(4, 3)
    model[idx] = vals
    vault.replace("x", idx, vals)
    np.testing.assert_array_equal(vault.load("x"), model)


def test_numpack_index_forms(store_path):
    with NumPack(store_path, drop_if_exists=True) as npk:
        npk.save({"x": BASE, "y": BASE * 2})
        for key in WRITE_KEYS:
            # NumPack 0.7: an int selects a one-row array (shape (1, ...))
            want = BASE[[key]] if isinstance(key, (int, np.integer)) else BASE[key]
            np.testing.assert_array_equal(npk.getitem("x", key), want)
        npk.replace({"x": np.zeros((2, 3), np.int64), "y": np.ones((2, 3), np.int64)}, slice(-2, None))
        mx, my = BASE.copy(), BASE * 2
        mx[-2:] = 0
        my[-2:] = 1
        np.testing.assert_array_equal(npk.load("x"), mx)
        np.testing.assert_array_equal(npk.load("y"), my)
        npk.drop(["x", "y"], np.array([True] + [False] * (ROWS - 1)))
        np.testing.assert_array_equal(npk.load("x"), mx[1:])
        np.testing.assert_array_equal(npk.load("y"), my[1:])
        npk.drop("x", (0, 1))  # NumPack accepted tuples as lists
        np.testing.assert_array_equal(npk.load("x"), mx[3:])


# -- hypothesis: random index forms against NumPy --------------------------------

def index_strategy(n):
    ints = st.integers(-n, n - 1) if n else st.nothing()
    bound = st.one_of(st.none(), st.integers(-2 * n - 2, 2 * n + 2))
    step = st.one_of(st.none(), st.integers(-4, 4).filter(lambda s: s != 0))
    forms = [
        st.builds(slice, bound, bound, step),
        st.lists(ints, max_size=2 * n + 1) if n else st.just([]),
        st.lists(ints, max_size=2 * n + 1).map(lambda l: np.array(l, dtype=np.int64)) if n
        else st.just(np.array([], dtype=np.int64)),
        st.lists(st.booleans(), min_size=n, max_size=n).map(lambda l: np.array(l, dtype=bool)),
    ]
    if n:
        forms.append(ints)
        forms.append(ints.map(np.int32))
    return st.one_of(*forms)


@st.composite
def array_and_index(draw):
    n = draw(st.integers(0, 20))
    cols = draw(st.integers(1, 3))
    key = draw(index_strategy(n))
    return n, cols, key


@given(array_and_index())
def test_hypothesis_read_and_delete(tmp_path_factory, case):
    n, cols, key = case
    base = np.arange(n * cols, dtype=np.float64).reshape(n, cols)
    with Vault(tmp_path_factory.mktemp("h")) as v:
        v.save("a", base)
        _same(v.lazy("a")[key], base[key])
        v.delete_rows("a", key)
        np.testing.assert_array_equal(v.load("a"), np.delete(base, key, axis=0))


@given(array_and_index(), st.integers(0, 2**31))
def test_hypothesis_replace(tmp_path_factory, case, seed):
    n, cols, key = case
    base = np.arange(n * cols, dtype=np.float64).reshape(n, cols)
    model = base.copy()
    sel = model[key]
    vals = np.random.default_rng(seed).random(sel.shape)
    model[key] = vals
    with Vault(tmp_path_factory.mktemp("h")) as v:
        v.save("a", base)
        v.replace("a", key, vals)
        np.testing.assert_array_equal(v.load("a"), model)
