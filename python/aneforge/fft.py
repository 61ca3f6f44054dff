"""Discrete Fourier transforms as graph functions (torch.fft's names and semantics), usable
inside any af graph and compiled into the same program.

Complex values travel as a pair of real tensors ``(re, im)``; every transform returns such a
pair (``irfft`` returns the real signal). A length n is transformed by a DFT matmul when
n <= 256, and otherwise as n = n1 * n2 (four-step Cooley-Tukey: a DFT of length n1, a
twiddle product, a DFT of length n2, each factor <= 256 or split again), so every matrix
stays small and each output sums few fp16-rounded terms. A length with a prime factor above
256 runs Bluestein's algorithm: a chirp product, a circular convolution of power-of-two
length by two transforms, another chirp product. Sums accumulate in fp32 like every matmul;
values are stored in fp16. docs/science.md tables the measured error per size.
"""
from __future__ import annotations

import math

import numpy as np

from .graph import functional as _F
from .graph.tensor import Tensor, as_tensor, constant

_DIRECT_MAX = 256  # the longest axis transformed by one DFT matmul


_MAX_LENGTH = 1 << 16  # the widest axis a target holds


def _factor(n: int):
    """n = n1 * n2 with both as close to sqrt(n) as a divisor allows; (n, 1) for n <= 256;
    None when no split leaves every factor at most 256 (a large prime factor: Bluestein)."""
    if n <= _DIRECT_MAX:
        return n, 1
    for n1 in range(int(math.isqrt(n)), 1, -1):
        if n % n1 == 0 and _splits(n1) and _splits(n // n1):
            return n1, n // n1
    return None


def _splits(n: int) -> bool:
    return n <= _DIRECT_MAX or _factor(n) is not None


def _check_factors(n: int):
    if not 1 <= n <= _MAX_LENGTH:
        raise ValueError(f"af.fft: length {n} is outside 1..{_MAX_LENGTH} (the widest axis a target holds)")


_NORMS = ("backward", "ortho", "forward")


def _power(norm, inverse: bool) -> float:
    """p with the transform scaled by n^-p (torch.fft's ``norm``: "backward" scales only the
    inverse by 1/n, "forward" only the forward one, "ortho" both by 1/sqrt(n))."""
    norm = "backward" if norm is None else norm
    if norm not in _NORMS:
        raise ValueError(f"af.fft: norm={norm!r} is not one of {_NORMS}")
    return {"backward": 1.0, "ortho": 0.5, "forward": 0.0}[norm] if inverse else \
        {"backward": 0.0, "ortho": 0.5, "forward": 1.0}[norm]


def _dft_mats(n: int, inverse: bool, p: float):
    """cos and sin parts of the DFT matrix W[j, k] = exp(-+2 pi i j k / n) n^-p."""
    jk = np.outer(np.arange(n), np.arange(n)) % n  # exact before the angle: no large-argument error
    ang = 2 * np.pi * jk / n
    scale = float(n) ** -p
    sign = 1.0 if inverse else -1.0
    return (np.cos(ang) * scale).astype(np.float32), (sign * np.sin(ang) * scale).astype(np.float32)


def _cmatmul(re, im, wr, wi):
    """(re + i im) @ (wr + i wi) on the last axis; im may be None (a real input)."""
    wr, wi = constant(wr), constant(wi)
    if im is None:
        return _F.matmul(re, wr), _F.matmul(re, wi)
    return _F.matmul(re, wr) - _F.matmul(im, wi), _F.matmul(re, wi) + _F.matmul(im, wr)


def _bluestein(re, im, inverse: bool, p: float):
    """The DFT of a length with a prime factor above 256 (Bluestein 1970): X_k = c_k *
    sum_j (x_j c_j) b_(k-j), with chirps c_j = exp(-+ i pi j^2 / n) and b = conj(c), the
    circular convolution of power-of-two length m >= 2n - 1 done by transforms. The
    convolution kernel's transform is a constant, scaled by 1/m so that the inverse transform
    runs unscaled and the products stay small."""
    n = re.shape[-1]
    lead = tuple(re.shape[:-1])
    m = 1 << (2 * n - 2).bit_length()
    sign = 1.0 if inverse else -1.0
    ang = np.pi * ((np.arange(n) ** 2) % (2 * n)) / n       # j^2 mod 2n: exact before the angle
    c_r, c_i = np.cos(ang), sign * np.sin(ang)
    b = np.zeros(m, np.complex128)
    b[:n] = c_r - 1j * c_i
    b[m - n + 1:] = b[1:n][::-1]
    B = np.fft.fft(b) / m
    cr, ci = constant(c_r.astype(np.float32)), constant(c_i.astype(np.float32))
    ar = re * cr if im is None else re * cr - im * ci
    ai = re * ci if im is None else re * ci + im * cr
    pad = constant(np.zeros(lead + (m - n,), np.float32))
    fr, fi = _fft_last(_F.concat([ar, pad], dim=-1), _F.concat([ai, pad], dim=-1), False, 0.0)
    br, bi = constant(B.real.astype(np.float32)), constant(B.imag.astype(np.float32))
    pr, pi_ = fr * br - fi * bi, fr * bi + fi * br
    # the unscaled inverse transform: conj(fft(conj(p)))
    qr, qi = _fft_last(pr, -pi_, False, 0.0)
    vr, vi = qr[..., :n], -qi[..., :n]
    xr, xi = vr * cr - vi * ci, vr * ci + vi * cr
    if p:
        xr, xi = xr * float(n) ** -p, xi * float(n) ** -p
    return xr, xi


def _fft_last(re, im, inverse: bool, p: float):
    """The DFT along the last axis of (re, im), scaled by n^-p (each stage of a split by its
    own length^-p, so the scale is spread and folded into the DFT matrices)."""
    n = re.shape[-1]
    split = _factor(n)
    if split is None:
        return _bluestein(re, im, inverse, p)
    n1, n2 = split
    if n2 == 1:
        return _cmatmul(re, im, *_dft_mats(n, inverse, p))
    lead = tuple(re.shape[:-1])
    # x[j1 * n2 + j2] as (n1, n2); DFT over j1 (moved last), twiddle, DFT over j2.
    def split(t):
        return None if t is None else t.reshape(*lead, n1, n2).transpose(-1, -2)  # (..., n2, n1)
    ar, ai = _fft_last(split(re), split(im), inverse, p)                              # (..., n2 [j2], n1 [k1])
    ang = 2 * np.pi * (np.outer(np.arange(n2), np.arange(n1)) % n) / n
    tw_r, tw_i = np.cos(ang).astype(np.float32), ((1.0 if inverse else -1.0) * np.sin(ang)).astype(np.float32)
    br, bi = ar * constant(tw_r) - ai * constant(tw_i), ar * constant(tw_i) + ai * constant(tw_r)
    cr, ci = _fft_last(br.transpose(-1, -2), bi.transpose(-1, -2), inverse, p)     # (..., n1 [k1], n2 [k2])
    # X[k1 + n1 * k2]: k2 outer
    return cr.transpose(-1, -2).reshape(*lead, n), ci.transpose(-1, -2).reshape(*lead, n)


def _along(fn, tensors, dim):
    """fn on the last axis of each tensor, with ``dim`` moved there and back."""
    t0 = next(t for t in tensors if t is not None)
    rank = len(t0.shape)
    d = dim + rank if dim < 0 else dim
    if not 0 <= d < rank:
        raise ValueError(f"af.fft: dim={dim} is out of range for a tensor of rank {rank}")
    if d == rank - 1:
        return fn(*tensors)
    moved = [None if t is None else t.transpose(d, -1) for t in tensors]
    out = fn(*moved)
    return tuple(o.transpose(d, -1) for o in out) if isinstance(out, tuple) else out.transpose(d, -1)


def _pair(re, im):
    re = as_tensor(re)
    im = None if im is None else as_tensor(im)
    if im is not None and tuple(im.shape) != tuple(re.shape):
        raise ValueError(f"af.fft: re {tuple(re.shape)} and im {tuple(im.shape)} differ in shape")
    if re.dtype not in ("fp16", "fp32"):
        raise TypeError(f"af.fft: the signal must be float, got {re.dtype}")
    return re, im


def _length(re, dim):
    rank = len(re.shape)
    d = dim + rank if dim < 0 else dim
    if not 0 <= d < rank:
        raise ValueError(f"af.fft: dim={dim} is out of range for a tensor of rank {rank}")
    n = re.shape[d]
    _check_factors(n)
    return n


def fft(re, im=None, dim=-1, norm=None) -> tuple:
    """The DFT of (re + i im) along ``dim`` (torch.fft.fft; ``norm`` as torch's): (re, im)."""
    re, im = _pair(re, im)
    _length(re, dim)
    p = _power(norm, False)
    return _along(lambda r, i: _fft_last(r, i, False, p), [re, im], dim)


def ifft(re, im=None, dim=-1, norm=None) -> tuple:
    """The inverse DFT along ``dim``, scaled by 1/n by default (torch.fft.ifft): (re, im)."""
    re, im = _pair(re, im)
    _length(re, dim)
    p = _power(norm, True)
    return _along(lambda r, i: _fft_last(r, i, True, p), [re, im], dim)


def rfft(x, dim=-1, norm=None) -> tuple:
    """The DFT of a real signal along ``dim``, bins 0..n//2 (torch.fft.rfft): (re, im)."""
    x, _ = _pair(x, None)
    n = _length(x, dim)
    p = _power(norm, False)
    m = n // 2 + 1
    if n <= _DIRECT_MAX:  # only the bins kept: a (n, m) real DFT
        wr, wi = _dft_mats(n, False, p)
        return _along(lambda r: (_F.matmul(r, constant(wr[:, :m])), _F.matmul(r, constant(wi[:, :m]))), [x], dim)

    def keep(r):
        fr, fi = _fft_last(r, None, False, p)
        return fr[..., :m], fi[..., :m]
    return _along(keep, [x], dim)


def irfft(re, im, n=None, dim=-1, norm=None) -> Tensor:
    """The real signal of length ``n`` (default 2 * (bins - 1)) whose rfft is (re, im)
    (torch.fft.irfft: the imaginary parts of bin 0 and, for even n, bin n/2 are ignored)."""
    re, im = _pair(re, im)
    p = _power(norm, True)
    rank = len(re.shape)
    d = dim + rank if dim < 0 else dim
    if not 0 <= d < rank:
        raise ValueError(f"af.fft: dim={dim} is out of range for a tensor of rank {rank}")
    m = re.shape[d]
    n = 2 * (m - 1) if n is None else int(n)
    if n < 1 or n // 2 + 1 > m:
        raise ValueError(f"irfft: n={n} needs {n // 2 + 1} bins, the input has {m}")
    _check_factors(n)
    keep = n // 2 + 1

    def inverse(r, i):
        r, i = r[..., :keep], i[..., :keep]
        if n <= _DIRECT_MAX:  # x[j] = sum_k c_k (Re X_k cos - Im X_k sin) n^-p, c_k = 2 but for 0 and n/2
            k = np.arange(keep)
            c = np.where((k == 0) | ((n % 2 == 0) & (k == n // 2)), 1.0, 2.0)
            ang = 2 * np.pi * (np.outer(k, np.arange(n)) % n) / n
            a = (c[:, None] * np.cos(ang) * float(n) ** -p).astype(np.float32)
            b = (-c[:, None] * np.sin(ang) * float(n) ** -p).astype(np.float32)
            return _F.matmul(r, constant(a)) + _F.matmul(i, constant(b))
        # The full Hermitian spectrum: bin k >= keep is the conjugate of bin n - k (a 0/1
        # matmul picks it); bin 0 and, for even n, bin n/2 are real.
        mirror = np.zeros((keep, n - keep), np.float32)
        for col, k in enumerate(range(keep, n)):
            mirror[n - k, col] = 1.0
        real_bins = np.ones(n, np.float32)
        real_bins[0] = 0.0
        if n % 2 == 0:
            real_bins[n // 2] = 0.0
        full_r = _F.concat([r, _F.matmul(r, constant(mirror))], dim=-1)
        full_i = _F.concat([i, -_F.matmul(i, constant(mirror))], dim=-1) * constant(real_bins)
        return _fft_last(full_r, full_i, True, p)[0]
    return _along(inverse, [re, im], dim)


def fft2(re, im=None, norm=None) -> tuple:
    """The 2-D DFT over the last two axes (torch.fft.fft2): (re, im)."""
    r, i = fft(re, im, dim=-1, norm=norm)
    return fft(r, i, dim=-2, norm=norm)


def ifft2(re, im=None, norm=None) -> tuple:
    """The inverse 2-D DFT over the last two axes (torch.fft.ifft2): (re, im)."""
    r, i = ifft(re, im, dim=-1, norm=norm)
    return ifft(r, i, dim=-2, norm=norm)


def fftfreq(n, d=1.0) -> Tensor:
    """The sample frequencies of an n-point DFT (torch.fft.fftfreq), as a constant."""
    return constant(np.fft.fftfreq(int(n), d).astype(np.float32))


def rfftfreq(n, d=1.0) -> Tensor:
    """The sample frequencies of an n-point rfft (torch.fft.rfftfreq), as a constant."""
    return constant(np.fft.rfftfreq(int(n), d).astype(np.float32))


__all__ = ["fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "fftfreq", "rfftfreq"]
