"""Random operation sequences (hypothesis state machine) on the NumPack API,
checked after every step against a model made of plain NumPy arrays:
save/append/replace/drop rows/drop/update/clone, reads through load, lazy
load, getitem and stream_load, batch_mode blocks and close/reopen."""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from numvault import NumPack

NAMES = st.sampled_from(["a", "b", "g/c"])
DTYPES = [np.float32, np.int64, np.uint8, np.complex64, np.bool_]


def index_for(n):
    """Index forms valid for n rows (NumPy meaning)."""
    ints = st.integers(-n, n - 1)
    bound = st.one_of(st.none(), st.integers(-n - 3, n + 3))
    step = st.one_of(st.none(), st.sampled_from([1, 2, 3, -1, -2]))
    return st.one_of(
        ints,
        st.builds(slice, bound, bound, step),
        st.lists(ints, max_size=6),
        st.lists(ints, max_size=6).map(lambda l: np.array(l, dtype=np.int64)),
        st.lists(ints, max_size=6).map(lambda l: np.array(l, dtype=np.int32)),
        st.lists(st.booleans(), min_size=n, max_size=n).map(lambda l: np.array(l, dtype=bool)),
    )


def make(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.random(shape) * 100).astype(dtype)


class NumPackModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="nv-model-")
        self.npk = NumPack(self.dir + "/s", drop_if_exists=True)
        self.npk.open()
        self.model: dict = {}

    def teardown(self):
        self.npk.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- writes ------------------------------------------------------------------
    @rule(name=NAMES, dtype=st.sampled_from(DTYPES), rows=st.integers(0, 12),
          cols=st.integers(1, 3), seed=st.integers(0, 1000))
    def save(self, name, dtype, rows, cols, seed):
        a = make(dtype, (rows, cols), seed)
        self.npk.save({name: a})
        self.model[name] = a.copy()

    @precondition(lambda self: self.model)
    @rule(data=st.data(), rows=st.integers(0, 6), seed=st.integers(0, 1000))
    def append(self, data, rows, seed):
        name = data.draw(st.sampled_from(sorted(self.model)))
        cur = self.model[name]
        a = make(cur.dtype, (rows,) + cur.shape[1:], seed)
        self.npk.append({name: a})
        self.model[name] = np.concatenate([cur, a])

    @precondition(lambda self: any(len(a) for a in self.model.values()))
    @rule(data=st.data(), seed=st.integers(0, 1000))
    def replace(self, data, seed):
        name = data.draw(st.sampled_from(sorted(n for n, a in self.model.items() if len(a))))
        cur = self.model[name].copy()
        idx = data.draw(index_for(len(cur)))
        vals = make(cur.dtype, cur[idx].shape, seed)
        cur[idx] = vals
        self.npk.replace({name: vals}, idx)
        self.model[name] = cur

    @precondition(lambda self: any(len(a) for a in self.model.values()))
    @rule(data=st.data())
    def drop_rows(self, data):
        name = data.draw(st.sampled_from(sorted(n for n, a in self.model.items() if len(a))))
        cur = self.model[name]
        idx = data.draw(index_for(len(cur)))
        self.npk.drop(name, idx)
        self.model[name] = np.delete(cur, idx, axis=0)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def drop_array(self, data):
        name = data.draw(st.sampled_from(sorted(self.model)))
        if data.draw(st.booleans()):
            self.npk.drop(name)  # NumPack 0.7: emptied, still listed
            cur = self.model[name]
            self.model[name] = cur[:0]
        else:
            self.npk.vault.drop(name)
            del self.model[name]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def update(self, data):
        name = data.draw(st.sampled_from(sorted(self.model)))
        self.npk.update(name)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), dst=NAMES)
    def clone(self, data, dst):
        src = data.draw(st.sampled_from(sorted(self.model)))
        if dst in self.model:
            return
        self.npk.clone(src, dst)
        self.model[dst] = self.model[src].copy()

    @rule(data=st.data(), n=st.integers(1, 5), seed=st.integers(0, 1000), fail=st.booleans())
    def batch(self, data, n, seed, fail):
        """A batch of saves/appends/replaces/row drops, committed atomically
        (or discarded when the block raises)."""
        model = {k: v.copy() for k, v in self.model.items()}
        try:
            with self.npk.batch_mode():
                for k in range(n):
                    names = sorted(model)
                    op = data.draw(st.sampled_from(["save", "append", "replace", "drop_rows", "load"]
                                                   if names else ["save"]))
                    if op == "save":
                        name = data.draw(NAMES)
                        a = make(np.float32, (data.draw(st.integers(0, 6)), 2), seed + k)
                        self.npk.save({name: a})
                        model[name] = a.copy()
                        continue
                    name = data.draw(st.sampled_from(names))
                    cur = model[name]
                    if op == "append":
                        a = make(cur.dtype, (2,) + cur.shape[1:], seed + k)
                        self.npk.append({name: a})
                        model[name] = np.concatenate([cur, a])
                    elif op == "replace" and len(cur):
                        idx = data.draw(index_for(len(cur)))
                        cur = cur.copy()
                        vals = make(cur.dtype, cur[idx].shape, seed + k)
                        cur[idx] = vals
                        self.npk.replace({name: vals}, idx)
                        model[name] = cur
                    elif op == "drop_rows" and len(cur):
                        idx = data.draw(index_for(len(cur)))
                        self.npk.drop(name, idx)
                        model[name] = np.delete(cur, idx, axis=0)
                    got = self.npk.load(name)
                    np.testing.assert_array_equal(got, model[name])
                    assert self.npk.get_shape(name) == model[name].shape
                assert self.npk.get_member_list() == sorted(model)
                if fail:
                    raise KeyboardInterrupt  # any exception discards the batch
        except KeyboardInterrupt:
            return
        self.model = model

    @rule()
    def reopen(self):
        self.npk.close()
        self.npk.open()

    # -- reads -------------------------------------------------------------------
    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def read_index(self, data):
        name = data.draw(st.sampled_from(sorted(self.model)))
        cur = self.model[name]
        if not len(cur):
            return
        idx = data.draw(index_for(len(cur)))
        want = cur[idx]
        got_np = self.npk.getitem(name, idx)
        if isinstance(idx, (int, np.integer)) and not isinstance(idx, (bool, np.bool_)):
            got_np = got_np[0]  # NumPack 0.7: an int selects a (1, ...) array
        for got in (got_np, self.npk.load(name, lazy=True)[idx]):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), bs=st.integers(1, 7))
    def stream(self, data, bs):
        name = data.draw(st.sampled_from(sorted(self.model)))
        cur = self.model[name]
        parts = list(self.npk.stream_load(name, bs))
        assert [len(p) for p in parts] == [len(cur[i:i + bs]) for i in range(0, len(cur), bs)]
        if parts:
            np.testing.assert_array_equal(np.concatenate(parts), cur)

    @invariant()
    def matches_model(self):
        assert self.npk.get_member_list() == sorted(self.model)
        for name, want in self.model.items():
            got = self.npk.load(name)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            lz = self.npk.load(name, lazy=True)
            assert len(lz) == len(want)
            np.testing.assert_array_equal(np.asarray(lz), want)


TestNumPackModel = NumPackModel.TestCase
TestNumPackModel.settings = __import__("hypothesis").settings(
    max_examples=40, stateful_step_count=25, deadline=None)
