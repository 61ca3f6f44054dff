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


__all__ = ["stft", "istft", "hann_window", "hamming_window", "blackman_window"]
