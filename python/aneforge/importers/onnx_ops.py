"""The ONNX table: one entry per ONNX operator (default domain, opsets 13-21), each mapping
the node to af ops, as the ATen table does for torch.export. ``@onnx_op`` adds an entry;
UNSUPPORTED says why an operator is not mapped (docs/import.md).

An entry is ``fn(ctx, *inputs, **attributes)``: inputs arrive as af Tensors, or as NumPy
arrays while they are constants (initializers, folded subgraphs), so a weight reaches
Conv/Gemm/MatMul as an array and becomes a weight layer; a missing optional input is None.
Nodes whose inputs are all constants never reach the table: the importer folds them with
the onnx package's reference evaluator (onnx_import.py).
"""
from __future__ import annotations

import operator

import numpy as np

from ..graph import composites as _C, functional as _F
from ..graph.tensor import Tensor
from ._values import is_const as _const, tensor_of as _t

ONNX: dict = {}  # "Conv" -> fn(ctx, *inputs, **attributes)

_CONTROL = "control flow: the engine runs static programs (export the branch taken, or split the model there)"
_DYNAMIC = "data-dependent output shape: the engine runs static shapes"
_RANDOM = "random numbers: the engine has none (af.noise feeds them from the host)"
_MUTATION = "scatter into a tensor: not a graph op"
_SEQUENCE = "sequences and optional values: not tensors"
_INTEGER = "integer or bit arithmetic: the engine has no integer compute"
_QUANT = "quantized activations: af compresses weights only (DequantizeLinear of constant weights folds)"
UNSUPPORTED = {
    **{k: _CONTROL for k in ("If", "Loop", "Scan")},
    **{k: _DYNAMIC for k in ("NonZero", "Unique", "Compress", "NonMaxSuppression", "StringNormalizer",
                             "TfIdfVectorizer", "RoiAlign")},
    **{k: _RANDOM for k in ("RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                            "Multinomial", "Bernoulli")},
    **{k: _MUTATION for k in ("ScatterND", "ScatterElements", "Scatter", "TensorScatter")},
    **{k: _SEQUENCE for k in ("SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase",
                              "SequenceInsert", "SequenceLength", "SequenceMap", "SplitToSequence",
                              "ConcatFromSequence", "Optional", "OptionalGetElement", "OptionalHasElement")},
    **{k: _INTEGER for k in ("BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "BitCast")},
    **{k: _QUANT for k in ("QuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
                           "DynamicQuantizeLinear")},
    **{k: "complex values: the engine has no complex type (af.fft works on (re, im) pairs)" for k in ("DFT", "STFT")},
    **{k: "a recurrent layer: unroll it in PyTorch and export the unrolled graph" for k in ("LSTM", "GRU", "RNN")},
    **{k: "folded at import when its inputs are constants (weights, shapes); not a program op" for k in (
        "Constant", "ConstantOfShape", "Range", "EyeLike", "DequantizeLinear", "HannWindow", "HammingWindow",
        "BlackmanWindow", "MelWeightMatrix")},
    **{k: "strings and images: not tensors of numbers" for k in ("StringConcat", "StringSplit", "RegexFullMatch",
                                                                 "ImageDecoder")},
    **{k: "3-D and higher pooling of variable windows: the engine's pools are 2-D and static" for k in (
        "MaxRoiPool", "MaxUnpool", "LpPool", "GlobalLpPool")},
}


def onnx_op(*names):
    """Register ``fn`` as the mapping of the named ONNX operators."""
    def deco(fn):
        for n in names:
            ONNX[n] = fn
        return fn
    return deco


def _ints(x) -> list:
    return [int(v) for v in np.asarray(x).reshape(-1)]



# ---- structure ----

@onnx_op("Identity", "Dropout")
def _identity(ctx, x, *rest, **_):
    return x


@onnx_op("Cast")
def _cast(ctx, x, to, saturate=1, round_mode=None):
    import onnx
    kind = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to)).kind
    if kind == "f":
        return x.cast("fp16") if x.dtype in ("int32", "bool") else x  # floats compute in the program's precision
    if kind in "iu":
        return x if x.dtype == "int32" else x.cast("int32")
    if kind == "b":
        return x if x.dtype == "bool" else x.cast("bool")
    raise NotImplementedError(f"Cast to {np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to))}")


@onnx_op("CastLike")
def _cast_like(ctx, x, like, **_):
    import onnx
    kind = like.dtype.kind if _const(like) else {"int32": "i", "bool": "b"}.get(like.dtype, "f")
    to = {"f": onnx.TensorProto.FLOAT, "i": onnx.TensorProto.INT64, "u": onnx.TensorProto.INT64,
          "b": onnx.TensorProto.BOOL}[kind]
    return _cast(ctx, x, to)


@onnx_op("Shape")
def _shape(ctx, x, start=0, end=None):
    return np.asarray(x.shape[start:end], np.int64)


@onnx_op("Size")
def _size(ctx, x):
    return np.asarray(int(np.prod(x.shape)), np.int64)


@onnx_op("Reshape")
def _reshape(ctx, x, shape, allowzero=0):
    if not _const(shape):
        raise NotImplementedError("Reshape to a shape computed from tensor values (data-dependent)")
    shape = _ints(shape)
    if not allowzero:  # 0 copies the input's size there
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return _F.reshape(_t(x), shape)


@onnx_op("Flatten")
def _flatten(ctx, x, axis=1):
    axis = axis % len(x.shape) if axis < 0 else axis
    lead = int(np.prod(x.shape[:axis]))
    return _F.reshape(_t(x), [lead, int(np.prod(x.shape[axis:]))])


@onnx_op("Transpose")
def _transpose(ctx, x, perm=None):
    perm = list(perm) if perm is not None else list(range(len(x.shape)))[::-1]
    return _F.permute(_t(x), perm)


@onnx_op("Squeeze")
def _squeeze(ctx, x, axes=None):
    rank = len(x.shape)
    axes = [a % rank for a in _ints(axes)] if axes is not None else [i for i, s in enumerate(x.shape) if s == 1]
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"Squeeze of axis {a}, of size {x.shape[a]} (not 1)")
    return _F.reshape(_t(x), [s for i, s in enumerate(x.shape) if i not in axes])


@onnx_op("Unsqueeze")
def _unsqueeze(ctx, x, axes):
    rank = len(x.shape) + len(_ints(axes))
    axes = sorted(a % rank for a in _ints(axes))
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return _F.reshape(_t(x), shape)


@onnx_op("Concat")
def _concat(ctx, *xs, axis):
    xs = [x for x in xs if x is not None and int(np.prod(x.shape)) > 0]
    return _F.cat([_t(x) for x in xs], dim=axis % len(xs[0].shape))


@onnx_op("Split")
def _split(ctx, x, split=None, axis=0, num_outputs=None):
    axis = axis % len(x.shape)
    n = x.shape[axis]
    if split is not None:
        sections = _ints(split)
    else:
        k = num_outputs or len(ctx.node.output)
        step = -(-n // k)  # ceil: the last part is smaller (opset 18)
        sections = [min(step, n - i * step) for i in range(k)]
    return tuple(_F.split(_t(x), sections, dim=axis))


@onnx_op("Slice")
def _slice(ctx, x, starts, ends, axes=None, steps=None):
    rank = len(x.shape)
    starts, ends = _ints(starts), _ints(ends)
    axes = [a % rank for a in _ints(axes)] if axes is not None else list(range(len(starts)))
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    begin, end, step = [0] * rank, list(x.shape), [1] * rank
    for a, s, e, k in zip(axes, starts, ends, steps):
        if k <= 0:
            raise NotImplementedError("Slice with a negative step (a reversal)")
        n = x.shape[a]
        s = s + n if s < 0 else s
        e = e + n if e < 0 else e
        begin[a], end[a], step[a] = min(max(s, 0), n), min(max(e, 0), n), k
    return _F.slice(_t(x), begin, end, step)


def _pick(fn, x, *args):
    """An indexing op on x; integer and bool tensors are picked as fp16 (exact to 2048) and
    cast back."""
    kind = x.dtype if isinstance(x, Tensor) and x.dtype in ("int32", "bool") else ""
    if not kind:
        return fn(_t(x), *args)
    return fn(x.cast("fp16"), *args).cast(kind)


@onnx_op("Gather")
def _gather(ctx, x, indices, axis=0):
    rank = len(x.shape)
    axis = axis % rank
    if _const(indices):
        idx = np.asarray(indices, np.int64) % x.shape[axis]
        if _const(x):
            return np.take(x, idx, axis=axis)
        flat = _F.constant(idx.reshape(-1).astype(np.int32), "int32")
    else:
        if _const(x) and axis == 0 and rank == 2:  # an embedding table
            return ctx.layer(_F.embedding(indices, x), x)
        flat = _F.reshape(indices, [-1]) if len(indices.shape) != 1 else indices
    out = _pick(_F.index_select, x, axis, flat)
    shape = list(x.shape[:axis]) + list(indices.shape) + list(x.shape[axis + 1:])
    return _F.reshape(out, shape)


@onnx_op("GatherElements")
def _gather_elements(ctx, x, indices, axis=0):
    idx = _t(np.asarray(indices, np.int64) % x.shape[axis]) if _const(indices) else indices
    return _pick(_F.gather, x, axis % len(x.shape), idx)


@onnx_op("Expand")
def _expand(ctx, x, shape):
    shape = _ints(shape)
    rank = max(len(shape), len(x.shape))
    have = [1] * (rank - len(x.shape)) + list(x.shape)
    want = [1] * (rank - len(shape)) + shape
    target = [h if w == 1 else w for h, w in zip(have, want)]
    return _t(x).reshape(have).expand(*target) if target != list(x.shape) else x


@onnx_op("Tile")
def _tile(ctx, x, repeats):
    return _F.tile(_t(x), _ints(repeats))


@onnx_op("Pad")
def _pad(ctx, x, pads, constant_value=None, axes=None, mode="constant"):
    rank = len(x.shape)
    pads = _ints(pads)
    axes = [a % rank for a in _ints(axes)] if axes is not None else list(range(rank))
    begin = dict(zip(axes, pads[:len(axes)]))
    end = dict(zip(axes, pads[len(axes):]))
    used = [a for a in range(rank) if begin.get(a, 0) or end.get(a, 0)]
    if any(begin.get(a, 0) < 0 or end.get(a, 0) < 0 for a in used):
        raise NotImplementedError("Pad with negative pads (a crop)")
    if not used:
        return x
    torch_order = []  # F.pad: last axis first, (before, after) pairs
    for a in range(rank - 1, min(used) - 1, -1):
        torch_order += [begin.get(a, 0), end.get(a, 0)]
    value = float(np.asarray(constant_value).reshape(-1)[0]) if constant_value is not None and \
        np.asarray(constant_value).size else 0.0
    modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}
    if mode not in modes:
        raise NotImplementedError(f"Pad mode {mode!r}")
    return _F.pad(_t(x), torch_order, mode=modes[mode], value=value)


@onnx_op("Trilu")
def _trilu(ctx, x, k=None, upper=1):
    k = int(np.asarray(k).reshape(-1)[0]) if k is not None else 0
    return (_F.triu if upper else _F.tril)(_t(x), k)


@onnx_op("DepthToSpace")
def _depth_to_space(ctx, x, blocksize, mode="DCR"):
    return _F.depth_to_space(x, blocksize) if mode == "DCR" else _F.pixel_shuffle(x, blocksize)


@onnx_op("SpaceToDepth")
def _space_to_depth(ctx, x, blocksize):
    return _F.space_to_depth(x, blocksize)


# ---- elementwise ----

def _binary(fn):
    def impl(ctx, a, b):
        return fn(_t(a) if _const(a) else a, b)
    return impl


def _div(a, b):
    ints = [v for v in (a, b) if isinstance(v, Tensor) and v.dtype == "int32"]
    if ints and len(ints) + sum(_const(v) and v.dtype.kind in "iu" for v in (a, b)) == 2:
        raise NotImplementedError("integer division of tensors: the engine has no integer compute")
    return operator.truediv(a, b)


onnx_op("Add")(_binary(operator.add))
onnx_op("Sub")(_binary(operator.sub))
onnx_op("Mul")(_binary(operator.mul))
onnx_op("Div")(_binary(_div))


@onnx_op("Pow")
def _pow(ctx, a, b):
    if _const(b) and b.size == 1:
        e = float(b.reshape(-1)[0])
        if e == 2.0:
            return _F.square(_t(a))
        if e == 0.5:
            return _F.sqrt(_t(a))
        if e == 1.0:
            return a
        return _F.pow(_t(a), e)
    return _F.pow(_t(a), _t(b))


def _unary(op):
    def impl(ctx, x):
        return getattr(_F, op)(_t(x))
    return impl


for _name, _op in {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log",
                   "Sqrt": "sqrt", "Abs": "abs", "Neg": "neg", "Reciprocal": "reciprocal", "Sin": "sin",
                   "Cos": "cos", "Erf": "erf", "Floor": "floor", "Ceil": "ceil", "Sign": "sign",
                   "Round": "round", "Not": "logical_not", "Atan": "atan", "HardSwish": "hardswish",
                   "Softsign": "softsign"}.items():
    onnx_op(_name)(_unary(_op))


@onnx_op("Tan")
def _tan(ctx, x):
    return _F.sin(x) / _F.cos(x)


@onnx_op("Sinh", "Cosh")
def _sinh_cosh(ctx, x):
    e, r = _F.exp(x), _F.exp(-x)
    return (e - r) * 0.5 if ctx.node.op_type == "Sinh" else (e + r) * 0.5


@onnx_op("IsNaN")
def _isnan(ctx, x):
    return _F.not_equal(x, x)


@onnx_op("IsInf")
def _isinf(ctx, x, detect_negative=1, detect_positive=1):
    pos, neg = _F.equal(x, float("inf")), _F.equal(x, float("-inf"))
    if detect_negative and detect_positive:
        return (pos.cast("fp16") + neg.cast("fp16")).cast("bool")
    return pos if detect_positive else neg


@onnx_op("Shrink")
def _shrink(ctx, x, bias=0.0, lambd=0.5):
    return _F.where(x < -lambd, x + bias, _F.where(x > lambd, x - bias, 0.0))


@onnx_op("Softplus")
def _softplus(ctx, x):
    return _F.softplus(x)  # past 20, x itself: log(1 + e^x) - x < 3e-9 there


@onnx_op("LeakyRelu")
def _leaky(ctx, x, alpha=0.01):
    return _F.leaky_relu(x, alpha)


@onnx_op("Elu")
def _elu(ctx, x, alpha=1.0):
    return _F.elu(x, alpha)


@onnx_op("Selu")
def _selu(ctx, x, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    return _F.elu(x, alpha) * gamma


@onnx_op("Celu")
def _celu(ctx, x, alpha=1.0):
    return _F.relu(x) + _F.minimum(_F.elu(x * (1.0 / alpha)) * alpha, 0.0)


@onnx_op("HardSigmoid")
def _hard_sigmoid(ctx, x, alpha=0.2, beta=0.5):
    return _F.clamp(x * alpha + beta, 0.0, 1.0)


@onnx_op("Mish")
def _mish(ctx, x):
    return x * _F.tanh(_F.softplus(x))


@onnx_op("PRelu")
def _prelu(ctx, x, slope):
    return _F.relu(x) + _F.minimum(x, 0.0) * (_t(slope) if _const(slope) else slope)


@onnx_op("ThresholdedRelu")
def _thresholded_relu(ctx, x, alpha=1.0):
    return _F.where(x > alpha, x, 0.0)


@onnx_op("Gelu")
def _gelu(ctx, x, approximate="none"):
    return _F.gelu(x, approximate=approximate)


@onnx_op("Clip")
def _clip(ctx, x, min=None, max=None):  # noqa: A002 - ONNX's names
    lo = None if min is None else float(np.asarray(min).reshape(-1)[0])
    hi = None if max is None else float(np.asarray(max).reshape(-1)[0])
    if (min is not None and not _const(min)) or (max is not None and not _const(max)):
        raise NotImplementedError("Clip with bounds computed in the program")
    if lo == 0.0 and hi == 6.0:
        return _F.relu6(x)
    return _F.clamp(x, lo, hi)


def _variadic(fn):
    def impl(ctx, *xs):
        out = _t(xs[0])
        for x in xs[1:]:
            out = fn(out, x)
        return out
    return impl


onnx_op("Max")(_variadic(_F.maximum))
onnx_op("Min")(_variadic(_F.minimum))
onnx_op("Sum")(_variadic(operator.add))


@onnx_op("Mean")
def _mean_of(ctx, *xs):
    return _variadic(operator.add)(ctx, *xs) * (1.0 / len(xs))


@onnx_op("Where")
def _where(ctx, cond, a, b):
    cond = _t(cond)
    if cond.dtype != "bool":
        cond = cond.cast("bool")
    both_int = all((_const(v) and v.dtype.kind in "iu") or (isinstance(v, Tensor) and v.dtype == "int32")
                   for v in (a, b))
    if both_int:  # picked as fp16 (exact to 2048), then back
        return _F.where(cond, _t(np.asarray(a, np.float32)) if _const(a) else a.cast("fp16"),
                        _t(np.asarray(b, np.float32)) if _const(b) else b.cast("fp16")).cast("int32")
    return _F.where(cond, _t(a) if _const(a) else a, _t(b) if _const(b) else b)


def _compare(fn):
    def impl(ctx, a, b):
        a, b = _t(a), _t(b)
        if a.dtype != b.dtype:  # ONNX compares like types; int32 against fp16 compares as fp16
            a, b = (v.cast("fp16") if v.dtype != "fp16" else v for v in (a, b))
        return fn(a, b)
    return impl


for _name, _fn in {"Equal": _F.equal, "Less": _F.less, "Greater": _F.greater, "LessOrEqual": _F.less_equal,
                   "GreaterOrEqual": _F.greater_equal}.items():
    onnx_op(_name)(_compare(_fn))


@onnx_op("And", "Or", "Xor")
def _logical(ctx, a, b):
    a, b = (_t(v).cast("fp16") for v in (a, b))
    op = ctx.node.op_type
    if op == "And":
        return (a * b).cast("bool")
    if op == "Or":
        return _F.maximum(a, b).cast("bool")
    return _F.not_equal(a, b)


# ---- reductions and normalization ----

def _reduce_axes(x, axes, noop_with_empty_axes=0):
    rank = len(x.shape)
    axes = _ints(axes) if axes is not None else []
    if not axes:
        return None if not noop_with_empty_axes else ()
    return tuple(sorted(a % rank for a in axes))


def _reduce(fn):
    def impl(ctx, x, axes=None, keepdims=1, noop_with_empty_axes=0):
        dims = _reduce_axes(x, axes, noop_with_empty_axes)
        if dims == ():
            return x
        return fn(_t(x), dims, bool(keepdims))
    return impl


onnx_op("ReduceMean")(_reduce(lambda x, d, k: _F.mean(x, dim=d, keepdim=k)))
onnx_op("ReduceSum")(_reduce(lambda x, d, k: _F.sum(x, dim=d, keepdim=k)))
onnx_op("ReduceMax")(_reduce(lambda x, d, k: _F.amax(x, dim=d, keepdim=k)))
onnx_op("ReduceMin")(_reduce(lambda x, d, k: _F.amin(x, dim=d, keepdim=k)))
onnx_op("ReduceSumSquare")(_reduce(lambda x, d, k: _F.sum_square(x, dim=d, keepdim=k)))
onnx_op("ReduceL2")(_reduce(lambda x, d, k: _F.sqrt(_F.sum_square(x, dim=d, keepdim=k))))
onnx_op("ReduceL1")(_reduce(lambda x, d, k: _F.sum(_F.abs(x), dim=d, keepdim=k)))
onnx_op("ReduceLogSumExp")(_reduce(lambda x, d, k: _F.logsumexp(x, dim=d, keepdim=k)))
onnx_op("ReduceLogSum")(_reduce(lambda x, d, k: _F.log(_F.sum(x, dim=d, keepdim=k))))


@onnx_op("ArgMax", "ArgMin")
def _arg(ctx, x, axis=0, keepdims=1, select_last_index=0):
    if select_last_index:
        raise NotImplementedError(f"{ctx.node.op_type} with select_last_index=1")
    fn = _F.argmax if ctx.node.op_type == "ArgMax" else _F.argmin
    return fn(_t(x), dim=axis % len(x.shape), keepdim=bool(keepdims))


@onnx_op("Hardmax")
def _hardmax(ctx, x, axis=-1):
    axis = axis % len(x.shape)
    idx = _F.argmax(x, dim=axis, keepdim=True)
    positions = _F.constant(np.arange(x.shape[axis], dtype=np.int32).reshape(
        [-1 if d == axis else 1 for d in range(len(x.shape))]), "int32")
    return _F.equal(idx, positions).cast("fp16")


@onnx_op("OneHot")
def _one_hot(ctx, indices, depth, values, axis=-1):
    if not (_const(depth) and _const(values)):
        raise NotImplementedError("OneHot with depth or values computed in the program")
    n = int(np.asarray(depth).reshape(-1)[0])
    off, on = (float(v) for v in np.asarray(values, np.float32).reshape(-1)[:2])
    ids = _t(np.asarray(indices, np.int64) % n) if _const(indices) else indices
    hot = _F.one_hot(ids, n).cast("fp16")  # the new axis last
    rank = len(hot.shape)
    axis = axis % rank
    if axis != rank - 1:
        hot = _F.permute(hot, list(range(axis)) + [rank - 1] + list(range(axis, rank - 1)))
    return hot * (on - off) + off if (off, on) != (0.0, 1.0) else hot


@onnx_op("TopK")
def _topk(ctx, x, k, axis=-1, largest=1, sorted=1):  # noqa: A002 - ONNX's name
    return tuple(_F.topk(_t(x), int(np.asarray(k).reshape(-1)[0]), dim=axis, largest=bool(largest)))


@onnx_op("CumSum")
def _cumsum(ctx, x, axis, exclusive=0, reverse=0):
    if exclusive or reverse:
        raise NotImplementedError("CumSum with exclusive or reverse")
    if x.dtype == "int32":
        raise NotImplementedError("CumSum of integers: fp16 holds them exactly only to 2048")
    return _F.cumsum(x, int(np.asarray(axis).reshape(-1)[0]) % len(x.shape))


@onnx_op("Softmax", "LogSoftmax")
def _softmax(ctx, x, axis=-1):
    return (_F.softmax if ctx.node.op_type == "Softmax" else _F.log_softmax)(_t(x), axis)


@onnx_op("BatchNormalization")
def _batch_norm(ctx, x, scale, bias, mean, var, epsilon=1e-5, momentum=0.9, training_mode=0):
    if training_mode:
        raise NotImplementedError("BatchNormalization in training mode (export the model in eval mode)")
    return _F.batch_norm(x, mean, var, scale, bias, eps=float(epsilon))


@onnx_op("LayerNormalization")
def _layer_norm(ctx, x, scale, bias=None, axis=-1, epsilon=1e-5, stash_type=1):
    axis = axis % len(x.shape)
    return _F.layer_norm(_t(x), list(x.shape[axis:]), scale, bias, eps=float(epsilon))


@onnx_op("InstanceNormalization")
def _instance_norm(ctx, x, scale, bias, epsilon=1e-5):
    return _F.instance_norm(x, scale, bias, eps=float(epsilon))


@onnx_op("GroupNormalization")
def _group_norm(ctx, x, scale, bias, num_groups, epsilon=1e-5, stash_type=1):
    return _F.group_norm(x, num_groups, scale, bias, eps=float(epsilon))


@onnx_op("MeanVarianceNormalization")
def _mvn(ctx, x, axes=(0, 2, 3)):
    dims = tuple(sorted(a % len(x.shape) for a in axes))
    centered = x - _F.mean(x, dim=dims, keepdim=True)
    return centered * _F.rsqrt(_F.mean(centered * centered, dim=dims, keepdim=True) + 1e-9)


@onnx_op("LpNormalization")
def _lp_norm(ctx, x, axis=-1, p=2):
    if p != 2:
        raise NotImplementedError("LpNormalization with p other than 2")
    return _F.l2_norm(x, dim=axis, eps=0.0)


# ---- contractions (a constant weight becomes a weight layer, named after its initializer) ----

@onnx_op("MatMul")
def _matmul(ctx, a, b):
    if _const(b) and b.ndim == 2 and isinstance(a, Tensor):
        return ctx.layer(_F.linear(a, np.ascontiguousarray(b.T)), b)
    return _F.matmul(_t(a), _t(b))


@onnx_op("Gemm")
def _gemm(ctx, a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):  # noqa: N803 - ONNX's names
    a = _F.transpose(_t(a), 0, 1) if transA else a
    if _const(b) and (c is None or _const(c)):
        w = b if transB else np.ascontiguousarray(b.T)
        bias = None if c is None else np.broadcast_to(np.asarray(c, np.float32) * beta, (w.shape[0],)).copy() \
            if np.asarray(c).size in (1, w.shape[0]) else None
        if c is None or bias is not None:
            return ctx.layer(_F.linear(_t(a), w * alpha if alpha != 1.0 else w, bias), b)
    y = _F.matmul(_t(a), _F.transpose(_t(b), 0, 1) if transB else _t(b))
    y = y * alpha if alpha != 1.0 else y
    return y if c is None else y + (_t(c) * beta if beta != 1.0 else _t(c))


def _conv_pads(x, w_shape, strides, dilations, pads, auto_pad, transposed=False):
    """ONNX's pads (begin..., end...) or auto_pad as (symmetric pads, extra F.pad or None)."""
    k = len(w_shape) - 2
    if auto_pad in ("SAME_UPPER", "SAME_LOWER") and not transposed:
        pads = []
        begins, ends = [], []
        for i in range(k):
            n, s, d, kk = x.shape[2 + i], strides[i], dilations[i], w_shape[2 + i]
            total = max((-(-n // s) - 1) * s + (kk - 1) * d + 1 - n, 0)
            small, big = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else big)
            ends.append(big if auto_pad == "SAME_UPPER" else small)
        pads = begins + ends
    elif auto_pad == "VALID" or pads is None:
        pads = [0] * (2 * k)
    elif auto_pad not in ("NOTSET", "", None, b"NOTSET"):
        raise NotImplementedError(f"auto_pad {auto_pad!r}")
    pads = list(pads)
    begin, end = pads[:k], pads[k:]
    if begin == end:
        return begin, None
    extra = []  # F.pad order: last axis first
    for i in range(k - 1, -1, -1):
        extra += [begin[i], end[i]]
    return [0] * k, extra


@onnx_op("Conv")
def _conv(ctx, x, w, b=None, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
          strides=None):
    k = len(w.shape) - 2
    strides, dilations = list(strides or [1] * k), list(dilations or [1] * k)
    pad, extra = _conv_pads(x, w.shape, strides, dilations, pads, auto_pad)
    if extra:
        x = _F.pad(x, extra)
    y = _F.conv(x, w, b, stride=strides, padding=pad, dilation=dilations, groups=group)
    return ctx.layer(y, w)


@onnx_op("ConvTranspose")
def _conv_transpose(ctx, x, w, b=None, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                    output_padding=None, output_shape=None, pads=None, strides=None):
    k = len(w.shape) - 2
    strides, dilations = list(strides or [1] * k), list(dilations or [1] * k)
    if output_shape is not None or auto_pad not in ("NOTSET", "", None):
        raise NotImplementedError("ConvTranspose with output_shape or auto_pad (give pads and output_padding)")
    pads = list(pads or [0] * (2 * k))
    if pads[:k] != pads[k:]:
        raise NotImplementedError("ConvTranspose with asymmetric pads")
    y = _F.conv_transpose(x, w, b, stride=strides, padding=pads[:k], output_padding=list(output_padding or [0] * k),
                          groups=group, dilation=dilations)
    return ctx.layer(y, w)


@onnx_op("Einsum")
def _einsum(ctx, *xs, equation):
    return _F.einsum(equation, *[_t(x) for x in xs])


# ---- pooling and resizing ----

def _pool_pads(x, kernel, strides, pads, auto_pad, ceil_mode):
    k = len(kernel)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return _conv_pads(x, [0, 0] + list(kernel), strides, [1] * k, None, auto_pad)
    return _conv_pads(x, [0, 0] + list(kernel), strides, [1] * k, pads, auto_pad)


@onnx_op("MaxPool")
def _max_pool(ctx, x, kernel_shape, auto_pad="NOTSET", ceil_mode=0, dilations=None, pads=None,
              storage_order=0, strides=None):
    if len(kernel_shape) != 2:
        raise NotImplementedError(f"MaxPool over {len(kernel_shape)} dimensions (the engine's pools are 2-D)")
    if dilations and any(d != 1 for d in dilations):
        raise NotImplementedError("MaxPool with dilations")
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        raise NotImplementedError("MaxPool's Indices output")
    strides = list(strides or [1, 1])
    pad, extra = _pool_pads(x, kernel_shape, strides, pads, auto_pad, ceil_mode)
    if extra:
        x = _F.pad(x, extra, value=float("-inf"))
    return _F.max_pool2d(x, list(kernel_shape), strides, pad, bool(ceil_mode))


@onnx_op("AveragePool")
def _avg_pool(ctx, x, kernel_shape, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None,
              pads=None, strides=None):
    if len(kernel_shape) != 2:
        raise NotImplementedError(f"AveragePool over {len(kernel_shape)} dimensions (the engine's pools are 2-D)")
    if dilations and any(d != 1 for d in dilations):
        raise NotImplementedError("AveragePool with dilations")
    strides = list(strides or [1, 1])
    pad, extra = _pool_pads(x, kernel_shape, strides, pads, auto_pad, ceil_mode)
    if extra:
        if not count_include_pad:
            raise NotImplementedError("AveragePool with asymmetric pads that are not counted")
        x = _F.pad(x, extra)
    return _F.avg_pool2d(x, list(kernel_shape), strides, pad, bool(ceil_mode), bool(count_include_pad))


@onnx_op("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx, x):
    dims = tuple(range(2, len(x.shape)))
    return (_F.mean if ctx.node.op_type == "GlobalAveragePool" else _F.amax)(x, dim=dims, keepdim=True)


@onnx_op("Resize")
def _resize(ctx, x, roi=None, scales=None, sizes=None, antialias=0, axes=None, coordinate_transformation_mode=
            "half_pixel", cubic_coeff_a=-0.75, exclude_outside=0, extrapolation_value=0.0,
            keep_aspect_ratio_policy="stretch", mode="nearest", nearest_mode="round_prefer_floor"):
    rank = len(x.shape)
    if axes is not None or antialias or rank != 4:
        raise NotImplementedError("Resize with axes, antialias or a rank other than 4")
    if sizes is not None and np.asarray(sizes).size:
        size = _ints(sizes)
    elif scales is not None and np.asarray(scales).size:
        sc = [float(s) for s in np.asarray(scales).reshape(-1)]
        if sc[:2] != [1.0, 1.0]:
            raise NotImplementedError("Resize of the batch or channel dimension")
        size = list(x.shape[:2]) + [int(np.floor(n * s)) for n, s in zip(x.shape[2:], sc[2:])]
    else:
        raise ValueError("Resize needs scales or sizes")
    if list(size[:2]) != list(x.shape[:2]):
        raise NotImplementedError("Resize of the batch or channel dimension")
    out = tuple(size[2:])
    h, w = x.shape[2:]
    ctm = coordinate_transformation_mode
    if mode == "nearest":
        integer = out[0] % h == 0 and out[1] % w == 0 and out[0] // h == out[1] // w
        if ctm == "asymmetric" and nearest_mode == "floor" or integer and ctm in ("asymmetric", "half_pixel"):
            # torch's nearest (asymmetric + floor); whole factors pick the same pixels either way
            return _C.interpolate(_t(x), size=out, mode="nearest")
        raise NotImplementedError(f"Resize nearest with coordinate_transformation_mode={ctm!r}, "
                                  f"nearest_mode={nearest_mode!r}")
    if mode == "linear":
        if ctm == "align_corners":
            return _C.interpolate(_t(x), size=out, mode="bilinear", align_corners=True)
        if ctm == "half_pixel" or (ctm == "pytorch_half_pixel" and min(out) > 1):
            return _C.interpolate(_t(x), size=out, mode="bilinear", align_corners=False)
        raise NotImplementedError(f"Resize linear with coordinate_transformation_mode={ctm!r}")
    raise NotImplementedError(f"Resize mode {mode!r}")


def note(name: str) -> str:
    """Supported, or why not (docs/import.md)."""
    if name in ONNX:
        return "yes"
    return UNSUPPORTED.get(name, "not mapped yet")
