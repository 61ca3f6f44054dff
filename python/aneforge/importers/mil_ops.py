"""The MIL table: one entry per MIL op (ML Programs, iOS15-iOS18), each mapping the op to af ops,
as the ATen and ONNX tables do. Semantics follow the mil backend's interpreter (aneforge/mil/ops),
which the conformance suite checks against coremltools' own op tests.

An entry is ``fn(ctx, p)``: ``p`` holds the op's inputs by parameter name: ``p.x(name)`` an af
Tensor (a constant becomes a constant node), ``p.const(name)`` a NumPy constant, and the typed
accessors of the interpreter (``p.int``, ``p.ints``, ``p.float``, ``p.str``, ``p.bool``,
``p.axis``) for constant parameters. Ops whose inputs are all constants never reach the table:
the importer runs them with the interpreter (mil_import.py).
"""
from __future__ import annotations

import operator

import numpy as np

from ..graph import composites as _C, functional as _F
from ..graph.tensor import Tensor
from ._values import tensor_of as _t
from ..mil.ops.conv import spatial_pads

MIL: dict = {}  # MIL op type -> fn(ctx, p)

UNSUPPORTED = {
    **{k: "control flow: the engine runs static programs" for k in ("cond", "while_loop", "make_list", "list_read",
                                                                      "list_write", "list_gather", "list_scatter",
                                                                      "list_length")},
    **{k: "scatter into a tensor: not a graph op" for k in ("scatter", "scatter_along_axis", "scatter_nd",
                                                             "slice_update")},
    **{k: "data-dependent output shape: the engine runs static shapes" for k in ("non_zero", "non_maximum_suppression")},
    **{k: "random numbers: the engine has none" for k in ("random_bernoulli", "random_categorical", "random_normal",
                                                          "random_uniform")},
    **{k: "state (read_state, write_state): af keeps resident state itself (Net.make_resident)" for k in (
        "read_state", "write_state", "coreml_update_state")},
}


def mil_op(*names):
    def deco(fn):
        for n in names:
            MIL[n] = fn
        return fn
    return deco


def _float(x):
    """A tensor computed as float: int32 and bool values cast to fp16 (MIL computes them as numbers)."""
    x = _t(x)
    return x.cast("fp16") if x.dtype in ("int32", "bool") else x


# ---- elementwise ----

def _binary(fn):
    def impl(ctx, p):
        x, y = p.raw("x"), p.raw("y")
        return fn(_t(x) if not isinstance(x, Tensor) else x, y if isinstance(y, Tensor) else _t(y))
    return impl


for _n, _f in {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "maximum": _F.maximum,
               "minimum": _F.minimum, "equal": _F.equal, "not_equal": _F.not_equal, "greater": _F.greater,
               "greater_equal": _F.greater_equal, "less": _F.less, "less_equal": _F.less_equal}.items():
    mil_op(_n)(_binary(_f))


@mil_op("real_div")
def _real_div(ctx, p):
    x, y = p.x("x"), p.x("y")
    if x.dtype == "int32" and y.dtype == "int32":
        raise NotImplementedError("integer division of tensors: the engine has no integer compute")
    return _float(x) / _float(y)


@mil_op("floor_div")
def _floor_div(ctx, p):
    return _F.floor(_float(p.x("x")) / _float(p.x("y")))


@mil_op("pow")
def _pow(ctx, p):
    y = p.raw("y")
    if not isinstance(y, Tensor) and np.asarray(y).size == 1:
        e = float(np.asarray(y).reshape(-1)[0])
        if e == 2.0:
            return _F.square(p.x("x"))
        return _F.pow(p.x("x"), e)
    return _F.pow(p.x("x"), _t(y))


@mil_op("logical_and", "logical_or", "logical_xor")
def _logical(ctx, p):
    a, b = _float(p.x("x")), _float(p.x("y"))
    if ctx.op.type == "logical_and":
        return (a * b).cast("bool")
    if ctx.op.type == "logical_or":
        return _F.maximum(a, b).cast("bool")
    return _F.not_equal(a, b)


def _unary(fn):
    return lambda ctx, p: fn(p.x("x"))


for _n in ("abs", "ceil", "cos", "exp", "exp2", "floor", "sin", "sqrt", "square", "round", "logical_not", "sign",
           "tanh", "erf", "atan", "relu", "relu6", "sigmoid", "silu", "softsign"):
    mil_op(_n)(_unary(getattr(_F, _n)))
mil_op("softplus")(_unary(lambda x: _F.softplus(x)))


@mil_op("tan")
def _tan(ctx, p):
    x = p.x("x")
    return _F.sin(x) / _F.cos(x)


@mil_op("sinh", "cosh")
def _sinh_cosh(ctx, p):
    x = p.x("x")
    e, r = _F.exp(x), _F.exp(-x)
    return (e - r) * 0.5 if ctx.op.type == "sinh" else (e + r) * 0.5


@mil_op("softplus_parametric")
def _softplus_parametric(ctx, p):
    x = p.x("x")
    shape = [-1] + [1] * (len(x.shape) - 2)
    alpha, beta = (_F.reshape(_t(p.const(n)), shape) for n in ("alpha", "beta"))
    return alpha * _F.softplus(beta * x)


@mil_op("inverse", "rsqrt", "log")
def _with_epsilon(ctx, p):
    default = {"inverse": 1e-4, "rsqrt": 1e-12, "log": 1e-45}[ctx.op.type]
    x, eps = p.x("x"), p.float("epsilon", default)
    if eps >= 2.0 ** -24:  # below fp16's smallest subnormal, x + eps is x
        x = x + eps
    return {"inverse": _F.reciprocal, "rsqrt": _F.rsqrt, "log": _F.log}[ctx.op.type](x)


@mil_op("clip")
def _clip(ctx, p):
    return _F.clamp(p.x("x"), p.float("alpha"), p.float("beta"))


@mil_op("threshold")
def _threshold(ctx, p):
    return _F.maximum(p.x("x"), p.float("alpha"))


@mil_op("cast")
def _cast(ctx, p):
    dt = p.str("dtype")
    x = p.x("x")
    if dt in ("fp16", "fp32", "fp64"):
        return x.cast("fp16") if x.dtype in ("int32", "bool") else x  # floats compute in the program's precision
    if dt in ("int8", "uint8", "int16", "uint16", "int32", "int64"):
        return x if x.dtype == "int32" else x.cast("int32")
    if dt == "bool":
        return x if x.dtype == "bool" else x.cast("bool")
    raise NotImplementedError(f"cast to {dt}")


@mil_op("identity")
def _identity(ctx, p):
    return p.x("x")


@mil_op("select")
def _select(ctx, p):
    cond = p.x("cond")
    return _F.where(cond if cond.dtype == "bool" else cond.cast("bool"), p.x("a"), p.x("b"))


# ---- activations ----

@mil_op("elu")
def _elu(ctx, p):
    return _F.elu(p.x("x"), p.float("alpha", 1.0))


@mil_op("leaky_relu")
def _leaky(ctx, p):
    return _F.leaky_relu(p.x("x"), p.float("alpha", 0.01))


@mil_op("gelu")
def _gelu(ctx, p):
    mode = p.str("mode", "EXACT")
    x = p.x("x")
    if mode == "EXACT":
        return _F.gelu(x)
    if mode == "TANH_APPROXIMATION":
        return _F.gelu(x, approximate="tanh")
    if mode == "SIGMOID_APPROXIMATION":
        return x * _F.sigmoid(x * 1.702)
    raise NotImplementedError(f"gelu mode {mode!r}")


@mil_op("linear_activation")
def _linear_activation(ctx, p):
    return _F.linear_activation(p.x("x"), p.float("alpha"), p.float("beta", 0.0))


@mil_op("scaled_tanh")
def _scaled_tanh(ctx, p):
    return _F.scaled_tanh(p.x("x"), p.float("alpha", 1.0), p.float("beta", 1.0))


@mil_op("sigmoid_hard")
def _sigmoid_hard(ctx, p):
    alpha, beta = p.float("alpha", 0.2), p.float("beta", 0.5)
    if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:
        return _F.hardsigmoid(p.x("x"))
    return _F.clamp(p.x("x") * alpha + beta, 0.0, 1.0)


@mil_op("clamped_relu")
def _clamped_relu(ctx, p):
    return _F.clamped_relu(p.x("x"), p.float("alpha"), p.float("beta"))


@mil_op("thresholded_relu")
def _thresholded_relu(ctx, p):
    x, alpha = p.x("x"), p.float("alpha", 1.0)
    return _F.where(x >= alpha, x, 0.0)  # MIL keeps x == alpha (torch's threshold does not)


@mil_op("prelu")
def _prelu(ctx, p):
    return _F.prelu(p.x("x"), p.const("alpha"))


@mil_op("softmax")
def _softmax(ctx, p):
    x = p.x("x")
    return _F.softmax(x, p.axis("axis", len(x.shape), -1))


# ---- reductions and normalization ----

def _reduction(fn):
    def impl(ctx, p):
        x = p.x("x")
        axes = p.ints("axes", None)
        dims = None if axes is None else tuple(sorted(a % len(x.shape) for a in axes))
        return fn(x, dims, p.bool("keep_dims", False))
    return impl


for _n, _f in {"reduce_mean": lambda x, d, k: _F.mean(x, dim=d, keepdim=k),
               "reduce_sum": lambda x, d, k: _F.sum(x, dim=d, keepdim=k),
               "reduce_max": lambda x, d, k: _F.amax(x, dim=d, keepdim=k),
               "reduce_min": lambda x, d, k: _F.amin(x, dim=d, keepdim=k),
               "reduce_sum_square": lambda x, d, k: _F.sum_square(x, dim=d, keepdim=k),
               "reduce_l1_norm": lambda x, d, k: _F.sum(_F.abs(x), dim=d, keepdim=k),
               "reduce_l2_norm": lambda x, d, k: _F.sqrt(_F.sum_square(x, dim=d, keepdim=k)),
               "reduce_log_sum": lambda x, d, k: _F.log_sum(x, dim=d, keepdim=k),
               "reduce_log_sum_exp": lambda x, d, k: _F.logsumexp(x, dim=d, keepdim=k)}.items():
    mil_op(_n)(_reduction(_f))


@mil_op("reduce_argmax", "reduce_argmin")
def _argmax(ctx, p):
    x = p.x("x")
    fn = _F.argmax if ctx.op.type == "reduce_argmax" else _F.argmin
    return fn(_float(x), dim=p.axis("axis", len(x.shape), -1), keepdim=p.bool("keep_dims", False))


@mil_op("batch_norm")
def _batch_norm(ctx, p):
    return _F.batch_norm(p.x("x"), p.raw("mean"), p.raw("variance"), p.raw("gamma", None), p.raw("beta", None),
                         eps=p.float("epsilon", 1e-5))


@mil_op("instance_norm")
def _instance_norm(ctx, p):
    return _F.instance_norm(p.x("x"), p.raw("gamma", None), p.raw("beta", None), eps=p.float("epsilon", 1e-5))


@mil_op("layer_norm")
def _layer_norm(ctx, p):
    x = p.x("x")
    rank = len(x.shape)
    axes = p.ints("axes", None)
    axes = list(range(rank)) if axes is None else sorted(a % rank for a in axes)
    eps = p.float("epsilon", 1e-5)
    gamma, beta = p.raw("gamma", None), p.raw("beta", None)
    if axes == list(range(rank - len(axes), rank)):  # trailing axes: torch's layer_norm
        shape = [x.shape[a] for a in axes]
        def fit(v):
            return None if v is None else (np.asarray(v).reshape(shape) if not isinstance(v, Tensor)
                                           else _F.reshape(v, shape))
        return _F.layer_norm(x, shape, fit(gamma), fit(beta), eps=eps)
    if axes == [1] and rank >= 3:  # over channels at each position: the (B, C, 1, S) layout
        pshape = [x.shape[1]]
        def fit1(v):
            return None if v is None else (np.asarray(v).reshape(pshape) if not isinstance(v, Tensor)
                                           else _F.reshape(v, pshape))
        return _F.channel_layer_norm(x, fit1(gamma), fit1(beta), eps=eps)
    dims = tuple(axes)
    centered = x - _F.mean(x, dim=dims, keepdim=True)
    y = centered * _F.rsqrt(_F.mean(centered * centered, dim=dims, keepdim=True) + eps)
    pshape = [x.shape[i] if i in axes else 1 for i in range(rank)]
    if gamma is not None:
        y = y * _F.reshape(_t(gamma), pshape)
    if beta is not None:
        y = y + _F.reshape(_t(beta), pshape)
    return y


@mil_op("l2_norm")
def _l2_norm(ctx, p):
    x = p.x("x")
    dims = tuple(range(len(x.shape) - 3, len(x.shape)))  # the last three dims (MIL)
    eps = p.float("epsilon", 1e-6)
    return x * _F.rsqrt(_F.sum_square(x, dim=dims, keepdim=True) + eps)


@mil_op("local_response_norm")
def _lrn(ctx, p):
    return _F.local_response_norm(p.x("x"), p.int("size"), p.float("alpha", 1e-4), p.float("beta", 0.75),
                                  p.float("k", 1.0))


# ---- contractions (a constant weight becomes a weight layer, named after its const) ----

@mil_op("linear")
def _linear(ctx, p):
    w = p.raw("weight")
    if isinstance(w, Tensor):
        y = _F.matmul(p.x("x"), _F.transpose(w, 0, 1))
        return y + p.x("bias") if p.has("bias") else y
    return ctx.layer(_F.linear(p.x("x"), w, p.raw("bias", None)), "weight")


@mil_op("matmul")
def _matmul(ctx, p):
    x, y = p.x("x"), p.raw("y")
    tx, ty = p.bool("transpose_x", False), p.bool("transpose_y", False)
    if tx:
        x = _F.transpose(x, -1, -2)
    if not isinstance(y, Tensor) and np.ndim(y) == 2:
        return ctx.layer(_F.linear(x, np.ascontiguousarray(y if ty else np.asarray(y).T)), "y")
    y = _t(y)
    return _F.matmul(x, _F.transpose(y, -1, -2) if ty else y)


@mil_op("einsum")
def _einsum(ctx, p):
    return _F.einsum(p.str("equation"), *[_t(v) for v in p.list("values")])


@mil_op("conv")
def _conv(ctx, p):
    x, w = p.x("x"), p.raw("weight")
    k = np.shape(w)[2:] if not isinstance(w, Tensor) else w.shape[2:]
    n = len(k)
    strides, dil = p.ints("strides", [1] * n), p.ints("dilations", [1] * n)
    pads = spatial_pads(p.args, x.shape[2:], k, strides, dil)
    if any(b != e for b, e in pads):
        extra = []
        for b, e in reversed(pads):
            extra += [b, e]
        x, pad = _F.pad(x, extra), [0] * n
    else:
        pad = [b for b, _ in pads]
    y = _F.conv(x, w, p.raw("bias", None), stride=strides, padding=pad, dilation=dil, groups=p.int("groups", 1))
    return ctx.layer(y, "weight")


@mil_op("conv_transpose")
def _conv_transpose(ctx, p):
    x, w = p.x("x"), p.raw("weight")
    k = tuple(np.shape(w)[2:] if not isinstance(w, Tensor) else w.shape[2:])
    n = len(k)
    strides, dil = p.ints("strides", [1] * n), p.ints("dilations", [1] * n)
    crop = spatial_pads(p.args, x.shape[2:], k, strides, dil, transpose=True)
    if any(b != e and not p.has("output_shape") for b, e in crop):
        raise NotImplementedError("conv_transpose with asymmetric pads")
    full = [(x.shape[2 + i] - 1) * strides[i] + (k[i] - 1) * dil[i] + 1 for i in range(n)]
    pad = [b for b, _ in crop]
    length = p.ints("output_shape")[-n:] if p.has("output_shape") else [full[i] - 2 * pad[i] for i in range(n)]
    extra = [length[i] - (full[i] - 2 * pad[i]) for i in range(n)]  # torch's output_padding
    if any(e < 0 or e >= max(strides[i], dil[i]) for i, e in enumerate(extra)):
        raise NotImplementedError(f"conv_transpose to output_shape {length}")
    y = _F.conv_transpose(x, w, p.raw("bias", None), stride=strides, padding=pad, output_padding=extra,
                          groups=p.int("groups", 1), dilation=dil)
    return ctx.layer(y, "weight")


# ---- pooling and resizing ----

@mil_op("max_pool", "avg_pool")
def _pool(ctx, p):
    x = p.x("x")
    kernel = p.ints("kernel_sizes")
    if len(kernel) != 2:
        raise NotImplementedError(f"{ctx.op.type} over {len(kernel)} dimensions (the engine's pools are 2-D)")
    strides = p.ints("strides", [1, 1])
    pads = spatial_pads(p.args, x.shape[2:], kernel, strides, [1, 1])
    ceil = p.bool("ceil_mode", False)
    if any(b != e for b, e in pads):
        raise NotImplementedError(f"{ctx.op.type} with asymmetric pads")
    pad = [b for b, _ in pads]
    if ctx.op.type == "max_pool":
        return _F.max_pool2d(x, kernel, strides, pad, ceil)
    return _F.avg_pool2d(x, kernel, strides, pad, ceil, not p.bool("exclude_padding_from_average", False))


@mil_op("upsample_nearest_neighbor")
def _upsample_nearest(ctx, p):
    sh, sw = p.float("scale_factor_height", 1.0), p.float("scale_factor_width", 1.0)
    x = p.x("x")
    size = (int(np.floor(x.shape[-2] * sh)), int(np.floor(x.shape[-1] * sw)))
    if sh == sw and sh == int(sh):
        return _C.interpolate(x, scale_factor=int(sh), mode="nearest")
    return _C.interpolate(x, size=size, mode="nearest")


@mil_op("resize_nearest_neighbor")
def _resize_nearest(ctx, p):
    return _C.interpolate(p.x("x"), size=(p.int("target_size_height"), p.int("target_size_width")), mode="nearest")


@mil_op("upsample_bilinear")
def _upsample_bilinear(ctx, p):
    x = p.x("x")
    sh, sw = p.float("scale_factor_height", 1.0), p.float("scale_factor_width", 1.0)
    align = p.bool("align_corners", True)
    half = p.bool("half_pixel_centers", not align) if p.opset >= 16 else not align
    if half == align:
        raise NotImplementedError("upsample_bilinear with align_corners equal to half_pixel_centers")
    size = (int(np.floor(x.shape[-2] * sh)), int(np.floor(x.shape[-1] * sw)))
    if not align and sh == sw and sh == int(sh):
        return _C.interpolate(x, scale_factor=int(sh), mode="bilinear", align_corners=False)
    return _C.interpolate(x, size=size, mode="bilinear", align_corners=align)


@mil_op("resize_bilinear")
def _resize_bilinear(ctx, p):
    mode = p.str("sampling_mode", "DEFAULT")
    size = (p.int("target_size_height", 1), p.int("target_size_width", 1))
    # torch's align_corners=True samples i * (in - 1) / (out - 1), and the first pixel for one
    # output (STRICT_ALIGN_CORNERS; ALIGN_CORNERS takes the middle there); False: half pixels
    align = {"STRICT_ALIGN_CORNERS": True, "ALIGN_CORNERS": True if min(size) > 1 else None,
             "UNALIGN_CORNERS": False, "HALF_PIXEL": False}.get(mode)
    if align is None:
        raise NotImplementedError(f"resize_bilinear with sampling_mode {mode!r} to size {size}")
    return _C.interpolate(p.x("x"), size=size, mode="bilinear", align_corners=align)


@mil_op("affine")
def _affine(ctx, p):
    x = p.x("x")
    if (p.str("coordinates_mode", "normalized_minus_one_to_one"), p.str("sampling_mode", "bilinear"),
            p.str("padding_mode", "constant"), p.float("padding_value", 0.0)) != \
            ("normalized_minus_one_to_one", "bilinear", "constant", 0.0):
        raise NotImplementedError("affine other than torch's grid_sample (normalized coordinates, bilinear, zeros)")
    m = p.x("transform_matrix")
    theta = _F.reshape(m, [m.shape[0], 2, 3])
    size = (p.int("output_height"), p.int("output_width"))
    return _F.affine(x, theta, size, p.bool("align_corners", True))


@mil_op("crop")
def _crop(ctx, p):
    x = p.x("x")
    ch, cw = p.ints("crop_height"), p.ints("crop_width")
    h, w = x.shape[-2:]
    return _F.crop(x, ch[0], cw[0], h - ch[0] - ch[1], w - cw[0] - cw[1])


# ---- shape ----

@mil_op("reshape")
def _reshape(ctx, p):
    x = p.x("x")
    shape = p.ints("shape")
    out = []
    for i, d in enumerate(shape):
        if d == 0:
            j = len(x.shape) - (len(shape) - i) if p.opset >= 17 else i
            d = x.shape[j] if j >= 0 else 1
        out.append(d)
    return _F.reshape(x, out)


@mil_op("transpose")
def _transpose(ctx, p):
    return _F.permute(p.x("x"), p.ints("perm"))


@mil_op("expand_dims")
def _expand_dims(ctx, p):
    x = p.x("x")
    rank = len(x.shape) + len(p.ints("axes"))
    shape = list(x.shape)
    for a in sorted(a % rank for a in p.ints("axes")):
        shape.insert(a, 1)
    return _F.reshape(x, shape)


@mil_op("squeeze")
def _squeeze(ctx, p):
    x = p.x("x")
    axes = p.ints("axes", None)
    axes = [i for i, s in enumerate(x.shape) if s == 1] if axes is None else [a % len(x.shape) for a in axes]
    return _F.reshape(x, [s for i, s in enumerate(x.shape) if i not in axes])


@mil_op("slice_by_index")
def _slice_by_index(ctx, p):
    x = p.x("x")
    r = len(x.shape)
    begin, end, stride = p.ints("begin"), p.ints("end"), p.ints("stride", [1] * r)
    masks = [[bool(v) for v in np.asarray(p.raw(m, np.zeros(r, bool))).reshape(-1)]
             for m in ("begin_mask", "end_mask", "squeeze_mask")]
    b, e, s, keep = [], [], [], []
    for i in range(r):
        n = x.shape[i]
        if masks[2][i]:
            j = begin[i] % n
            b.append(j), e.append(j + 1), s.append(1)
            continue
        if stride[i] <= 0:
            raise NotImplementedError("slice_by_index with a negative stride (a reversal)")
        lo, hi, _ = slice(None if masks[0][i] else begin[i], None if masks[1][i] else end[i]).indices(n)
        b.append(lo), e.append(max(hi, lo)), s.append(stride[i])
        keep.append(i)
    y = _F.slice(x, b, e, s)
    return _F.reshape(y, [y.shape[i] for i in keep]) if len(keep) != r else y


@mil_op("slice_by_size")
def _slice_by_size(ctx, p):
    x = p.x("x")
    begin, size = p.ints("begin"), p.ints("size")
    b = [bi % n if bi < 0 else bi for bi, n in zip(begin, x.shape)]
    e = [n if sz == -1 else bi + sz for bi, sz, n in zip(b, size, x.shape)]
    return _F.slice(x, b, e)


@mil_op("concat")
def _concat(ctx, p):
    values = [_t(v) for v in p.list("values")]
    if p.bool("interleave", False):
        raise NotImplementedError("concat with interleave")
    return _F.cat(values, dim=p.axis("axis", len(values[0].shape)))


@mil_op("split")
def _split(ctx, p):
    x = p.x("x")
    axis = p.axis("axis", len(x.shape))
    sizes = p.ints("split_sizes", None)
    if sizes is None:
        k = p.int("num_splits")
        sizes = [x.shape[axis] // k] * k
    return tuple(_F.split(x, sizes, dim=axis))


@mil_op("stack")
def _stack(ctx, p):
    values = [_t(v) for v in p.list("values")]
    return _F.stack(values, dim=p.int("axis") % (len(values[0].shape) + 1))


@mil_op("flatten2d")
def _flatten2d(ctx, p):
    x = p.x("x")
    axis = p.int("axis", 1) % len(x.shape)
    return _F.reshape(x, [int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))])


@mil_op("one_hot")
def _one_hot(ctx, p):
    ids = p.x("indices")
    n = p.int("one_hot_vector_size")
    on, off = (float(np.asarray(p.raw(k, d)).reshape(-1)[0]) for k, d in (("on_value", 1.0), ("off_value", 0.0)))
    hot = _F.one_hot(ids, n).cast("fp16")
    rank = len(hot.shape)
    axis = p.int("axis", -1) % rank
    if axis != rank - 1:
        hot = _F.permute(hot, list(range(axis)) + [rank - 1] + list(range(axis, rank - 1)))
    return hot * (on - off) + off if (off, on) != (0.0, 1.0) else hot


@mil_op("scaled_dot_product_attention")
def _sdpa(ctx, p):
    mask = p.raw("attn_mask", None)
    return _F.scaled_dot_product_attention(p.x("query"), p.x("key"), p.x("value"),
                                           attn_mask=None if mask is None else _t(mask))


@mil_op("tile")
def _tile(ctx, p):
    return _F.tile(p.x("x"), p.ints("reps"))


@mil_op("pad")
def _pad(ctx, p):
    x = p.x("x")
    pads = p.ints("pad")
    n = len(pads) // 2
    order = []
    for i in reversed(range(n)):
        order += [pads[2 * i], pads[2 * i + 1]]
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "replicate"}.get(p.str("mode", "constant"))
    if mode is None:
        raise NotImplementedError(f"pad mode {p.str('mode')!r}")
    value = float(np.asarray(p.raw("constant_val", 0.0)).reshape(-1)[0])
    return _F.pad(x, order, mode=mode, value=value)


@mil_op("gather")
def _gather(ctx, p):
    x, idx = p.raw("x"), p.raw("indices")
    if p.int("batch_dims", 0):
        raise NotImplementedError("gather with batch_dims")
    shape_x = np.shape(x) if not isinstance(x, Tensor) else x.shape
    axis = p.axis("axis", len(shape_x), 0)
    if not isinstance(x, Tensor) and isinstance(idx, Tensor) and axis == 0 and len(shape_x) == 2:
        return ctx.layer(_F.embedding(idx, x), "x")  # an embedding table
    if isinstance(idx, Tensor):
        flat = _F.reshape(idx, [-1]) if len(idx.shape) != 1 else idx
        ishape = list(idx.shape)
    else:
        a = np.asarray(idx, np.int64) % shape_x[axis]
        flat, ishape = _F.constant(a.reshape(-1).astype(np.int32), "int32"), list(a.shape)
    x = _t(x)
    kind = x.dtype if x.dtype in ("int32", "bool") else ""
    out = _F.index_select(x.cast("fp16") if kind else x, axis, flat)
    out = _F.reshape(out, list(shape_x[:axis]) + ishape + list(shape_x[axis + 1:]))
    return out.cast(kind) if kind else out


@mil_op("gather_along_axis")
def _gather_along_axis(ctx, p):
    x = p.x("x")
    return _F.gather(x, p.axis("axis", len(x.shape), 0), p.x("indices"))


@mil_op("depth_to_space")
def _depth_to_space(ctx, p):
    return _F.depth_to_space(p.x("x"), p.int("block_size"))


@mil_op("space_to_depth")
def _space_to_depth(ctx, p):
    return _F.space_to_depth(p.x("x"), p.int("block_size"))


@mil_op("pixel_shuffle")
def _pixel_shuffle(ctx, p):
    return _F.pixel_shuffle(p.x("x"), p.int("upscale_factor"))


@mil_op("pixel_unshuffle")
def _pixel_unshuffle(ctx, p):
    return _F.pixel_unshuffle(p.x("x"), p.int("downscale_factor"))


@mil_op("band_part")
def _band_part(ctx, p):
    x = p.x("x")
    lo, hi = p.int("lower", -1), p.int("upper", -1)
    m, n = x.shape[-2:]
    i, j = np.arange(m)[:, None], np.arange(n)[None, :]
    keep = ((lo < 0) | (i - j <= lo)) & ((hi < 0) | (j - i <= hi))
    return _F.where(_t(keep), x, 0.0)


@mil_op("cumsum")
def _cumsum(ctx, p):
    x = p.x("x")
    if p.bool("exclusive", False) or p.bool("reverse", False):
        raise NotImplementedError("cumsum with exclusive or reverse")
    return _F.cumsum(_float(x), p.axis("axis", len(x.shape), 0))


@mil_op("topk")
def _topk(ctx, p):
    x = p.x("x")
    return tuple(_F.topk(x, p.int("k", 1), dim=p.axis("axis", len(x.shape), -1),
                         largest=not p.bool("ascending", False)))


@mil_op("quantize")
def _quantize(ctx, p):
    if p.has("zero_point") or p.has("axis"):
        raise NotImplementedError("quantize with a zero point or per-axis scales")
    return _F.quantize(p.x("input"), p.float("scale"))


@mil_op("dequantize")
def _dequantize(ctx, p):
    if p.has("zero_point") or p.has("axis"):
        raise NotImplementedError("dequantize with a zero point or per-axis scales")
    return _F.dequantize(p.x("input"), p.float("scale"))


def note(name: str) -> str:
    if name in MIL:
        return "yes"
    return UNSUPPORTED.get(name, "not mapped yet")
