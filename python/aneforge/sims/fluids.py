"""NavierStokes2D: incompressible flow on a periodic square in vorticity form,
w_t + u . grad w = nu lap w + f, solved pseudo-spectrally: the vorticity is carried as its
rfft2 scaled by 1/n (norm="ortho": with 1/n^2 the small-scale modes fell below fp16's
normal range and were flushed to zero every step, 8x the error after 50 steps),
the velocity comes from the stream function (psi_hat = w_hat / |k|^2), the advection term is
formed on the grid and dealiased by the 2/3 rule (Orszag 1971), and each step is
Crank-Nicolson for viscosity with the advection explicit (forward Euler)."""
from __future__ import annotations

import math

import numpy as np

from .. import fft as _fft
from ..graph import functional as _F
from ..graph.tensor import constant
from ._base import Simulation


class NavierStokes2D(Simulation):
    """2-D incompressible Navier-Stokes on [0, length)^2, periodic, n x n grid (rows y,
    columns x). ``forcing``: None or an (n, n) array f added to dw/dt. State: the vorticity
    w, (n, n); ``velocity(w)`` gives (u, v) on the host."""

    state_names = ("vorticity",)

    def __init__(self, n, nu=1e-3, dt=1e-2, forcing=None, length=2 * math.pi, **kw):
        super().__init__(**kw)
        if int(n) != n or not 8 <= n <= 1024 or n % 2:
            raise ValueError(f"NavierStokes2D: n={n} must be even and in 8..1024")
        self.n, self.nu, self.dt, self.length = int(n), float(nu), float(dt), float(length)
        n, m = self.n, self.n // 2 + 1
        k = 2 * math.pi / self.length
        self.ky = (np.fft.fftfreq(n, 1.0 / n) * k)[:, None] * np.ones((1, m))   # rows: fft along y
        self.kx = (np.arange(m) * k)[None, :] * np.ones((n, 1))                  # columns: rfft along x
        k2 = self.kx ** 2 + self.ky ** 2
        self._inv_k2 = np.where(k2 > 0, 1.0 / np.where(k2 > 0, k2, 1.0), 0.0)
        keep = (np.abs(np.fft.fftfreq(n, 1.0 / n))[:, None] < n / 3) & (np.arange(m)[None, :] < n / 3)
        a = 0.5 * self.dt * self.nu * k2
        # Crank-Nicolson multiplies each mode by (1 - a) / (1 + a) = 1 - 2a / (1 + a); the
        # program subtracts w_hat * 2a / (1 + a), whose fp16 constant keeps its relative
        # precision (the factor itself, rounded next to 1, would bias every step's decay)
        self._decay = 2 * a / (1 + a)
        self._push = keep * self.dt / (1 + a)               # the explicit terms' factor, dealiased
        self._force = None
        if forcing is not None:
            f = np.asarray(forcing, np.float64)
            if f.shape != (n, n) or not np.isfinite(f).all():
                raise ValueError(f"NavierStokes2D: forcing must be a finite ({n}, {n}) array, got {f.shape}")
            fh = np.fft.rfft2(f, norm="ortho")
            self._force = (fh * self.dt / (1 + a)).astype(np.complex64)

    def _shapes(self):
        return {"vorticity": (self.n, self.n)}

    def _forward(self, w):
        re, im = _fft.rfft(w, dim=-1, norm="ortho")
        return _fft.fft(re, im, dim=-2, norm="ortho")

    def _inverse(self, re, im):
        re, im = _fft.ifft(re, im, dim=-2, norm="ortho")
        return _fft.irfft(re, im, n=self.n, dim=-1, norm="ortho")

    def _enter(self, s):
        re, im = self._forward(s["vorticity"])
        return {"re": re, "im": im}

    def _leave(self, s):
        return {"vorticity": self._inverse(s["re"], s["im"])}

    def _step(self, s):
        re, im = s["re"], s["im"]
        # i c w_hat for the four fields u = psi_y, v = -psi_x, w_x, w_y, batched on a new axis
        c = np.stack([self.ky * self._inv_k2, -self.kx * self._inv_k2, self.kx, self.ky]).astype(np.float32)
        c = constant(c)
        fields = self._inverse(im.reshape(1, *im.shape) * -1.0 * c, re.reshape(1, *re.shape) * c)   # (4, n, n)
        advect = fields[0] * fields[2] + fields[1] * fields[3]
        nr, ni = self._forward(advect)
        decay, push = constant(self._decay.astype(np.float32)), constant(self._push.astype(np.float32))
        re, im = re - (re * decay + nr * push), im - (im * decay + ni * push)
        if self._force is not None:
            re, im = re + constant(self._force.real.copy()), im + constant(self._force.imag.copy())
        return {"re": re, "im": im}

    def velocity(self, vorticity):
        """(u, v) of a vorticity field, on the host in float64 (u = psi_y, v = -psi_x)."""
        wh = np.fft.rfft2(np.asarray(vorticity, np.float64))
        u = np.fft.irfft2(1j * self.ky * self._inv_k2 * wh, s=(self.n, self.n))
        v = np.fft.irfft2(-1j * self.kx * self._inv_k2 * wh, s=(self.n, self.n))
        return u, v

    @staticmethod
    def taylor_green(n, amplitude=1.0, length=2 * math.pi):
        """The Taylor-Green vortex's vorticity 2 A sin(x) sin(y) on the grid (for length 2 pi):
        an exact solution that decays as exp(-2 nu t) and keeps its shape."""
        x = np.arange(n) * (length / n) * (2 * math.pi / length)
        return (2 * amplitude * np.sin(x)[None, :] * np.sin(x)[:, None]).astype(np.float32)
