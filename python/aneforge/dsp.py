"""Signal processing as graph functions, with torch's names and semantics: window functions
and the short-time Fourier transform.

``stft`` frames the signal without a gather: the signal is cut into chunks of
g = gcd(hop_length, n_fft) samples, and each frame is n_fft / g strided slices of the chunks
side by side; one matmul with the window folded into the DFT matrix gives every frame's
bins. Complex results are ``(re, im)`` pairs as in ``af.fft``.
"""
from __future__ import annotations

import math

import numpy as np

from .graph import functional as _F
from .graph.tensor import as_tensor, constant


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
    w = np.ones(win_length, np.float64) if window is None else np.asarray(
        window.detach().cpu().numpy() if hasattr(window, "detach") else window, np.float64)
    if w.shape != (win_length,):
        raise ValueError(f"stft: window has shape {w.shape}, expected ({win_length},)")
    left = (n_fft - win_length) // 2
    w = np.pad(w, (left, n_fft - win_length - left))
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


__all__ = ["stft", "hann_window", "hamming_window", "blackman_window"]
