"""The one tolerance policy for comparing fp16 results with float32 references.

An fp16 value carries a relative rounding error of at most 2**-11. A result that went
through ``roundings`` fp16 stores (inputs, weights, intermediate results) is compared
norm-wise: every element must lie within ``roundings * 2**-10 * scale`` of the reference,
where ``scale`` is the largest magnitude in the reference (so cancellation near zero does
not fail a correct result). NaN and infinity must appear in the same places.
precision="fp32" programs use ``fp32_close``.
"""
from __future__ import annotations

import numpy as np

FP16_EPS = 2.0 ** -10


def fp16_atol(expected, roundings: int = 3) -> float:
    e = np.asarray(expected, dtype=np.float64)
    finite = e[np.isfinite(e)]
    scale = float(np.abs(finite).max()) if finite.size else 1.0
    return roundings * FP16_EPS * max(scale, 1e-3)


def _check_specials(a, e, what):
    for name, fn in (("NaN", np.isnan), ("inf", np.isposinf), ("-inf", np.isneginf)):
        if not np.array_equal(fn(a), fn(e)):
            raise AssertionError(f"{what}: {name} positions differ ({int(fn(a).sum())} vs {int(fn(e).sum())})")


def assert_fp16_close(actual, expected, roundings: int = 3, what: str = "result"):
    """Assert ``actual`` (an fp16-simulated result) matches the float32 ``expected``."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise AssertionError(f"{what}: shape {a.shape} != expected {e.shape}")
    _check_specials(a, e, what)
    m = np.isfinite(e)
    if not m.any():
        return
    err = float(np.abs(a[m] - e[m]).max())
    tol = fp16_atol(e, roundings)
    if err > tol:
        i = np.unravel_index(np.argmax(np.where(m, np.abs(a - e), -1)), a.shape)
        raise AssertionError(f"{what}: max error {err:.3g} > fp16 tolerance {tol:.3g} "
                             f"({roundings} roundings); worst at {i}: {a[i]} vs {e[i]}")


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
