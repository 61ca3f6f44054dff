"""Tensor operation family: creation, padding, tiling, sorting, concatenation, splitting."""
import numpy as np

from ..registry import op
from .elementwise import num

T = "tensor_operation"


@op("identity", family=T)
def identity(a):
    return a.tensor("x")


@op("shape", family=T)
def shape(a):
    return np.array(a.tensor("x").shape, np.int32)


@op("fill", family=T)
def fill(a):
    shp = a.ints("shape")
    return np.full(shp, a.tensor("value", np.float32(0)))


@op("fill_like", family=T, since=16)
def fill_like(a):
    return np.full(a.tensor("ref_tensor").shape, a.tensor("value", np.float32(0)))


@op("range_1d", family=T)
def range_1d(a):
    start, end, step = (a.tensor(n).reshape(()) for n in ("start", "end", "step"))
    if step == 0:
        a.fail("step is 0")
    n = int(np.ceil((float(end) - float(start)) / float(step)))
    if n > 1 << 28:
        a.fail(f"range of {n} elements")
    return np.arange(start, end, step)


@op("tile", family=T)
def tile(a):
    x = a.tensor("x")
    reps = a.ints("reps")
    if len(reps) != x.ndim:
        a.fail(f"reps {reps} for rank {x.ndim}")
    return np.tile(x, reps)


@op("band_part", family=T)
def band_part(a):
    x = a.tensor("x")
    lo, hi = a.int("lower", -1), a.int("upper", -1)
    m = np.arange(x.shape[-2])[:, None]
    n = np.arange(x.shape[-1])[None, :]
    keep = ((lo < 0) | (m - n <= lo)) & ((hi < 0) | (n - m <= hi))
    return np.where(keep, x, np.zeros_like(x))


@op("cumsum", family=T)
def cumsum(a):
    x = num(a, "x")
    ax = a.axis("axis", x.ndim, 0)
    if a.bool("reverse", False):
        x = np.flip(x, ax)
    y = np.cumsum(x, axis=ax)
    if a.bool("exclusive", False):
        y = y - x
    return np.flip(y, ax) if a.bool("reverse", False) else y


@op("one_hot", family=T)
def one_hot(a):
    idx = a.tensor("indices").astype(np.int64)
    depth = a.int("one_hot_vector_size")
    ax = a.int("axis", -1)
    ax = ax % (idx.ndim + 1)
    on, off = a.tensor("on_value", np.float32(1)), a.tensor("off_value", np.float32(0))
    hot = idx[..., None] == np.arange(depth)
    y = np.where(hot, on, off)
    return np.moveaxis(y, -1, ax)


@op("non_zero", family=T)
def non_zero(a):
    return np.transpose(np.nonzero(a.tensor("x"))).astype(np.int32)


@op("pad", family=T)
def pad(a):
    x = a.tensor("x")
    p = a.ints("pad")
    if len(p) % 2 or len(p) // 2 > x.ndim:
        a.fail(f"pad {p} for rank {x.ndim}")
    n = len(p) // 2
    widths = [(0, 0)] * (x.ndim - n) + [(p[2 * i], p[2 * i + 1]) for i in range(n)]
    mode = a.str("mode", "constant")
    if mode == "constant":
        return np.pad(x, widths, constant_values=a.tensor("constant_val", np.float32(0)).reshape(()))
    if mode == "reflect":
        return np.pad(x, widths, mode="reflect")
    if mode == "replicate":
        return np.pad(x, widths, mode="edge")
    a.fail(f"unknown pad mode '{mode}'")


def _sorted_indices(x, ax, ascending):
    """Stable order; NaN sorts as the largest value."""
    key = np.where(np.isnan(x), np.inf, x) if x.dtype.kind == "f" else x
    if ascending:
        return np.argsort(key, axis=ax, kind="stable")
    # descending and stable: sort the negated key (ints as int64 to avoid overflow)
    neg = -key.astype(np.float64) if key.dtype.kind == "f" else -key.astype(np.int64)
    return np.argsort(neg, axis=ax, kind="stable")


@op("argsort", family=T)
def argsort(a):
    x = num(a, "x")
    ax = a.axis("axis", x.ndim, -1)
    return _sorted_indices(x, ax, a.bool("ascending", False))


@op("topk", family=T)
def topk(a):
    x = num(a, "x")
    ax = a.axis("axis", x.ndim, -1)
    k = a.int("k", 1)
    if k == -1:
        k = x.shape[ax]
    if not 0 <= k <= x.shape[ax]:
        a.fail(f"k={k} for an axis of size {x.shape[ax]}")
    idx = np.take(_sorted_indices(x, ax, a.bool("ascending", False)), np.arange(k), axis=ax)
    vals = np.take_along_axis(x, idx, axis=ax)
    if len(a.op.outputs) == 1:
        return vals
    return vals, idx


@op("flatten2d", family=T)
def flatten2d(a):
    x = a.tensor("x")
    ax = a.int("axis", 1)
    ax = ax % x.ndim if ax < 0 else ax
    return x.reshape(int(np.prod(x.shape[:ax])), -1)


@op("concat", family=T)
def concat(a):
    vals = a.tuple("values")
    ax = a.axis("axis", vals[0].ndim)
    if a.bool("interleave", False):
        st = np.stack(vals, axis=ax + 1)
        shp = list(vals[0].shape)
        shp[ax] *= len(vals)
        return st.reshape(shp)
    return np.concatenate(vals, axis=ax)


@op("stack", family=T)
def stack(a):
    vals = a.tuple("values")
    return np.stack(vals, axis=a.int("axis") % (vals[0].ndim + 1))


@op("split", family=T)
def split(a):
    x = a.tensor("x")
    ax = a.axis("axis", x.ndim)
    sizes = a.ints("split_sizes", None)
    if sizes is None:
        n = a.int("num_splits")
        if n <= 0 or x.shape[ax] % n:
            a.fail(f"num_splits {n} does not divide size {x.shape[ax]}")
        sizes = [x.shape[ax] // n] * n
    if sum(sizes) != x.shape[ax] or min(sizes) < 0:
        a.fail(f"split_sizes {sizes} do not add up to {x.shape[ax]}")
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=ax))
