"""More entries of the ATen table (aten.py): math with no single af op (inverse trigonometry,
remainders, rounding modes), sorting and selection, 1-D pooling and padding modes, each
composed from af ops. Importing this module registers them (torch_export.py does)."""
from __future__ import annotations

import numpy as np

from ..graph import functional as _F
from .aten import _const, _dims, _t, aten


def _f(x):
    """A float tensor (integers and bools computed as fp16, exact to 2048)."""
    x = _t(x)
    return x.cast("fp16") if x.dtype in ("int32", "bool") else x


@aten("sinh.default", "cosh.default")
def _sinh_cosh(ctx, x):
    x = _f(x)
    e, r = _F.exp(x), _F.exp(-x)
    return (e - r) * 0.5 if "sinh" in str(ctx.node.target) else (e + r) * 0.5


@aten("tan.default")
def _tan(ctx, x):
    x = _f(x)
    return _F.sin(x) / _F.cos(x)


@aten("asin.default", "acos.default")
def _asin_acos(ctx, x):
    x = _f(x)
    # asin(x) = 2 atan(x / (1 + sqrt(1 - x^2))): no division by zero at |x| = 1
    a = _F.atan(x / (_F.sqrt(_F.relu(1.0 - x * x)) + 1.0)) * 2.0
    return a if "asin" in str(ctx.node.target) else (np.pi / 2) - a


@aten("atan2.default")
def _atan2(ctx, y, x):
    y, x = _f(y), _f(x)
    # 2 atan(y / (sqrt(x^2 + y^2) + x)), and pi where x < 0 = y (the half-angle form's pole)
    r = _F.sqrt(x * x + y * y)
    pos = _F.greater(r + x, 0.0)
    half = _F.atan(y / _F.where(pos, r + x, 1.0)) * 2.0
    return _F.where(pos, half, _F.where(_F.less(y, 0.0), -np.pi, np.pi))


@aten("asinh.default", "acosh.default", "atanh.default")
def _inverse_hyperbolic(ctx, x):
    x = _f(x)
    name = str(ctx.node.target)
    if "asinh" in name:
        return _F.sign(x) * _F.log(_F.abs(x) + _F.sqrt(x * x + 1.0))
    if "acosh" in name:
        return _F.log(x + _F.sqrt(x * x - 1.0))
    return _F.log((x + 1.0) / (1.0 - x)) * 0.5


@aten("log2.default", "log10.default")
def _log_base(ctx, x):
    return _F.log(_f(x)) * (1 / np.log(2.0) if "log2" in str(ctx.node.target) else 1 / np.log(10.0))


@aten("log1p.default")
def _log1p(ctx, x):
    x = _f(x)
    # log(u) * x / (u - 1) with u = 1 + x (Goldberg): exact where u rounds, x itself where u == 1
    u = x + 1.0
    same = _F.equal(u, 1.0)
    # x / (u - 1) first: near 1, so no product of two small numbers flushes to zero in fp16
    return _F.where(same, x, _F.log(u) * (x / _F.where(same, 1.0, u - 1.0)))


@aten("expm1.default")
def _expm1(ctx, x):
    x = _f(x)
    # (u - 1) * x / log(u) with u = e^x (Kahan): the rounding of u cancels; x itself where u == 1
    u = _F.exp(x)
    same = _F.equal(u, 1.0)
    safe = _F.where(same, 2.0, u)
    return _F.where(same, x, (safe - 1.0) * (x / _F.log(safe)))


@aten("trunc.default")
def _trunc(ctx, x):
    x = _f(x)
    return _F.sign(x) * _F.floor(_F.abs(x))


@aten("div.Tensor_mode", "div.Scalar_mode")
def _div_mode(ctx, a, b, rounding_mode=None):
    q = _f(a) / (_f(b) if not isinstance(b, (int, float)) else float(b))
    if rounding_mode is None:
        return q
    q = _F.floor(q) if rounding_mode == "floor" else _F.sign(q) * _F.floor(_F.abs(q))
    ints = all((isinstance(v, int) or (not _const(v) and getattr(v, "dtype", "") == "int32")
                or (_const(v) and v.dtype.kind in "iu")) for v in (a, b))
    return q.cast("int32") if ints else q


@aten("remainder.Tensor", "remainder.Scalar", "fmod.Tensor", "fmod.Scalar")
def _remainder(ctx, a, b):
    x, y = _f(a), (_f(b) if not isinstance(b, (int, float)) else float(b))
    q = x / y
    q = _F.floor(q) if "remainder" in str(ctx.node.target) else _F.sign(q) * _F.floor(_F.abs(q))
    r = x - q * y
    ints = not _const(a) and getattr(a, "dtype", "") == "int32" and (isinstance(b, int) or getattr(b, "dtype", "") == "int32")
    return r.cast("int32") if ints else r


@aten("pow.Scalar")
def _pow_scalar(ctx, base, x):
    return _F.exp(_f(x) * float(np.log(base)))


@aten("clamp.Tensor")
def _clamp_tensor(ctx, x, min=None, max=None):  # noqa: A002 - ATen's names
    y = _f(x)
    if min is not None:
        y = _F.maximum(y, _t(min))
    if max is not None:
        y = _F.minimum(y, _t(max))
    return y


@aten("isnan.default")
def _isnan(ctx, x):
    x = _f(x)
    return _F.not_equal(x, x)


@aten("isinf.default")
def _isinf(ctx, x):
    return _F.equal(_F.abs(_f(x)), float("inf"))


@aten("logical_xor.default")
def _logical_xor(ctx, a, b):
    return _F.not_equal(_f(a).cast("bool").cast("fp16"), _f(b).cast("bool").cast("fp16"))


@aten("any.default")
def _any_all(ctx, x):
    return _F.greater(_F.amax(_f(x).cast("bool").cast("fp16")), 0.5)


@aten("var.dim")
def _var_dim(ctx, x, dims=None, unbiased=True, keepdim=False):
    x = _t(x)
    dims = tuple(_dims(dims, len(x.shape))) if dims else tuple(range(len(x.shape)))
    n = int(np.prod([x.shape[d] for d in dims]))
    centered = x - _F.mean(x, dim=dims, keepdim=True)
    return _F.sum(centered * centered, dim=dims, keepdim=keepdim) * (1.0 / max(n - int(bool(unbiased)), 1))


@aten("max.dim", "min.dim")
def _max_dim(ctx, x, dim, keepdim=False):
    x = _f(x)
    if "max" in str(ctx.node.target):
        return _F.amax(x, dim=dim, keepdim=keepdim), _F.argmax(x, dim=dim, keepdim=keepdim)
    return _F.amin(x, dim=dim, keepdim=keepdim), _F.argmin(x, dim=dim, keepdim=keepdim)


@aten("sort.default")
def _sort(ctx, x, dim=-1, descending=False):
    return tuple(_F.sort(_f(x), dim=dim, descending=descending))


@aten("topk.default")
def _topk(ctx, x, k, dim=-1, largest=True, sorted=True):  # noqa: A002 - ATen's name
    return tuple(_F.topk(_f(x), k, dim=dim, largest=largest))


@aten("flip.default")
def _flip(ctx, x, dims):
    if _const(x):
        return np.flip(x, tuple(dims)).copy()
    y = _t(x)
    for d in _dims(dims, len(y.shape)):
        rev = _F.constant(np.arange(y.shape[d] - 1, -1, -1, dtype=np.int32), "int32")
        kind = y.dtype if y.dtype in ("int32", "bool") else ""
        y = _F.index_select(y.cast("fp16") if kind else y, d, rev)
        y = y.cast(kind) if kind else y
    return y


@aten("diagonal.default")
def _diagonal(ctx, x, offset=0, dim1=0, dim2=1):
    x = _t(x)
    rank = len(x.shape)
    d1, d2 = dim1 % rank, dim2 % rank
    rest = [d for d in range(rank) if d not in (d1, d2)]
    y = _F.permute(x, rest + [d1, d2])  # torch puts the diagonal last
    n1, n2 = x.shape[d1], x.shape[d2]
    i = np.arange(max(0, -offset), min(n1, n2 - offset))
    flat = _F.reshape(y, [x.shape[d] for d in rest] + [n1 * n2])
    return _F.index_select(flat, len(rest), _F.constant((i * n2 + i + offset).astype(np.int32), "int32"))


@aten("reflection_pad2d.default", "reflection_pad1d.default", "replication_pad2d.default")
def _pad_mode(ctx, x, padding):
    mode = "reflect" if "reflection" in str(ctx.node.target) else "replicate"
    return _F.pad(_t(x), list(padding), mode=mode)


@aten("avg_pool1d.default")
def _avg_pool1d(ctx, x, kernel, stride=(), padding=(0,), ceil_mode=False, count_include_pad=True):
    x = _t(x)
    y = _F.avg_pool2d(_F.reshape(x, [-1] + list(x.shape[1:-1]) + [1, x.shape[-1]]), [1, kernel[0]],
                      [1, (list(stride) or list(kernel))[0]], [0, padding[0]], ceil_mode, count_include_pad)
    return _F.reshape(y, [-1] + list(x.shape[1:-1]) + [y.shape[-1]])  # -1: the batch, which may vary


@aten("adaptive_avg_pool1d.default")
def _adaptive_avg_pool1d(ctx, x, output_size):
    from ..graph import composites as _C
    x = _t(x)
    y = _C.adaptive_avg_pool2d(_F.reshape(x, [-1] + list(x.shape[1:-1]) + [1, x.shape[-1]]), [1, output_size[0]])
    return _F.reshape(y, [-1] + list(x.shape[1:-1]) + [output_size[0]])
