"""Gray-Scott reaction-diffusion (Pearson 1993) grown from a seeded square with
af.sims.GrayScott, written as a PNG.

    python examples/science/gray_scott.py [--small] [--out DIR]

Check: the same scheme in float64 NumPy covers the same share of the grid with pattern
(within 5 points) after the same steps.
"""
import argparse
import pathlib

import numpy as np

import aneforge as af


def float64_reference(g, u, v, steps):
    u, v = u.astype(np.float64), v.astype(np.float64)

    def lap(a):
        return np.roll(a, 1, 0) + np.roll(a, -1, 0) + np.roll(a, 1, 1) + np.roll(a, -1, 1) - 4 * a
    for _ in range(steps):
        r = u * v * v
        u, v = (u + g.dt * (g.Du / g.dx ** 2 * lap(u) - r + g.feed * (1 - u)),
                v + g.dt * (g.Dv / g.dx ** 2 * lap(v) + r - (g.feed + g.kill) * v))
    return u, v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="a 48 x 48 grid (the tests' size)")
    ap.add_argument("--out", default=".", help="where gray_scott.png goes")
    args = ap.parse_args()
    n, steps = (48, 1500) if args.small else (160, 8000)
    g = af.sims.GrayScott(n, steps_per_program=100)
    u0, v0 = g.seeded()
    u, v = g.run((u0, v0), steps)
    _, v_ref = float64_reference(g, u0, v0, steps)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2))
    for ax, field, title in [(axes[0], v, f"af.sims.GrayScott (fp16), {steps} steps"), (axes[1], v_ref, "float64 NumPy")]:
        ax.imshow(field, cmap="magma", vmin=0, vmax=max(v.max(), v_ref.max()))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    out = pathlib.Path(args.out) / "gray_scott.png"
    fig.savefig(out, dpi=100)

    share, share_ref = float((v > 0.1).mean()), float((v_ref > 0.1).mean())
    print(f"wrote {out}: v after {steps} steps on a {n} x {n} grid")
    print(f"check: pattern (v > 0.1) covers {100 * share:.1f}% of the grid; float64 {100 * share_ref:.1f}%")
    if abs(share - share_ref) > 0.05 or share < 0.1:
        raise SystemExit("FAIL: the pattern differs from the float64 scheme's")


if __name__ == "__main__":
    main()
