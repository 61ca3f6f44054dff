"""solve, inv, det, slogdet and norm (n <= 32).

``inv`` and ``solve`` run Gauss-Jordan elimination with partial pivoting: at each column the
row of largest magnitude is found in the program (argmax, one-hot) and swapped in by a
matmul. ``solve`` eliminates once (for A^-1), then refines A^-1 b: the residual b - A x is one matmul of [A, b]
with [x, -1], accumulated in fp32 and rounded once, so it keeps its own relative precision
however small it is, and each step shrinks the error by about cond(A) x 5e-4.
docs/science.md tables the measured error against condition number.
"""
from __future__ import annotations

import numpy as np

from ..graph import functional as _F
from ..graph.tensor import Tensor, as_tensor, constant
from ._common import matrix

def _square(a, what):
    a, _, n = matrix(a, what)
    return a, n


def _gauss_jordan(a, rhs, n):
    """[A | rhs] reduced to [I | A^-1 rhs] with partial pivoting; returns A^-1 rhs."""
    m = _F.concat([a, rhs], dim=-1)
    eye = np.eye(n, dtype=np.float32)
    for k in range(n):
        col = m[..., :, k:k + 1]                                           # (..., n, 1)
        below = np.zeros((n, 1), np.float32)
        below[k:] = 1.0
        mag = _F.abs(col) * constant(below) - constant(1.0 - below)        # rows above k never win
        p = _F.one_hot(_F.argmax(mag, dim=-2), n).cast(m.dtype)            # (..., 1, n): e_p
        u = constant(eye[k:k + 1]) - p                                     # e_k - e_p
        swap = constant(eye) - _F.matmul(u.transpose(-1, -2), u)           # I - u u^T swaps rows k and p
        m = _F.matmul(swap, m)
        pivot_row = m[..., k:k + 1, :] / m[..., k:k + 1, k:k + 1]          # row k scaled to a unit pivot
        factors = m[..., :, k:k + 1] - constant(eye[:, k:k + 1])           # column k, minus 1 at the pivot
        m = m - factors * pivot_row                                        # clears column k but the pivot
    return m[..., :, n:]


def inv(a) -> Tensor:
    """A^-1 (torch.linalg.inv) for (..., n, n), n <= 32."""
    a, n = _square(a, "inv")
    lead = tuple(a.shape[:-2])
    return _gauss_jordan(a, constant(np.broadcast_to(np.eye(n, dtype=np.float32), lead + (n, n)).copy()), n)


def solve(a, b, refine=3) -> Tensor:
    """x with A x = b (torch.linalg.solve), b (..., n) or (..., n, k), then ``refine`` steps
    of iterative refinement with residuals accumulated in fp32."""
    a, n = _square(a, "solve")
    b = as_tensor(b)
    vector = len(b.shape) == len(a.shape) - 1
    rhs = b.reshape(*b.shape, 1) if vector else b
    if tuple(rhs.shape[-2:-1]) != (n,):
        raise ValueError(f"solve: b {tuple(b.shape)} does not match A {tuple(a.shape)}")
    if not refine:
        return _squeeze(_gauss_jordan(a, rhs, n), vector)
    ainv = inv(a)  # one elimination: the first answer and every correction use it
    x = _F.matmul(ainv, rhs)
    k = rhs.shape[-1]
    minus_eye = constant(np.broadcast_to(-np.eye(k, dtype=np.float32), tuple(x.shape[:-2]) + (k, k)).copy())
    for _ in range(int(refine)):
        # A x - b in one matmul, [A, b] @ [x; -I]: accumulated in fp32, rounded once
        r = _F.matmul(_F.concat([a, rhs], dim=-1), _F.concat([x, minus_eye], dim=-2))
        x = x - _F.matmul(ainv, r)
    return _squeeze(x, vector)


def _squeeze(x, vector):
    return x.reshape(*x.shape[:-1]) if vector else x


def slogdet(a) -> tuple:
    """(sign, log|det A|) (torch.linalg.slogdet) for (..., n, n), n <= 32: elimination with
    partial pivoting, the signs and log magnitudes of the pivots summed, each row swap
    flipping the sign. Use it where det itself leaves fp16's range."""
    a, n = _square(a, "slogdet")
    m = a
    eye = np.eye(n, dtype=np.float32)
    sign, logabs = None, None
    for k in range(n):
        col = m[..., :, k:k + 1]
        below = np.zeros((n, 1), np.float32)
        below[k:] = 1.0
        mag = _F.abs(col) * constant(below) - constant(1.0 - below)
        p = _F.one_hot(_F.argmax(mag, dim=-2), n).cast(m.dtype)
        u = constant(eye[k:k + 1]) - p
        flip = 1.0 - _F.sum(u * u, dim=-1, keepdim=True)                  # -1 when rows moved, else 1
        m = _F.matmul(constant(eye) - _F.matmul(u.transpose(-1, -2), u), m)
        piv = m[..., k:k + 1, k:k + 1]
        s_k = _F.where(piv < 0, -1.0, 1.0) * flip
        l_k = _F.log(_F.abs(piv))
        sign = s_k if sign is None else sign * s_k
        logabs = l_k if logabs is None else logabs + l_k
        below_k = np.zeros((n, 1), np.float32)
        below_k[k + 1:] = 1.0
        m = m - m[..., :, k:k + 1] / piv * constant(below_k) * m[..., k:k + 1, :]
    lead = tuple(sign.shape[:-2])
    return sign.reshape(lead), logabs.reshape(lead)


def det(a) -> Tensor:
    """det(A) (torch.linalg.det) = sign * exp(log|det|) from slogdet: 0 (or inf) where the
    determinant is outside fp16's range, as the engine would store it."""
    sign, logabs = slogdet(a)
    return sign * _F.exp(logabs)


def norm(x, ord=None, dim=None, keepdim=False) -> Tensor:  # noqa: A002 - torch's name
    """The 2-norm of a vector or the Frobenius norm (torch.linalg.norm with ord=None), over
    ``dim`` (default all): scaled by the largest magnitude first, so no square overflows fp16."""
    if ord not in (None, 2, "fro"):
        raise ValueError(f"norm: ord={ord!r} is not supported (None, 2 for vectors, 'fro')")
    x = as_tensor(x)
    peak = _F.max(_F.abs(x), dim=dim, keepdim=True)
    safe = _F.where(peak > 0, peak, 1.0)
    out = _F.sqrt(_F.sum((x / safe) ** 2, dim=dim, keepdim=True)) * safe
    if keepdim:
        return out
    return out.reshape(()) if dim is None else _F.sum(out, dim=dim)



