"""af.linalg's factorizations (cholesky, lu, qr, eigh, svd, lstsq, solve_triangular) against
NumPy float64 and torch.linalg's conventions, on matrices of chosen condition number; the mil
backend against the sim; bad input refused at the call."""
import numpy as np
import pytest

import aneforge as af

torch = pytest.importorskip("torch")


def _conditioned(n, cond, seed, m=None):
    """Q1 diag(s) Q2^T, (m, n), singular values from sqrt(cond) down to 1/sqrt(cond)."""
    rng = np.random.default_rng(seed)
    m = n if m is None else m
    q1, _ = np.linalg.qr(rng.standard_normal((m, m)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return ((q1[:, :n] * np.geomspace(np.sqrt(cond), 1 / np.sqrt(cond), n)) @ q2.T).astype(np.float32)


def _spd(n, cond, seed):
    half = _conditioned(n, np.sqrt(cond), seed).astype(np.float64)
    return (half @ half.T).astype(np.float32)


_NETS: dict = {}


def _net(n):
    """One program with every factorization of an (n, n) input (compiled once per n)."""
    if n not in _NETS:
        a = af.input((n, n), name="a")
        p, lo, up = af.linalg.lu(a)
        q, r = af.linalg.qr(a)
        w, v = af.linalg.eigh(a)
        u, s, vh = af.linalg.svd(a)
        general = af.compile({"p": p, "l": lo, "u": up, "q": q, "r": r, "su": u, "s": s, "svh": vh})
        symmetric = af.compile({"w": w, "v": v, "chol": af.linalg.cholesky(a)})
        _NETS[n] = general, symmetric
    return _NETS[n]


def _errors(n, cond):
    fro = np.linalg.norm
    A, S = _conditioned(n, cond, n), _spd(n, cond, n + 100)
    general, symmetric = _net(n)
    o, os_ = general(a=A), symmetric(a=S)
    A64, S64 = A.astype(np.float64), S.astype(np.float64)
    lam = np.linalg.eigvalsh(S64)
    sv = np.linalg.svd(A64, compute_uv=False)
    chol = np.linalg.cholesky(S64)
    return {
        "lu": fro(o["p"] @ o["l"] @ o["u"] - A64) / fro(A64),
        "qr": fro(o["q"] @ o["r"] - A64) / fro(A64),
        "qr_orth": np.abs(o["q"].T @ o["q"] - np.eye(n)).max(),
        "cholesky": fro(os_["chol"] - chol) / fro(chol),
        "eigh": np.abs(os_["w"] - lam).max() / np.abs(lam).max(),
        "eigh_residual": fro(S64 @ os_["v"] - os_["v"] * os_["w"]) / fro(S64),
        "eigh_orth": np.abs(os_["v"].T @ os_["v"] - np.eye(n)).max(),
        "svd": np.abs(o["s"] - sv).max() / sv.max(),
        "svd_residual": fro((o["su"] * o["s"]) @ o["svh"] - A64) / fro(A64),
        "svd_orth": max(np.abs(o["su"].T @ o["su"] - np.eye(n)).max(), np.abs(o["svh"] @ o["svh"].T - np.eye(n)).max()),
    }


# Bounds: the largest measured over n = 4, 16, 32 and cond 10, 100 (beside each), with a
# margin. All exceed 2 fp16 ulps (2 x 4.9e-4) because each factor is stored after n steps
# (Jacobi: (log2 n + 3) sweeps of n - 1 rounds), each step rounding its result to fp16;
# docs/science.md tables each size and condition up to 1e4.
BOUND = {
    "lu": 2e-3,             # 1.3e-3 (n = 32, cond 10): |P L U - A| / |A|
    "qr": 2.5e-3,           # 1.6e-3: |Q R - A| / |A|
    "qr_orth": 3e-3,        # 2.2e-3: max |Q^T Q - I|
    "cholesky": 1.5e-3,     # 1.0e-3: |L - L_numpy| / |L_numpy|
    "eigh": 2.5e-3,         # 1.6e-3: max |lambda - lambda_numpy| / max |lambda|
    "eigh_residual": 4.5e-3,  # 3.2e-3: |A V - V diag(lambda)| / |A|
    "eigh_orth": 2e-3,      # 1.4e-3: max |V^T V - I|
    "svd": 4e-3,            # 2.7e-3: max |s - s_numpy| / s_max
    "svd_residual": 5e-3,   # 3.4e-3: |U diag(s) Vh - A| / |A|
    "svd_orth": 5.5e-3,     # 4.0e-3: max |U^T U - I|, |Vh Vh^T - I|
}


@pytest.mark.parametrize("n", [4, 16, 32])
@pytest.mark.parametrize("cond", [10, 100])
def test_factorizations_match_numpy_float64(n, cond):
    errors = _errors(n, cond)
    over = {k: f"{v:.2e} > {BOUND[k]:.0e}" for k, v in errors.items() if not v <= BOUND[k]}
    assert not over, over


def test_factors_have_torchs_shapes_signs_and_order():
    A = _conditioned(6, 10, 7)
    S = _spd(6, 10, 8)
    general, symmetric = _net(6)
    o, os_ = general(a=A), symmetric(a=S)
    tA, tS = torch.from_numpy(A).double(), torch.from_numpy(S).double()
    P, L, U = torch.linalg.lu(tA)
    assert np.array_equal(o["p"], P.numpy())                          # the same pivots
    assert np.array_equal(np.diag(o["l"]), np.ones(6)) and np.array_equal(o["l"], np.tril(o["l"]))
    assert np.array_equal(o["u"], np.triu(o["u"]))
    assert np.abs(o["u"] - U.numpy()).max() <= 1e-3 * np.abs(U.numpy()).max()   # measured 3.3e-4
    Q, R = torch.linalg.qr(tA)
    assert np.array_equal(o["r"], np.triu(o["r"]))
    assert np.abs(o["r"] - R.numpy()).max() <= 1e-3 * np.abs(R.numpy()).max()   # LAPACK's signs; measured 2.7e-4
    Lc = torch.linalg.cholesky(tS).numpy()
    assert np.abs(os_["chol"] - Lc).max() <= 1e-3 * np.abs(Lc).max()            # measured 2.7e-4
    assert np.all(np.diff(os_["w"]) >= 0) and np.all(np.diff(o["s"]) <= 0)       # ascending, descending
    x = af.input((6, 6), name="x")
    upper = af.compile({"up": af.linalg.cholesky(x, upper=True), "vals": af.linalg.eigvalsh(x),
                        "sv": af.linalg.svdvals(x)})(x=S)
    assert np.array_equal(upper["up"], os_["chol"].T) and np.array_equal(upper["vals"], os_["w"])


def test_tall_and_wide_matrices():
    A = _conditioned(5, 10, 9, m=12)                                   # (12, 5)
    a = af.input(A.shape, name="a")
    q, r = af.linalg.qr(a)
    qc, rc = af.linalg.qr(a, mode="complete")
    none, rr = af.linalg.qr(a, mode="r")
    u, s, vh = af.linalg.svd(a, full_matrices=False)
    wu, ws, wvh = af.linalg.svd(a.transpose(-1, -2), full_matrices=False)
    o = af.compile({"q": q, "r": r, "qc": qc, "rc": rc, "rr": rr, "u": u, "s": s, "vh": vh, "wu": wu, "ws": ws,
                    "wvh": wvh})(a=A)
    assert none is None
    assert o["q"].shape == (12, 5) and o["r"].shape == (5, 5) and o["qc"].shape == (12, 12) and o["rc"].shape == (12, 5)
    assert np.array_equal(o["rr"], o["r"]) and np.array_equal(o["qc"][:, :5], o["q"])
    assert np.abs(o["qc"].T @ o["qc"] - np.eye(12)).max() <= 2e-3                 # measured 1.2e-3
    assert np.linalg.norm(o["q"] @ o["r"] - A) / np.linalg.norm(A) <= 2e-3       # measured 1.4e-3
    sv = np.linalg.svd(A.astype(np.float64), compute_uv=False)
    for s_, u_, vh_, M in [(o["s"], o["u"], o["vh"], A), (o["ws"], o["wu"], o["wvh"], A.T)]:
        assert np.abs(s_ - sv).max() / sv.max() <= 1e-3                          # measured 3.2e-4
        assert np.linalg.norm((u_ * s_) @ vh_ - M) / np.linalg.norm(M) <= 1.5e-3   # measured 9.4e-4


def test_lstsq_matches_numpy_and_its_residuals():
    A = _conditioned(6, 10, 11, m=14)
    B = np.random.default_rng(12).standard_normal((14, 2)).astype(np.float32)
    a, b = af.input(A.shape, name="a"), af.input(B.shape, name="b")
    res = af.linalg.lstsq(a, b)
    assert res.rank is None and res.singular_values is None
    o = af.compile({"x": res.solution, "r": res.residuals, "x1": af.linalg.lstsq(a, b[:, 0]).solution})(a=A, b=B)
    x, resid, _, _ = np.linalg.lstsq(A.astype(np.float64), B.astype(np.float64), rcond=None)
    assert np.linalg.norm(o["x"] - x) / np.linalg.norm(x) <= 2.5e-3             # measured 1.6e-3
    assert np.abs(o["r"] - resid).max() / resid.max() <= 1e-3                    # measured 3.9e-4
    assert np.array_equal(o["x1"], o["x"][:, 0])
    sq = _conditioned(8, 10, 13)
    bs = np.random.default_rng(14).standard_normal(8).astype(np.float32)
    got = af.compile(af.linalg.lstsq(af.input((8, 8), name="a"), af.input((8,), name="b")).solution)(a=sq, b=bs)
    want = np.linalg.solve(sq.astype(np.float64), bs.astype(np.float64))
    assert np.linalg.norm(got - want) / np.linalg.norm(want) <= 1e-3             # measured 3.4e-4


@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unitriangular", [True, False])
def test_solve_triangular_matches_torch(upper, left, unitriangular):
    rng = np.random.default_rng(15)
    T = rng.standard_normal((7, 7)) * 0.3 + np.eye(7) * 2
    T = (np.triu(T) if upper else np.tril(T)).astype(np.float32)
    B = rng.standard_normal((7, 3) if left else (3, 7)).astype(np.float32)
    got = af.compile(af.linalg.solve_triangular(af.input(T.shape, name="t"), af.input(B.shape, name="b"), upper=upper,
                                                left=left, unitriangular=unitriangular))(t=T, b=B)
    want = torch.linalg.solve_triangular(torch.from_numpy(T).double(), torch.from_numpy(B).double(), upper=upper,
                                         left=left, unitriangular=unitriangular).numpy()
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-3                 # measured at most 6.5e-4


def test_a_batch_factorizes_each_matrix():
    A = np.stack([_conditioned(6, 10, s) for s in (20, 21, 22)])
    S = np.stack([_spd(6, 10, s) for s in (23, 24, 25)])
    a, sy = af.input(A.shape, name="a"), af.input(S.shape, name="s")
    u, s, vh = af.linalg.svd(a)
    w, v = af.linalg.eigh(sy)
    p, lo, up = af.linalg.lu(a)
    o = af.compile({"u": u, "s": s, "vh": vh, "w": w, "v": v, "p": p, "l": lo, "up": up})(a=A, s=S)
    for i in range(3):
        single = _net(6)
        g, sym = single[0](a=A[i]), single[1](a=S[i])
        for mine, single_key in [("u", "su"), ("s", "s"), ("vh", "svh"), ("p", "p"), ("l", "l"), ("up", "u")]:
            assert np.array_equal(o[mine][i], g[single_key]), mine
        assert np.array_equal(o["w"][i], sym["w"]) and np.array_equal(o["v"][i], sym["v"])


def test_degenerate_inputs():
    eye4 = np.eye(4, dtype=np.float32)
    diag = np.diag([3.0, -1.0, 2.0, 2.0]).astype(np.float32)    # a repeated eigenvalue
    x = af.input((4, 4), name="x")
    w, v = af.linalg.eigh(x)
    q, r = af.linalg.qr(x)
    u, s, vh = af.linalg.svd(x)
    net = af.compile({"w": w, "v": v, "q": q, "r": r, "s": s, "u": u})
    o = net(x=diag)
    assert np.array_equal(o["w"], [-1.0, 2.0, 2.0, 3.0])                       # exact: nothing to rotate
    assert np.array_equal(np.abs(o["v"]).sum(0), np.ones(4))
    tri = np.triu(np.arange(1, 17, dtype=np.float32).reshape(4, 4))
    o = net(x=tri)
    assert np.array_equal(o["r"], tri) and np.array_equal(o["q"], eye4)       # already triangular: no reflection
    rank2 = np.outer([1, 2, 3, 4], [1, 0, 1, 0]).astype(np.float32) + np.outer([0, 1, 0, 1], [0, 1, 0, 1])
    o = net(x=rank2)
    sv = np.linalg.svd(rank2.astype(np.float64), compute_uv=False)
    assert np.abs(o["s"] - sv).max() <= 1.5e-3 * sv.max()                        # measured 1.1e-3
    assert np.all(np.isfinite(o["u"]))                                           # zero singular values: no NaN


@pytest.mark.parametrize("fold", [True, False])
def test_the_mil_backend_computes_what_the_sim_does(fold):
    A, S = _conditioned(5, 10, 30), _spd(5, 10, 31)
    a, sy = af.input((5, 5), name="a"), af.input((5, 5), name="s")
    p, lo, up = af.linalg.lu(a)
    q, r = af.linalg.qr(a)
    u, s, vh = af.linalg.svd(a)
    w, v = af.linalg.eigh(sy)
    outs = {"p": p, "l": lo, "up": up, "q": q, "r": r, "u": u, "s": s, "vh": vh, "w": w, "v": v,
            "chol": af.linalg.cholesky(sy), "x": af.linalg.lstsq(a, a[:, :2]).solution,
            "t": af.linalg.solve_triangular(up, a, upper=True)}
    want = af.compile(outs)(a=A, s=S)
    got = af.compile(outs, backend="mil", fold_constants=fold)(a=A, s=S)
    for k in want:
        assert np.array_equal(got[k], want[k]), k


def test_bad_input_is_refused_at_the_call():
    sq, wide = af.input((4, 4), name="sq"), af.input((3, 5), name="wide")
    with pytest.raises(ValueError, match=r"cholesky: A must be \(\.\.\., n, n\)"):
        af.linalg.cholesky(wide)
    with pytest.raises(ValueError, match="n=33 is outside 1..32"):
        af.linalg.eigh(af.input((33, 33), name="big"))
    with pytest.raises(ValueError, match="at least as many rows as columns"):
        af.linalg.qr(wide)
    with pytest.raises(ValueError, match="full_matrices=True needs a square A"):
        af.linalg.svd(wide)
    with pytest.raises(ValueError, match="pivot=False is not supported"):
        af.linalg.lu(sq, pivot=False)
    with pytest.raises(ValueError, match="UPLO must be 'L' or 'U'"):
        af.linalg.eigh(sq, UPLO="X")
    with pytest.raises(ValueError, match="mode must be"):
        af.linalg.qr(sq, mode="economic")
    with pytest.raises(ValueError, match=r"B \(3, 2\) must be \(\.\.\., 4, k\)"):
        af.linalg.solve_triangular(sq, af.input((3, 2), name="b"), upper=True)
    with pytest.raises(ValueError, match="does not match A"):
        af.linalg.lstsq(af.input((6, 4), name="t"), af.input((5,), name="b"))


def test_uplo_reads_one_triangle_as_torch_does():
    S = _spd(5, 10, 40)
    junk = S + np.triu(np.full((5, 5), 7.0, np.float32), 1)               # garbage above the diagonal
    x = af.input((5, 5), name="x")
    got = af.compile(af.linalg.eigvalsh(x, UPLO="L"))(x=junk)
    want = torch.linalg.eigvalsh(torch.from_numpy(junk).double(), UPLO="L").numpy()
    assert np.abs(got - want).max() <= 1e-3 * np.abs(want).max()             # measured 3.1e-4
