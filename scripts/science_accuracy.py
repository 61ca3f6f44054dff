"""Measure af.fft's and af.linalg's errors against NumPy float64, as docs/science.md tables
them (tests/test_fft.py and tests/test_linalg.py hold the bounds):

    python scripts/science_accuracy.py

FFT error: max |af - NumPy| / max |NumPy| over 3 random normal rows. solve / inv error:
relative Frobenius norm, on Q1 diag(s) Q2^T with singular values sqrt(cond) .. 1/sqrt(cond).
Factorizations: reconstruction and eigen/singular residuals relative to |A| (Frobenius),
eigenvalues and singular values as max error / largest, cholesky and lstsq against NumPy's
factor and solution; cholesky and eigh on symmetric positive definite matrices of the
condition named. All on the sim at fp16."""
import numpy as np

import aneforge as af

SIZES = [8, 60, 256, 509, 1000, 1018, 1024, 4096]


def err(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


def row(n, rng):
    x = rng.standard_normal((3, n)).astype(np.float32)
    y = rng.standard_normal((3, n)).astype(np.float32)
    a, b = af.input((3, n), name="a"), af.input((3, n), name="b")
    re, im = af.fft.fft(a, b)
    out = af.compile({"re": re, "im": im})(a=x, b=y)
    e_fft = err(out["re"] + 1j * out["im"], np.fft.fft(x.astype(np.float64) + 1j * y))
    re, im = af.fft.ifft(a, b)
    out = af.compile({"re": re, "im": im})(a=x, b=y)
    e_ifft = err(out["re"] + 1j * out["im"], np.fft.ifft(x.astype(np.float64) + 1j * y))
    re, im = af.fft.rfft(a)
    out = af.compile({"re": re, "im": im})(a=x)
    spec = np.fft.rfft(x.astype(np.float64))
    e_rfft = err(out["re"] + 1j * out["im"], spec)
    m = n // 2 + 1
    p, q = af.input((3, m), name="p"), af.input((3, m), name="q")
    got = af.compile(af.fft.irfft(p, q, n=n))(p=spec.real.astype(np.float32), q=spec.imag.astype(np.float32))
    split = af.fft._factor(n)
    plan = (f"Bluestein, m = {1 << (2 * n - 2).bit_length()}" if split is None else
            "one DFT matmul" if split[1] == 1 else f"{split[0]} x {split[1]}")
    return f"| {n} | {plan} | {e_fft:.1e} | {e_ifft:.1e} | {e_rfft:.1e} | {err(got, x):.1e} |"


def linalg_row(n, cond, rng):
    q1, _ = np.linalg.qr(rng.standard_normal((n, n)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = ((q1 * np.geomspace(np.sqrt(cond), 1 / np.sqrt(cond), n)) @ q2.T).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    a, bb = af.input((n, n), name="a"), af.input((n,), name="b")
    out = af.compile({"x0": af.linalg.solve(a, bb, refine=0), "x": af.linalg.solve(a, bb),
                      "inv": af.linalg.inv(a)})(a=A, b=b)
    A64 = A.astype(np.float64)
    want = np.linalg.solve(A64, b.astype(np.float64))

    def rel(g, w):
        return np.linalg.norm(g - w) / np.linalg.norm(w)
    return (f"| {n} | {cond:g} | {rel(out['x0'], want):.1e} | {rel(out['x'], want):.1e} | "
            f"{rel(out['inv'], np.linalg.inv(A64)):.1e} |")


def conditioned(n, cond, rng, m=None):
    """Q1 diag(s) Q2^T, (m, n), singular values geometric from sqrt(cond) to 1/sqrt(cond)."""
    m = n if m is None else m
    q1, _ = np.linalg.qr(rng.standard_normal((m, m)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q1[:, :n] * np.geomspace(np.sqrt(cond), 1 / np.sqrt(cond), n)) @ q2.T


def decomposition_errors(n, conds, rng):
    """{cond: {measure: error}} for lu, qr, cholesky, eigh, svd and lstsq at size n."""
    a = af.input((n, n), name="a")
    p, lo, up = af.linalg.lu(a)
    q, r = af.linalg.qr(a)
    w, v = af.linalg.eigh(a)
    u, s, vh = af.linalg.svd(a)
    net = af.compile({"p": p, "l": lo, "u": up, "q": q, "r": r, "su": u, "s": s, "svh": vh})
    symmetric = af.compile({"w": w, "v": v, "chol": af.linalg.cholesky(a)})
    m = min(2 * n, 32)
    ta, tb = af.input((m, n), name="ta"), af.input((m,), name="tb")
    ls = af.compile(af.linalg.lstsq(ta, tb).solution)
    out = {}
    for cond in conds:
        A = conditioned(n, cond, rng)
        half = conditioned(n, np.sqrt(cond), rng)
        spd = half @ half.T                                    # symmetric positive definite, condition cond
        A32, S32 = A.astype(np.float32), spd.astype(np.float32)
        o, os_ = net(a=A32), symmetric(a=S32)
        fro = np.linalg.norm
        lam = np.linalg.eigvalsh(S32.astype(np.float64))
        sv = np.linalg.svd(A32.astype(np.float64), compute_uv=False)
        T = conditioned(n, cond, rng, m).astype(np.float32)
        b = rng.standard_normal(m).astype(np.float32)
        x = np.linalg.lstsq(T.astype(np.float64), b.astype(np.float64), rcond=None)[0]
        chol = np.linalg.cholesky(S32.astype(np.float64))
        out[cond] = {
            "lu": fro(o["p"] @ o["l"] @ o["u"] - A32) / fro(A32),
            "qr": fro(o["q"] @ o["r"] - A32) / fro(A32),
            "qr_orth": np.abs(o["q"].T @ o["q"] - np.eye(n)).max(),
            "cholesky": fro(os_["chol"] - chol) / fro(chol),
            "eigh": np.abs(os_["w"] - lam).max() / np.abs(lam).max(),
            "eigh_residual": fro(S32 @ os_["v"] - os_["v"] * os_["w"]) / fro(S32),
            "svd": np.abs(o["s"] - sv).max() / sv.max(),
            "svd_residual": fro((o["su"] * o["s"]) @ o["svh"] - A32) / fro(A32),
            "lstsq": fro(ls(ta=T, tb=b) - x) / fro(x),
        }
    return out


def dsp_rows(rng):
    """fir, iir and resample: max error / peak against scipy.signal and the band-limited signal."""
    import scipy.signal as ss
    x = rng.standard_normal((3, 4000)).astype(np.float32)
    a = af.input(x.shape, name="x")
    for taps in (1, 15, 16, 101, 257):
        h = ss.firwin(taps, 0.3) if taps > 1 else np.array([0.7])
        want = ss.lfilter(h, [1.0], x.astype(np.float64), axis=-1)
        yield f"| fir, {taps} taps | scipy.signal.lfilter | {err(af.compile(af.dsp.fir(a, h))(x=x), want):.1e} |"
    for order, wn, kind in ((2, 0.2, "low"), (4, 0.1, "low"), (6, 0.02, "high"), (8, [0.1, 0.3], "bandpass")):
        sos = ss.butter(order, wn, kind, output="sos")
        want = ss.sosfilt(sos, x.astype(np.float64), axis=-1)
        yield (f"| iir, Butterworth {kind} order {order} | scipy.signal.sosfilt | "
               f"{err(af.compile(af.dsp.iir(a, sos))(x=x), want):.1e} |")
    for orig, new in ((16000, 8000), (8000, 16000), (44100, 16000), (16000, 44100)):
        n = 2000
        f1, f2 = 0.05 * min(orig, new), 0.2 * min(orig, new)

        def wave(t):
            return np.sin(2 * np.pi * f1 * t) + 0.5 * np.sin(2 * np.pi * f2 * t + 1)
        got = af.compile(af.dsp.resample(af.input((1, n), name="s"), orig, new))(s=wave(np.arange(n) / orig)
                                                                                .astype(np.float32)[None])[0]
        e = float(np.abs(got - wave(np.arange(got.size) / new))[64:-64].max())
        yield f"| resample {orig} -> {new} Hz | the band-limited signal at the new times | {e:.1e} |"


def main():
    rng = np.random.default_rng(0)
    print("| n | plan | fft | ifft | rfft | irfft |")
    print("|---|---|---|---|---|---|")
    for n in SIZES:
        print(row(n, rng), flush=True)
    print()
    print("| n | condition | solve, no refinement | solve, 3 refinements | inv |")
    print("|---|---|---|---|---|")
    for n in (4, 16, 32):
        for cond in (10, 100, 1000, 10000):
            print(linalg_row(n, cond, rng), flush=True)
    print()
    print("| function | reference | max error / peak |")
    print("|---|---|---|")
    for line in dsp_rows(rng):
        print(line, flush=True)
    print()
    cols = ["lu", "qr", "qr_orth", "cholesky", "eigh", "eigh_residual", "svd", "svd_residual", "lstsq"]
    print("| n | condition | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    for n in (4, 16, 32):
        for cond, e in decomposition_errors(n, (10, 100, 1000, 10000), rng).items():
            print(f"| {n} | {cond} | " + " | ".join(f"{e[c]:.1e}" for c in cols) + " |", flush=True)


if __name__ == "__main__":
    main()
