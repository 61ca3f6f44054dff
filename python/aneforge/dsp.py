"""Signal processing as graph functions, with torch's (and where torch has none, scipy's)
names and semantics: window functions, the short-time Fourier transform and its inverse,
FIR and IIR filters, and resampling.

``stft`` frames the signal without a gather: the signal is cut into chunks of
g = gcd(hop_length, n_fft) samples, and each frame is n_fft / g strided slices of the chunks
side by side; one matmul with the window folded into the DFT matrix gives every frame's
bins. Complex results are ``(re, im)`` pairs as in ``af.fft``.
"""
from __future__ import annotations

import math

import numpy as np

from .graph import functional as _F
from .graph.tensor import Tensor, as_tensor, constant


def _window(n, periodic, coeffs):
    if n < 1:
        raise ValueError(f"window length must be >= 1, got {n}")
    if n == 1:
        return np.ones(1, np.float64)
    m = n if periodic else n - 1
    k = np.arange(n)
    return sum(c * np.cos(2 * np.pi * i * k / m) * (-1) ** i for i, c in enumerate(coeffs))


def hann_window(window_length, periodic=True) -> np.ndarray:
    """torch.hann_window's values (float32 NumPy: a window is a constant of the program)."""
    return _window(int(window_length), periodic, (0.5, 0.5)).astype(np.float32)


def hamming_window(window_length, periodic=True) -> np.ndarray:
    """torch.hamming_window's values (alpha 0.54, beta 0.46)."""
    return _window(int(window_length), periodic, (0.54, 0.46)).astype(np.float32)


def blackman_window(window_length, periodic=True) -> np.ndarray:
    """torch.blackman_window's values."""
    return _window(int(window_length), periodic, (0.42, 0.5, 0.08)).astype(np.float32)


def _centred_window(window, win_length, n_fft, what):
    """The window's values (all ones by default), centred in n_fft samples as torch pads it."""
    w = np.ones(win_length, np.float64) if window is None else np.asarray(
        window.detach().cpu().numpy() if hasattr(window, "detach") else window, np.float64)
    if w.shape != (win_length,):
        raise ValueError(f"{what}: window has shape {w.shape}, expected ({win_length},)")
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


def stft(x, n_fft, hop_length=None, win_length=None, window=None, center=True, pad_mode="reflect") -> tuple:
    """The short-time Fourier transform of x (L,) or (B, L), as torch.stft with
    onesided=True, normalized=False: (re, im), each (B, n_fft // 2 + 1, frames) (no batch
    axis for a 1-D x). ``window`` is an array of win_length values (default all ones),
    centred in n_fft as torch pads it."""
    x = as_tensor(x)
    if len(x.shape) not in (1, 2):
        raise ValueError(f"stft: x must be (L,) or (B, L), got {tuple(x.shape)}")
    n_fft = int(n_fft)
    hop = n_fft // 4 if hop_length is None else int(hop_length)
    win_length = n_fft if win_length is None else int(win_length)
    if n_fft < 1 or hop < 1 or not 1 <= win_length <= n_fft:
        raise ValueError(f"stft: need n_fft >= 1, hop_length >= 1 and 1 <= win_length <= n_fft; got n_fft={n_fft}, "
                         f"hop_length={hop}, win_length={win_length}")
    w = _centred_window(window, win_length, n_fft, "stft")
    single = len(x.shape) == 1
    if single:
        x = x.reshape(1, x.shape[0])
    if center:
        if pad_mode not in ("reflect", "constant"):
            raise ValueError(f"stft: pad_mode must be 'reflect' or 'constant', got {pad_mode!r}")
        x = _F.pad(x, (n_fft // 2, n_fft // 2), mode=pad_mode)
    B, L = x.shape
    if L < n_fft:
        raise ValueError(f"stft: the signal ({L} samples{' after centring' if center else ''}) is shorter than "
                         f"n_fft={n_fft}")
    frames = 1 + (L - n_fft) // hop
    g = math.gcd(hop, n_fft)
    chunks_needed = (frames - 1) * hop // g + n_fft // g
    x = x[:, :chunks_needed * g].reshape(B, chunks_needed, g)
    step = hop // g
    # frame t = chunks t*step .. t*step + n_fft/g - 1, side by side: (B, frames, n_fft)
    pieces = [x[:, j:j + (frames - 1) * step + 1:step] for j in range(n_fft // g)]
    framed = pieces[0] if len(pieces) == 1 else _F.concat(pieces, dim=-1)
    framed = framed.reshape(B, frames, n_fft)
    m = n_fft // 2 + 1
    ang = 2 * np.pi * (np.outer(np.arange(n_fft), np.arange(m)) % n_fft) / n_fft
    wr = (w[:, None] * np.cos(ang)).astype(np.float32)
    wi = (-w[:, None] * np.sin(ang)).astype(np.float32)
    re = _F.matmul(framed, constant(wr)).transpose(-1, -2)
    im = _F.matmul(framed, constant(wi)).transpose(-1, -2)
    if single:
        re, im = re.reshape(m, frames), im.reshape(m, frames)
    return re, im


def istft(re, im, n_fft, hop_length=None, win_length=None, window=None, center=True, length=None) -> Tensor:
    """The signal whose stft is (re, im) (torch.istft with onesided bins, normalized=False):
    each frame's inverse real DFT times the window (one matmul), overlap-added, divided by
    the summed squared window. re, im: (bins, frames) or (B, bins, frames)."""
    re, im = as_tensor(re), as_tensor(im)
    if tuple(re.shape) != tuple(im.shape) or len(re.shape) not in (2, 3):
        raise ValueError(f"istft: re and im must share a (bins, frames) or (B, bins, frames) shape, got "
                         f"{tuple(re.shape)} and {tuple(im.shape)}")
    n_fft = int(n_fft)
    hop = n_fft // 4 if hop_length is None else int(hop_length)
    win_length = n_fft if win_length is None else int(win_length)
    single = len(re.shape) == 2
    if single:
        re, im = re.reshape(1, *re.shape), im.reshape(1, *im.shape)
    B, m, frames = re.shape
    if m != n_fft // 2 + 1:
        raise ValueError(f"istft: {m} bins, but n_fft={n_fft} has {n_fft // 2 + 1}")
    if hop < 1 or not 1 <= win_length <= n_fft:
        raise ValueError(f"istft: need hop_length >= 1 and 1 <= win_length <= n_fft, got {hop}, {win_length}")
    w = _centred_window(window, win_length, n_fft, "istft")
    # frame t's samples: sum_k c_k (Re X_k cos - Im X_k sin) / n * w_j, c_k = 2 but for 0 and n/2
    k = np.arange(m)
    c = np.where((k == 0) | ((n_fft % 2 == 0) & (k == n_fft // 2)), 1.0, 2.0)
    ang = 2 * np.pi * (np.outer(k, np.arange(n_fft)) % n_fft) / n_fft
    a = (c[:, None] * np.cos(ang) / n_fft * w[None]).astype(np.float32)
    b = (-c[:, None] * np.sin(ang) / n_fft * w[None]).astype(np.float32)
    framed = _F.matmul(re.transpose(-1, -2), constant(a)) + _F.matmul(im.transpose(-1, -2), constant(b))
    # overlap-add in chunks of g = gcd(hop, n_fft): piece j of frame t lands on chunk t*step + j
    g = math.gcd(hop, n_fft)
    step, per = hop // g, n_fft // g
    total = (frames - 1) * step + per
    pieces = framed.reshape(B, frames, per, g)
    out = None
    for j in range(per):
        piece = pieces[:, :, j:j + 1, :]                                          # (B, frames, 1, g)
        if step > 1:
            piece = _F.concat([piece, constant(np.zeros((B, frames, step - 1, g), np.float32))], dim=2)
        spread = piece.reshape(B, frames * step, g)[:, :(frames - 1) * step + 1]   # frame t at chunk t*step
        placed = _F.pad(spread, (0, 0, j, total - j - spread.shape[1]))
        out = placed if out is None else out + placed
    y = out.reshape(B, total * g)
    # divide by the overlapping squared window (where it is not ~0, as torch checks)
    env = np.zeros(total * g)
    for t in range(frames):
        env[t * hop:t * hop + n_fft] += w ** 2
    start = n_fft // 2 if center else 0
    end = total * g - (n_fft // 2 if center else 0)
    if length is not None:
        end = min(start + int(length), total * g)
    if np.any(env[start:end] < 1e-11):
        raise ValueError("istft: the window's overlap-add is zero somewhere in the output (NOLA fails): "
                         "choose a window and hop whose overlapping squares never vanish")
    inv = np.zeros_like(env)
    inv[start:end] = 1.0 / env[start:end]
    y = (y * constant(inv.astype(np.float32)))[:, start:end]
    if length is not None and end - start < int(length):
        y = _F.pad(y, (0, int(length) - (end - start)))
    return y.reshape(y.shape[-1]) if single else y


# -- filters and resampling ------------------------------------------------------------------
def _kernel_width_max() -> int:
    """The narrowest conv kernel-width limit over every target (13 on h13..h15, 15 after), so
    a filter compiles for any of them."""
    from . import _core
    return min(int(t["kernel_width_max"]) for t in _core.targets())


def _strided_filter(x, kern: np.ndarray, hop: int):
    """y[n * R + o] = sum_k kern[o, k] x[n * hop + k] for each frame n that fits in x (B, L),
    as one conv1d: x cut into chunks of c * hop samples whose phases are the channels, c the
    fewest frames per chunk that keep the kernel within the targets' width limit. Each output
    is one sum of products in fp32, rounded once, as a direct convolution would round it."""
    B, L = x.shape
    R, K = kern.shape
    frames = (L - K) // hop + 1
    c, limit = 1, _kernel_width_max()
    while math.ceil((K + (c - 1) * hop) / (c * hop)) > limit:
        c += 1
    P = c * hop
    W = math.ceil((K + (c - 1) * hop) / P)
    N = -(-frames // c)
    chunks = N + W - 1
    if chunks * P > L:
        x = _F.concat([x, constant(np.zeros((B, chunks * P - L), np.float32))], dim=-1)
    elif chunks * P < L:
        x = x[:, :chunks * P]
    xc = x.reshape(B, chunks, P).transpose(-1, -2)                                    # (B, P, chunks)
    t, j = np.meshgrid(np.arange(W), np.arange(P), indexing="ij")                       # (W, P)
    weight = np.zeros((c, R, P, W), np.float32)
    for f in range(c):
        idx = t * P + j - f * hop
        ok = (idx >= 0) & (idx < K)
        weight[f][:, j[ok], t[ok]] = kern[:, idx[ok]]
    y = _F.conv1d(xc, constant(weight.reshape(c * R, P, W)))                           # (B, c R, N)
    return y.transpose(-1, -2).reshape(B, N * c * R)[:, :frames * R]


def _rows(x, dim, what):
    """x with ``dim`` moved last and the rest flattened: (rows, L), and a function undoing it."""
    x = as_tensor(x)
    rank = len(x.shape)
    d = dim + rank if dim < 0 else dim
    if not 0 <= d < rank:
        raise ValueError(f"{what}: dim={dim} is out of range for a tensor of rank {rank}")
    if x.dtype not in ("fp16", "fp32"):
        raise TypeError(f"{what}: the signal must be float, got {x.dtype}")
    moved = x if d == rank - 1 else x.transpose(d, -1)
    lead = tuple(moved.shape[:-1])
    flat = moved.reshape(int(np.prod(lead)) if lead else 1, moved.shape[-1])

    def back(y):
        y = y.reshape(*lead, y.shape[-1])
        return y if d == rank - 1 else y.transpose(d, -1)
    return flat, back


def fir(x, taps, dim=-1) -> Tensor:
    """x filtered by the FIR ``taps`` along ``dim``, causal with zero initial state
    (scipy.signal.lfilter(taps, [1.0], x)): y[n] = sum_k taps[k] x[n - k], same length as x.
    One conv1d (a polyphase form when there are more than 15 taps)."""
    h = np.asarray(taps, np.float64).reshape(-1)
    if h.size < 1 or not np.isfinite(h).all():
        raise ValueError(f"fir: taps must be finite values, got {h.size}")
    flat, back = _rows(x, dim, "fir")
    B, L = flat.shape
    K = h.size
    if K > 1:
        flat = _F.concat([constant(np.zeros((B, K - 1), np.float32)), flat], dim=-1)
    return back(_strided_filter(flat, h[::-1].astype(np.float32)[None, :].copy(), 1))


def _biquad_blocks(section, T):
    """The block matrices of one second-order section (direct form II transposed) over T
    samples: y = x H^T + z G^T and z' = x S^T + z F^T for a block x (T,) and state z (2,)."""
    b0, b1, b2, a0, a1, a2 = (float(v) for v in section)
    b0, b1, b2, a1, a2 = b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0
    A = np.array([[-a1, 1.0], [-a2, 0.0]])
    Bv = np.array([b1 - a1 * b0, b2 - a2 * b0])
    powers = [np.eye(2)]
    for _ in range(T):
        powers.append(A @ powers[-1])
    h = np.array([b0] + [powers[m - 1][0] @ Bv for m in range(1, T)])                # impulse response
    HT = np.zeros((T, T))
    for jj in range(T):
        HT[jj, jj:] = h[:T - jj]
    GT = np.stack([powers[t][0] for t in range(T)], 1)                                # (2, T): C A^t
    ST = np.stack([powers[T - 1 - jj] @ Bv for jj in range(T)])                       # (T, 2)
    FT = powers[T].T
    return HT, GT, ST, FT


IIR_BLOCK = 128  # samples per block: the recursion runs once per block, everything else is matmuls


def _balanced(sos: np.ndarray) -> np.ndarray:
    """The same cascade with each section's numerator scaled to an equal share of the overall
    gain: designs such as scipy's butter put all of it in the first section (numerators near
    1e-4), whose output then sits at the bottom of fp16's range (6.1e-5) and loses its digits.
    Each section is brought to a peak gain of 1 over 2048 frequencies, then all are scaled by
    the same factor so the product is unchanged."""
    sos = sos.astype(np.float64).copy()
    w = np.exp(-1j * np.linspace(0, np.pi, 2048))
    peaks = []
    for s_ in sos:
        h = np.abs(np.polyval(s_[2::-1], w) / np.polyval(s_[:2:-1], w))   # b(z^-1) / a(z^-1)
        peaks.append(float(h.max()) if np.isfinite(h).all() and h.max() > 0 else 1.0)
    share = float(np.exp(np.mean(np.log(peaks))))
    for s_, peak in zip(sos, peaks):
        s_[:3] *= share / peak
    return sos


def iir(x, sos, dim=-1) -> Tensor:
    """x filtered by the cascade of second-order sections ``sos`` (n, 6) rows [b0, b1, b2, a0,
    a1, a2] along ``dim``, zero initial state (scipy.signal.sosfilt); the sections' gains are
    shared out evenly first (the product is the same filter). Each section runs in
    blocks of 128 samples: every block's zero-state response and its effect on the state are
    matmuls over all blocks at once; only the 2-value state steps from block to block."""
    sos = np.asarray(sos, np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6 or sos.shape[0] < 1 or not np.isfinite(sos).all() or (sos[:, 3] == 0).any():
        raise ValueError(f"iir: sos must be finite (n_sections, 6) rows [b0, b1, b2, a0, a1, a2] with a0 != 0, "
                         f"got shape {sos.shape}")
    sos = _balanced(sos)
    flat, back = _rows(x, dim, "iir")
    B, L = flat.shape
    T = min(IIR_BLOCK, L)
    nb = -(-L // T)
    y = flat
    if nb * T > L:
        y = _F.concat([y, constant(np.zeros((B, nb * T - L), np.float32))], dim=-1)
    for section in sos:
        HT, GT, ST, FT = (m.astype(np.float32) for m in _biquad_blocks(section, T))
        xb = y.reshape(B, nb, T)
        u = _F.matmul(xb, constant(ST))                                                 # (B, nb, 2)
        step = constant(np.concatenate([FT, np.eye(2, dtype=np.float32)]))              # [z, u] @ [F^T; I]
        z = constant(np.zeros((B, 1, 2), np.float32))
        states = [z]
        for k in range(nb - 1):
            z = _F.matmul(_F.concat([z, u[:, k:k + 1, :]], dim=-1), step)
            states.append(z)
        zs = states[0] if nb == 1 else _F.concat(states, dim=1)                        # (B, nb, 2)
        y = _F.matmul(_F.concat([xb, zs], dim=-1), constant(np.concatenate([HT, GT]))).reshape(B, nb * T)
    return back(y[:, :L])


def resample(waveform, orig_freq, new_freq, lowpass_filter_width=6, rolloff=0.99,
             resampling_method="sinc_interp_hann", beta=None) -> Tensor:
    """waveform (..., time) resampled from ``orig_freq`` to ``new_freq`` by band-limited
    interpolation, as torchaudio.functional.resample computes it (its windowed-sinc kernel,
    pytorch/audio src/torchaudio/functional/functional.py): ceil(new * time / orig) samples."""
    if int(orig_freq) != orig_freq or int(new_freq) != new_freq or orig_freq <= 0 or new_freq <= 0:
        raise ValueError(f"resample: frequencies must be positive whole numbers, got {orig_freq} and {new_freq}")
    if resampling_method not in ("sinc_interp_hann", "sinc_interp_kaiser"):
        raise ValueError(f"resample: resampling_method must be 'sinc_interp_hann' or 'sinc_interp_kaiser', "
                         f"got {resampling_method!r}")
    flat, back = _rows(waveform, -1, "resample")
    if orig_freq == new_freq:
        return as_tensor(waveform)
    g = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // g, int(new_freq) // g
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
    t = (np.arange(0, -new, -1, dtype=np.float64)[:, None] / new + idx) * base
    t = np.clip(t, -lowpass_filter_width, lowpass_filter_width)
    if resampling_method == "sinc_interp_hann":
        window = np.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    else:
        b = 14.769656459379492 if beta is None else float(beta)
        window = np.i0(b * np.sqrt(1 - (t / lowpass_filter_width) ** 2)) / np.i0(b)
    t = t * math.pi
    kern = np.where(t == 0, 1.0, np.sin(t) / np.where(t == 0, 1.0, t)) * window * (base / orig)
    B, L = flat.shape
    padded = _F.concat([constant(np.zeros((B, width), np.float32)), flat,
                        constant(np.zeros((B, width + orig), np.float32))], dim=-1)
    y = _strided_filter(padded, kern.astype(np.float32), orig)
    return back(y[:, :-(-new * L // orig)])


__all__ = ["fir", "iir", "resample", "stft", "istft", "hann_window", "hamming_window", "blackman_window"]
