"""Dataset loaders on small files written here in the real formats (MNIST IDX raw and gzip,
CIFAR-10 binary and pickle), and corrupt or hostile files: clear errors, never a crash."""
import gzip
import os
import pickle

import numpy as np
import pytest

import aneforge as af


def _idx(array, kind=0x08):
    head = bytes([0, 0, kind, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_mnist(d, n=20, gz=False, rng=None):
    rng = rng or np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    for name, arr in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        data = _idx(arr)
        if gz:
            (d / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (d / name).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files_load(tmp_path, gz):
    images, labels = _write_mnist(tmp_path, gz=gz)
    x, y = af.data.load_mnist(tmp_path, "train")
    assert x.shape == (20, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0] * 255, images.astype(np.float32))
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        af.data.load_mnist(tmp_path, "test")


def test_idx_of_other_types_and_hostile_headers(tmp_path):
    a = np.arange(12, dtype=np.int32).reshape(3, 4) - 5
    (tmp_path / "a.idx").write_bytes(_idx(a, 0x0C))
    np.testing.assert_array_equal(af.data.load_idx(tmp_path / "a.idx"), a)
    good = _idx(np.zeros((2, 3), np.uint8))
    cases = {
        "bad magic": b"\x01" + good[1:],
        "unknown IDX element type": good[:2] + b"\x07" + good[3:],
        "1 to 4 dimensions": good[:3] + b"\x09" + good[4:],
        "truncated IDX header": good[:6],
        "the header says": good[:4] + (2 ** 31).to_bytes(4, "big") + good[8:],  # claims 2^31 rows
        "the file holds": good[:-1],
    }
    for msg, data in cases.items():
        (tmp_path / "bad.idx").write_bytes(data)
        with pytest.raises(ValueError, match=msg):
            af.data.load_idx(tmp_path / "bad.idx")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(good)[:-6])
    with pytest.raises(ValueError, match="corrupt gzip"):
        af.data.load_idx(tmp_path / "bad.gz")


def test_mnist_pairs_that_do_not_match(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(19, np.uint8)))
    with pytest.raises(ValueError, match="20 images but 19 labels"):
        af.data.load_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.full(20, 12, np.uint8)))
    with pytest.raises(ValueError, match="label 12"):
        af.data.load_mnist(tmp_path)


def _cifar_arrays(n, rng):
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist()


@pytest.mark.parametrize("form", ["binary", "pickle"])
def test_cifar10_in_both_distributions(tmp_path, form, rng):
    want_x, want_y = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data, labels = _cifar_arrays(4, rng)
        if name != "test_batch":
            want_x.append(data)
            want_y += labels
        if form == "binary":
            rec = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)
            (tmp_path / (name + ".bin")).write_bytes(rec.tobytes())
        else:
            with open(tmp_path / name, "wb") as f:
                pickle.dump({b"batch_label": b"x", b"labels": labels, b"data": data}, f)
    x, y = af.data.load_cifar10(tmp_path, "train")
    assert x.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal((x * 255).round().astype(np.uint8).reshape(20, -1), np.concatenate(want_x))
    np.testing.assert_array_equal(y, want_y)
    assert af.data.load_cifar10(tmp_path, "test")[0].shape == (4, 3, 32, 32)


def test_cifar10_hostile_files(tmp_path, rng):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))
    names = [f"data_batch_{i}" for i in range(1, 6)]
    for n in names:
        with open(tmp_path / n, "wb") as f:
            pickle.dump({b"labels": [1], b"data": np.zeros((1, 3072), np.uint8)}, f)
    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump({b"labels": Evil(), b"data": np.zeros((1, 3072), np.uint8)}, f)
    with pytest.raises(ValueError, match="refused to load"):
        af.data.load_cifar10(tmp_path)
    assert not (tmp_path / "pwned").exists()
    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump({b"labels": [1, 2], b"data": np.zeros((1, 3000), np.uint8)}, f)
    with pytest.raises(ValueError, match="expected uint8 data"):
        af.data.load_cifar10(tmp_path)
    bins = tmp_path / "bin"
    bins.mkdir()
    for n in names:
        (bins / (n + ".bin")).write_bytes(b"\x00" * 3072)  # one byte short of a record
    with pytest.raises(ValueError, match="whole number of 3073-byte"):
        af.data.load_cifar10(bins)
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 test batches"):
        af.data.load_cifar10(bins, "test")


def test_batches_cover_every_sample_once(rng):
    x, y = np.arange(10)[:, None], np.arange(10)
    got = list(af.data.batches(x, y, 4, shuffle=True, seed=1))
    assert [len(b[0]) for b in got] == [4, 4]
    seen = np.concatenate([b[1] for b in got])
    assert len(set(seen)) == 8 and set(seen) <= set(range(10))
    assert [len(b[0]) for b in af.data.batches(x, y, 4, drop_last=False)] == [4, 4, 2]
    with pytest.raises(ValueError, match="batch_size"):
        list(af.data.batches(x, y, 0))
