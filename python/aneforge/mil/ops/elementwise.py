"""Elementwise unary and binary families (with NumPy broadcasting, as MIL defines it)."""
import math

import numpy as np

from ..registry import op
from ..storage import widened
from .activation import keep_nans

U, B = "elementwise_unary", "elementwise_binary"
_erf = np.frompyfunc(math.erf, 1, 1)


def num(a, name):
    """Floats compute in fp32; integers in int64; bools stay bool."""
    v = a.tensor(name)
    if v.dtype.kind == "f":
        return v if v.dtype == np.float64 else widened(v)
    if v.dtype == np.bool_:
        return v
    return v.astype(np.int64)


def _binary(name, fn):
    op(name, family=B)(lambda a: fn(num(a, "x"), num(a, "y")))


_binary("add", np.add)
_binary("sub", np.subtract)
_binary("mul", np.multiply)
_binary("maximum", lambda x, y: np.where(np.isnan(x) | np.isnan(y), x + y, np.maximum(x, y)) if x.dtype.kind == "f" else np.maximum(x, y))
_binary("minimum", lambda x, y: np.where(np.isnan(x) | np.isnan(y), x + y, np.minimum(x, y)) if x.dtype.kind == "f" else np.minimum(x, y))
_binary("equal", np.equal)
_binary("not_equal", np.not_equal)
_binary("greater", np.greater)
_binary("greater_equal", np.greater_equal)
_binary("less", np.less)
_binary("less_equal", np.less_equal)
_binary("logical_and", np.logical_and)
_binary("logical_or", np.logical_or)
_binary("logical_xor", np.logical_xor)


@op("real_div", family=B)
def real_div(a):
    x, y = num(a, "x"), num(a, "y")
    if x.dtype.kind == "i" and y.dtype.kind == "i" and a.out_dtype().startswith("int"):
        return np.floor_divide(x, np.where(y == 0, 1, y))
    return np.true_divide(x, y)


@op("floor_div", family=B)
def floor_div(a):
    x, y = num(a, "x"), num(a, "y")
    if x.dtype.kind == "i" and y.dtype.kind == "i":
        return np.floor_divide(x, np.where(y == 0, 1, y))
    return np.floor(x / y)


@op("mod", family=B)
def mod(a):
    x, y = num(a, "x"), num(a, "y")
    if x.dtype.kind == "i" and y.dtype.kind == "i":
        return np.mod(x, np.where(y == 0, 1, y))
    return x - np.floor(x / y) * y


@op("pow", family=B)
def pow_(a):
    x, y = num(a, "x"), num(a, "y")
    if x.dtype.kind == "i" and y.dtype.kind == "i":
        return np.power(x.astype(np.float64), y).astype(np.int64)
    return np.power(x, y)


def _unary(name, fn):
    op(name, family=U)(lambda a: fn(num(a, "x")))


for _n, _f in {
    "abs": np.abs, "acos": np.arccos, "asin": np.arcsin, "atan": np.arctan, "atanh": np.arctanh,
    "ceil": np.ceil, "cos": np.cos, "cosh": np.cosh, "exp": np.exp, "exp2": np.exp2, "floor": np.floor,
    "sin": np.sin, "sinh": np.sinh, "sqrt": np.sqrt, "square": np.square, "tan": np.tan,
    "round": np.round, "logical_not": np.logical_not,
}.items():
    _unary(_n, _f)


@op("sign", family=U)
def sign(a):
    x = num(a, "x")
    return np.where(np.isnan(x), 0, np.sign(x)) if x.dtype.kind == "f" else np.sign(x)  # NaN -> 0, as torch


@op("tanh", family=U)
def tanh(a):
    return np.tanh(num(a, "x"))


@op("erf", family=U)
def erf(a):
    x = num(a, "x")
    return _erf(x.astype(np.float64)).astype(np.float64) if x.size else x


@op("inverse", family=U)
def inverse(a):
    x = num(a, "x")
    return 1 / (x + np.float32(a.float("epsilon", 1e-4)))


@op("rsqrt", family=U)
def rsqrt(a):
    x = num(a, "x")
    return 1 / np.sqrt(x + np.float32(a.float("epsilon", 1e-12)))


@op("log", family=U)
def log(a):
    x = num(a, "x")
    return np.log(x + np.float32(a.float("epsilon", 1e-45)))


@op("clip", family=U)
def clip(a):
    x = num(a, "x")
    lo, hi = num(a, "alpha"), num(a, "beta")
    if x.dtype.kind != "f":
        return np.clip(x, lo, hi)
    y = np.asarray(np.maximum(x, lo))
    if y.shape != np.broadcast_shapes(y.shape, np.shape(hi)):
        return np.where(np.isnan(x), x, np.minimum(y, hi))
    np.minimum(y, hi, out=y)
    return keep_nans(y, x)


@op("threshold", family=U)
def threshold(a):
    x = num(a, "x")
    alpha = num(a, "alpha")
    return np.where(np.isnan(x), x, np.maximum(x, alpha)) if x.dtype.kind == "f" else np.maximum(x, alpha)


CAST_DTYPES = ("int32", "fp16", "fp32", "bool", "int8", "uint8", "int16", "uint16", "fp64", "int64")


@op("cast", family=U)
def cast(a):
    dt = a.str("dtype")
    if dt not in CAST_DTYPES:
        a.fail(f"cannot cast to '{dt}'")
    x = a.tensor("x")
    if dt.startswith(("int", "uint")) and x.dtype.kind == "f":
        # toward zero; MIL leaves non-finite values open: NaN -> 0, +-inf saturate (the store)
        x = x.astype(np.float64)
        return np.where(np.isnan(x), 0, np.trunc(x))
    return x
