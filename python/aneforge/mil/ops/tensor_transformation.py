"""Tensor transformation family: reshapes, permutations, slicing, space/depth moves."""
import numpy as np

from ..registry import op

T = "tensor_transformation"


@op("reshape", family=T)
def reshape(a):
    x = a.tensor("x")
    shp = a.ints("shape")
    out = []
    for i, d in enumerate(shp):
        if d == 0:
            if a.opset >= 17:  # counted from the right; out of range -> 1
                j = x.ndim - (len(shp) - i)
                d = x.shape[j] if j >= 0 else 1
            else:
                if len(shp) != x.ndim:
                    a.fail("0 in shape needs len(shape) == rank(x) before iOS17")
                d = x.shape[i]
        out.append(d)
    if out.count(-1) > 1:
        a.fail(f"shape {shp} has more than one -1")
    return x.reshape(out)


@op("reshape_like", family=T, since=16)
def reshape_like(a):
    x = a.tensor("x")
    refs = a.tuple("ref_tensors")
    begins, ends, masks = a.ints("begins"), a.ints("ends"), [bool(m) for m in a.tensor("end_masks").reshape(-1)]
    shp = []
    for r, b, e, m in zip(refs, begins, ends, masks):
        shp.extend(r.shape[b:] if m else r.shape[b:e])
    return x.reshape(shp)


@op("expand_dims", family=T)
def expand_dims(a):
    x = a.tensor("x")
    axes = a.ints("axes")
    rank = x.ndim + len(axes)
    for ax in sorted(ax % rank for ax in axes):
        x = np.expand_dims(x, ax)
    return x


@op("squeeze", family=T)
def squeeze(a):
    x = a.tensor("x")
    axes = a.ints("axes", None)
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(ax % x.ndim for ax in axes))


@op("transpose", family=T)
def transpose(a):
    x = a.tensor("x")
    perm = a.ints("perm")
    if sorted(p % max(x.ndim, 1) for p in perm) != list(range(x.ndim)):
        a.fail(f"perm {perm} is not a permutation of rank {x.ndim}")
    return np.transpose(x, [p % x.ndim for p in perm])


@op("reverse", family=T)
def reverse(a):
    x = a.tensor("x")
    axes = a.ints("axes", None)
    return np.flip(x, axis=None if axes is None else tuple(ax % x.ndim for ax in axes))


@op("reverse_sequence", family=T)
def reverse_sequence(a):
    x = a.tensor("x").copy()
    lengths = a.ints("lengths")
    sa, ba = a.int("seq_axis", 0) % x.ndim, a.int("batch_axis", 0) % x.ndim
    for b, n in enumerate(lengths):
        sl = [slice(None)] * x.ndim
        sl[ba] = b
        xb = x[tuple(sl)]
        ax = sa - (1 if sa > ba else 0)
        idx = [slice(None)] * xb.ndim
        idx[ax] = slice(0, n)
        xb[tuple(idx)] = np.flip(xb[tuple(idx)], axis=ax)
    return x


def _strided_index(a, r):
    """NumPy index from begin/end/stride and the begin/end/squeeze masks (slice_by_index)."""
    begin, end = a.ints("begin"), a.ints("end")
    stride = a.ints("stride", [1] * r)
    bm, em, sm = ([bool(v) for v in a.tensor(m, np.zeros(r, bool)).reshape(-1)]
                  for m in ("begin_mask", "end_mask", "squeeze_mask"))
    if not len(begin) == len(end) == len(stride) == len(bm) == len(em) == len(sm) == r:
        a.fail(f"begin/end/stride/mask lengths do not match rank {r}")
    if 0 in stride:
        a.fail("stride 0")
    return tuple(begin[i] if sm[i] else slice(None if bm[i] else begin[i], None if em[i] else end[i], stride[i])
                 for i in range(r))


@op("slice_by_index", family=T)
def slice_by_index(a):
    x = a.tensor("x")
    return np.asarray(x[_strided_index(a, x.ndim)])


@op("slice_by_size", family=T)
def slice_by_size(a):
    x = a.tensor("x")
    begin, size = a.ints("begin"), a.ints("size")
    idx = []
    for i in range(x.ndim):
        b = begin[i] % x.shape[i] if begin[i] < 0 else begin[i]
        e = x.shape[i] if size[i] == -1 else b + size[i]
        if e > x.shape[i] or b > x.shape[i]:
            a.fail(f"slice [{b}:{e}] outside axis {i} of size {x.shape[i]}")
        idx.append(slice(b, e))
    return x[tuple(idx)]


@op("slice_update", family=T, since=18)
def slice_update(a):
    x = a.tensor("x").copy()
    idx = _strided_index(a, x.ndim)
    x[idx] = a.tensor("update").reshape(x[idx].shape)
    return x


def _d2s(x, bs, crd):
    n, c, h, w = x.shape
    if crd:  # pixel_shuffle: channel index c*bs*bs + i*bs + j
        y = x.reshape(n, c // (bs * bs), bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:  # depth_to_space: channel index (i*bs + j)*C' + c
        y = x.reshape(n, bs, bs, c // (bs * bs), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (bs * bs), h * bs, w * bs)


def _s2d(x, bs, crd):
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // bs, bs, w // bs, bs)
    y = y.transpose(0, 1, 3, 5, 2, 4) if crd else y.transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * bs * bs, h // bs, w // bs)


def _space_depth(name, to_space, crd, factor, since=15):
    """depth_to_space / space_to_depth (DCR order) and pixel_shuffle / pixel_unshuffle (CRD)."""
    def impl(a):
        x = a.tensor("x")
        if x.ndim != 4:
            a.fail(f"x must have rank 4, got {x.shape}")
        return (_d2s if to_space else _s2d)(x, a.int(factor), crd=crd)
    op(name, family=T, since=since)(impl)


_space_depth("depth_to_space", True, False, "block_size")
_space_depth("space_to_depth", False, False, "block_size")
_space_depth("pixel_shuffle", True, True, "upscale_factor")
_space_depth("pixel_unshuffle", False, True, "downscale_factor", since=16)


@op("space_to_batch", family=T)
def space_to_batch(a):
    x = a.tensor("x")
    bh, bw = a.ints("block_shape")
    p = a.ints("paddings")
    x = np.pad(x, [(0, 0), (0, 0), (p[0], p[1]), (p[2], p[3])])
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // bh, bh, w // bw, bw).transpose(3, 5, 0, 1, 2, 4)
    return y.reshape(bh * bw * n, c, h // bh, w // bw)


@op("batch_to_space", family=T)
def batch_to_space(a):
    x = a.tensor("x")
    bh, bw = a.ints("block_shape")
    cr = a.ints("crops")
    nb, c, h, w = x.shape
    n = nb // (bh * bw)
    y = x.reshape(bh, bw, n, c, h, w).transpose(2, 3, 4, 0, 5, 1).reshape(n, c, h * bh, w * bw)
    return y[:, :, cr[0]:h * bh - cr[1], cr[2]:w * bw - cr[3]]


@op("sliding_windows", family=T)
def sliding_windows(a):
    x = a.tensor("x")
    ax = a.axis("axis", x.ndim)
    size, stride = a.int("size"), a.int("stride", 1)
    count = (x.shape[ax] - size) // stride + 1
    idx = np.arange(count)[:, None] * stride + np.arange(size)[None, :]
    y = np.take(x, idx.reshape(-1), axis=ax)
    return y.reshape(x.shape[:ax] + (count, size) + x.shape[ax + 1:])
