"""af.fft on the sim beside NumPy's FFT (pocketfft, float64) and torch.fft (float32), in one
process with the same threads, alternating pairs, median of the per-pair ratios.

    python benchmarks/fft.py

Each case compiles one program for the transform (sim, fp16) and times calls with NumPy
inputs, output returned to the host, as the references are timed.
"""
import numpy as np
import torch

import aneforge as af
from _timing import paired

CASES = [  # name, input shape, af graph, NumPy, torch
    ("rfft 64 x 1024", (64, 1024), lambda a: af.fft.rfft(a), lambda x: np.fft.rfft(x), lambda t: torch.fft.rfft(t)),
    ("fft 64 x 1024", (64, 1024), lambda a: af.fft.fft(a), lambda x: np.fft.fft(x), lambda t: torch.fft.fft(t)),
    ("rfft 16 x 509 (Bluestein)", (16, 509), lambda a: af.fft.rfft(a), lambda x: np.fft.rfft(x),
     lambda t: torch.fft.rfft(t)),
    ("fft2 256 x 256", (256, 256), lambda a: af.fft.fft2(a), lambda x: np.fft.fft2(x), lambda t: torch.fft.fft2(t)),
]


def main():
    torch.set_num_threads(af.num_threads())
    print(f"threads {af.num_threads()}")
    print("| transform | af sim ms | NumPy ms | torch ms | af / NumPy | af / torch |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for name, shape, graph, ref_np, ref_torch in CASES:
        x = rng.standard_normal(shape).astype(np.float32)
        a = af.input(shape, name="x")
        out = graph(a)
        net = af.compile(out if not isinstance(out, tuple) else {"re": out[0], "im": out[1]})
        t = torch.from_numpy(x)
        (m_af, m_np, m_t), (r_np, r_t) = paired([lambda: net(x), lambda: ref_np(x), lambda: ref_torch(t)])
        print(f"| {name} | {m_af * 1e3:.2f} | {m_np * 1e3:.2f} | {m_t * 1e3:.2f} | {r_np:.1f}x | {r_t:.1f}x |",
              flush=True)


if __name__ == "__main__":
    main()
