"""Data-aware rounding of compressed weights (GPTQ: Frantar et al., "GPTQ: Accurate
Post-Training Quantization for Generative Pre-trained Transformers", ICLR 2023,
arXiv:2210.17323; with a fixed sparsity mask as in SparseGPT, arXiv:2301.00774).

The grid of each layer (its int8 scales, int4 LUTs and sparsity mask) is the one plain
packing chose; only the rounding of each weight changes. Columns are rounded one at a time
and the error each leaves is spread over the columns not yet rounded, weighted by the
inverse Hessian ``H = X^T X`` of the layer's inputs X on the calibration data, so the
layer's outputs on that data move as little as possible.
"""
from __future__ import annotations

import numpy as np

from .. import _core

MIN_ROWS_PER_INPUT = 2  # calibration rows per input column a layer needs for data-aware rounding


def layer_inputs(outs, ins, names, calibration, feeds, what="gram"):
    """{layer: H (float64 [K, K])}: the Gram matrix of each named linear/conv layer's input
    on the calibration batches, from the uncompressed graph. Layers whose input cannot be
    unfolded into rows of the weight's columns (grouped conv) are left out, and so are layers
    with fewer than MIN_ROWS_PER_INPUT calibration rows per input: with fewer, H is nearly
    singular and the compensation fits the calibration data instead of the layer."""
    wanted, seen, stack = {}, set(), list(outs)
    while stack:
        t = stack.pop()
        if t.node_id in seen:
            continue
        seen.add(t.node_id)
        if t.name in names and t.op in ("linear", "conv") and len(t.inputs) >= 2 and t.inputs[1].op == "const":
            if t.op == "linear" or (t.attrs.get("groups") == 1 and len(t.inputs[0].shape) == 4):
                wanted[t.name] = t
        stack.extend(t.inputs)
    if not wanted:
        return {}
    order = sorted(wanted)
    prog = _core.compile([wanted[n].inputs[0] for n in order], [f"in{i}" for i in range(len(order))], ins, "fp32",
                         "nearest_even", True, "", "", False, {})
    exe = _core.Executable(prog, "sim", 1)
    gram, count = {}, {}
    if what == "amax":  # the largest input magnitude of each layer (int8 activation scales)
        amax = {}
        for batch in calibration:
            args, kwargs = feeds(batch)
            for name, x in zip(order, exe(*args, **kwargs)):
                amax[name] = max(amax.get(name, 0.0), float(np.max(np.abs(x))) if np.size(x) else 0.0)
        return amax
    for batch in calibration:
        args, kwargs = feeds(batch)
        for name, x in zip(order, exe(*args, **kwargs)):
            rows = _rows(np.asarray(x, np.float64), wanted[name])
            gram[name] = gram.get(name, 0) + rows.T @ rows
            count[name] = count.get(name, 0) + len(rows)
    return {n: h for n, h in gram.items() if count[n] >= MIN_ROWS_PER_INPUT * len(h)}


def _rows(x, layer):
    """The layer's input as rows that multiply the flattened weight's columns."""
    if layer.op == "linear":
        return x.reshape(-1, x.shape[-1])
    a = layer.attrs
    kh, kw = layer.inputs[1].shape[2:]
    sh, sw = a["stride"]
    dh, dw = a["dilation"]
    pt, pb, pl, pr = a["pad"]  # top, bottom, left, right
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, c, h, w = x.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, oh, ow, c, kh, kw), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[..., i, j] = x[:, :, i * dh:i * dh + sh * oh:sh, j * dw:j * dw + sw * ow:sw].transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, c * kh * kw)


def _grid(pk):
    """The quantizer of packed weight ``pk``: (dense stored-mask [R, C], fn(column values, c) ->
    rounded values)."""
    shape = pk.shape
    r, n = shape[0], int(np.prod(shape))
    c = n // r
    keep = np.ones((r, c), bool)
    if pk.format.startswith("sparse"):
        keep = np.unpackbits(pk.mask, bitorder="little")[:n].astype(bool).reshape(r, c)
    kind = pk.format.split("+")[-1]
    if kind == "int8":
        scales = pk.scales.view(np.float16).astype(np.float64).reshape(r, -1)
        per = pk.block or c

        def q(w, j):
            s = scales[:, j // per]
            return np.clip(np.rint(w / s), -127, 127) * s
        return keep, q
    if kind == "int4":
        luts = pk.lut.view(np.float16).astype(np.float64).reshape(-1, 16)
        row_lut = luts[np.arange(r) // (pk.group_rows or r)]

        def q(w, j):
            return row_lut[np.arange(r), np.abs(w[:, None] - row_lut).argmin(axis=1)]
        return keep, q
    return keep, lambda w, j: w.astype(np.float16).astype(np.float64)


def refit_lut(pk, weight, H, iters=25):
    """``pk`` with its int4 LUTs refitted by k-means weighted by each input's energy diag(H)
    (the sensitivity-weighted clustering of SqueezeLLM, arXiv:2306.07629): entries move to
    where the inputs that matter need them. Other formats are returned as they are."""
    if pk.format.split("+")[-1] != "int4":
        return pk
    keep, _ = _grid(pk)
    r, c = keep.shape
    g = pk.group_rows or r
    vals = np.asarray(weight, np.float64).reshape(r // g, g * c)
    wts = (np.tile(np.maximum(np.diag(H), 0), (r, 1)) * keep).reshape(r // g, g * c) + 1e-12 * keep.reshape(r // g, -1)
    lut = pk.lut.view(np.float16).astype(np.float64).reshape(-1, 16)
    for _ in range(iters):
        idx = np.abs(vals[:, :, None] - lut[:, None, :]).argmin(axis=2)
        onehot = np.zeros(idx.shape + (16,))
        np.put_along_axis(onehot, idx[..., None], 1.0, axis=2)
        mass = np.einsum("gm,gmk->gk", wts, onehot)
        fitted = np.einsum("gm,gm,gmk->gk", wts, vals, onehot) / np.maximum(mass, 1e-30)
        lut = np.where(mass > 0, fitted, lut)
    lut16 = lut.astype(np.float16)
    lut16 = np.where(np.isfinite(lut16), lut16, 0).astype(np.float16)
    return _core.PackedWeights(pk.format, pk.shape, pk.block, pk.group_rows, pk.q8, pk.scales, pk.q4,
                               lut16.ravel().view(np.uint16), pk.mask, pk.nz16)


def gptq(weight, pk, H, damp=0.01, block=128, act_order=True):
    """Rounds ``weight`` ([R, ...], float) onto ``pk``'s grid with error compensation; returns
    the dense rounded weight [R, C]. With act_order, columns go in order of decreasing input
    energy (the GPTQ repository's --act-order), so the error of the rest lands on those that
    matter least."""
    keep, quant = _grid(pk)
    W = np.asarray(weight, np.float64).reshape(keep.shape).copy()
    H = np.array(H, np.float64)
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(len(H))
    if act_order:
        W, keep, H = W[:, perm], keep[:, perm], H[np.ix_(perm, perm)]
        plain = quant
        quant = lambda w, j: plain(w, perm[j])  # noqa: E731 - the grid is indexed by the original column
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    H += damp * np.mean(np.diag(H)) * np.eye(len(H))
    U = np.linalg.cholesky(np.linalg.inv(H)).T  # upper: the inverse Hessian's Cholesky factor
    Q = np.zeros_like(W)
    C = W.shape[1]
    for i1 in range(0, C, block):
        i2 = min(i1 + block, C)
        W1, E1 = W[:, i1:i2].copy(), np.zeros((W.shape[0], i2 - i1))
        for j in range(i2 - i1):
            w = W1[:, j]
            q = np.where(keep[:, i1 + j], quant(w, i1 + j), 0.0)
            Q[:, i1 + j] = q
            err = (w - q) / U[i1 + j, i1 + j]
            W1[:, j + 1:] -= np.outer(err, U[i1 + j, i1 + j + 1:i2])
            E1[:, j] = err
        W[:, i2:] -= E1 @ U[i1:i2, i2:]
    out = np.empty_like(Q)
    out[:, perm] = Q
    return out


def repack(pk, Q):
    """A PackedWeights on ``pk``'s grid holding the rounded values Q (from gptq)."""
    keep, _ = _grid(pk)
    kind = pk.format.split("+")[-1]
    vals = Q[keep]  # stored values in element order
    empty8, empty16 = np.zeros(0, np.int8), np.zeros(0, np.uint16)
    q8, q4, nz16 = empty8, np.zeros(0, np.uint8), empty16
    if kind == "int8":
        r, per = Q.shape[0], pk.block or Q.shape[1]
        scales = pk.scales.view(np.float16).astype(np.float64).reshape(r, -1)
        s = np.repeat(scales, per, axis=1)[keep]
        q8 = np.clip(np.rint(vals / s), -127, 127).astype(np.int8)
    elif kind == "int4":
        r = Q.shape[0]
        luts = pk.lut.view(np.float16).astype(np.float64).reshape(-1, 16)
        row_lut = np.repeat(luts[np.arange(r) // (pk.group_rows or r)][:, None, :], Q.shape[1], axis=1)[keep]
        idx = np.abs(vals[:, None] - row_lut).argmin(axis=1).astype(np.uint8)
        if len(idx) % 2:
            idx = np.append(idx, 0)
        q4 = (idx[0::2] | (idx[1::2] << 4)).astype(np.uint8)
    else:
        nz16 = vals.astype(np.float16).view(np.uint16)
    return _core.PackedWeights(pk.format, pk.shape, pk.block, pk.group_rows, q8, pk.scales if kind == "int8" else empty16,
                               q4, pk.lut if kind == "int4" else empty16, pk.mask, nz16)
