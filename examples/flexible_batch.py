"""A classifier with a flexible batch, written as a PyTorch user would: af.input((None, ...)),
torch's names (conv2d, padding, max_pool2d, flatten), one program per batch size, checked
against a float32 NumPy reference.

    python examples/flexible_batch.py
"""
import numpy as np

import aneforge as af


def reference(images: np.ndarray, W: np.ndarray, L: np.ndarray) -> np.ndarray:
    """float32 1x1 conv -> relu -> 2x2 max pool -> flatten -> linear, in NumPy."""
    conv = np.maximum(np.einsum("nchw,oc->nohw", images, W[:, :, 0, 0]), 0)
    n, c, h, w = conv.shape
    pooled = conv.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    return pooled.reshape(n, -1) @ L.T


def main() -> None:
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((8, 3, 1, 1)) / np.sqrt(3)).astype(np.float32)
    L = (rng.standard_normal((10, 8 * 4 * 4)) / 8).astype(np.float32)

    x = af.input((None, 3, 8, 8), name="images")   # None: the batch may vary
    h = af.max_pool2d(af.conv2d(x, W, padding=0).relu(), 2)
    logits = af.linear(h.flatten(1), L)
    net = af.compile(logits)                        # compiles batch 1 now
    net.compile_for(batch=16)                       # and batch 16 ahead of time

    for batch in (1, 4, 16):
        images = rng.standard_normal((batch, 3, 8, 8)).astype(np.float32)
        out = net(images)                           # batch 4 compiles on first use
        cos = af.testing.cosine(out, reference(images, W, L))
        print(f"batch {batch:2d}: logits {out.shape}, cosine vs float32 reference {cos:.6f}")
        if cos < 0.9999:
            raise SystemExit(f"FAIL: cosine {cos:.6f} < 0.9999")
    print(net)


if __name__ == "__main__":
    main()
