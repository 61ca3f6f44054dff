"""af.fft against NumPy's float64 FFT (the independent reference), the mil backend against the
sim, and gradients against torch. Error: max |af - reference| / max |reference|."""
import numpy as np
import pytest

import aneforge as af

torch = pytest.importorskip("torch")

# Direct DFT matmuls (8, 60, 256), four-step splits (1000 = 25 x 40, 1024 = 32 x 32,
# 4096 = 64 x 64) and Bluestein for prime factors above 256 (509, 1018 = 2 x 509).
SIZES = [8, 60, 256, 509, 1000, 1018, 1024, 4096]
BLUESTEIN = {509, 1018}
# Measured here and by scripts/science_accuracy.py (docs/science.md): at most 1.2e-3 for the
# direct and split lengths (ifft at 4096), 1.6e-3 for Bluestein's (ifft at 1018: three
# transforms and three chirp products, each stored in fp16). fp16 holds 2^-11 = 4.9e-4
# relative per value; the bounds leave a quarter on top for other signals. The issue asks
# <= 5e-3 for rfft at 1024.
BOUND = 1.5e-3
BLUESTEIN_BOUND = 2e-3


def _err(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


def _signal(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("n", SIZES)
def test_fft_rfft_irfft_match_numpy(n):
    bound = BLUESTEIN_BOUND if n in BLUESTEIN else BOUND
    x, y = _signal((3, n), 1), _signal((3, n), 2)
    a, b = af.input((3, n), name="a"), af.input((3, n), name="b")
    re, im = af.fft.fft(a, b)
    out = af.compile({"re": re, "im": im})(a=x, b=y)
    assert _err(out["re"] + 1j * out["im"], np.fft.fft(x.astype(np.float64) + 1j * y)) <= bound
    re, im = af.fft.rfft(a)
    out = af.compile({"re": re, "im": im})(a=x)
    spec = np.fft.rfft(x.astype(np.float64))
    assert out["re"].shape == (3, n // 2 + 1)
    assert _err(out["re"] + 1j * out["im"], spec) <= bound
    m = n // 2 + 1
    p, q = af.input((3, m), name="p"), af.input((3, m), name="q")
    got = af.compile(af.fft.irfft(p, q, n=n))(p=spec.real.astype(np.float32), q=spec.imag.astype(np.float32))
    assert _err(got, x) <= bound
    re, im = af.fft.ifft(a, b)
    out = af.compile({"re": re, "im": im})(a=x, b=y)
    assert _err(out["re"] + 1j * out["im"], np.fft.ifft(x.astype(np.float64) + 1j * y)) <= bound


@pytest.mark.parametrize("n", [60, 1000, 509])  # direct, split, Bluestein: each scales its own way
@pytest.mark.parametrize("norm", ["forward", "ortho"])
def test_norm_scales_as_numpy_does(n, norm):
    x, y = _signal((2, n), 5), _signal((2, n), 6)
    bound = BLUESTEIN_BOUND if n in BLUESTEIN else BOUND
    a, b = af.input(x.shape, name="a"), af.input(y.shape, name="b")
    c = x.astype(np.float64) + 1j * y
    outs = {}
    for name, (re, im) in {"fft": af.fft.fft(a, b, norm=norm), "ifft": af.fft.ifft(a, b, norm=norm),
                           "rfft": af.fft.rfft(a, norm=norm)}.items():
        outs[name + "_re"], outs[name + "_im"] = re, im
    m = n // 2 + 1
    outs["irfft"] = af.fft.irfft(a[:, :m], b[:, :m], n=n, norm=norm)
    got = af.compile(outs)(a=x, b=y)
    for name, want in {"fft": np.fft.fft(c, norm=norm), "ifft": np.fft.ifft(c, norm=norm),
                       "rfft": np.fft.rfft(x.astype(np.float64), norm=norm)}.items():
        assert _err(got[name + "_re"] + 1j * got[name + "_im"], want) <= bound, name
    half = x[:, :m].astype(np.float64) + 1j * y[:, :m]
    assert _err(got["irfft"], np.fft.irfft(half, n=n, norm=norm)) <= bound
    with pytest.raises(ValueError, match="norm='unitary' is not one of"):
        af.fft.fft(a, norm="unitary")


def test_other_axes_2d_and_inverse():
    x, y = _signal((2, 16, 24), 3), _signal((2, 16, 24), 4)
    a, b = af.input(x.shape, name="a"), af.input(y.shape, name="b")
    ref = x.astype(np.float64) + 1j * y
    re, im = af.fft.fft(a, b, dim=1)
    out = af.compile({"re": re, "im": im})(a=x, b=y)
    assert _err(out["re"] + 1j * out["im"], np.fft.fft(ref, axis=1)) <= BOUND
    re, im = af.fft.fft2(a, b)
    out = af.compile({"re": re, "im": im})(a=x, b=y)
    assert _err(out["re"] + 1j * out["im"], np.fft.fft2(ref)) <= BOUND
    re, im = af.fft.ifft2(*af.fft.fft2(a, b))
    out = af.compile({"re": re, "im": im})(a=x, b=y)
    assert _err(out["re"] + 1j * out["im"], ref) <= BOUND
    re, im = af.fft.ifft(a, b)
    out = af.compile({"re": re, "im": im})(a=x, b=y)
    assert _err(out["re"] + 1j * out["im"], np.fft.ifft(ref)) <= BOUND
    # constants, stored in fp16 like any other
    np.testing.assert_array_equal(af.compile(af.fft.fftfreq(10, 0.5) + 0.0)(), af.round_fp16(np.fft.fftfreq(10, 0.5)))
    np.testing.assert_array_equal(af.compile(af.fft.rfftfreq(9) + 0.0)(), af.round_fp16(np.fft.rfftfreq(9)))


@pytest.mark.parametrize("n", [60, 1024])
def test_the_mil_backend_computes_what_the_sim_does(n):
    """The emitted program (DFT matrices, twiddles and transposes as MIL) run by the mil
    backend, constants folded and not: equal to the sim (measured: the same fp32 sums, the
    same roundings), so within the bound of NumPy too."""
    x = _signal((2, n), 5)
    a = af.input((2, n), name="a")
    re, im = af.fft.rfft(a)
    sim = af.compile({"re": re, "im": im})(a=x)
    ref = np.fft.rfft(x.astype(np.float64))
    for fold in (True, False):
        mil = af.compile({"re": re, "im": im}, backend="mil", fold_constants=fold)(a=x)
        for k in ("re", "im"):
            np.testing.assert_array_equal(mil[k], sim[k])
        assert _err(mil["re"] + 1j * mil["im"], ref) <= BOUND


def test_gradients_through_rfft_and_irfft_match_torch():
    x = _signal((2, 1000), 6)
    w = _signal((2, 501), 7)
    a = af.input(x.shape, name="a")
    re, im = af.fft.rfft(a)
    loss = (re * re * w + im * im).sum() * 1e-3
    (g,) = af.grad(loss, [a])
    got = af.compile(g, precision="fp32")(a=x)
    t = torch.from_numpy(x).requires_grad_()
    s = torch.fft.rfft(t)
    ((s.real ** 2 * torch.from_numpy(w) + s.imag ** 2).sum() * 1e-3).backward()
    assert _err(got, t.grad.numpy()) <= 1e-5  # float32 throughout: summation order only
    # irfft: the gradient of a weighted sum of the signal
    spec = np.fft.rfft(x.astype(np.float64))  # where torch evaluates it (the gradient does not depend on it)
    p, q = af.input((2, 501), name="p"), af.input((2, 501), name="q")
    y = af.fft.irfft(p, q, n=1000)
    gp, gq = af.grad((y * af.constant(x)).sum(), [p, q])
    out = af.compile({"gp": gp, "gq": gq}, precision="fp32")()  # linear in (p, q): the gradient is a constant
    tp = torch.tensor(spec.real, dtype=torch.float32, requires_grad=True)
    tq = torch.tensor(spec.imag, dtype=torch.float32, requires_grad=True)
    (torch.fft.irfft(torch.complex(tp, tq), n=1000) * torch.from_numpy(x)).sum().backward()
    assert _err(out["gp"], tp.grad.numpy()) <= 1e-5
    # torch ignores the imaginary parts of bins 0 and n/2, so their gradient is zero there too
    assert _err(out["gq"], tq.grad.numpy()) <= 1e-5


def test_bad_input_is_refused_at_the_call():
    a = af.input((2, 70000), name="a")
    with pytest.raises(ValueError, match="outside 1..65536"):
        af.fft.rfft(a)
    b = af.input((2, 8), name="b")
    with pytest.raises(ValueError, match="differ in shape"):
        af.fft.fft(b, af.input((2, 9), name="c"))
    with pytest.raises(ValueError, match="needs 9 bins"):
        af.fft.irfft(b, b, n=16)
    with pytest.raises(ValueError, match="out of range"):
        af.fft.fft(b, dim=2)
    with pytest.raises(TypeError, match="must be float"):
        af.fft.fft(af.input((2, 8), "int32", name="i"))
