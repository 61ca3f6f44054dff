"""How a result is stored in its MIL dtype: fp16 rounding (ties to even or away from zero,
subnormals optionally flushed, as the engine does), integer saturation, bool."""
from __future__ import annotations

import os
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .ir import FLOAT_DTYPES, INT_RANGES, NUMPY_DTYPES, MilError

_WIDENED: dict = {}  # id(read-only fp16 constant) -> (weak reference to it, its float32 copy)


# Every fp16 value widened by NumPy itself, looked up by its bits: NumPy's own cast branches
# on zeros and subnormals and ran 4x slower on activations after a ReLU.
_FP16_TO_FP32 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


def _widen(v: np.ndarray) -> np.ndarray:
    if v.dtype != np.float16:
        return v.astype(np.float32)
    return np.take(_FP16_TO_FP32, v.view(np.uint16).reshape(-1)).reshape(v.shape)  # 0-d stays an array


# Casts of large arrays run in pieces across threads (NumPy's casts release the GIL; each
# element converts alone, so the result is the one cast's). Below this many elements the
# hand-off costs more than it saves.
_SPLIT_MIN = 1 << 18
_THREADS = min(os.cpu_count() or 1, 4)
_POOL: list = [None, None]  # [pid, executor]: a forked child makes its own (threads do not fork)


def _pool():
    if _POOL[0] != os.getpid():
        _POOL[:] = [os.getpid(), ThreadPoolExecutor(_THREADS - 1, thread_name_prefix="aneforge-mil")]
    return _POOL[1]


def _cast_piece(dst, src):
    with np.errstate(over="ignore", invalid="ignore"):  # per thread: overflow to inf is the rule
        np.copyto(dst, src, casting="unsafe")


def cast(x: np.ndarray, dtype) -> np.ndarray:
    """x.astype(dtype), split across threads when x is large and contiguous."""
    if _THREADS < 2 or x.size < _SPLIT_MIN or not x.flags.c_contiguous:
        with np.errstate(over="ignore", invalid="ignore"):
            return x.astype(dtype)
    out = np.empty(x.shape, dtype)
    src, dst = x.reshape(-1), out.reshape(-1)
    cuts = [src.size * i // _THREADS for i in range(_THREADS + 1)]
    pieces = [_pool().submit(_cast_piece, dst[a:b], src[a:b]) for a, b in zip(cuts[1:-1], cuts[2:])]
    _cast_piece(dst[:cuts[1]], src[:cuts[1]])
    for p in pieces:
        p.result()
    return out


def widened(v: np.ndarray) -> np.ndarray:
    """v as float32 to compute with. A program's fp16 constants (read-only, kept for the
    interpreter's life) are widened once, not on every run: the weights of a ResNet-18 cost a
    third of each run before."""
    if v.dtype != np.float16 or v.flags.writeable:
        return _widen(v)
    key = id(v)
    hit = _WIDENED.get(key)
    if hit is not None and hit[0]() is v:
        return hit[1]
    w = _widen(v)
    w.flags.writeable = False
    _WIDENED[key] = (weakref.ref(v, lambda _, k=key: _WIDENED.pop(k, None)), w)
    return w


def to_fp16(x, ties_away: bool = False, flush_subnormals: bool = True) -> np.ndarray:
    """float values -> fp16, rounded to nearest (ties to even, or away from zero)."""
    x32 = np.asarray(x, dtype=np.float32)
    h = cast(x32, np.float16)
    with np.errstate(over="ignore", invalid="ignore"):
        if ties_away:
            # A tie lies exactly half-way between h and its neighbour away from zero; nearest-even
            # picked the even one, which may be the one nearer zero.
            away = np.nextafter(h, np.copysign(np.float16(np.inf), h))
            mid = (h.astype(np.float64) + away.astype(np.float64)) / 2
            tie = np.isfinite(h) & np.isfinite(away) & (x32.astype(np.float64) == mid) & (np.abs(away) > np.abs(h))
            h = np.where(tie, away, h)
    h = np.asarray(h, dtype=np.float16)
    if flush_subnormals:  # on the bits: NumPy's fp16 arithmetic is several times slower
        if h.base is not None or not h.flags.writeable:
            h = h.copy()
        bits = h.view(np.uint16)
        magnitude = bits & np.uint16(0x7FFF)
        magnitude -= np.uint16(1)  # zeros wrap around to 0xFFFF
        sub = magnitude < np.uint16(0x3FF)  # magnitudes 1 ... 0x3FF: the subnormals
        if sub.any():
            np.bitwise_and(bits, np.where(sub, np.uint16(0x8000), np.uint16(0xFFFF)), out=bits)
    return h


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
