"""Convolution family: conv and conv_transpose over 1-3 spatial dims, fp32 accumulation."""
import numpy as np

from ..registry import op
from .elementwise import num

C = "conv"


def spatial_pads(a, in_sizes, kernel, strides, dilations, transpose=False):
    """[(before, after)] per spatial dim from pad_type / pad, as MIL defines them."""
    n = len(in_sizes)
    pad_type = a.str("pad_type", "valid")
    if pad_type == "valid":
        return [(0, 0)] * n
    if pad_type == "custom":
        p = a.ints("pad", [0] * 2 * n)
        if len(p) != 2 * n:
            a.fail(f"pad has {len(p)} values, expected {2 * n}")
        return [(p[2 * i], p[2 * i + 1]) for i in range(n)]
    if pad_type in ("same", "same_lower"):
        pads = []
        for i in range(n):
            eff = (kernel[i] - 1) * dilations[i] + 1
            if transpose:
                total = max(eff - strides[i], 0)
            else:
                out = -(-in_sizes[i] // strides[i])
                total = max((out - 1) * strides[i] + eff - in_sizes[i], 0)
            small, big = total // 2, total - total // 2
            pads.append((big, small) if pad_type == "same_lower" else (small, big))
        return pads
    a.fail(f"unknown pad_type '{pad_type}'")


def _windows(x, kernel, strides, dilations):
    """x [N, C, *S] -> [N, C, *out, *kernel] strided view of the sliding windows (pooling)."""
    n = len(kernel)
    shape, st = x.shape[:2], x.strides[:2]
    out = [(x.shape[2 + i] - (kernel[i] - 1) * dilations[i] - 1) // strides[i] + 1 for i in range(n)]
    if any(o <= 0 for o in out):
        raise ValueError(f"kernel {tuple(kernel)} does not fit the padded input {x.shape[2:]}")
    view_shape = tuple(shape) + tuple(out) + tuple(kernel)
    view_strides = tuple(st) + tuple(x.strides[2 + i] * strides[i] for i in range(n)) + tuple(
        x.strides[2 + i] * dilations[i] for i in range(n))
    return np.lib.stride_tricks.as_strided(x, view_shape, view_strides, writeable=False)


def _patches(x, kernel, strides, dilations):
    """x [N, C, *S] (padded) -> [N, C, *K, *out]: for each kernel tap, the input it meets at
    every output position. Copied tap by tap: each copy is a strided slice of whole rows."""
    n = len(kernel)
    out = [(x.shape[2 + i] - (kernel[i] - 1) * dilations[i] - 1) // strides[i] + 1 for i in range(n)]
    if any(o <= 0 for o in out):
        raise ValueError(f"kernel {tuple(kernel)} does not fit the padded input {x.shape[2:]}")
    if all(k == 1 for k in kernel) and all(s == 1 for s in strides):
        return x.reshape(x.shape[:2] + (1,) * n + x.shape[2:]), out
    cols = np.empty(x.shape[:2] + tuple(kernel) + tuple(out), x.dtype)
    for tap in np.ndindex(*kernel):
        at = tuple(slice(tap[i] * dilations[i], tap[i] * dilations[i] + (out[i] - 1) * strides[i] + 1, strides[i])
                   for i in range(n))
        cols[(slice(None), slice(None)) + tap] = x[(slice(None), slice(None)) + at]
    return cols, out


def conv_nd(x, w, groups, strides, dilations, pads):
    """Grouped N-d cross-correlation; x [N, Cin, *S], w [Cout, Cin/groups, *K]. Per image and
    group one GEMM, weights [Cout/g, Cin/g * K] @ patches [Cin/g * K, positions]: each output
    sums its (input channel, kernel tap) products in that order, as NumPy's matmul does."""
    n = x.ndim - 2
    if any(p != (0, 0) for p in pads):
        x = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    cols, out = _patches(x, w.shape[2:], strides, dilations)  # N, Cin, *K, *out
    batch, cout = x.shape[0], w.shape[0]
    reduction = w[0].size  # Cin/g * K
    cols = cols.reshape(batch, groups, reduction, -1)
    y = np.matmul(w.reshape(groups, cout // groups, reduction), cols)  # N, g, Cout/g, positions
    return y.reshape((batch, cout) + tuple(out))


@op("conv", family=C)
def conv(a):
    x, w = num(a, "x"), num(a, "weight")
    n = x.ndim - 2
    if w.ndim != x.ndim:
        a.fail(f"weight rank {w.ndim} does not match x rank {x.ndim}")
    groups = a.int("groups", 1)
    if groups < 1 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        a.fail(f"channels: x {x.shape}, weight {w.shape}, groups {groups}")
    strides = a.ints("strides", [1] * n)
    dil = a.ints("dilations", [1] * n)
    pads = spatial_pads(a, x.shape[2:], w.shape[2:], strides, dil)
    y = conv_nd(x, w, groups, strides, dil, pads)
    if a.has("bias"):
        b = num(a, "bias").reshape((-1,) + (1,) * n)
        if np.result_type(y, b) == y.dtype:
            y += b  # y is this op's own new array
        else:
            y = y + b
    return y


def _transposed_full(x, w, groups, strides, dil, full):
    """The full transposed convolution: input position i and kernel tap t add into output
    position i * stride + t * dilation. Per image and group one GEMM, weights^T [Cout/g x taps,
    Cin/g] @ x [Cin/g, positions] (each product summed over input channels in order), then
    each tap's plane added into the output in tap order."""
    n = x.ndim - 2
    batch, cin = x.shape[:2]
    k, cout = w.shape[2:], w.shape[1] * groups
    z = np.matmul(np.swapaxes(w.reshape(groups, cin // groups, -1), 1, 2),
                  x.reshape(batch, groups, cin // groups, -1))  # N, g, Cout/g x taps, positions
    z = z.reshape((batch, cout) + tuple(k) + x.shape[2:])
    y = np.zeros((batch, cout) + tuple(full), z.dtype)
    for tap in np.ndindex(*k):
        at = tuple(slice(tap[i] * dil[i], tap[i] * dil[i] + (x.shape[2 + i] - 1) * strides[i] + 1, strides[i])
                   for i in range(n))
        y[(slice(None), slice(None)) + at] += z[(slice(None), slice(None)) + tap]
    return y


@op("conv_transpose", family=C)
def conv_transpose(a):
    """Weight [Cin, Cout/groups, *K]. The full transposed convolution, cropped by pad (or to
    output_shape, as the MIL definition allows: the extra size goes at the end)."""
    x, w = num(a, "x"), num(a, "weight")
    n = x.ndim - 2
    groups = a.int("groups", 1)
    strides = a.ints("strides", [1] * n)
    dil = a.ints("dilations", [1] * n)
    cin, cout_g = w.shape[0], w.shape[1]
    if x.shape[1] != cin or cin % groups:
        a.fail(f"channels: x {x.shape}, weight {w.shape}, groups {groups}")
    k = w.shape[2:]
    full = [(x.shape[2 + i] - 1) * strides[i] + (k[i] - 1) * dil[i] + 1 for i in range(n)]
    y = _transposed_full(x, w, groups, strides, dil, full)
    crop = spatial_pads(a, x.shape[2:], k, strides, dil, transpose=True)
    length = [full[i] - crop[i][0] - crop[i][1] for i in range(n)]
    if a.has("output_shape"):  # the output starts after the leading pad and has this size
        length = a.ints("output_shape")[-n:]
    grow = [(0, max(crop[i][0] + length[i] - full[i], 0)) for i in range(n)]
    y = np.pad(y, [(0, 0), (0, 0)] + grow)
    y = y[(slice(None), slice(None)) + tuple(slice(crop[i][0], crop[i][0] + length[i]) for i in range(n))]
    if a.has("bias"):
        y = y + num(a, "bias").reshape((-1,) + (1,) * n)
    return y
