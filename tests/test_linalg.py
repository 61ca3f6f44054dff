"""af.linalg against NumPy float64 on matrices of chosen condition number, the mil backend
against the sim, gradients against torch.linalg."""
import numpy as np
import pytest

import aneforge as af

torch = pytest.importorskip("torch")


def _matrix(n, cond, seed):
    """Q1 diag(s) Q2^T with singular values from sqrt(cond) down to 1/sqrt(cond): det 1."""
    rng = np.random.default_rng(seed)
    q1, _ = np.linalg.qr(rng.standard_normal((n, n)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return ((q1 * np.geomspace(np.sqrt(cond), 1 / np.sqrt(cond), n)) @ q2.T).astype(np.float32)


def _rel(got, want):
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


# Relative error of x after 3 refinement steps, measured on these matrices: cond 10 at most
# 6.0e-4, cond 100 at most 4.5e-3 (n = 4; 1.6e-3 at n = 32). fp16 storage of A, b and x
# leaves about cond x 5e-4 before refinement. Issue 24 asks <= 5e-3 at cond 100, n = 32.
SOLVE_BOUND = {10: 1e-3, 100: 5e-3}


@pytest.mark.parametrize("n", [4, 16, 32])
@pytest.mark.parametrize("cond", [10, 100])
def test_solve_with_refinement_and_inv_match_numpy(n, cond):
    A = _matrix(n, cond, n)
    b = np.random.default_rng(n + 1).standard_normal(n).astype(np.float32)
    a, bb = af.input((n, n), name="a"), af.input((n,), name="b")
    out = af.compile({"x": af.linalg.solve(a, bb), "x0": af.linalg.solve(a, bb, refine=0),
                      "inv": af.linalg.inv(a)})(a=A, b=b)
    A64 = A.astype(np.float64)
    want = np.linalg.solve(A64, b.astype(np.float64))
    assert _rel(out["x"], want) <= SOLVE_BOUND[cond]
    assert _rel(out["x"], want) < _rel(out["x0"], want)  # refinement helps
    # inv: measured at most 3.8e-3 at cond 10 and 1.02e-2 at cond 100 (no refinement)
    assert _rel(out["inv"], np.linalg.inv(A64)) <= {10: 5e-3, 100: 1.5e-2}[cond]


def test_several_right_hand_sides_and_a_batch():
    A = np.stack([_matrix(8, 10, s) for s in (1, 2, 3)])
    B = np.random.default_rng(4).standard_normal((3, 8, 2)).astype(np.float32)
    a, b = af.input(A.shape, name="a"), af.input(B.shape, name="b")
    got = af.compile(af.linalg.solve(a, b))(a=A, b=B)
    assert got.shape == (3, 8, 2)
    assert _rel(got, np.linalg.solve(A.astype(np.float64), B.astype(np.float64))) <= SOLVE_BOUND[10]


@pytest.mark.parametrize("n", [4, 16, 32])
def test_det_and_slogdet(n):
    A = _matrix(n, 10, 10 + n)
    A[[0, 1]] = A[[1, 0]]  # det -1: a sign to get right
    a = af.input((n, n), name="a")
    sign, logabs = af.linalg.slogdet(a)
    out = af.compile({"det": af.linalg.det(a), "sign": sign, "logabs": logabs})(a=A)
    s_ref, l_ref = np.linalg.slogdet(A.astype(np.float64))
    assert float(out["sign"]) == s_ref == -1.0
    # measured 9.2e-4, 2.5e-3, 5.9e-3 for n = 4, 16, 32: the logs of n pivots, each stored in
    # fp16 (4.9e-4 relative), summed; det = exp of it, the same absolute error near |det| 1
    assert abs(float(out["logabs"]) - l_ref) <= 2e-4 * n + 1e-3
    assert abs(float(out["det"]) - np.linalg.det(A.astype(np.float64))) <= 2e-4 * n + 1e-3


def test_norm_scales_before_squaring():
    v = np.random.default_rng(5).standard_normal((3, 5)).astype(np.float32) * 1000  # squares overflow fp16
    x = af.input(v.shape, name="x")
    out = af.compile({"all": af.linalg.norm(x), "rows": af.linalg.norm(x, dim=1),
                      "keep": af.linalg.norm(x, dim=-1, keepdim=True)})(x=v)
    assert abs(float(out["all"]) / np.linalg.norm(v) - 1) <= 1e-3
    np.testing.assert_allclose(out["rows"], np.linalg.norm(v, axis=1), rtol=1e-3)
    assert out["keep"].shape == (3, 1)


def test_the_mil_backend_and_gradients():
    A = _matrix(8, 10, 6)
    b = np.random.default_rng(7).standard_normal(8).astype(np.float32)
    a, bb = af.input((8, 8), name="a"), af.input((8,), name="b")
    x = af.linalg.solve(a, bb)
    sim = af.compile(x)(a=A, b=b)
    mil = af.compile(x, backend="mil")(a=A, b=b)
    np.testing.assert_array_equal(mil, sim)  # measured equal: the same program, the same fp32 sums
    ga, gb = af.grad((x * x).sum(), [a, bb])
    got = af.compile({"ga": ga, "gb": gb}, precision="fp32")(a=A, b=b)
    ta, tb = torch.from_numpy(A).requires_grad_(), torch.from_numpy(b).requires_grad_()
    (torch.linalg.solve(ta, tb) ** 2).sum().backward()
    assert _rel(got["ga"], ta.grad.numpy()) <= 1e-5  # float32 throughout: measured 2e-7
    assert _rel(got["gb"], tb.grad.numpy()) <= 1e-5


def test_bad_input_is_refused_at_the_call():
    with pytest.raises(ValueError, match="outside 1..32"):
        af.linalg.inv(af.input((33, 33), name="a"))
    with pytest.raises(ValueError, match=r"\(\.\.\., n, n\)"):
        af.linalg.det(af.input((3, 4), name="b"))
    with pytest.raises(ValueError, match="does not match"):
        af.linalg.solve(af.input((4, 4), name="c"), af.input((5,), name="d"))
    with pytest.raises(ValueError, match="ord="):
        af.linalg.norm(af.input((4,), name="e"), ord=1)


def test_a_singular_matrix_gives_nan_with_the_nets_warning():
    """torch raises on a singular matrix; a program cannot look at its values before it runs,
    so the zero pivot's inf/NaN comes out and the net warns about non-finite outputs."""
    a, b = af.input((3, 3), name="a"), af.input((3,), name="b")
    net = af.compile(af.linalg.solve(a, b))
    with pytest.warns(RuntimeWarning, match="inf/NaN from finite inputs"):
        out = net(a=np.ones((3, 3), np.float32), b=np.ones(3, np.float32))
    assert not np.isfinite(out).any()
