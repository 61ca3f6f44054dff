"""Scatter/gather family (iOS15-iOS18). Out-of-range indices are errors naming the op
(validate_indices semantics); negative indices count from the end where MIL allows them."""
import numpy as np

from ..registry import op

S = "scatter_gather"


def _idx(a, name, size):
    i = a.tensor(name).astype(np.int64)
    if i.size and (i.min() < -size or i.max() >= size):
        a.fail(f"{name} out of range [{-size}, {size})")
    return np.where(i < 0, i + size, i)


@op("gather", family=S)
def gather(a):
    x = a.tensor("x")
    ax = a.axis("axis", x.ndim, 0)
    bd = a.int("batch_dims", 0)
    idx = _idx(a, "indices", x.shape[ax])
    if bd == 0:
        return np.take(x, idx, axis=ax)
    # batched: leading bd dims of x and indices are shared
    lead = x.shape[:bd]
    xs = x.reshape((-1,) + x.shape[bd:])
    ids = idx.reshape((-1,) + idx.shape[bd:])
    out = np.stack([np.take(xs[i], ids[i], axis=ax - bd) for i in range(xs.shape[0])])
    return out.reshape(lead + out.shape[1:])


@op("gather_along_axis", family=S)
def gather_along_axis(a):
    x = a.tensor("x")
    ax = a.axis("axis", x.ndim, 0)
    return np.take_along_axis(x, _idx(a, "indices", x.shape[ax]), axis=ax)


@op("gather_nd", family=S)
def gather_nd(a):
    x = a.tensor("x")
    bd = a.int("batch_dims", 0)
    idx = a.tensor("indices").astype(np.int64)
    k = idx.shape[-1]
    if bd == 0:
        for j in range(k):
            if idx[..., j].size and (idx[..., j].min() < -x.shape[j] or idx[..., j].max() >= x.shape[j]):
                a.fail("indices out of range")
        return x[tuple(np.moveaxis(idx, -1, 0))]
    lead = x.shape[:bd]
    xs = x.reshape((-1,) + x.shape[bd:])
    ids = idx.reshape((-1,) + idx.shape[bd:])
    out = np.stack([xs[i][tuple(np.moveaxis(ids[i], -1, 0))] for i in range(xs.shape[0])])
    return out.reshape(lead + out.shape[1:])


_UFUNCS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _apply(a, out, index, upd, mode):
    """out[index] (op)= upd, accumulating over repeated indices."""
    if mode == "update":
        out[index] = upd
    elif mode == "sub":
        np.add.at(out, index, -upd)
    elif mode == "div":
        np.multiply.at(out, index, 1 / upd)
    elif mode in _UFUNCS:
        _UFUNCS[mode].at(out, index, upd)
    else:
        a.fail(f"unknown scatter mode '{mode}'")


def _work(x):
    return x.astype(np.float32) if x.dtype.kind == "f" else x.astype(np.int64)


@op("scatter", family=S)
def scatter(a):
    data = _work(a.tensor("data")).copy()
    ax = a.axis("axis", data.ndim, 0)
    idx = _idx(a, "indices", data.shape[ax])
    upd = _work(a.tensor("updates"))
    moved = np.moveaxis(data, ax, 0)
    _apply(a, moved, idx, np.moveaxis(upd, ax, 0), a.str("mode", "add"))
    return data


@op("scatter_along_axis", family=S)
def scatter_along_axis(a):
    data = _work(a.tensor("data")).copy()
    ax = a.axis("axis", data.ndim, 0)
    idx = _idx(a, "indices", data.shape[ax])
    upd = _work(a.tensor("updates"))
    grids = list(np.indices(idx.shape, sparse=True))
    grids[ax] = idx
    _apply(a, data, tuple(grids), upd, a.str("mode", "add"))
    return data


@op("scatter_nd", family=S)
def scatter_nd(a):
    data = _work(a.tensor("data")).copy()
    idx = a.tensor("indices").astype(np.int64)
    for j in range(idx.shape[-1]):
        if idx[..., j].size and (idx[..., j].min() < -data.shape[j] or idx[..., j].max() >= data.shape[j]):
            a.fail("indices out of range")
    _apply(a, data, tuple(np.moveaxis(idx, -1, 0)), _work(a.tensor("updates")), a.str("mode", "add"))
    return data
