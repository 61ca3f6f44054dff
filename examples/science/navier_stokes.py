"""Decaying two-dimensional turbulence on the engine's numerics: af.sims.NavierStokes2D runs
many steps per program with the vorticity resident, and this writes the flow as a GIF.

    python examples/science/navier_stokes.py [--small] [--out DIR]

Check: an unforced flow only loses energy, and the fp16 program's energy follows the same
program run in float32 (within 3%).
"""
import argparse
import pathlib

import numpy as np

import aneforge as af


def random_vorticity(n, peak_wavenumber=5, seed=0):
    """A random field with its energy in a ring of wavenumbers, scaled to a peak of 5."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n, 1.0 / n)
    ring = np.exp(-((np.sqrt(k[:, None] ** 2 + k[None, :] ** 2) - peak_wavenumber) / 2) ** 2)
    w = np.fft.ifft2((rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) * ring).real
    return (w / np.abs(w).max() * 5).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="a 32 x 32 grid and few frames (the tests' size)")
    ap.add_argument("--out", default=".", help="where navier_stokes.gif goes")
    args = ap.parse_args()
    n, frames, steps = (32, 8, 10) if args.small else (128, 60, 20)
    ns = af.sims.NavierStokes2D(n, nu=5e-4 if not args.small else 2e-3, dt=0.02)
    w = random_vorticity(n)

    def energy(field):
        u, v = ns.velocity(field)
        return float((u * u + v * v).mean())

    fields, energies = [w], [energy(w)]
    for _ in range(frames):
        w = ns.run(w, steps)
        fields.append(w)
        energies.append(energy(w))
    reference = af.sims.NavierStokes2D(n, nu=ns.nu, dt=ns.dt, precision="fp32").run(fields[0], frames * steps)

    from matplotlib import colormaps
    from PIL import Image
    scale = max(np.abs(f).max() for f in fields)
    images = [Image.fromarray((colormaps["RdBu_r"](0.5 + f / (2 * scale))[..., :3] * 255).astype(np.uint8))
              .resize((256, 256), Image.NEAREST) for f in fields]
    out = pathlib.Path(args.out) / "navier_stokes.gif"
    images[0].save(out, save_all=True, append_images=images[1:], duration=80, loop=0)

    lost = 1 - energies[-1] / energies[0]
    apart = abs(energies[-1] / energy(reference) - 1)
    rises = max(b / a - 1 for a, b in zip(energies, energies[1:]))
    print(f"wrote {out}: {frames * steps} steps of a {n} x {n} flow; {100 * lost:.0f}% of the energy dissipated")
    print(f"check: energy {100 * apart:.2f}% from the float32 program's; largest rise between frames {rises:.1e}")
    if apart > 0.03 or rises > 1e-3:
        raise SystemExit("FAIL: the fp16 flow's energy left the float32 program's")


if __name__ == "__main__":
    main()
