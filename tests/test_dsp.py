"""af.dsp against torch (windows, torch.stft in float64), the mil backend against the sim,
gradients against torch. Error: max |af - reference| / max |reference|."""
import numpy as np
import pytest

import aneforge as af

torch = pytest.importorskip("torch")

# (batch, samples, n_fft, hop, win_length, center, window): Whisper's 400 / 160 (a hop that
# does not divide n_fft), a window shorter than n_fft, no centring, a 512-point frame.
CASES = [(2, 4000, 400, 160, 400, True, "hann"), (1, 1000, 256, 64, 200, True, "hamming"),
         (3, 777, 64, 24, 64, False, None), (1, 2048, 512, 128, 512, True, "blackman")]
BOUND = 5e-4  # measured at most 4.0e-4: fp16 storage of the signal, the matrix and the bins


def _err(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.mark.parametrize("kind", ["hann", "hamming", "blackman"])
@pytest.mark.parametrize("periodic", [True, False])
def test_windows_are_torchs(kind, periodic):
    for n in (1, 2, 7, 400):
        got = getattr(af.dsp, f"{kind}_window")(n, periodic=periodic)
        want = getattr(torch, f"{kind}_window")(n, periodic=periodic, dtype=torch.float64).numpy()
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)  # float32 rounding of the float64 values


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[2]}/{c[3]}")
def test_stft_matches_torch(case):
    B, L, n_fft, hop, win_length, center, kind = case
    x = np.random.default_rng(n_fft).standard_normal((B, L)).astype(np.float32)
    w = None if kind is None else getattr(af.dsp, f"{kind}_window")(win_length)
    a = af.input((B, L), name="x")
    re, im = af.dsp.stft(a, n_fft, hop_length=hop, win_length=win_length, window=w, center=center)
    out = af.compile({"re": re, "im": im})(x=x)
    tw = None if w is None else torch.from_numpy(w).double()
    ref = torch.stft(torch.from_numpy(x).double(), n_fft, hop, win_length, tw if tw is not None else
                     torch.ones(win_length, dtype=torch.float64), center=center, return_complex=True).numpy()
    assert out["re"].shape == ref.shape
    assert _err(out["re"] + 1j * out["im"], ref) <= BOUND


def test_a_1d_signal_the_mil_backend_and_gradients():
    x = np.random.default_rng(3).standard_normal(1600).astype(np.float32)
    w = af.dsp.hann_window(400)
    a = af.input((1600,), name="x")
    re, im = af.dsp.stft(a, 400, hop_length=160, window=w)
    power = re * re + im * im
    sim = af.compile(power)(x=x)
    ref = torch.stft(torch.from_numpy(x).double(), 400, 160, window=torch.from_numpy(w).double(),
                     return_complex=True).abs().numpy() ** 2
    assert sim.shape == ref.shape == (201, 11)
    assert _err(sim, ref) <= 2 * BOUND  # a product of two bins: twice their error
    mil = af.compile(power, backend="mil")(x=x)
    np.testing.assert_array_equal(mil, sim)  # measured equal: the same program, the same fp32 sums
    (g,) = af.grad(power.sum() * 1e-4, [a])
    got = af.compile(g, precision="fp32")(x=x)
    t = torch.from_numpy(x).requires_grad_()
    (torch.stft(t, 400, 160, window=torch.from_numpy(w), return_complex=True).abs().pow(2).sum() * 1e-4).backward()
    assert _err(got, t.grad.numpy()) <= 1e-5  # float32 throughout: summation order only


ISTFT_CASES = [(2, 4000, 400, 160, 400, True, "hann"), (1, 1000, 256, 64, 200, True, "hamming"),
               (1, 2048, 512, 128, 512, True, "blackman"), (3, 777, 64, 16, 64, False, "hamming")]
# Measured at most 3.8e-3 (Blackman, 512 / 128): the division by the overlapping squared window
# magnifies the fp16 error of the frames where that sum is small, near the signal's ends.
ISTFT_BOUND = 5e-3


@pytest.mark.parametrize("case", ISTFT_CASES, ids=lambda c: f"{c[2]}/{c[3]}")
def test_istft_matches_torch_and_inverts_stft(case):
    B, L, n_fft, hop, win_length, center, kind = case
    x = np.random.default_rng(hop).standard_normal((B, L)).astype(np.float32)
    w = getattr(af.dsp, f"{kind}_window")(win_length)
    tw = torch.from_numpy(w).double()
    spec = torch.stft(torch.from_numpy(x).double(), n_fft, hop, win_length, tw, center=center, return_complex=True)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")  # torch notes the zero tail it pads without centring
        ref = torch.istft(spec, n_fft, hop, win_length, tw, center=center, length=L).numpy()
    p, q = af.input(tuple(spec.shape), name="p"), af.input(tuple(spec.shape), name="q")
    y = af.dsp.istft(p, q, n_fft, hop_length=hop, win_length=win_length, window=w, center=center, length=L)
    got = af.compile(y)(p=spec.real.numpy().astype(np.float32), q=spec.imag.numpy().astype(np.float32))
    assert got.shape == ref.shape == (B, L)
    assert _err(got, ref) <= ISTFT_BOUND
    if center:  # the round trip gives the signal back
        assert _err(got, x) <= ISTFT_BOUND


def test_bad_arguments_are_refused_at_the_call():
    a = af.input((2, 100), name="x")
    with pytest.raises(ValueError, match="shorter than n_fft"):
        af.dsp.stft(a, 128, center=False)
    with pytest.raises(ValueError, match="window has shape"):
        af.dsp.stft(a, 32, window=np.ones(16, np.float32))
    with pytest.raises(ValueError, match="win_length <= n_fft"):
        af.dsp.stft(a, 32, win_length=64)
    with pytest.raises(ValueError, match=r"\(L,\) or \(B, L\)"):
        af.dsp.stft(af.input((1, 2, 100), name="y"), 32)
    with pytest.raises(ValueError, match="pad_mode"):
        af.dsp.stft(a, 32, pad_mode="circular")
    spec = af.input((2, 17, 9), name="s")
    with pytest.raises(ValueError, match="17 bins, but n_fft=64 has 33"):
        af.dsp.istft(spec, spec, 64)
    with pytest.raises(ValueError, match="NOLA"):  # a Hann window without centring: zero at the ends
        af.dsp.istft(spec, spec, 32, hop_length=8, window=af.dsp.hann_window(32), center=False)
