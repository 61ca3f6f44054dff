"""Measure af.fft's error against NumPy's float64 FFT per length, as docs/science.md tables
it (tests/test_fft.py holds the bound):

    python scripts/science_accuracy.py

Error: max |af - NumPy| / max |NumPy| over 3 random normal rows, on the sim at fp16."""
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


def main():
    rng = np.random.default_rng(0)
    print("| n | plan | fft | ifft | rfft | irfft |")
    print("|---|---|---|---|---|---|")
    for n in SIZES:
        print(row(n, rng), flush=True)


if __name__ == "__main__":
    main()
