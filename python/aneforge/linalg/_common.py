"""Checks and constants shared by the af.linalg functions."""
from __future__ import annotations

import numpy as np

from ..graph.tensor import as_tensor, constant

MAX_N = 32  # the largest matrix unrolled (n steps of a few ops each)


def matrix(a, what, square=True, tall=False):
    """a as a float (..., m, n) tensor within the unrolled sizes; (a, m, n)."""
    a = as_tensor(a)
    if len(a.shape) < 2:
        raise ValueError(f"{what}: A must be (..., m, n), got {tuple(a.shape)}")
    m, n = a.shape[-2], a.shape[-1]
    if square and m != n:
        raise ValueError(f"{what}: A must be (..., n, n), got {tuple(a.shape)}")
    if tall and m < n:
        raise ValueError(f"{what}: A must have at least as many rows as columns, got {tuple(a.shape)}")
    if not 1 <= max(m, n) <= MAX_N:
        raise ValueError(f"{what}: n={max(m, n)} is outside 1..{MAX_N}, the sizes unrolled into a program")
    if a.dtype not in ("fp16", "fp32"):
        raise TypeError(f"{what}: A must be float, got {a.dtype}")
    return a, m, n


def mask(shape, rows=None, cols=None):
    """A 0/1 constant of ``shape`` with ones where row index in ``rows`` and column in ``cols``
    (ranges; None: all)."""
    out = np.zeros(shape, np.float32)
    r = slice(None) if rows is None else slice(*rows)
    c = slice(None) if cols is None else slice(*cols)
    out[r, c] = 1.0
    return constant(out)


def eye(n, lead=()):
    return constant(np.broadcast_to(np.eye(n, dtype=np.float32), tuple(lead) + (n, n)).copy())
