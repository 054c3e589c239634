"""Streaming large arrays (Vault.batches, NumPack.stream_load): an array of
eight or more checksum chunks is read ahead by two workers straight into each
batch's own memory. Batches must be right, writable, independent of the
store, valid after the store closes, and a damaged chunk must fail the first
batch that touches it."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from numvault import CorruptionError, NumPack, Vault

CHUNK = 1 << 20


@pytest.fixture
def big(store_path):
    """A 9.6 MB float64 array (10 chunks of the store), rows 0.. in order."""
    a = np.arange(1_200_000, dtype=np.float64).reshape(300_000, 4)
    with Vault(store_path) as v:
        v.save("a", a)
    return store_path, a


@pytest.mark.parametrize("bs", [333, 10_000, 65_536, 299_999, 1_000_000])
def test_batches_are_right_and_own_their_memory(big, bs):
    path, a = big
    with Vault(path) as v:
        parts = list(v.batches("a", bs))
    gc.collect()
    assert [len(p) for p in parts[:-1]] == [bs] * (len(parts) - 1) and 0 < len(parts[-1]) <= bs
    for p in parts:
        assert p.dtype == a.dtype and p.shape[1:] == a.shape[1:]
        assert p.flags.c_contiguous and p.flags.aligned and p.flags.writeable
    np.testing.assert_array_equal(np.concatenate(parts), a)
    # A batch is the caller's own: writing to it changes neither the store
    # nor another batch.
    parts[0][:] = -1
    assert all(p.min() >= 0 for p in parts[1:])
    with Vault(path) as v:
        np.testing.assert_array_equal(v.load("a"), a)


def test_stream_survives_close_and_a_partial_read(big):
    path, a = big
    v = Vault(path)
    it = v.batches("a", 50_000)
    first = next(it)
    v.close()
    rest = list(it)  # the iterator reads the snapshot it was made from
    np.testing.assert_array_equal(np.concatenate([first, *rest]), a)
    # Streams dropped part way (the helper is reading ahead) leave the store
    # working.
    with Vault(path) as v:
        for stop in (1, 2, 5):
            it = v.batches("a", 7_000)
            for _ in range(stop):
                next(it)
            del it
        v.append("a", a[:10])
        assert v.verify()["clean"] and v.shape("a") == (300_010, 4)


def test_threads_share_a_stream(big):
    path, a = big
    with Vault(path) as v:
        it = v.batches("a", 3_000)
        got, errors = [], []

        def pull():
            try:
                for b in it:
                    got.append(b)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        ts = [threading.Thread(target=pull) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert not errors
    assert len(got) == 100
    got.sort(key=lambda b: b[0, 0])
    np.testing.assert_array_equal(np.concatenate(got), a)


def test_damaged_chunk_fails_the_first_batch_that_touches_it(big):
    path, a = big
    data = next((path / "data").glob("*.nvd"))
    raw = bytearray(data.read_bytes())
    raw[6 * CHUNK + 100] ^= 0x01
    data.write_bytes(bytes(raw))
    bs = 10_000  # 320,000 bytes per batch
    good = (6 * CHUNK) // (bs * 32)
    with Vault(path) as v:
        it = v.batches("a", bs)
        got = [next(it) for _ in range(good)]
        with pytest.raises(CorruptionError) as ei:
            next(it)
        assert "'a'" in str(ei.value) and "chunk 6" in str(ei.value)
        assert list(it) == []
    np.testing.assert_array_equal(np.concatenate(got), a[: good * bs])
    with NumPack(path) as npk, pytest.raises(CorruptionError):
        list(npk.stream_load("a", buffer_size=bs))
