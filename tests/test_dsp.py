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


# -- fir, iir, resample --------------------------------------------------------------------
signal = pytest.importorskip("scipy.signal")


def _noise(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("taps", [1, 5, 15, 16, 101, 257])  # direct and polyphase (more than 15 taps)
def test_fir_matches_scipy_lfilter(taps):
    x = _noise((3, 4000))
    h = signal.firwin(taps, 0.3) if taps > 1 else np.array([0.7])
    got = af.compile(af.dsp.fir(af.input(x.shape, name="x"), h))(x=x)
    want = signal.lfilter(h, [1.0], x.astype(np.float64), axis=-1)
    # measured at most 6.2e-4 (one tap: the product's own rounding); every output is one
    # fp32 sum of products, rounded once
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-3


def test_fir_along_another_axis_and_of_one_signal():
    x = _noise((500, 2), 1)
    h = signal.firwin(31, 0.2)
    got = af.compile(af.dsp.fir(af.input(x.shape, name="x"), h, dim=0))(x=x)
    want = signal.lfilter(h, [1.0], x.astype(np.float64), axis=0)
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-3
    one = af.compile(af.dsp.fir(af.input((500,), name="x"), h))(x=x[:, 0])
    assert np.array_equal(one, got[:, 0])


@pytest.mark.parametrize("design", [(2, 0.2, "low"), (4, 0.1, "low"), (8, [0.1, 0.3], "bandpass"), (6, 0.02, "high")])
def test_iir_matches_scipy_sosfilt(design):
    order, wn, kind = design
    sos = signal.butter(order, wn, kind, output="sos")
    x = _noise((3, 4000), 2)
    got = af.compile(af.dsp.iir(af.input(x.shape, name="x"), sos))(x=x)
    want = signal.sosfilt(sos, x.astype(np.float64), axis=-1)
    # measured 4.9e-4, 1.0e-3, 1.7e-3, 2.0e-3: each of up to 8 sections stores its output in
    # fp16 and the next one filters that (without sharing out butter's gain, 0.33 at order 8)
    assert np.abs(got - want).max() / np.abs(want).max() <= 3e-3


@pytest.mark.parametrize("rates", [(16000, 8000), (8000, 16000), (44100, 16000), (16000, 44100), (3, 2)])
@pytest.mark.parametrize("method", ["sinc_interp_hann", "sinc_interp_kaiser"])
def test_resample_gives_a_band_limited_signal_at_the_new_times(rates, method):
    orig, new = rates
    n = 2000
    f1, f2 = 0.05 * min(orig, new), 0.2 * min(orig, new)  # well inside both Nyquist bands

    def wave(t):
        return np.sin(2 * np.pi * f1 * t) + 0.5 * np.sin(2 * np.pi * f2 * t + 1)
    x = wave(np.arange(n) / orig).astype(np.float32)
    got = af.compile(af.dsp.resample(af.input((1, n), name="x"), orig, new, resampling_method=method))(x=x[None])[0]
    assert got.shape == (-(-new * n // orig),)  # torchaudio's length: ceil(new * n / orig)
    want = wave(np.arange(got.size) / new)
    # away from the ends (where the signal stops): measured at most 9.2e-4, the windowed
    # sinc's passband ripple (6 zero crossings, rolloff 0.99) plus fp16 storage
    assert np.abs(got - want)[64:-64].max() <= 1.5e-3


@pytest.mark.parametrize("fold", [True, False])
def test_filters_compute_on_the_mil_backend_what_the_sim_does(fold):
    x = _noise((2, 700), 3)
    a = af.input(x.shape, name="x")
    outs = {"fir": af.dsp.fir(a, signal.firwin(41, 0.3)), "iir": af.dsp.iir(a, signal.butter(4, 0.2, output="sos")),
            "resample": af.dsp.resample(a, 44100, 16000)}
    want = af.compile(outs)(x=x)
    got = af.compile(outs, backend="mil", fold_constants=fold)(x=x)
    for k in want:
        assert np.array_equal(got[k], want[k]), k


def test_filter_programs_stay_within_the_targets_kernel_width():
    x = af.input((1, 2000), name="x")  # 7 x 2000 output samples: within h13's 16384-wide rows
    for target in ("h13", "h16g", "h18"):  # compiling checks every conv against the target's limits
        af.compile({"fir": af.dsp.fir(x, np.ones(300) / 300), "res": af.dsp.resample(x, 1, 7)}, target=target)


def test_filter_input_is_checked_at_the_call():
    x = af.input((2, 100), name="x")
    with pytest.raises(ValueError, match="taps must be finite"):
        af.dsp.fir(x, [1.0, np.nan])
    with pytest.raises(ValueError, match=r"sos must be finite \(n_sections, 6\)"):
        af.dsp.iir(x, np.ones((2, 5)))
    with pytest.raises(ValueError, match="a0 != 0"):
        af.dsp.iir(x, [[1, 0, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="positive whole numbers"):
        af.dsp.resample(x, 16000.5, 8000)
    with pytest.raises(ValueError, match="resampling_method must be"):
        af.dsp.resample(x, 2, 1, resampling_method="linear")
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        af.dsp.fir(x, [1.0], dim=2)
