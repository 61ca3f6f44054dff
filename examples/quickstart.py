"""The seed's quickstart, end to end: build, compile with int8 weights, run, and check the
result against a float32 reference computed independently with NumPy.

    python examples/quickstart.py
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import aneforge as af


def reference(image, W):
    """float32 conv(pad=1) -> relu -> spatial mean, written directly in NumPy."""
    padded = np.pad(image, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = sliding_window_view(padded, W.shape[2:], axis=(2, 3))  # (N, C, H, W, kh, kw)
    conv = np.einsum("nchwij,ocij->nohw", windows, W, optimize=True)
    return np.maximum(conv, 0).mean(axis=(2, 3))


def main():
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((16, 3, 3, 3)) / np.sqrt(27)).astype(np.float32)
    image = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)

    x = af.input((1, 3, 32, 32), name="image")  # lazy graph input
    y = af.conv(x, W, pad=1).relu().mean((2, 3))
    net = af.compile(y, compress="int8")
    out = net(image)  # runs on the default backend: the engine simulator

    net.summary()
    ref = reference(image, W)
    cos = af.testing.cosine(out, ref)
    print("output   :", np.array2string(out[0, :6], precision=4), "...")
    print("reference:", np.array2string(ref[0, :6], precision=4), "...")
    print(f"cosine vs float32 reference: {cos:.6f}")
    if cos < 0.9999:
        raise SystemExit(f"FAIL: cosine {cos:.6f} < 0.9999")


if __name__ == "__main__":
    main()
