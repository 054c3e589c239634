"""The four real workloads of seed 000 (NumPack's performance guide), written
as NumPack users write them, checked against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from numvault import NumPack


# 1. Machine-learning training pipeline: shuffled batches from lazy arrays ------

class DataLoader:
    def __init__(self, npk_file, batch_size=32, seed=0):
        self.npk_file = npk_file
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.npk = None

    def __enter__(self):
        self.npk = NumPack(self.npk_file).__enter__()
        self.features_lazy = self.npk.load("features", lazy=True)
        self.labels_lazy = self.npk.load("labels", lazy=True)
        return self

    def __exit__(self, *args):
        return self.npk.__exit__(*args)

    def __iter__(self):
        n = len(self.features_lazy)
        indices = self.rng.permutation(n)
        for start in range(0, n, self.batch_size):
            batch = indices[start:start + self.batch_size]
            yield batch, self.features_lazy[batch], self.labels_lazy[batch]


def test_training_batches_from_lazy_arrays(tmp_path):
    path = tmp_path / "training_data.npk"
    rng = np.random.default_rng(1)
    x = rng.random((1000, 16)).astype(np.float32)
    y = rng.integers(0, 10, 1000).astype(np.int64)
    with NumPack(path, drop_if_exists=True) as npk:
        npk.save({"features": x, "labels": y})
        npk.drop(["features", "labels"], np.arange(0, 1000, 10))  # holes must be invisible
    x, y = np.delete(x, np.arange(0, 1000, 10), axis=0), np.delete(y, np.arange(0, 1000, 10))
    with DataLoader(path, batch_size=64) as loader:
        for _epoch in range(3):
            seen = []
            for idx, xb, yb in loader:
                np.testing.assert_array_equal(xb, x[idx])
                np.testing.assert_array_equal(yb, y[idx])
                xb *= 0  # batches are independent copies
                seen.append(idx)
            assert sorted(np.concatenate(seen).tolist()) == list(range(900))
    # the arrays stay valid after the store is closed
    np.testing.assert_array_equal(loader.features_lazy[[0, 1]], x[[0, 1]])


# 2. Real-time annotation with writable batch mode --------------------------------

def test_annotation_with_writable_batch_mode(tmp_path):
    data_file, anno_file = tmp_path / "data.npk", tmp_path / "anno.npk"
    samples = np.random.default_rng(2).random((300, 8)).astype(np.float32)
    with NumPack(data_file, drop_if_exists=True) as npk:
        npk.save({"samples": samples})

    def label_of(sample):
        return int(sample.sum() * 10) % 7

    with NumPack(data_file) as data_npk, NumPack(anno_file, drop_if_exists=True) as anno_npk:
        if not anno_npk.has_array("labels"):
            n_samples = data_npk.get_shape("samples")[0]
            anno_npk.save({"labels": np.full(n_samples, -1, dtype=np.int32)})
        with anno_npk.writable_batch_mode() as wb:
            labels = wb.load("labels")
            lazy = data_npk.load("samples", lazy=True)
            for i, sample in enumerate(lazy):
                labels[i] = label_of(sample)
                if i == 149:
                    # partial progress is already in the file
                    np.testing.assert_array_equal(np.asarray(anno_npk.load("labels", lazy=True))[:150],
                                                  [label_of(s) for s in samples[:150]])
    with NumPack(anno_file) as anno_npk:
        np.testing.assert_array_equal(anno_npk.load("labels"), [label_of(s) for s in samples])
        assert anno_npk.vault.verify()["clean"]


# 3. Feature engineering with stream_load + append ----------------------------------

def engineer(batch):
    normalized = (batch - batch.mean()) / batch.std()
    squared = batch ** 2
    interactions = batch[:, :10] * batch[:, 10:20]
    return np.concatenate([normalized, squared, interactions], axis=1)


def test_feature_engineering_stream_and_append(tmp_path):
    inp, out = tmp_path / "in.npk", tmp_path / "out.npk"
    raw = np.random.default_rng(3).random((2500, 20)).astype(np.float32)
    with NumPack(inp, drop_if_exists=True) as npk:
        npk.save({"raw_features": raw})
    with NumPack(inp) as input_npk, NumPack(out, drop_if_exists=True) as output_npk:
        first = True
        for batch in input_npk.stream_load("raw_features", buffer_size=1000):
            engineered = engineer(batch)
            if first:
                output_npk.save({"features": engineered})
                first = False
            else:
                output_npk.append({"features": engineered})
    want = np.concatenate([engineer(raw[i:i + 1000]) for i in range(0, 2500, 1000)])
    with NumPack(out) as npk:
        assert npk.get_shape("features") == (2500, 50)
        np.testing.assert_array_equal(npk.load("features"), want)


# 4. Model checkpoints with batch_mode -------------------------------------------

class ModelCheckpoint:
    def __init__(self, checkpoint_file):
        self.file = checkpoint_file

    def save_checkpoint(self, epoch, model_weights, optimizer_state, metrics, fail_after=None):
        with NumPack(self.file) as npk:
            with npk.batch_mode():
                for k, (name, weight) in enumerate(model_weights.items()):
                    npk.save({f"weights_{name}": weight})
                    if fail_after is not None and k == fail_after:
                        raise RuntimeError("crash in the middle of a checkpoint")
                for name, state in optimizer_state.items():
                    npk.save({f"optimizer_{name}": state})
                npk.save({"epoch": np.array([epoch]),
                          "metrics": np.array(list(metrics.values()))})

    def load_checkpoint(self):
        with NumPack(self.file) as npk:
            weights, opt = {}, {}
            for name in npk.get_member_list():
                if name.startswith("weights_"):
                    weights[name[8:]] = npk.load(name)
                elif name.startswith("optimizer_"):
                    opt[name[10:]] = npk.load(name)
            return npk.load("epoch")[0], weights, opt, npk.load("metrics")


def _model(epoch):
    rng = np.random.default_rng(epoch)
    w = {"dense1": rng.random((32, 16)).astype(np.float32),
         "dense2": rng.random((16, 4)).astype(np.float32),
         "bias": rng.random(4).astype(np.float32)}
    o = {"m_dense1": rng.random((32, 16)), "step": np.array([epoch * 100])}
    return w, o, {"loss": 1.0 / (epoch + 1), "accuracy": epoch / 10}


def test_checkpoints_with_batch_mode(tmp_path):
    ckpt = ModelCheckpoint(tmp_path / "model_checkpoint.npk")
    for epoch in range(5):
        w, o, m = _model(epoch)
        ckpt.save_checkpoint(epoch, w, o, m)
        e, w2, o2, m2 = ckpt.load_checkpoint()
        assert e == epoch
        for k in w:
            np.testing.assert_array_equal(w2[k], w[k])
        for k in o:
            np.testing.assert_array_equal(o2[k], o[k])
        np.testing.assert_array_equal(m2, list(m.values()))
    # a failure half-way through a checkpoint leaves the previous one intact
    w, o, m = _model(99)
    with pytest.raises(RuntimeError):
        ckpt.save_checkpoint(99, w, o, m, fail_after=1)
    e, w2, _, _ = ckpt.load_checkpoint()
    assert e == 4
    np.testing.assert_array_equal(w2["dense1"], _model(4)[0]["dense1"])
