"""NBody: gravitating point masses advanced by kick-drift-kick leapfrog (symplectic, second
order). Accelerations are one batched matmul per step: a_i = sum_j G m_j s_ij^2 u_ij with
s = 1 / sqrt(r^2 + eps^2) and u = (x_j - x_i) s, so no intermediate exceeds 1 / eps^2 and
fp16 holds them while the closest pair stays farther apart than about 0.004 (or eps)."""
from __future__ import annotations

import numpy as np

from ..graph import functional as _F
from ..graph.tensor import constant
from ._base import Simulation


class NBody(Simulation):
    """N bodies of ``masses`` in ``dims`` dimensions under Newtonian gravity (constant G),
    Plummer-softened by ``softening``. State: (positions, velocities), each (N, dims)."""

    state_names = ("positions", "velocities")

    def __init__(self, masses, G=1.0, dt=1e-2, softening=0.0, dims=3, **kw):  # noqa: N803
        super().__init__(**kw)
        m = np.asarray(masses, np.float64).reshape(-1)
        if not 2 <= m.size <= 4096 or not np.isfinite(m).all() or (m < 0).any():
            raise ValueError(f"NBody: masses must be 2..4096 finite values >= 0, got {m.size} values")
        self.masses, self.G, self.dt = m, float(G), float(dt)
        self.softening, self.dims = float(softening), int(dims)
        if self.dims not in (1, 2, 3):
            raise ValueError(f"NBody: dims must be 1, 2 or 3, got {dims}")

    @property
    def n(self) -> int:
        return self.masses.size

    def _shapes(self):
        return {"positions": (self.n, self.dims), "velocities": (self.n, self.dims)}

    def _accel(self, x):
        n, d = self.n, self.dims
        diff = x.reshape(1, n, d) - x.reshape(n, 1, d)                      # (i, j, :) = x_j - x_i
        r2 = _F.sum(diff * diff, dim=-1)
        off = constant(1.0 - np.eye(n, dtype=np.float32))
        if self.softening:
            r2 = r2 + self.softening ** 2
        else:  # the diagonal's 0 would be 1/0; it is masked out below
            r2 = _F.where(constant(np.eye(n, dtype=bool)), 1.0, r2)
        s = _F.rsqrt(r2)
        w = s * s * off * constant((self.G * self.masses).astype(np.float32).reshape(1, n))
        unit = diff * s.reshape(n, n, 1)
        return _F.matmul(w.reshape(n, 1, n), unit).reshape(n, d)

    # Inside a program the state is carried as its value at the program's start plus the
    # change since: the change is small, so fp16 keeps its small increments that the value
    # itself (3 significant digits) would round away step after step.
    def _enter(self, s):
        x0, v0 = s["positions"], s["velocities"]
        zero = constant(np.zeros((self.n, self.dims), np.float32))
        return {"x0": x0, "v0": v0, "dx": zero, "dv": zero, "accel": self._accel(x0)}

    def _leave(self, s):
        return {"positions": s["x0"] + s["dx"], "velocities": s["v0"] + s["dv"]}

    def _step(self, s):
        half = 0.5 * self.dt
        dv = s["dv"] + s["accel"] * half
        dx = s["dx"] + (s["v0"] + dv) * self.dt
        a = self._accel(s["x0"] + dx)
        return {**s, "dx": dx, "dv": dv + a * half, "accel": a}

    def energy(self, state) -> float:
        """Kinetic plus potential energy of a state, in float64 on the host (softened as the
        forces are)."""
        x, v = (np.asarray(t, np.float64) for t in state)
        kinetic = 0.5 * float((self.masses[:, None] * v * v).sum())
        d = x[None, :, :] - x[:, None, :]
        r = np.sqrt((d * d).sum(-1) + self.softening ** 2)
        iu = np.triu_indices(self.n, 1)
        potential = -self.G * float((self.masses[iu[0]] * self.masses[iu[1]] / r[iu]).sum())
        return kinetic + potential
