"""Factorizations unrolled into a program (n <= 32): Cholesky, LU with partial pivoting,
Householder QR, triangular solves and least squares. Every dot product that forms an entry
is one matmul (summed in fp32, rounded once), as in ``solve``."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..graph import functional as _F
from ..graph.tensor import Tensor, as_tensor, constant
from ._common import eye, mask, matrix


def cholesky(a, upper=False) -> Tensor:
    """L lower triangular with A = L L^T (torch.linalg.cholesky), column by column: column k is
    (a_k - L[:, :k] L[k, :k]^T) / sqrt(its pivot), the subtraction one matmul. A matrix that is
    not positive definite gives NaN (torch raises; a program cannot look at its values)."""
    a, _, n = matrix(a, "cholesky")
    lead = tuple(a.shape[:-2])
    low = None
    for k in range(n):
        ak = a[..., :, k:k + 1]
        if low is None:
            v = ak
        else:  # a_k - L L[k]^T as [a_k, L] @ [1; -L[k]^T]
            one = constant(np.ones(lead + (1, 1), np.float32))
            v = _F.matmul(_F.concat([ak, low], dim=-1), _F.concat([one, low[..., k:k + 1, :].transpose(-1, -2) * -1.0],
                                                                   dim=-2))
        d = _F.sqrt(v[..., k:k + 1, :])
        col = v / d * mask((n, 1), rows=(k + 1, n)) + d * mask((n, 1), rows=(k, k + 1))
        low = col if low is None else _F.concat([low, col], dim=-1)
    return low.transpose(-1, -2) if upper else low


def solve_triangular(a, b, *, upper, left=True, unitriangular=False) -> Tensor:
    """X with A X = B (or X A = B, ``left=False``) for triangular A (torch.linalg.solve_triangular):
    substitution row by row, each row's sum one matmul."""
    a, _, n = matrix(a, "solve_triangular")
    b = as_tensor(b)
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return solve_triangular(a.transpose(-1, -2), b.transpose(-1, -2), upper=not upper,
                                unitriangular=unitriangular).transpose(-1, -2)
    if len(b.shape) < 2 or b.shape[-2] != n:
        raise ValueError(f"solve_triangular: B {tuple(b.shape)} must be (..., {n}, k) for A {tuple(a.shape)}")
    lead = tuple(a.shape[:-2])
    one = constant(np.ones(lead + (1, 1), np.float32))
    order = range(n - 1, -1, -1) if upper else range(n)
    rows: dict = {}
    for i in order:
        done = sorted(rows)                       # the rows of X found so far
        bi = b[..., i:i + 1, :]
        if done:  # b_i - A[i, done] X[done] as [1, A[i, done]] @ [b_i; -X[done]], rounded once
            coef = _F.concat([one] + [a[..., i:i + 1, j:j + 1] for j in done], dim=-1)
            bi = _F.matmul(coef, _F.concat([bi] + [rows[j] * -1.0 for j in done], dim=-2))
        rows[i] = bi if unitriangular else bi / a[..., i:i + 1, i:i + 1]
    return _F.concat([rows[i] for i in range(n)], dim=-2)


def lu(a, *, pivot=True):
    """(P, L, U) with A = P L U (torch.linalg.lu): Gaussian elimination with partial pivoting,
    each pivot picked in the program (argmax of the column's magnitudes, a row swap as a
    matmul); L has a unit diagonal. A singular A gives inf or NaN in L."""
    if not pivot:
        raise ValueError("lu: pivot=False is not supported (elimination without pivoting is unstable in fp16)")
    a, _, n = matrix(a, "lu")
    lead = tuple(a.shape[:-2])
    m, perm = a, eye(n, lead)
    e = np.eye(n, dtype=np.float32)
    for k in range(n):
        if k < n - 1:
            below = np.zeros((n, 1), np.float32)
            below[k:] = 1.0
            mag = _F.abs(m[..., :, k:k + 1]) * constant(below) - constant(1.0 - below)
            p = _F.one_hot(_F.argmax(mag, dim=-2), n).cast(m.dtype)                  # (..., 1, n)
            u = constant(e[k:k + 1]) - p
            swap = constant(e) - _F.matmul(u.transpose(-1, -2), u)
            m, perm = _F.matmul(swap, m), _F.matmul(swap, perm)
        if k == n - 1:
            break
        piv = m[..., k:k + 1, k:k + 1]
        low = m[..., :, k:k + 1] / piv * mask((n, 1), rows=(k + 1, n))              # multipliers
        m = m - _F.matmul(low, m[..., k:k + 1, :] * mask((1, n), cols=(k + 1, n)))
        m = m * (1.0 - mask((n, n), rows=(k + 1, n), cols=(k, k + 1))) + low * mask((1, n), cols=(k, k + 1))
    lower = m * constant(np.tril(np.ones((n, n), np.float32), -1)) + constant(e)
    upper = m * constant(np.triu(np.ones((n, n), np.float32)))
    return perm.transpose(-1, -2), lower, upper


def qr(a, mode="reduced"):
    """(Q, R) with A = Q R (torch.linalg.qr) for A (..., m, n), m >= n: Householder
    reflections with LAPACK's signs (R_kk = -sign(a_kk) |column|, no reflection where the
    column below the diagonal is already zero), A scaled by its largest magnitude first so no
    square overflows fp16. ``mode``: "reduced" (Q (m, n)), "complete" (Q (m, m)) or "r"
    (Q is None)."""
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    a, m, n = matrix(a, "qr", square=False, tall=True)
    lead = tuple(a.shape[:-2])
    peak = _F.amax(_F.abs(a), dim=(-2, -1), keepdim=True)
    scale = _F.where(peak > 0, peak, 1.0)
    r = a / scale
    q = eye(m, lead)
    for k in range(min(m - 1, n)):
        x = r[..., :, k:k + 1] * mask((m, 1), rows=(k, m))
        alpha = x[..., k:k + 1, :]
        below = x * mask((m, 1), rows=(k + 1, m))
        sb = _F.matmul(below.transpose(-1, -2), below)                               # |below|^2, fp32 sum
        norm = _F.sqrt(alpha * alpha + sb)
        beta = _F.where(alpha < 0, 1.0, -1.0) * norm
        v = x - beta * mask((m, 1), rows=(k, k + 1))
        vtv = _F.matmul(v.transpose(-1, -2), v)
        tau2 = _F.where(sb > 0, 2.0 / _F.where(vtv > 0, vtv, 1.0), 0.0)              # 0: H = I
        r = r - _F.matmul(v, _F.matmul(v.transpose(-1, -2), r) * tau2)
        q = q - _F.matmul(_F.matmul(q, v) * tau2, v.transpose(-1, -2))
    r = r * constant(np.triu(np.ones((m, n), np.float32))) * scale
    if mode == "r":  # torch gives an empty Q; a graph has no empty tensors
        return None, r[..., :n, :]
    if mode == "complete":
        return q, r
    return q[..., :, :n], r[..., :n, :]


LstsqResult = namedtuple("LstsqResult", ["solution", "residuals", "rank", "singular_values"])


def lstsq(a, b, rcond=None, *, driver=None) -> LstsqResult:
    """The least-squares solution of A X = B (torch.linalg.lstsq) for full-rank A (..., m, n),
    m >= n: Householder QR, X = R^-1 Q^T B by back substitution, then one refinement with the
    residual B - A X summed in fp32. ``residuals`` are the squared residual norms when m > n
    (as torch's; None for a square A, where torch gives an empty tensor), ``rank`` and
    ``singular_values`` None. The error grows as cond(A)^2 for a B outside A's range (the
    least-squares problem's own sensitivity to A's fp16 rounding): docs/science.md."""
    a, m, n = matrix(a, "lstsq", square=False, tall=True)
    b = as_tensor(b)
    vector = len(b.shape) == len(a.shape) - 1
    rhs = b.reshape(*b.shape, 1) if vector else b
    if rhs.shape[-2] != m:
        raise ValueError(f"lstsq: B {tuple(b.shape)} does not match A {tuple(a.shape)}")
    q, r = qr(a)

    def back(y):
        return solve_triangular(r, _F.matmul(q.transpose(-1, -2), y), upper=True)
    x = back(rhs)
    k = rhs.shape[-1]
    minus_eye = constant(np.broadcast_to(-np.eye(k, dtype=np.float32), tuple(x.shape[:-2]) + (k, k)).copy())
    res = _F.matmul(_F.concat([a, rhs], dim=-1), _F.concat([x, minus_eye], dim=-2))   # A x - b, rounded once
    x = x - back(res)
    res = _F.matmul(_F.concat([a, rhs], dim=-1), _F.concat([x, minus_eye], dim=-2))
    residuals = _F.sum(res * res, dim=-2) if m > n else None   # torch: an empty tensor
    if vector:
        x = x.reshape(*x.shape[:-1])
        residuals = residuals.reshape(*residuals.shape[:-1]) if residuals is not None else None
    return LstsqResult(x, residuals, None, None)
