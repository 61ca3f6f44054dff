"""The ATen table: one entry per core ATen op (torch.export's IR after run_decompositions),
each mapping the op to af ops, the way the C++ op table maps ops to kernels. ``@aten`` adds
an entry (``af.register_aten`` is the public door); UNSUPPORTED says why an op is not mapped.

An entry is ``fn(ctx, *args, **kwargs)``: tensor arguments arrive as af Tensors, or as NumPy
arrays while they are constants (parameters, buffers, folded constants), so a weight reaches
conv/linear as an array and becomes a weight layer; sizes arrive as ints.
"""
from __future__ import annotations

import operator

import numpy as np

from ..graph import composites as _C, functional as _F
from ..graph.tensor import Tensor
from ._values import is_const as _const, tensor_of as _t

ATEN: dict = {}  # "convolution.default" -> fn(ctx, *args, **kwargs)

# Why an op of the core ATen opset has no entry (docs/import.md); the rest: "not mapped yet".
_BACKWARD = "a backward op: gradients come from af.grad on the imported graph (export the forward only)"
_RANDOM = "random numbers: the engine has none (af.noise feeds them from the host)"
_DYNAMIC = "data-dependent output shape: the engine runs static shapes"
_MUTATION = "in-place update or scatter into a tensor: not a graph op"
UNSUPPORTED = {
    **{k: _BACKWARD for k in ("_adaptive_avg_pool2d_backward.default", "avg_pool2d_backward.default",
                              "convolution_backward.default", "embedding_dense_backward.default",
                              "max_pool2d_with_indices_backward.default", "native_group_norm_backward.default",
                              "native_layer_norm_backward.default")},
    **{k: _RANDOM for k in ("rand.default", "randn.default", "randperm.default", "native_dropout.default")},
    **{k: _DYNAMIC for k in ("nonzero.default", "_local_scalar_dense.default", "masked_scatter.default")},
    **{k: _MUTATION for k in ("index_put.default", "copy.default", "fill.Scalar", "scatter.value", "scatter.src",
                              "scatter_add.default", "scatter_reduce.two", "select_scatter.default",
                              "slice_scatter.default", "empty.memory_format",
                              "empty_strided.default")},
    **{k: "complex values: the engine has no complex type" for k in ("_fft_c2r.default", "_fft_r2c.default")},
    **{k: "batch norm in training mode: from_torch exports in eval mode (running statistics)"
       for k in ("_native_batch_norm_legit.default", "_native_batch_norm_legit.no_stats")},
    **{k: "3-D pooling: the engine's pools are 2-D" for k in ("avg_pool3d.default", "max_pool3d_with_indices.default",
                                                              "_adaptive_avg_pool3d.default", "reflection_pad3d.default",
                                                              "replication_pad3d.default")},
    **{k: "bitwise integer ops: the engine has no integer compute" for k in (
        "bitwise_and.Scalar", "bitwise_or.Scalar", "bitwise_xor.Tensor", "bitwise_xor.Scalar")},
}


class SymSize(int):
    """A size that follows the batch (dynamic_batch=True): reshapes take it as -1."""


def aten(*names):
    """Register ``fn`` as the mapping of the named ATen ops ("add.Tensor", ...)."""
    def deco(fn):
        for n in names:
            ATEN[n] = fn
        return fn
    return deco


def _dims(d, rank):
    d = [d] if isinstance(d, int) else list(d)
    return [k % rank for k in d]


# ---- structure, copies and casts ----

@aten("getitem")
def _getitem(ctx, seq, i):
    return seq[i]


@aten("clone.default", "alias.default", "detach.default", "lift_fresh_copy.default")
def _identity(ctx, x, **_):
    return x


@aten("_assert_tensor_metadata.default", "_assert_scalar.default")
def _assert(ctx, *args, **kwargs):
    """A check torch.export records on traced metadata: it held at export, shapes are static."""
    return None


@aten("_to_copy.default")
def _to_copy(ctx, x, dtype=None, **_):
    import torch
    if dtype is None:
        return x
    if dtype in (torch.float32, torch.float16, torch.bfloat16):  # floats compute in the program's precision
        if _const(x):
            return x.astype(np.float32)
        return x.cast("fp16") if x.dtype in ("int32", "bool") else x
    if dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        if _const(x):
            return x.astype(np.int32)
        y = x.cast("int32")
        if x.dtype == "bool" or x._t.node_id in ctx.zero_one:
            ctx.zero_one.add(y._t.node_id)  # a mask as integers: its values are 0 and 1
        return y
    if dtype == torch.bool:
        return x.astype(bool) if _const(x) else x.cast("bool")
    raise NotImplementedError(f"_to_copy to {dtype}")


@aten("view.default", "_unsafe_view.default", "reshape.default")
def _view(ctx, x, shape):
    if isinstance(x, Wide):
        x = x.tensor
    if _const(x):
        return x.reshape(ctx.sizes(shape, x.size))
    if len(shape) > MAX_RANK:
        # with a flexible batch, the model's own -1 leading a view is taken to follow it (the
        # replay's checks refuse a graph where it does not)
        return Wide(x, _resolve(shape, x.shape, follow=ctx.batch_ref is not None))
    return _F.reshape(x, ctx.sizes(shape, int(np.prod(x.shape))))


MAX_RANK = 5  # the engine's tensors have at most 5 dimensions


def _resolve(shape, like, follow=False):
    """The model's own -1 resolved (following the batch when it leads and ``follow``); sizes
    that follow the batch (SymSize) kept as they are."""
    shape = list(shape)
    own = [i for i, s in enumerate(shape) if s == -1 and not isinstance(s, SymSize)]
    if own:
        known = int(np.prod([int(s) for i, s in enumerate(shape) if i != own[0]]))
        n = int(np.prod(like)) // max(known, 1)
        shape[own[0]] = SymSize(n) if follow and own[0] == 0 else n
    return tuple(shape)


class Wide:
    """A view of more than 5 dimensions (Swin's window partition: view to 6-D, permute, view
    back), held as its values at a lower rank until a permute and a view bring it back. A
    permute merges the dimensions that stay together, so it runs at 5 dimensions or fewer."""

    def __init__(self, tensor, shape):
        self.tensor, self.shape = tensor, tuple(shape)

    def permute(self, dims):
        groups = [[dims[0]]]  # runs of source dimensions that stay adjacent and in order
        for d in dims[1:]:
            if d == groups[-1][-1] + 1:
                groups[-1].append(d)
            else:
                groups.append([d])
        if len(groups) > MAX_RANK:
            raise NotImplementedError(f"a permute of a {len(self.shape)}-D view that needs more than "
                                      f"{MAX_RANK} dimensions (the engine's maximum rank)")
        order = sorted(groups)
        merged = [-1 if any(isinstance(self.shape[d], SymSize) for d in g) else int(np.prod([self.shape[d] for d in g]))
                  for g in order]  # the group holding the batch follows it
        y = _F.permute(_F.reshape(self.tensor, merged), [order.index(g) for g in groups])
        return Wide(y, [self.shape[d] for d in dims])


@aten("as_strided.default")
def _as_strided(ctx, x, size, stride, storage_offset=0):
    """A view of x's memory: mapped when it is x itself in row-major order (size-1 dimensions'
    strides do not matter), as decompositions leave it (adaptive_avg_pool1d)."""
    target = ctx.sizes(size)  # a size following the batch as -1
    size = [int(s) for s in size]
    expect, step = [], 1
    for n in reversed(size):
        expect.append(step)
        step *= n
    expect.reverse()
    same = all(n == 1 or int(st) == e for n, st, e in zip(size, stride, expect))
    if storage_offset or not same or int(np.prod(size)) != int(np.prod(x.shape)):
        raise NotImplementedError(f"as_strided to size {size}, stride {list(stride)}: a view that is not the "
                                  "tensor in row-major order")
    return x.reshape(size) if _const(x) else _F.reshape(x, target)


@aten("permute.default")
def _permute(ctx, x, dims):
    if isinstance(x, Wide):
        return x.permute([d % len(x.shape) for d in dims])
    return np.transpose(x, dims) if _const(x) else _F.permute(x, list(dims))


@aten("t.default")
def _transpose2(ctx, x):
    return x.T if _const(x) else _F.transpose(x, 0, 1)


@aten("transpose.int")
def _transpose(ctx, x, d0, d1):
    return np.swapaxes(x, d0, d1) if _const(x) else _F.transpose(x, d0, d1)


@aten("unsqueeze.default")
def _unsqueeze(ctx, x, dim):
    return np.expand_dims(x, dim) if _const(x) else _F.unsqueeze(x, dim)


@aten("squeeze.dim", "squeeze.dims")
def _squeeze(ctx, x, dim):
    dims = _dims(dim, len(x.shape))
    dims = [d for d in dims if x.shape[d] == 1]
    if not dims:
        return x
    return np.squeeze(x, tuple(dims)) if _const(x) else _F.squeeze(x, dims if len(dims) > 1 else dims[0])


@aten("expand.default")
def _expand(ctx, x, sizes):
    batch = [i for i, s in enumerate(sizes) if isinstance(s, SymSize)]
    sizes = [int(s) for s in sizes]  # -1 keeps a size
    lead = len(sizes) - len(x.shape)
    if _const(x) and not batch:
        return np.broadcast_to(x, [s if s != -1 else d for s, d in zip(sizes, (1,) * lead + tuple(x.shape))]).copy()
    x = _t(x)
    if lead:
        x = _F.reshape(x, (1,) * lead + tuple(x.shape))
    follow = batch == [0] and x.shape[0] == 1 and ctx.batch_ref is not None
    reps = [1 if s == -1 or s == d or (follow and i == 0) else s for i, (s, d) in enumerate(zip(sizes, x.shape))]
    y = x if all(r == 1 for r in reps) else _F.tile(x, reps)
    if follow:  # a constant (a class token) repeated per sample: ones of the batch's size, from an input
        ref = _F.reshape(ctx.batch_ref, [-1, int(np.prod(ctx.batch_ref.shape[1:]))])[:, :1]
        ones = _F.where(_F.equal(ref, ref), 1.0, 1.0)  # 1 also where the input is NaN
        y = y * _F.reshape(ones, [-1] + [1] * (len(sizes) - 1))
    return y


@aten("cat.default")
def _cat(ctx, tensors, dim=0):
    return _F.cat([_t(t) for t in tensors], dim)


@aten("slice.Tensor")
def _slice(ctx, x, dim=0, start=None, end=None, step=1):
    key = (slice(None),) * (dim % len(x.shape)) + (slice(start, end, step),)
    return x[key]


@aten("select.int")
def _select(ctx, x, dim, index):
    return x[(slice(None),) * (dim % len(x.shape)) + (index,)]


@aten("split_with_sizes.default")
def _split_sizes(ctx, x, sizes, dim=0):
    return tuple(_F.split(_t(x), list(sizes), dim))


@aten("split.Tensor")
def _split(ctx, x, size, dim=0):
    return tuple(_F.split(_t(x), size, dim))


@aten("constant_pad_nd.default")
def _pad(ctx, x, pad, value=0.0):
    return _F.pad(_t(x), list(pad), value=float(value))


@aten("repeat.default")
def _repeat(ctx, x, reps):
    lead = len(reps) - len(x.shape)
    x = _t(x)
    if lead:
        x = _F.reshape(x, (1,) * lead + tuple(x.shape))
    return _F.tile(x, list(reps))


# ---- creation (constants, folded at import) ----

def _np_dtype(dtype):
    """The NumPy dtype a torch dtype folds to: bool, int32 for integers, float32 for floats."""
    import torch
    if dtype == torch.bool:
        return np.bool_
    if dtype is not None and not dtype.is_floating_point:
        return np.int32
    return np.float32


@aten("full.default")
def _full(ctx, size, value, dtype=None, **_):
    return np.full(ctx.sizes(size), value, _np_dtype(dtype))


@aten("full_like.default")
def _full_like(ctx, x, value, dtype=None, **_):
    if dtype is None and _const(x):
        return np.full(x.shape, value, x.dtype)
    return np.full(tuple(x.shape), value, _np_dtype(dtype))


@aten("scalar_tensor.default")
def _scalar_tensor(ctx, value, dtype=None, **_):
    return np.asarray(value, _np_dtype(dtype))


@aten("arange.start_step", "arange.default", "arange.start")
def _arange(ctx, *args, dtype=None, **_):
    return np.arange(*args).astype(_np_dtype(dtype))


# ---- elementwise ----

def _binary(name, fn):
    def impl(ctx, a, b, alpha=1):
        if alpha != 1:
            b = b * alpha
        if not isinstance(a, Tensor) and not isinstance(b, Tensor):  # constants and scalars: folded here
            return fn(np.asarray(a, np.float32), np.asarray(b, np.float32))
        if isinstance(a, np.ndarray):  # NumPy would broadcast over the Tensor object
            a = _t(a)
        return fn(a, b)
    impl.__name__ = name
    return impl


aten("add.Tensor", "add.Scalar")(_binary("add", operator.add))
aten("sub.Tensor", "sub.Scalar")(_binary("sub", operator.sub))
aten("mul.Tensor", "mul.Scalar")(_binary("mul", operator.mul))
def _true_div(a, b):
    """Division as ATen's div: true division, also of integers (which the engine holds as fp16)."""
    a, b = (v.cast("fp16") if isinstance(v, Tensor) and v.dtype in ("int32", "bool") else v for v in (a, b))
    return operator.truediv(a, b)


aten("div.Tensor", "div.Scalar")(_binary("div", _true_div))


@aten("rsub.Scalar", "rsub.Tensor")
def _rsub(ctx, a, b, alpha=1):
    return b - a * alpha


@aten("pow.Tensor_Scalar", "pow.Tensor_Tensor")
def _pow(ctx, a, b):
    if isinstance(b, (int, float)) and b == 2:
        return _F.square(_t(a))
    if isinstance(b, (int, float)) and b == 0.5:
        return _F.sqrt(_t(a))
    return _F.pow(_t(a), b)


def _unary(op):
    def impl(ctx, x):
        return getattr(_F, op)(_t(x))
    impl.__name__ = op
    return impl


for _op in ("relu", "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt", "abs", "neg", "reciprocal", "sin", "cos",
            "erf", "floor", "ceil", "sign", "round", "logical_not", "atan"):
    aten(f"{_op}.default")(_unary(_op))
aten("hardswish.default")(_unary("hardswish"))
aten("hardsigmoid.default")(_unary("hardsigmoid"))
aten("silu.default")(_unary("silu"))


@aten("bitwise_not.default")
def _bitwise_not(ctx, x):
    """~ of a bool tensor (masks); integer bit operations have no engine form."""
    if _const(x) and x.dtype == bool:
        return ~x
    if isinstance(x, Tensor) and x.dtype == "bool":
        return _F.logical_not(x)
    raise NotImplementedError("bitwise not of integers: the engine has no integer compute")


@aten("logical_and.default", "logical_or.default", "bitwise_and.Tensor", "bitwise_or.Tensor")
def _logical_and_or(ctx, a, b):
    """and/or of bool tensors (masks; bitwise on bools is logical); integers have no engine form."""
    for v in (a, b):
        if (v.dtype != bool) if _const(v) else (isinstance(v, Tensor) and v.dtype != "bool"):
            raise NotImplementedError("bitwise and/or of integers: the engine has no integer compute")
    both = "and" in ctx.node.target.__name__
    if _const(a) and _const(b):
        return np.logical_and(a, b) if both else np.logical_or(a, b)
    a, b = (_t(v).cast("fp16") for v in (a, b))
    return _F.greater(a * b if both else _F.maximum(a, b), 0.5)


@aten("any.dim", "any.dims")
def _any(ctx, x, dim=None, keepdim=False):
    if _const(x):
        return np.any(x, axis=None if dim is None else tuple(_dims(dim, x.ndim)), keepdims=keepdim)
    dims = None if dim is None else tuple(_dims(dim, len(x.shape)))
    return _F.greater(_F.amax(_t(x).cast("fp16"), dim=dims, keepdim=keepdim), 0.5)


@aten("gelu.default")
def _gelu(ctx, x, approximate="none"):
    return _F.gelu(_t(x), approximate=approximate)


@aten("hardtanh.default")
def _hardtanh(ctx, x, min_val=-1.0, max_val=1.0):
    return _F.clamp(_t(x), min=float(min_val), max=float(max_val))


@aten("clamp.default")
def _clamp(ctx, x, min=None, max=None):  # noqa: A002 - ATen's names
    return _F.clamp(_t(x), min=None if min is None else float(min), max=None if max is None else float(max))


@aten("leaky_relu.default")
def _leaky(ctx, x, negative_slope=0.01):
    return _F.leaky_relu(_t(x), float(negative_slope))


@aten("elu.default")
def _elu(ctx, x, alpha=1.0, scale=1.0, input_scale=1.0):
    if scale != 1.0 or input_scale != 1.0:
        raise NotImplementedError("elu with scale (selu)")
    return _F.elu(_t(x), float(alpha))


@aten("maximum.default")
def _maximum(ctx, a, b):
    return _F.maximum(_t(a), _t(b))


@aten("minimum.default")
def _minimum(ctx, a, b):
    return _F.minimum(_t(a), _t(b))


@aten("where.self")
def _where(ctx, cond, a, b):
    return _F.where(_t(cond) if not isinstance(cond, Tensor) else cond, a if isinstance(a, Tensor) else _t(a),
                    b if isinstance(b, Tensor) else _t(b))


for _name, _fn in (("eq", "equal"), ("ne", "not_equal"), ("lt", "less"), ("le", "less_equal"), ("gt", "greater"),
                   ("ge", "greater_equal")):
    aten(f"{_name}.Tensor", f"{_name}.Scalar")(
        (lambda fn: lambda ctx, a, b: getattr(_F, fn)(_t(a), b if not _const(b) else _t(b)))(_fn))


# ---- reductions and normalisation ----

@aten("cumsum.default")
def _cumsum(ctx, x, dim, dtype=None):
    if _const(x):
        return np.cumsum(x, axis=dim).astype(x.dtype if x.dtype != bool else np.int32)
    if x.dtype in ("int32", "bool"):  # counts (position ids) of a 0/1 mask: exact in fp16 up to 2048
        if x._t.node_id not in ctx.zero_one and x.dtype != "bool" or x.shape[dim] > 2048:
            raise NotImplementedError(f"cumsum of {x.dtype} values along {x.shape[dim]} positions: the engine holds "
                                      "integers as fp16, exact to 2048; counts of a 0/1 mask up to 2048 are exact")
        return _F.cumsum(x.cast("fp16"), dim).cast("int32")
    return _F.cumsum(x, dim)

@aten("mean.dim")
def _mean(ctx, x, dims, keepdim=False, dtype=None):
    return _F.mean(_t(x), dim=tuple(_dims(dims, len(x.shape))) if dims else None, keepdim=keepdim)


@aten("mean.default")
def _mean_all(ctx, x, dtype=None):
    return _F.mean(_t(x))


@aten("sum.dim_IntList")
def _sum(ctx, x, dims, keepdim=False, dtype=None):
    return _F.sum(_t(x), dim=tuple(_dims(dims, len(x.shape))) if dims else None, keepdim=keepdim)


@aten("amax.default")
def _amax(ctx, x, dims=(), keepdim=False):
    return _F.amax(_t(x), dim=tuple(_dims(dims, len(x.shape))) if dims else None, keepdim=keepdim)


@aten("argmax.default", "argmin.default")
def _argmax(ctx, x, dim=None, keepdim=False):
    fn = _F.argmax if "argmax" in str(ctx.node.target) else _F.argmin
    x = _t(x)
    return fn(x if x.dtype == "fp16" else x.cast("fp16"), dim=dim, keepdim=keepdim)


@aten("amin.default")
def _amin(ctx, x, dims=(), keepdim=False):
    return _F.amin(_t(x), dim=tuple(_dims(dims, len(x.shape))) if dims else None, keepdim=keepdim)


@aten("var.correction")
def _var(ctx, x, dims=None, correction=None, keepdim=False):
    x = _t(x)
    dims = tuple(_dims(dims, len(x.shape))) if dims else tuple(range(len(x.shape)))
    n = int(np.prod([x.shape[d] for d in dims]))
    c = 1 if correction is None else correction
    centered = x - _F.mean(x, dim=dims, keepdim=True)
    return _F.sum(centered * centered, dim=dims, keepdim=keepdim) * (1.0 / max(n - c, 1))


@aten("_softmax.default")
def _softmax(ctx, x, dim, half_to_float=False):
    return _F.softmax(_t(x), dim)


@aten("_log_softmax.default")
def _log_softmax(ctx, x, dim, half_to_float=False):
    return _F.log_softmax(_t(x), dim)


@aten("_native_batch_norm_legit_no_training.default")
def _batch_norm(ctx, x, weight, bias, mean, var, momentum, eps):
    return _F.batch_norm(x, mean, var, weight, bias, eps=float(eps)), None, None


@aten("native_layer_norm.default")
def _layer_norm(ctx, x, shape, weight, bias, eps):
    return _F.layer_norm(_t(x), list(shape), weight, bias, eps=float(eps)), None, None


@aten("native_group_norm.default")
def _group_norm(ctx, x, weight, bias, n, c, hw, groups, eps):
    return _F.group_norm(_t(x), groups, weight, bias, eps=float(eps)), None, None


# ---- contractions (a constant weight becomes a weight layer, named by its module) ----

@aten("addmm.default")
def _addmm(ctx, bias, x, w, beta=1, alpha=1):
    if beta != 1 or alpha != 1:
        raise NotImplementedError("addmm with beta or alpha other than 1")
    if _const(w) and _const(bias):
        return ctx.layer(_F.linear(_t(x), np.ascontiguousarray(w.T), bias))
    return _F.matmul(_t(x), _t(w)) + bias


@aten("mm.default")
def _mm(ctx, x, w):
    if _const(w):
        return ctx.layer(_F.linear(_t(x), np.ascontiguousarray(w.T)))
    return _F.matmul(_t(x), _t(w))


@aten("bmm.default", "matmul.default")
def _bmm(ctx, a, b):
    return _F.matmul(_t(a), _t(b))


@aten("convolution.default")
def _convolution(ctx, x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    if transposed:
        y = _F.conv_transpose(x, w, b, stride=list(stride), padding=list(padding),
                              output_padding=list(output_padding), groups=groups, dilation=list(dilation))
    else:
        y = _F.conv(x, w, b, stride=list(stride), padding=list(padding), dilation=list(dilation), groups=groups)
    return ctx.layer(y)


@aten("embedding.default")
def _embedding(ctx, weight, ids, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    if _const(ids):  # constant ids (position ids): rows picked here when the table is constant too
        if _const(weight):
            return np.take(weight, ids.astype(np.int64), axis=0)
        ids = _F.constant(ids.astype(np.int32), "int32")
    return ctx.layer(_F.embedding(ids, weight))


# ---- pooling and resizing ----

@aten("max_pool2d_with_indices.default")
def _max_pool(ctx, x, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
    if any(d != 1 for d in ([dilation] if isinstance(dilation, int) else dilation)):
        raise NotImplementedError("max_pool2d with dilation")
    return _F.max_pool2d(x, list(kernel), list(stride) or None, list(padding) if not isinstance(padding, int)
                         else padding, ceil_mode), None


@aten("avg_pool2d.default")
def _avg_pool(ctx, x, kernel, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    if divisor_override is not None:
        raise NotImplementedError("avg_pool2d with divisor_override")
    return _F.avg_pool2d(x, list(kernel), list(stride) or None, list(padding) if not isinstance(padding, int)
                         else padding, ceil_mode, count_include_pad)


@aten("_adaptive_avg_pool2d.default")
def _adaptive_avg(ctx, x, output_size):
    return _C.adaptive_avg_pool2d(_t(x), list(output_size))


@aten("upsample_nearest2d.vec")
def _up_nearest(ctx, x, output_size, scale_factors):
    return _resize(x, output_size, scale_factors, "nearest", None)


@aten("upsample_bilinear2d.vec")
def _up_bilinear(ctx, x, output_size, align_corners, scale_factors):
    return _resize(x, output_size, scale_factors, "bilinear", bool(align_corners))


def _resize(x, output_size, scale_factors, mode, align_corners):
    h, w = x.shape[-2:]
    size = tuple(output_size) if output_size else (int(h * scale_factors[0]), int(w * scale_factors[1]))
    if size[0] % h == 0 and size[1] % w == 0 and size[0] // h == size[1] // w:  # a whole factor: upsample_*
        return _C.interpolate(_t(x), scale_factor=size[0] // h, mode=mode, align_corners=align_corners)
    return _C.interpolate(_t(x), size=size, mode=mode, align_corners=align_corners)


# ---- indexing ----

def _pick(fn, x, *args):
    """An indexing op on x; integer and bool values are picked as fp16 (exact to 2048) and
    cast back."""
    kind = ("int32" if x.dtype.kind in "iu" else "bool" if x.dtype == bool else "") if _const(x) else \
        x.dtype if x.dtype in ("int32", "bool") else ""
    if not kind:
        return fn(_t(x), *args)
    return fn(_t(np.asarray(x, np.float32)) if _const(x) else x.cast("fp16"), *args).cast(kind)


@aten("index_select.default")
def _index_select(ctx, x, dim, index):
    return _pick(_F.index_select, x, dim, index)


@aten("index.Tensor")
def _index(ctx, x, indices):
    """x[i0, i1, ...] with index tensors (None keeps a dimension): folded for constants; one
    1-D index on a tensor is index_select."""
    if _const(x) and all(i is None or _const(i) for i in indices):
        return x[tuple(slice(None) if i is None else i.astype(np.int64) for i in indices)]
    used = [(d, i) for d, i in enumerate(indices) if i is not None]
    if len(used) == 1 and len(used[0][1].shape) == 1:
        d, i = used[0]
        return _pick(_F.index_select, x, d, _F.constant(i.astype(np.int32), "int32") if _const(i) else i)
    dims = [d for d, _ in used]
    if dims == [0, 1] and _const(used[0][1]) and not _const(used[1][1]) and len(used[1][1].shape) == 1 and \
            np.array_equal(np.asarray(used[0][1]).reshape(-1), np.arange(x.shape[0])):
        # x[arange(B), idx]: one position per row (CLIP's pooled token), a gather along dim 1
        b, rest = x.shape[0], list(x.shape[2:])
        idx = _F.reshape(used[1][1], [b, 1] + [1] * len(rest))
        idx = idx.expand(b, 1, *rest) if rest else idx
        return _F.reshape(_pick(_F.gather, x, 1, idx), [b] + rest)
    if all(_const(i) for _, i in used) and dims == list(range(dims[0], dims[0] + len(dims))):
        # Constant indices on consecutive dimensions: one flat index (computed here) selects
        # along those dimensions merged into one.
        shape = tuple(x.shape)
        d0, k = dims[0], len(dims)
        block = shape[d0:d0 + k]
        idx = np.broadcast_arrays(*[np.asarray(i, np.int64) % n for (_, i), n in zip(used, block)])
        flat = np.ravel_multi_index(tuple(idx), block)
        lead, rest = shape[:d0], shape[d0 + k:]
        merged = _F.reshape(_t(x), lead + (int(np.prod(block)),) + rest)
        out = _pick(_F.index_select, merged, d0, _F.constant(flat.ravel().astype(np.int32), "int32"))
        return _F.reshape(out, lead + flat.shape + rest)
    raise NotImplementedError("advanced indexing with index tensors computed in the program on several "
                              "dimensions, or on dimensions that are not consecutive")


@aten("gather.default")
def _gather(ctx, x, dim, index, sparse_grad=False):
    return _pick(_F.gather, x, dim, index)


def note(name: str) -> str:
    """Supported, or why not (docs/import.md)."""
    if name in ATEN or name == "sym_size.int":  # sizes: the importer reads them (or follows the batch)
        return "yes"
    return UNSUPPORTED.get(name, "not mapped yet (af.register_aten maps it)")
