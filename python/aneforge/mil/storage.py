"""How a result is stored in its MIL dtype: fp16 rounding (ties to even or away from zero,
subnormals optionally flushed, as the engine does), integer saturation, bool."""
from __future__ import annotations

import weakref

import numpy as np

from .ir import FLOAT_DTYPES, INT_RANGES, NUMPY_DTYPES, MilError

FP16_MIN_NORMAL = 2.0 ** -14


_WIDENED: dict = {}  # id(read-only fp16 constant) -> (weak reference to it, its float32 copy)


def widened(v: np.ndarray) -> np.ndarray:
    """v as float32 to compute with. A program's fp16 constants (read-only, kept for the
    interpreter's life) are widened once, not on every run: the weights of a ResNet-18 cost a
    third of each run before."""
    if v.dtype != np.float16 or v.flags.writeable:
        return v.astype(np.float32)
    key = id(v)
    hit = _WIDENED.get(key)
    if hit is not None and hit[0]() is v:
        return hit[1]
    w = v.astype(np.float32)
    w.flags.writeable = False
    _WIDENED[key] = (weakref.ref(v, lambda _, k=key: _WIDENED.pop(k, None)), w)
    return w


def to_fp16(x, ties_away: bool = False, flush_subnormals: bool = True) -> np.ndarray:
    """float values -> fp16, rounded to nearest (ties to even, or away from zero)."""
    x32 = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        h = x32.astype(np.float16)
        if ties_away:
            # A tie lies exactly half-way between h and its neighbour away from zero; nearest-even
            # picked the even one, which may be the one nearer zero.
            away = np.nextafter(h, np.copysign(np.float16(np.inf), h))
            mid = (h.astype(np.float64) + away.astype(np.float64)) / 2
            tie = np.isfinite(h) & np.isfinite(away) & (x32.astype(np.float64) == mid) & (np.abs(away) > np.abs(h))
            h = np.where(tie, away, h)
    if flush_subnormals:
        sub = (h != 0) & (np.abs(h) < FP16_MIN_NORMAL)
        if sub.any():
            h = np.where(sub, np.copysign(np.float16(0), h), h)
    return np.asarray(h, dtype=np.float16)


class Storage:
    """The numerics of stores: the same switches as the simulator's (docs/numerics.md)."""

    def __init__(self, ties_away: bool = False, flush_subnormals: bool = True):
        self.ties_away = ties_away
        self.flush_subnormals = flush_subnormals

    def store(self, value, dtype: str, where: str) -> np.ndarray:
        if dtype == "string":
            if not isinstance(value, str):
                raise MilError(f"{where}: expected a string, got {type(value).__name__}")
            return value
        if dtype not in NUMPY_DTYPES:
            raise MilError(f"{where}: dtype '{dtype}' is not supported")
        a = np.asarray(value)
        if dtype == "fp16":
            return to_fp16(a, self.ties_away, self.flush_subnormals)
        if dtype in FLOAT_DTYPES:
            with np.errstate(over="ignore", invalid="ignore"):
                return a.astype(NUMPY_DTYPES[dtype])
        if dtype == "bool":
            return a.astype(np.bool_)
        if a.dtype.kind == "f":
            a = np.trunc(np.where(np.isnan(a), 0, a))
        lo, hi = INT_RANGES.get(dtype, (np.iinfo(NUMPY_DTYPES[dtype]).min, np.iinfo(NUMPY_DTYPES[dtype]).max))
        return np.clip(a.astype(np.float64) if a.dtype.kind == "f" else a.astype(np.int64), lo, hi).astype(NUMPY_DTYPES[dtype])
