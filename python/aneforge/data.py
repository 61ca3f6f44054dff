"""Datasets from files on disk, read as untrusted input: MNIST / Fashion-MNIST (IDX files,
raw or gzip) and CIFAR-10 (the binary and the Python pickle distributions). Every count and
size is checked against the bytes present before anything is allocated; a bad file is a
ValueError naming the file and what is wrong. Nothing is downloaded.

    x, y = af.data.load_mnist("/usr/share/datasets/fashion-mnist", split="train")
    for xb, yb in af.data.batches(x, y, batch_size=64, shuffle=True, seed=0): ...
"""
from __future__ import annotations

import gzip
import io
import os
import pickle

import numpy as np

__all__ = ["load_idx", "load_mnist", "load_cifar10", "batches"]

_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MAX_BYTES = 1 << 32  # no dataset file here is larger; a header claiming more is refused


def _read(path, limit=MAX_BYTES) -> bytes:
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head == b"\x1f\x8b":  # gzip: decompressed in bounded steps
            out = io.BytesIO()
            with gzip.GzipFile(fileobj=f) as g:
                try:
                    while True:
                        chunk = g.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
                        if out.tell() > limit:
                            raise ValueError(f"{path}: decompresses to more than {limit} bytes")
                except (OSError, EOFError) as e:
                    raise ValueError(f"{path}: corrupt gzip data ({e})") from None
            return out.getvalue()
        return f.read(limit + 1)


def load_idx(path) -> np.ndarray:
    """An IDX file (the MNIST format: magic 0 0 type ndim, big-endian uint32 sizes, data)."""
    data = _read(path)
    if len(data) < 4 or data[0] or data[1]:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    kind, ndim = data[2], data[3]
    if kind not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{kind:02x}")
    if not 1 <= ndim <= 4:
        raise ValueError(f"{path}: IDX files here have 1 to 4 dimensions, this one says {ndim}")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dt = _IDX_TYPES[kind]
    need = int(np.prod(shape, dtype=object)) * dt.itemsize
    have = len(data) - 4 - 4 * ndim
    if need != have:
        raise ValueError(f"{path}: the header says {shape} of {dt.name} ({need} bytes), the file holds {have}")
    return np.frombuffer(data, dt, offset=4 + 4 * ndim).reshape(shape).astype(dt.newbyteorder("="))


def _find(directory, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(directory, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{directory}: no {stem} (or {stem}.gz); MNIST-format directories hold "
                            "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                            "t10k-labels-idx1-ubyte")


def load_mnist(directory, split="train"):
    """MNIST or Fashion-MNIST: images float32 (N, 1, 28, 28) in [0, 1], labels int64 (N,)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    ip, lp = _find(directory, f"{prefix}-images-idx3-ubyte"), _find(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = load_idx(ip), load_idx(lp)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{ip}: expected uint8 images (N, rows, cols), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{lp}: expected uint8 labels (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{directory}: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{lp}: label {int(labels.max())} is not a class 0..9")
    return images[:, None].astype(np.float32) / 255.0, labels.astype(np.int64)


class _NumpyOnly(pickle.Unpickler):
    """CIFAR-10's pickles hold dicts of bytes, lists and NumPy arrays; anything else (a class
    that could run code) is refused."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _cifar_pickle(path):
    try:
        d = _NumpyOnly(io.BytesIO(_read(path)), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - every failure of an untrusted pickle is the same error
        raise ValueError(f"{path}: not a CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise ValueError(f"{path}: not a CIFAR-10 batch (a dict with b'data' and b'labels')")
    data, labels = np.asarray(d[b"data"]), np.asarray(d[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise ValueError(f"{path}: expected uint8 data (N, 3072) and N labels, got {data.dtype} {data.shape} "
                         f"and {labels.shape}")
    return data, labels


def _cifar_binary(path):
    raw = _read(path)
    if len(raw) % 3073:
        raise ValueError(f"{path}: {len(raw)} bytes is not a whole number of 3073-byte CIFAR-10 records")
    rec = np.frombuffer(raw, np.uint8).reshape(-1, 3073)
    return rec[:, 1:], rec[:, 0]


def load_cifar10(directory, split="train"):
    """CIFAR-10 from its binary (data_batch_1.bin ... test_batch.bin) or Python pickle
    (data_batch_1 ... test_batch) distribution: images float32 (N, 3, 32, 32) in [0, 1],
    labels int64."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    for sub in ("", "cifar-10-batches-bin", "cifar-10-batches-py"):
        d = os.path.join(directory, sub)
        if all(os.path.exists(os.path.join(d, n + ".bin")) for n in names):
            parts = [_cifar_binary(os.path.join(d, n + ".bin")) for n in names]
            break
        if all(os.path.exists(os.path.join(d, n)) for n in names):
            parts = [_cifar_pickle(os.path.join(d, n)) for n in names]
            break
    else:
        raise FileNotFoundError(f"{directory}: no CIFAR-10 {split} batches ({', '.join(names)}, as .bin files or "
                                "Python pickles, possibly under cifar-10-batches-bin/ or cifar-10-batches-py/)")
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{directory}: a label outside 0..9")
    return data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, labels


def batches(x, y, batch_size, shuffle=False, seed=None, drop_last=True):
    """(x, y) minibatches of ``batch_size``; with ``shuffle`` a new order each call (seeded).
    drop_last (default) keeps every batch the same shape: one compiled program serves all."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    order = np.random.default_rng(seed).permutation(len(x)) if shuffle else np.arange(len(x))
    end = len(x) - len(x) % batch_size if drop_last else len(x)
    for i in range(0, end, batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]
