"""Heat2D and GrayScott: explicit finite differences on a periodic grid. Each step's
diffusion is one 3 x 3 convolution (products accumulated in fp32, rounded once) of the
periodically padded field; the stencil's weights r and -4r are exact multiples of each
other in fp16, so a constant field stays exactly constant."""
from __future__ import annotations

import math

import numpy as np

from ..graph import functional as _F
from ..graph.tensor import constant
from ._base import Simulation, wrap_pad


def _stencil(rates) -> np.ndarray:
    """(channels, 1, 3, 3) five-point Laplacian stencils scaled by each rate (fp16-exact -4r)."""
    rates = np.asarray(rates, np.float32)
    k = np.zeros((len(rates), 1, 3, 3), np.float32)
    k[:, 0, 1, 0] = k[:, 0, 1, 2] = k[:, 0, 0, 1] = k[:, 0, 2, 1] = rates
    k[:, 0, 1, 1] = -4 * rates
    return k


def _check_grid(cls, n):
    if int(n) != n or not 4 <= n <= 4096:
        raise ValueError(f"{cls}: n={n} must be a whole number in 4..4096")
    return int(n)


def _rate(cls, what, diffusivity, dt, h):
    r = float(diffusivity) * float(dt) / (h * h)
    if not 0 <= r <= 0.25:
        raise ValueError(f"{cls}: {what} * dt / dx^2 = {r:.4g} is outside 0..0.25, where the explicit "
                         f"scheme is stable; take dt <= {0.25 * h * h / max(float(diffusivity), 1e-30):.4g}")
    return r


class Heat2D(Simulation):
    """u_t = alpha (u_xx + u_yy) on a periodic n x n grid of side ``length``: forward Euler
    with the five-point Laplacian. ``dt`` defaults to 0.2 dx^2 / alpha (stable up to 0.25).
    State: u, (n, n)."""

    state_names = ("u",)

    def __init__(self, n, alpha=1.0, dt=None, length=2 * math.pi, **kw):
        super().__init__(**kw)
        self.n = _check_grid("Heat2D", n)
        self.alpha, self.length = float(alpha), float(length)
        self.dx = self.length / self.n
        self.dt = 0.2 * self.dx ** 2 / self.alpha if dt is None else float(dt)
        self.r = _rate("Heat2D", "alpha", self.alpha, self.dt, self.dx)

    def _shapes(self):
        return {"u": (self.n, self.n)}

    def _enter(self, s):
        return {"u": s["u"].reshape(1, 1, self.n, self.n)}

    def _leave(self, s):
        return {"u": s["u"].reshape(self.n, self.n)}

    def _step(self, s):
        u = s["u"]
        return {"u": u + _F.conv2d(wrap_pad(u), constant(_stencil([self.r])))}

    def decay_per_step(self, kx: int, ky: int) -> float:
        """The factor this scheme multiplies Fourier mode (kx, ky) by each step (exact in
        real arithmetic): 1 - 4 r (sin^2(kx dx' / 2) + sin^2(ky dx' / 2)), dx' = 2 pi / n."""
        t = 2 * math.pi / self.n
        return 1 - 4 * self.r * (math.sin(kx * t / 2) ** 2 + math.sin(ky * t / 2) ** 2)


class GrayScott(Simulation):
    """The Gray-Scott reaction-diffusion system (Pearson, "Complex patterns in a simple
    system", Science 261, 1993) on a periodic n x n grid:
    u_t = Du lap(u) - u v^2 + feed (1 - u),  v_t = Dv lap(v) + u v^2 - (feed + kill) v,
    forward Euler. The defaults (grid spacing 1, dt 1; feed and kill from Pearson's spots
    that divide) grow spots from a seeded square.
    State: (u, v), each (n, n)."""

    state_names = ("u", "v")

    def __init__(self, n, Du=0.16, Dv=0.08, feed=0.0367, kill=0.0649, dt=1.0, dx=1.0, **kw):  # noqa: N803
        super().__init__(**kw)
        self.n = _check_grid("GrayScott", n)
        self.Du, self.Dv, self.feed, self.kill = float(Du), float(Dv), float(feed), float(kill)
        self.dt, self.dx = float(dt), float(dx)
        self.rates = (_rate("GrayScott", "Du", self.Du, self.dt, self.dx),
                      _rate("GrayScott", "Dv", self.Dv, self.dt, self.dx))

    def _shapes(self):
        return {"u": (self.n, self.n), "v": (self.n, self.n)}

    def seeded(self, size=None, noise=0.02, seed=0):
        """The usual start: u = 1, v = 0, but a central square of u = 0.5, v = 0.25 (Pearson),
        with a little uniform noise; returns (u, v)."""
        n = self.n
        size = max(2, n // 4) if size is None else int(size)
        u, v = np.ones((n, n), np.float32), np.zeros((n, n), np.float32)
        a = n // 2 - size // 2
        u[a:a + size, a:a + size], v[a:a + size, a:a + size] = 0.5, 0.25
        rng = np.random.default_rng(seed)
        u += noise * rng.random((n, n), dtype=np.float32)
        v += noise * rng.random((n, n), dtype=np.float32)
        return u, v

    # The program carries p = 1 - u instead of u: u rests near 1, where fp16's spacing
    # (2^-10) would round away the slow relaxation feed (1 - u) that p resolves finely.
    def _enter(self, s):
        return {"pv": _F.concat([1.0 - s["u"], s["v"]], dim=0).reshape(1, 2, self.n, self.n)}

    def _leave(self, s):
        pv = s["pv"].reshape(2, self.n, self.n)
        return {"u": 1.0 - pv[0], "v": pv[1]}

    def _step(self, s):
        pv = s["pv"]
        p, v = pv[:, 0:1], pv[:, 1:2]
        diffusion = _F.conv2d(wrap_pad(pv), constant(_stencil(self.rates)), groups=2)
        react = (1.0 - p) * v * v * self.dt
        dp = react - p * (self.feed * self.dt)
        dv = react - v * ((self.feed + self.kill) * self.dt)
        return {"pv": pv + diffusion + _F.concat([dp, dv], dim=1)}
