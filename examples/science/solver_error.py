"""af.linalg.solve's error against condition number, with and without iterative refinement,
measured against NumPy float64 and plotted as a PNG.

    python examples/science/solver_error.py [--small] [--out DIR]

Check: at n = 32 and condition 100 the refined solve is within 5e-3 of NumPy (issue 24's
bound; docs/science.md tables the envelope).
"""
import argparse
import pathlib

import numpy as np

import aneforge as af


def matrix(n, cond, rng):
    """Q1 diag(s) Q2^T with singular values from sqrt(cond) down to 1 / sqrt(cond)."""
    q1, _ = np.linalg.qr(rng.standard_normal((n, n)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = np.geomspace(np.sqrt(cond), 1 / np.sqrt(cond), n)
    return (q1 * s) @ q2.T


def errors(n, conds, trials, rng):
    a, b = af.input((trials, n, n), name="a"), af.input((trials, n), name="b")
    net = af.compile({"plain": af.linalg.solve(a, b, refine=0), "refined": af.linalg.solve(a, b)})
    rows = []
    for cond in conds:
        A = np.stack([matrix(n, cond, rng) for _ in range(trials)]).astype(np.float32)
        B = rng.standard_normal((trials, n)).astype(np.float32)
        want = np.linalg.solve(A.astype(np.float64), B.astype(np.float64)[..., None])[..., 0]
        out = net(a=A, b=B)
        rel = {k: float(np.median(np.linalg.norm(v - want, axis=-1) / np.linalg.norm(want, axis=-1)))
               for k, v in out.items()}
        rows.append((cond, rel["plain"], rel["refined"]))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="fewer matrices (the tests' size)")
    ap.add_argument("--out", default=".", help="where solver_error.png goes")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    conds = np.geomspace(1, 1e4, 9 if args.small else 17)
    trials = 4 if args.small else 16
    results = {n: errors(n, conds, trials, rng) for n in (8, 32)}

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for n, rows in results.items():
        c, plain, refined = np.array(rows).T
        ax.loglog(c, plain, "o--", label=f"n = {n}, no refinement")
        ax.loglog(c, refined, "s-", label=f"n = {n}, 3 refinements")
    ax.loglog(conds, conds * 2.0 ** -11, "k:", label="cond x 2^-11 (fp16 storage of A)")
    ax.set(xlabel="condition number", ylabel="median relative error vs float64", title="af.linalg.solve (fp16 program)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = pathlib.Path(args.out) / "solver_error.png"
    fig.savefig(out, dpi=100)

    at_100 = af.compile(af.linalg.solve(af.input((1, 32, 32), name="a"), af.input((1, 32), name="b")))
    A = matrix(32, 100, np.random.default_rng(1))[None].astype(np.float32)
    B = np.random.default_rng(2).standard_normal((1, 32)).astype(np.float32)
    want = np.linalg.solve(A[0].astype(np.float64), B[0].astype(np.float64))
    err = float(np.linalg.norm(at_100(a=A, b=B)[0] - want) / np.linalg.norm(want))
    print(f"wrote {out}")
    print(f"check: n = 32, condition 100, refined solve within {err:.1e} of NumPy float64")
    if err > 5e-3:
        raise SystemExit("FAIL: solve missed its documented envelope")


if __name__ == "__main__":
    main()
