"""af.linalg, af.dsp and af.sims on the sim beside SciPy / NumPy doing the same work, in one
process with the same threads, alternating pairs, median of the per-pair ratios.

    python benchmarks/science.py

Linear algebra: a batch of 64 matrices per call (SciPy / NumPy's LAPACK, float64, looped or
batched as NumPy batches). Filters: 8 signals of one second at 16 kHz (44.1 kHz for
resample) against scipy.signal. Simulations: the same schemes written in NumPy float64 (the
references the tests check against), the same steps per call. Every af program is compiled
for the default target, so it is checked against that target's limits.
"""
import math

import numpy as np
import scipy.linalg
import scipy.signal

import aneforge as af
from _timing import paired


def conditioned(n, cond, rng, batch):
    out = []
    for _ in range(batch):
        q1, _ = np.linalg.qr(rng.standard_normal((n, n)))
        q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
        out.append((q1 * np.geomspace(math.sqrt(cond), 1 / math.sqrt(cond), n)) @ q2.T)
    return np.stack(out).astype(np.float32)


def linalg_cases(rng):
    B = 64
    for n in (8, 32):
        A = conditioned(n, 100, rng, B)
        half = conditioned(n, 10, rng, B)
        S = np.einsum("bij,bkj->bik", half, half).astype(np.float32)     # positive definite, condition 100
        b = rng.standard_normal((B, n)).astype(np.float32)
        a, s, bb = af.input(A.shape, name="a"), af.input(S.shape, name="s"), af.input(b.shape, name="b")
        A64, S64, b64 = A.astype(np.float64), S.astype(np.float64), b.astype(np.float64)
        yield f"solve {B} x {n}x{n}", af.compile(af.linalg.solve(a, bb)), dict(a=A, b=b), \
            lambda: np.linalg.solve(A64, b64[..., None])
        yield f"cholesky {B} x {n}x{n}", af.compile(af.linalg.cholesky(s)), dict(s=S), lambda: np.linalg.cholesky(S64)
        yield f"qr {B} x {n}x{n}", af.compile(af.linalg.qr(a)), dict(a=A), lambda: np.linalg.qr(A64)
        yield f"eigh {B} x {n}x{n}", af.compile(af.linalg.eigh(s)), dict(s=S), lambda: np.linalg.eigh(S64)
        yield f"svd {B} x {n}x{n}", af.compile(af.linalg.svd(a)), dict(a=A), lambda: np.linalg.svd(A64)
        yield f"lu {B} x {n}x{n} (SciPy, looped)", af.compile(af.linalg.lu(a)), dict(a=A), \
            lambda: [scipy.linalg.lu(m) for m in A64]


def dsp_cases(rng):
    x = rng.standard_normal((8, 16000)).astype(np.float32)
    x64 = x.astype(np.float64)
    a = af.input(x.shape, name="x")
    taps = scipy.signal.firwin(101, 0.3)
    yield "fir 101 taps, 8 x 16000", af.compile(af.dsp.fir(a, taps)), dict(x=x), \
        lambda: scipy.signal.lfilter(taps, [1.0], x64, axis=-1)
    sos = scipy.signal.butter(8, [0.1, 0.3], "bandpass", output="sos")
    yield "iir Butterworth order 8, 8 x 16000", af.compile(af.dsp.iir(a, sos)), dict(x=x), \
        lambda: scipy.signal.sosfilt(sos, x64, axis=-1)
    w = af.dsp.hann_window(400)
    yield "stft 400 / 160, 8 x 16000", af.compile(af.dsp.stft(a, 400, hop_length=160, window=w)), dict(x=x), \
        lambda: scipy.signal.stft(x64, nperseg=400, noverlap=240, window=w.astype(np.float64), boundary="even")
    y = rng.standard_normal((8, 44100)).astype(np.float32)
    ya = af.input(y.shape, name="y")
    yield "resample 44.1 -> 16 kHz, 8 x 44100 (scipy resample_poly)", af.compile(af.dsp.resample(ya, 44100, 16000)), \
        dict(y=y), lambda: scipy.signal.resample_poly(y.astype(np.float64), 160, 441, axis=-1)


def _lap(a):
    return np.roll(a, 1, -1) + np.roll(a, -1, -1) + np.roll(a, 1, -2) + np.roll(a, -1, -2) - 4 * a


def sims_cases(rng):
    steps = 32
    h = af.sims.Heat2D(256)
    u = rng.standard_normal((256, 256)).astype(np.float32)

    def heat_ref():
        v = u.astype(np.float64)
        for _ in range(steps):
            v = v + h.r * _lap(v)
        return v
    yield f"Heat2D 256 x 256, {steps} steps", h.program(steps)[0], dict(u=u), heat_ref
    g = af.sims.GrayScott(256)
    gu, gv = g.seeded()

    def gs_ref():
        p, q = gu.astype(np.float64), gv.astype(np.float64)
        for _ in range(steps):
            r = p * q * q
            p, q = p + g.Du * _lap(p) - r + g.feed * (1 - p), q + g.Dv * _lap(q) + r - (g.feed + g.kill) * q
        return p, q
    yield f"GrayScott 256 x 256, {steps} steps", g.program(steps)[0], dict(u=gu, v=gv), gs_ref
    ns = af.sims.NavierStokes2D(128, nu=1e-3, dt=0.01)
    w = rng.standard_normal((128, 128)).astype(np.float32)
    k = np.fft.fftfreq(128, 1 / 128)
    kx, ky = k[None, :], k[:, None]
    k2 = kx ** 2 + ky ** 2
    inv = np.where(k2 > 0, 1 / np.where(k2 > 0, k2, 1), 0)
    keep = (np.abs(kx) < 128 / 3) & (np.abs(ky) < 128 / 3)
    damp = (1 - 0.25 * ns.dt * ns.nu * k2) / (1 + 0.25 * ns.dt * ns.nu * k2)

    def rhs(wh):
        u_ = np.fft.irfft2(1j * ky[:, :65] * inv[:, :65] * wh, s=(128, 128))
        v_ = np.fft.irfft2(-1j * kx[:, :65] * inv[:, :65] * wh, s=(128, 128))
        wx, wy = np.fft.irfft2(1j * kx[:, :65] * wh, s=(128, 128)), np.fft.irfft2(1j * ky[:, :65] * wh, s=(128, 128))
        return -np.fft.rfft2(u_ * wx + v_ * wy) * keep[:, :65]

    def ns_ref():  # the same Strang-split Crank-Nicolson / SSP-RK3 scheme, rfft2 in float64
        wh = np.fft.rfft2(w.astype(np.float64))
        for _ in range(steps):
            wh = wh * damp[:, :65]
            w1 = wh + ns.dt * rhs(wh)
            w2 = 0.75 * wh + 0.25 * (w1 + ns.dt * rhs(w1))
            wh = wh / 3 + 2 / 3 * (w2 + ns.dt * rhs(w2))
            wh = wh * damp[:, :65]
        return np.fft.irfft2(wh, s=(128, 128))
    yield f"NavierStokes2D 128 x 128, {steps} steps", ns.program(steps)[0], dict(vorticity=w), ns_ref
    nb = af.sims.NBody(np.ones(256), dt=1e-3, softening=0.05)
    x, v = rng.standard_normal((256, 3)).astype(np.float32), np.zeros((256, 3), np.float32)

    def nbody_ref():
        p, q = x.astype(np.float64), v.astype(np.float64)

        def acc(p):
            d = p[None] - p[:, None]
            r2 = (d * d).sum(-1) + 0.05 ** 2
            return (d / r2[..., None] ** 1.5).sum(1)
        a = acc(p)
        for _ in range(steps):
            q = q + 0.5 * nb.dt * a
            p = p + nb.dt * q
            a = acc(p)
            q = q + 0.5 * nb.dt * a
        return p, q
    yield f"NBody 256 bodies, {steps} steps", nb.program(steps)[0], dict(positions=x, velocities=v), nbody_ref


def main():
    print(f"threads {af.num_threads()}")
    rng = np.random.default_rng(0)
    for title, cases in [("linear algebra", linalg_cases), ("filters", dsp_cases), ("simulations", sims_cases)]:
        print(f"\n{title}\n")
        print("| case | af sim ms | reference ms | af / reference |")
        print("|---|---|---|---|")
        for name, net, inputs, ref in cases(rng):
            (m_af, m_ref), (ratio,) = paired([lambda: net(**inputs), ref], min_runs=7)
            print(f"| {name} | {m_af * 1e3:.2f} | {m_ref * 1e3:.2f} | {ratio:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
