"""LazyArray operators are NumPy's, element-wise, on the stored values: a
comparison is an array of bools (never an identity test), arithmetic and
bitwise operators give NumPy's result, in-place operators rebind the name
to a new ndarray and never change the store (as in NumPack 0.7)."""
import operator

import numpy as np
import pytest

import numvault


@pytest.fixture(params=["zero-copy", "with-history"])
def lazy_pair(tmp_path, request):
    rng = np.random.default_rng(7)
    ints = rng.integers(-50, 50, size=(40, 3), dtype=np.int32)
    floats = rng.random((40, 3)).astype(np.float64) + 0.5
    v = numvault.Vault(str(tmp_path / "s"))
    v.save("i", ints)
    v.save("f", floats)
    if request.param == "with-history":
        # Replaced and deleted rows: the lazy array is no longer zero-copy.
        for name, arr in (("i", ints), ("f", floats)):
            v.replace(name, np.array([3, 17], dtype=np.int64), arr[[5, 6]] * 2)
            arr[[3, 17]] = arr[[5, 6]] * 2
            v.delete_rows(name, np.array([0], dtype=np.int64))
        ints, floats = ints[1:], floats[1:]
    yield v, v.lazy("i"), ints, v.lazy("f"), floats
    v.close()


BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
          operator.mod, operator.pow, operator.eq, operator.ne, operator.lt, operator.le,
          operator.gt, operator.ge]
BITWISE = [operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift]


def _same(got, want):
    assert isinstance(got, np.ndarray), type(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", BINARY, ids=lambda o: o.__name__)
def test_binary_operators_match_numpy_both_ways(lazy_pair, op):
    _, _, _, lf, floats = lazy_pair
    for other in (2.0, np.float64(3.0), floats[0], floats):
        with np.errstate(all="ignore"):
            _same(op(lf, other), op(floats, other))
            _same(op(other, lf), op(other, floats))


@pytest.mark.parametrize("op", BITWISE, ids=lambda o: o.__name__)
def test_bitwise_operators_match_numpy(lazy_pair, op):
    _, li, ints, _, _ = lazy_pair
    for other in (3, np.int32(1)):
        _same(op(li, other), op(ints, other))
        _same(op(other, li), op(other, ints))
    _same(op(li, li), op(ints, ints))


def test_comparisons_are_element_wise_never_identity(lazy_pair):
    _, li, ints, _, _ = lazy_pair
    got = li == int(ints[0, 0])
    assert isinstance(got, np.ndarray) and got.dtype == bool
    assert got.shape == ints.shape and got[0, 0]
    _same(li != li, np.zeros(ints.shape, dtype=bool))
    _same(np.where(li > 0)[0], np.where(ints > 0)[0])


def test_unary_operators_and_matmul(lazy_pair):
    _, li, ints, lf, floats = lazy_pair
    _same(-li, -ints)
    _same(+li, +ints)
    _same(~li, ~ints)
    _same(abs(li), abs(ints))
    # Matrix products are sums: BLAS may order them differently.
    np.testing.assert_allclose(lf @ floats.T, floats @ floats.T, rtol=1e-12)
    np.testing.assert_allclose(floats.T @ lf, floats.T @ floats, rtol=1e-12)
    # Three-argument pow is refused, as NumPy refuses it.
    with pytest.raises(TypeError):
        pow(ints, 2, 7)
    with pytest.raises(TypeError):
        pow(li, 2, 7)


def test_in_place_operators_rebind_and_leave_the_store_unchanged(lazy_pair):
    v, li, ints, _, _ = lazy_pair
    before = v.load("i")
    x = li
    x *= 3
    assert isinstance(x, np.ndarray)
    _same(x, ints * 3)
    x = v.lazy("i")
    x += 1
    _same(x, ints + 1)
    _same(v.load("i"), before)
    _same(np.asarray(li), before)


def test_numpy_functions_take_lazy_arrays(lazy_pair):
    _, li, ints, lf, floats = lazy_pair
    assert np.mean(lf) == pytest.approx(np.mean(floats))
    _same(np.concatenate([li, ints]), np.concatenate([ints, ints]))
    _same(np.add(li, 1), ints + 1)
