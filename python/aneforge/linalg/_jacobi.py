"""eigh and svd by Jacobi rotations, unrolled (n <= 32). Each round rotates n/2 disjoint
index pairs at once (the round-robin ordering of Brent and Luk, "The solution of singular-value
and symmetric eigenvalue problems on multiprocessor arrays", SIAM J. Sci. Stat. Comput. 6,
1985), so a round is a few matmuls with one rotation matrix J: A <- J^T A J for eigh
(two-sided), W <- W J for svd (one-sided, Hestenes 1958). A fixed number of sweeps of n - 1
rounds (n rounded up to even) is unrolled."""
from __future__ import annotations

import math

import numpy as np

from ..graph import functional as _F
from ..graph.tensor import Tensor, constant
from ._common import eye, matrix


def _rounds(n: int) -> list:
    """n - 1 (n even) rounds of n / 2 disjoint pairs covering every pair once (circle method);
    for odd n a dummy index n sits out one pair per round."""
    size = n + (n % 2)
    players = list(range(size))
    out = []
    for _ in range(size - 1):
        pairs = [(players[i], players[size - 1 - i]) for i in range(size // 2)]
        out.append([(min(p, q), max(p, q)) for p, q in pairs if p < n and q < n])
        players = [players[0], players[-1]] + players[1:-1]
    return out


def default_sweeps(n: int) -> int:
    """Sweeps unrolled by default: log2(n) + 3. Cyclic Jacobi converges quadratically once
    the angles are small, after a slower start: in float64, a matrix of condition 100 needs
    7 sweeps at n = 16 and 8 at n = 32 to orthogonalize its columns to 1e-6."""
    return math.ceil(math.log2(max(n, 2))) + 3


def _orthonormalize(v, n):
    """One Newton-Schulz step V (3 I - V^T V) / 2: the rotations' rounding leaves V about
    sqrt(rounds) x 2^-11 from orthogonal; this brings it to about 2^-11."""
    i = constant(np.eye(n, dtype=np.float32))
    return _F.matmul(v, (i * 3.0 - _F.matmul(v.transpose(-1, -2), v)) * 0.5)


def _selectors(pairs, n):
    sp = np.zeros((len(pairs), n), np.float32)
    sq = np.zeros((len(pairs), n), np.float32)
    for i, (p, q) in enumerate(pairs):
        sp[i, p], sq[i, q] = 1.0, 1.0
    return sp, sq


def _tangent(app, aqq, apq):
    """t = tan(theta) of the rotation that zeroes a_pq, with cot(2 theta) = (a_qq - a_pp) / (2 a_pq)
    and |theta| <= pi / 4; written so no intermediate overflows fp16 and a_pq = 0 gives 0."""
    num, den = apq * 2.0, aqq - app
    small = _F.abs(den) >= _F.abs(num)
    rho = num / _F.where(den == 0, 1.0, den)                   # |rho| <= 1 where used
    t_small = rho / (_F.sqrt(rho * rho + 1.0) + 1.0)
    tau = den / _F.where(num == 0, 1.0, num)                   # |tau| < 1 where used
    t_large = _F.where(tau < 0, -1.0, 1.0) / (_F.abs(tau) + _F.sqrt(tau * tau + 1.0))
    return _F.where(small, t_small, t_large)


def _rotation(t, sp, sq, n):
    """J = I with J_pp = J_qq = c, J_pq = s, J_qp = -s for each pair: one matmul of [Sp^T Sq^T]
    with the stacked rows."""
    c = _F.rsqrt(t * t + 1.0)
    s = t * c
    cm1, s = (c - 1.0).reshape(*c.shape, 1), s.reshape(*s.shape, 1)
    csp, csq = constant(sp), constant(sq)
    rows = _F.concat([cm1 * csp + s * csq, cm1 * csq - s * csp], dim=-2)             # (..., 2h, n)
    return constant(np.eye(n, dtype=np.float32)) + _F.matmul(constant(np.concatenate([sp, sq]).T.copy()), rows)


def _sort_columns(values, vectors, n, descending):
    vals, idx = _F.sort(values, dim=-1, descending=descending)
    perm = _F.one_hot(idx, n).cast(vectors.dtype)                                     # (..., n, n): row i = e_idx_i
    return vals, _F.matmul(vectors, perm.transpose(-1, -2))


def eigh(a, UPLO="L", sweeps=None) -> tuple:  # noqa: N803 - torch's name
    """(eigenvalues ascending, eigenvectors as columns) of a symmetric A (torch.linalg.eigh):
    cyclic Jacobi, ``sweeps`` (default 3 + log2 n) of n - 1 parallel rounds. The triangle
    named by ``UPLO`` is used, as torch uses it."""
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    a, _, n = matrix(a, "eigh")
    lead = tuple(a.shape[:-2])
    tri = np.tril(np.ones((n, n), np.float32), -1) if UPLO == "L" else np.triu(np.ones((n, n), np.float32), 1)
    off = a * constant(tri)
    a0 = a = off + off.transpose(-1, -2) + a * constant(np.eye(n, dtype=np.float32))  # symmetric from one triangle
    v = eye(n, lead)
    for _ in range(default_sweeps(n) if sweeps is None else int(sweeps)):
        for pairs in _rounds(n):
            sp, sq = _selectors(pairs, n)
            ap = _F.matmul(constant(sp), a)                                           # rows p
            app = _F.sum(ap * constant(sp), dim=-1)
            apq = _F.sum(ap * constant(sq), dim=-1)
            aqq = _F.sum(_F.matmul(constant(sq), a) * constant(sq), dim=-1)
            j = _rotation(_tangent(app, aqq, apq), sp, sq, n)
            a = _F.matmul(_F.matmul(j.transpose(-1, -2), a), j)
            a = (a + a.transpose(-1, -2)) * 0.5                                        # rounding leaves it unsymmetric
            v = _F.matmul(v, j)
    # The eigenvalues as Rayleigh quotients of the original A with the re-orthogonalized V:
    # the rotated A carries every round's rounding (measured 6.3e-3 of |A| at n = 32; 4.7e-4 so)
    v = _orthonormalize(v, n)
    values = _F.sum(_F.matmul(v.transpose(-1, -2), _F.matmul(a0, v)) * constant(np.eye(n, dtype=np.float32)), dim=-1)
    return _sort_columns(values, v, n, descending=False)


def eigvalsh(a, UPLO="L", sweeps=None) -> Tensor:  # noqa: N803
    """The eigenvalues of a symmetric A, ascending (torch.linalg.eigvalsh)."""
    return eigh(a, UPLO, sweeps)[0]


def svd(a, full_matrices=True, sweeps=None) -> tuple:
    """(U, S, Vh) with A = U diag(S) Vh, S descending (torch.linalg.svd): one-sided Jacobi on
    the columns of A (scaled by its largest magnitude, so no square overflows fp16), the
    rotations accumulated in V; S the rotated columns' norms, U the columns divided by them
    (a zero singular value gives a zero column of U). ``full_matrices=True`` needs a square A
    (or ``full_matrices=False``)."""
    a, m, n = matrix(a, "svd", square=False)
    if full_matrices and m != n:
        raise ValueError(f"svd: full_matrices=True needs a square A here, got {tuple(a.shape)}; pass "
                         "full_matrices=False for the reduced U (m, k) and Vh (k, n)")
    if m < n:  # A^T = V S U^T
        u, s, vh = svd(a.transpose(-1, -2), full_matrices=False, sweeps=sweeps)
        return vh.transpose(-1, -2), s, u.transpose(-1, -2)
    lead = tuple(a.shape[:-2])
    peak = _F.amax(_F.abs(a), dim=(-2, -1), keepdim=True)
    scale = _F.where(peak > 0, peak, 1.0)
    a0 = a / scale
    w, v = _one_sided(a0, eye(n, lead), n, default_sweeps(n) if sweeps is None else int(sweeps))
    v = _orthonormalize(v, n)
    # U from the rotated W: A V again would carry V's error, times the condition number, into
    # the small columns, and a QR of W (backward stable only against its largest column) too
    norms = _column_norms(w)
    s, order = _F.sort(norms, dim=-1, descending=True)
    perm = _F.one_hot(order, n).cast(w.dtype).transpose(-1, -2)
    w, v = _F.matmul(w, perm), _F.matmul(v, perm)
    u = w / _F.where(s > 0, s, 1.0).reshape(*s.shape[:-1], 1, n)
    return u, s * scale.reshape(*s.shape[:-1], 1), v.transpose(-1, -2)


def _column_norms(w):
    """|w_i| for each column, each scaled by its largest magnitude first: a small column's
    squares would otherwise fall below fp16's normal range and be flushed to zero."""
    peak = _F.amax(_F.abs(w), dim=-2, keepdim=True)
    safe = _F.where(peak > 0, peak, 1.0)
    return _F.sqrt(_F.sum((w / safe) ** 2, dim=-2)) * safe.reshape(*safe.shape[:-2], safe.shape[-1])


def _one_sided(w, v, n, sweeps):
    """(W J..., V J...): ``sweeps`` of rotations that orthogonalize W's columns (Hestenes)."""
    for _ in range(sweeps):
        for pairs in _rounds(n):
            sp, sq = _selectors(pairs, n)
            wp = _F.matmul(w, constant(sp.T.copy()))                                  # (..., m, h) columns p
            wq = _F.matmul(w, constant(sq.T.copy()))
            # each column scaled by its largest magnitude (mp, mq): the squares and products
            # of a small column would be flushed to zero. cot 2 theta = (|q|^2 - |p|^2) / (2 p.q)
            # = (r |q'|^2 - |p'|^2 / r) / (2 p'.q'), r = mq / mp, with p' = p / mp, q' = q / mq.
            mp = _F.amax(_F.abs(wp), dim=-2, keepdim=True)
            mq = _F.amax(_F.abs(wq), dim=-2, keepdim=True)
            mp, mq = _F.where(mp > 0, mp, 1.0), _F.where(mq > 0, mq, 1.0)
            pn, qn = wp / mp, wq / mq
            ratio = (mq / mp).reshape(*mq.shape[:-2], mq.shape[-1])
            alpha = _F.sum(pn * pn, dim=-2) / ratio
            beta = _F.sum(qn * qn, dim=-2) * ratio
            j = _rotation(_tangent(alpha, beta, _F.sum(pn * qn, dim=-2)), sp, sq, n)
            w, v = _F.matmul(w, j), _F.matmul(v, j)
    return w, v


def svdvals(a, sweeps=None) -> Tensor:
    """The singular values of A, descending (torch.linalg.svdvals)."""
    return svd(a, full_matrices=False, sweeps=sweeps)[1]
