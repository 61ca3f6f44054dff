"""PyTorch functions a user reaches for that are compositions of table ops, built here at the
call (no table entry: each becomes the ops it is made of, which the op table defines):
tensor creation (constants), masks, chunking, interpolation by mode, adaptive pooling, and the
Tensor methods ``expand``, ``masked_fill``, ``chunk`` and ``to``. tests/pytorch_table.py holds
each against torch."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .ops import OPS
from .tensor import Tensor, as_tensor, constant

_DTYPES = {"fp16": "fp16", "float16": "fp16", "half": "fp16", "fp32": "fp32", "float32": "fp32", "float": "fp32",
           "int32": "int32", "int64": "int32", "long": "int32", "int": "int32", "bool": "bool"}


def _dtype(dtype, default="fp16") -> str:
    """An af dtype from af's names, NumPy's or torch's ("torch.float16", np.float32, ...);
    64-bit integers are int32 (the engine has none wider)."""
    if dtype is None:
        return default
    key = str(np.dtype(dtype)) if isinstance(dtype, type) and issubclass(dtype, np.generic) else \
        str(dtype).replace("torch.", "")
    if key not in _DTYPES:
        raise TypeError(f"unsupported dtype {dtype!r} (fp16, fp32, int32 or bool)")
    return _DTYPES[key]


def _np(dtype: str):
    return {"fp16": np.float32, "fp32": np.float32, "int32": np.int32, "bool": np.bool_}[dtype]


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(s, numbers.Integral) and s >= 0 for s in size):
        raise ValueError(f"sizes must be non-negative ints, got {size}")
    return tuple(int(s) for s in size)


# ---- creation: constants in the program ----

def full(size, fill_value, *, dtype=None) -> Tensor:
    """A constant of ``size`` filled with ``fill_value`` (torch.full)."""
    dt = _dtype(dtype, "bool" if isinstance(fill_value, bool) else "fp16")
    return constant(np.full(_size((size,)), fill_value, _np(dt)), dt)


def zeros(*size, dtype=None) -> Tensor:
    return full(_size(size), 0, dtype=dtype)


def ones(*size, dtype=None) -> Tensor:
    return full(_size(size), 1, dtype=dtype)


def full_like(x, fill_value, *, dtype=None) -> Tensor:
    return full(tuple(x.shape), fill_value, dtype=dtype or x.dtype)


def zeros_like(x, *, dtype=None) -> Tensor:
    return full_like(x, 0, dtype=dtype)


def ones_like(x, *, dtype=None) -> Tensor:
    return full_like(x, 1, dtype=dtype)


def arange(start, end=None, step=1, *, dtype=None) -> Tensor:
    """torch.arange: int32 when start, end and step are ints (torch's int64), else fp16."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    dt = _dtype(dtype, "int32" if ints else "fp16")
    values = np.arange(start, end, step)
    if values.size == 0:
        raise ValueError(f"arange({start}, {end}, {step}) is empty; engine tensors have at least one element")
    return constant(values.astype(_np(dt)), dt)


# ---- masks and selection ----

def _triangle(x, diagonal, keep_lower):
    if len(x.shape) < 2:
        raise ValueError(f"{'tril' if keep_lower else 'triu'}: needs at least 2 dimensions, got {tuple(x.shape)}")
    r, c = x.shape[-2:]
    keep = np.tril(np.ones((r, c), bool), diagonal) if keep_lower else np.triu(np.ones((r, c), bool), diagonal)
    return OPS["where"](constant(keep, "bool"), x, 0)


def tril(x, diagonal=0) -> Tensor:
    """The lower triangle of the last two dimensions (torch.tril), the rest 0."""
    return _triangle(as_tensor(x), diagonal, True)


def triu(x, diagonal=0) -> Tensor:
    return _triangle(as_tensor(x), diagonal, False)


def masked_fill(x, mask, value) -> Tensor:
    """``value`` where ``mask`` is true, else x (torch.masked_fill; mask broadcasts)."""
    if not isinstance(mask, Tensor):
        mask = constant(np.asarray(mask, bool), "bool")
    if mask.dtype != "bool":
        raise TypeError(f"masked_fill: mask must be bool, got {mask.dtype}")
    return OPS["where"](mask, value, x)


def chunk(x, chunks: int, dim: int = 0) -> tuple:
    """torch.chunk: pieces of ceil(size / chunks) along ``dim`` (the last may be smaller, and
    there may be fewer than ``chunks``)."""
    if not isinstance(chunks, numbers.Integral) or chunks < 1:
        raise ValueError(f"chunk: chunks must be an int >= 1, got {chunks!r}")
    n = x.shape[dim]
    return tuple(OPS["split"](x, math.ceil(n / chunks), dim))


# ---- resizing and pooling ----

def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None) -> Tensor:
    """F.interpolate for 4-D inputs: "nearest" and "bilinear", by ``size`` or a whole
    ``scale_factor`` (one engine op each: upsample_* or resize_*)."""
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"interpolate: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners applies to bilinear only (as in PyTorch)")
    if scale_factor is not None:
        f = scale_factor[0] if isinstance(scale_factor, (tuple, list)) and len(set(scale_factor)) == 1 else scale_factor
        if isinstance(f, (tuple, list)) or float(f) != int(f):
            raise ValueError(f"interpolate: scale_factor must be one whole number, got {scale_factor}")
        if mode == "nearest":
            return OPS["upsample_nearest"](x, int(f))
        return OPS["upsample_bilinear"](x, int(f), align_corners=bool(align_corners))
    size = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
    if mode == "nearest":
        return OPS["resize_nearest"](x, size)
    return OPS["resize_bilinear"](x, size, align_corners=bool(align_corners))


def adaptive_avg_pool2d(x, output_size) -> Tensor:
    """F.adaptive_avg_pool2d, any output size: window i covers floor(i H / out) to
    ceil((i + 1) H / out), as PyTorch's; whole windows are one pooling op."""
    oh, ow = (output_size, output_size) if isinstance(output_size, numbers.Integral) else tuple(output_size)
    h, w = x.shape[-2:]
    oh, ow = oh or h, ow or w  # None keeps the size, as in PyTorch
    if (oh, ow) == (1, 1):
        return OPS["mean"](x, dim=(-2, -1), keepdim=True)
    if h % oh == 0 and w % ow == 0:
        return OPS["avg_pool2d"](x, (h // oh, w // ow))
    rows = []
    for i in range(oh):
        h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        cols = [OPS["mean"](x[..., h0:h1, (j * w) // ow:-(-((j + 1) * w) // ow)], dim=(-2, -1), keepdim=True)
                for j in range(ow)]
        rows.append(OPS["cat"](cols, -1))
    return OPS["cat"](rows, -2)


# ---- Tensor methods ----

def _expand(self, *sizes) -> Tensor:
    """Tensor.expand: size -1 keeps a dimension, a size-1 dimension repeats, new leading
    dimensions are added (as PyTorch; here the values are copied)."""
    sizes = _size(tuple(s if s != -1 else 0 for s in (sizes[0] if len(sizes) == 1 and isinstance(
        sizes[0], (tuple, list)) else sizes)))
    shape = tuple(self.shape)
    lead = len(sizes) - len(shape)
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes for a tensor of {len(shape)} dimensions")
    x = OPS["reshape"](self, (1,) * lead + shape) if lead else self
    full_shape = (1,) * lead + shape
    reps = []
    for s, d in zip(sizes, full_shape):
        if s in (0, d):  # -1 (kept) or the same size
            reps.append(1)
        elif d == 1:
            reps.append(s)
        else:
            raise ValueError(f"expand: dimension of size {d} cannot expand to {s} (only size-1 dimensions can)")
    return x if all(r == 1 for r in reps) else OPS["tile"](x, reps)


def _to(self, dtype) -> Tensor:
    """Tensor.to(dtype): a cast (devices do not apply: the program runs where it is compiled)."""
    dt = _dtype(dtype)
    return self if dt == self.dtype else OPS["cast"](self, dt)


def _install():
    Tensor.expand = _expand
    Tensor.masked_fill = masked_fill
    Tensor.chunk = chunk
    Tensor.to = _to


_install()

__all__ = ["full", "zeros", "ones", "full_like", "zeros_like", "ones_like", "arange", "tril", "triu", "masked_fill",
           "chunk", "interpolate", "adaptive_avg_pool2d"]
