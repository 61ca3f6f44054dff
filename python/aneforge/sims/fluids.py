"""NavierStokes2D: incompressible flow on a periodic square in vorticity form,
w_t + u . grad w = nu lap w + f, solved pseudo-spectrally: the vorticity is carried as its
rfft2 scaled by 1/n (norm="ortho": with 1/n^2 the small-scale modes fall below fp16's
normal range and are flushed to zero every step) with its rounding error kept in a second
tensor (compensated_add), the velocity comes from the stream function (psi_hat = w_hat / |k|^2), the advection term is
formed on the grid and dealiased by the 2/3 rule (Orszag 1971). Each step is Strang-split:
half a step of viscosity (Crank-Nicolson), a step of advection and forcing by the
three-stage strong-stability-preserving Runge-Kutta method (Shu and Osher 1988; stable for
advection up to a Courant number of sqrt(3), where forward Euler is never stable), half a
step of viscosity."""
from __future__ import annotations

import math

import numpy as np

from .. import fft as _fft
from ..graph.tensor import constant
from ._base import Simulation, compensated_add


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
        a = 0.25 * self.dt * self.nu * k2
        # Half a Crank-Nicolson step multiplies each mode by (1 - a) / (1 + a) = 1 - 2a / (1 + a);
        # the program subtracts w_hat * 2a / (1 + a), whose fp16 constant keeps its relative
        # precision (the factor itself, rounded next to 1, would bias every step's decay)
        self._decay = 2 * a / (1 + a)
        self._decay_twice = 1 - ((1 - a) / (1 + a)) ** 2    # two half steps, between two steps
        self._keep = keep * self.dt                         # dt times the dealiasing mask
        self._force = None
        if forcing is not None:
            f = np.asarray(forcing, np.float64)
            if f.shape != (n, n) or not np.isfinite(f).all():
                raise ValueError(f"NavierStokes2D: forcing must be a finite ({n}, {n}) array, got {f.shape}")
            self._force = (np.fft.rfft2(f, norm="ortho") * self.dt).astype(np.complex64)

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
        zero = constant(np.zeros(tuple(re.shape), np.float32))
        return {"re": re, "im": im, "re_lo": zero, "im_lo": zero, "half_step_due": False}

    def _leave(self, s):
        re, im = s["re"], s["im"]
        if s["half_step_due"]:
            re, im = self._viscous(re, im, self._decay)
        return {"vorticity": self._inverse(re, im)}

    @staticmethod
    def _viscous(re, im, decrement):
        d = constant(decrement.astype(np.float32))
        return re - re * d, im - im * d

    def _increment(self, re, im):
        """dt F(w_hat), F = f_hat - dealiased (u . grad w)_hat."""
        # i c w_hat for the four fields u = psi_y, v = -psi_x, w_x, w_y, batched on a new axis
        c = np.stack([self.ky * self._inv_k2, -self.kx * self._inv_k2, self.kx, self.ky]).astype(np.float32)
        c = constant(c)
        fields = self._inverse(im.reshape(1, *im.shape) * -1.0 * c, re.reshape(1, *re.shape) * c)   # (4, n, n)
        nr, ni = self._forward(fields[0] * fields[2] + fields[1] * fields[3])
        keep = constant(self._keep.astype(np.float32))
        dr, di = nr * -1.0 * keep, ni * -1.0 * keep
        if self._force is not None:
            dr, di = dr + constant(self._force.real.copy()), di + constant(self._force.imag.copy())
        return dr, di

    def _step(self, s):
        re, im = s["re"], s["im"]
        # the half viscous step that ends one step and the one that starts the next, as one
        d = constant((self._decay_twice if s["half_step_due"] else self._decay).astype(np.float32))
        vr, vi = re * d, im * d
        wr, wi = re - vr, im - vi
        # SSP-RK3 in increments: (k1 + k2 + 4 k3) / 6, each stage's state only an argument of F
        k1r, k1i = self._increment(wr, wi)
        k2r, k2i = self._increment(wr + k1r, wi + k1i)
        k3r, k3i = self._increment(wr + (k1r + k2r) * 0.25, wi + (k1i + k2i) * 0.25)
        inc_r = (k1r + k2r) * (1.0 / 6.0) + k3r * (2.0 / 3.0) - vr
        inc_i = (k1i + k2i) * (1.0 / 6.0) + k3i * (2.0 / 3.0) - vi
        re, re_lo = compensated_add(re, s["re_lo"], inc_r)
        im, im_lo = compensated_add(im, s["im_lo"], inc_i)
        return {"re": re, "im": im, "re_lo": re_lo, "im_lo": im_lo, "half_step_due": True}

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
