"""Reduction family: fp32 accumulation over the given axes (all axes by default)."""
import numpy as np

from ..registry import op
from .elementwise import num

R = "reduction"


def _axes(a, x):
    axes = a.ints("axes", None)
    if axes is None:
        return tuple(range(x.ndim))
    for ax in axes:
        if not -x.ndim <= ax < max(x.ndim, 1):
            a.fail(f"axis {ax} out of range for rank {x.ndim}")
    return tuple(sorted({ax % x.ndim for ax in axes}))


def _reduce(name, fn):
    def impl(a):
        x = num(a, "x")
        if x.dtype.kind == "f":
            x = x.astype(np.float32)
        return fn(x, _axes(a, x), a.bool("keep_dims", False))
    op(name, family=R)(impl)


def _max(x, axes, keep):
    return np.max(x, axis=axes, keepdims=keep) if x.size else x


_reduce("reduce_sum", lambda x, ax, k: np.sum(x, axis=ax, keepdims=k))
_reduce("reduce_mean", lambda x, ax, k: np.mean(x, axis=ax, keepdims=k))
_reduce("reduce_prod", lambda x, ax, k: np.prod(x, axis=ax, keepdims=k))
_reduce("reduce_max", lambda x, ax, k: np.max(x, axis=ax, keepdims=k))
_reduce("reduce_min", lambda x, ax, k: np.min(x, axis=ax, keepdims=k))
_reduce("reduce_l1_norm", lambda x, ax, k: np.sum(np.abs(x), axis=ax, keepdims=k))
_reduce("reduce_l2_norm", lambda x, ax, k: np.sqrt(np.sum(np.square(x), axis=ax, keepdims=k)))
_reduce("reduce_sum_square", lambda x, ax, k: np.sum(np.square(x), axis=ax, keepdims=k))
_reduce("reduce_log_sum", lambda x, ax, k: np.log(np.sum(x, axis=ax, keepdims=k)))


def _lse(x, ax, k):
    m = np.max(x, axis=ax, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    r = np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)) + m
    return r if k else np.squeeze(r, axis=ax)


_reduce("reduce_log_sum_exp", _lse)


def _arg(a, largest):
    x = num(a, "x")
    ax = a.axis("axis", x.ndim, -1)
    # first occurrence; NaN counts as the extreme value (as torch.argmax)
    xs = np.where(np.isnan(x), np.inf if largest else -np.inf, x) if x.dtype.kind == "f" else x
    idx = np.argmax(xs, axis=ax) if largest else np.argmin(xs, axis=ax)
    return np.expand_dims(idx, ax) if a.bool("keep_dims", False) else idx


@op("reduce_argmax", family=R)
def reduce_argmax(a):
    return _arg(a, True)


@op("reduce_argmin", family=R)
def reduce_argmin(a):
    return _arg(a, False)
