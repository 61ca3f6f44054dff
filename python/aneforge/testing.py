"""The one tolerance policy for comparing fp16 results with float32 references
(docs/numerics.md, "Test tolerance policy").

Per element: |actual - expected| <= ulps * ulp16(expected) + floor, where ulp16(v) is the
spacing of fp16 numbers at |v| and floor = max(2^-14, floor_ulps * ulp16(max |expected|)).

- ``ulps``: the op's own rounding (one fp16 store is half an ulp; 2 allows an fp32
  computation on the other side of a rounding boundary). The reference is computed on the
  fp16-rounded inputs, so input rounding is not part of the error.
- 2^-14 is the smallest fp16 normal: results below it are flushed to zero.
- ``floor_ulps``: an absolute floor for ops whose result is a difference or sum of larger
  terms (accumulation, cancellation, a decomposition that stores intermediate terms in
  fp16): the rounding of those terms, measured in ulps of the largest result. Each case
  that sets it says why; elementwise ops leave it 0.
NaN and infinity must appear in the same places. precision="fp32" programs use
``assert_fp32_close``.
"""
from __future__ import annotations

import numpy as np

FP16_EPS = 2.0 ** -10          # ulp of 1.0
FP16_MIN_NORMAL = 2.0 ** -14


def fp16_ulp(values) -> np.ndarray:
    """Spacing of fp16 numbers at |values| (the subnormal spacing 2^-24 below 2^-14)."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.maximum(v, FP16_MIN_NORMAL)))
    return np.where(v >= FP16_MIN_NORMAL, 2.0 ** (e - 10), 2.0 ** -24)


def fp16_bound(expected, ulps=2.0, floor_ulps=0.0) -> np.ndarray:
    """The allowed error per element of ``expected``."""
    e = np.asarray(expected, dtype=np.float64)
    finite = e[np.isfinite(e)]
    top = float(np.abs(finite).max()) if finite.size else 0.0
    floor = max(FP16_MIN_NORMAL, floor_ulps * float(fp16_ulp(top)))
    return ulps * fp16_ulp(e) + floor


def _check_specials(a, e, what):
    for name, fn in (("NaN", np.isnan), ("inf", np.isposinf), ("-inf", np.isneginf)):
        if not np.array_equal(fn(a), fn(e)):
            raise AssertionError(f"{what}: {name} positions differ ({int(fn(a).sum())} vs {int(fn(e).sum())})")


def _check_bound(a, e, bound, what, how):
    m = np.isfinite(e)
    if not m.any():
        return
    with np.errstate(invalid="ignore"):
        err = np.where(m, np.abs(a - e), 0.0)
    over = err > np.where(m, bound, np.inf)
    if over.any():
        i = np.unravel_index(np.argmax(np.where(over, err / np.maximum(bound, 1e-300), -1)), a.shape)
        raise AssertionError(f"{what}: {int(over.sum())} of {a.size} elements outside {how}; worst at {i}: "
                             f"{a[i]!r} vs {e[i]!r} (error {err[i]:.3g} > bound {bound[i]:.3g})")


def assert_fp16_close(actual, expected, ulps: float = 2.0, floor_ulps: float = 0.0, what: str = "result",
                      roundings: int | None = None):
    """Assert ``actual`` (an fp16 result) matches the float32 ``expected`` per element.
    ``roundings`` (older callers) sets floor_ulps to that many ulps of the largest value."""
    if roundings is not None:
        floor_ulps = max(floor_ulps, float(roundings))
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise AssertionError(f"{what}: shape {a.shape} != expected {e.shape}")
    _check_specials(a, e, what)
    _check_bound(a, e, fp16_bound(e, ulps, floor_ulps), what, f"{ulps} ulps + floor ({floor_ulps} ulps of max)")


def assert_equivalent(a, b, ulps: float = 2.0, floor_ulps: float = 0.0, what: str = "result"):
    """Two fp16 computations of the same program (sim and mil): symmetric per-element bound
    on the larger magnitude; non-finite values in the same places."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shape {a.shape} != {b.shape}")
    _check_specials(a, b, what)
    big = np.where(np.abs(a) > np.abs(b), a, b)
    _check_bound(a, b, fp16_bound(big, ulps, floor_ulps), what, f"{ulps} ulps + floor ({floor_ulps} ulps of max)")


def assert_fp32_close(actual, expected, rtol=1e-5, atol=1e-5, what="result"):
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    _check_specials(a, e, what)
    m = np.isfinite(e)
    scale = float(np.abs(e[m]).max()) if m.any() else 1.0
    np.testing.assert_allclose(a[m], e[m], rtol=rtol, atol=atol * max(scale, 1.0), err_msg=what)


def cosine(a, b) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
