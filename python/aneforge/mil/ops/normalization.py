"""Normalization family. Statistics are computed in fp32 from the stored inputs."""
import numpy as np

from ..registry import op
from .elementwise import num

N = "normalization"


def _param(a, name, shape, default):
    if not a.has(name):
        return np.float32(default)
    return num(a, name).reshape(shape)


@op("batch_norm", family=N)
def batch_norm(a):
    x = num(a, "x")
    shp = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = num(a, "mean").reshape(shp), num(a, "variance").reshape(shp)
    eps = np.float32(a.float("epsilon", 1e-5))
    y = (x - mean) / np.sqrt(var + eps)
    return y * _param(a, "gamma", shp, 1) + _param(a, "beta", shp, 0)


@op("instance_norm", family=N)
def instance_norm(a):
    x = num(a, "x")
    axes = tuple(range(2, x.ndim))
    eps = np.float32(a.float("epsilon", 1e-5))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    shp = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean) / np.sqrt(var + eps) * _param(a, "gamma", shp, 1) + _param(a, "beta", shp, 0)


@op("layer_norm", family=N)
def layer_norm(a):
    x = num(a, "x")
    axes = a.ints("axes", None)
    axes = tuple(range(x.ndim)) if axes is None else tuple(ax % x.ndim for ax in axes)
    eps = np.float32(a.float("epsilon", 1e-5))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    pshape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if a.has("gamma"):
        y = y * num(a, "gamma").reshape(pshape)
    if a.has("beta"):
        y = y + num(a, "beta").reshape(pshape)
    return y


@op("l2_norm", family=N)
def l2_norm(a):
    x = num(a, "x")
    eps = np.float32(a.float("epsilon", 1e-6))
    if x.ndim < 3:
        a.fail(f"x must have rank >= 3, got {x.ndim}")
    axes = tuple(range(x.ndim - 3, x.ndim))  # the last three dims; leading dims are batch
    ss = np.sum(x.astype(np.float32) ** 2, axis=axes, keepdims=True)
    return x / np.sqrt(ss + eps)


@op("local_response_norm", family=N)
def local_response_norm(a):
    x = num(a, "x")
    size = a.int("size")
    alpha = np.float32(a.float("alpha", 1e-4))
    beta = np.float32(a.float("beta", 0.75))
    k = np.float32(a.float("k", 1.0))
    sq = x.astype(np.float32) ** 2
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size // 2  # window of `size` channels around each channel
    padded = np.pad(sq, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    s = sum(padded[:, i:i + c] for i in range(size))
    return x / (k + alpha / size * s) ** beta
