"""Linear family: products accumulate in fp32 from fp16-stored operands."""
import numpy as np

from ..registry import op
from .elementwise import num

L = "linear"


@op("linear", family=L)
def linear(a):
    x, w = num(a, "x"), num(a, "weight")
    if w.ndim != 2 or x.shape[-1] != w.shape[1]:
        a.fail(f"weight {w.shape} does not match x {x.shape}")
    y = x @ w.T
    if a.has("bias"):
        y = y + num(a, "bias")
    return y


@op("matmul", family=L)
def matmul(a):
    x, y = num(a, "x"), num(a, "y")
    if a.bool("transpose_x", False):
        x = np.swapaxes(x, -1, -2) if x.ndim >= 2 else x
    if a.bool("transpose_y", False):
        y = np.swapaxes(y, -1, -2) if y.ndim >= 2 else y
    return np.matmul(x, y)


@op("einsum", family=L)
def einsum(a):
    vals = [v.astype(np.float32) if v.dtype.kind == "f" else v for v in a.tuple("values")]
    return np.einsum(a.str("equation"), *vals)
