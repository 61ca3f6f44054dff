"""Compressed-weight ops (constexpr_*): iOS16/17 forms (parameters as attributes) and iOS18
forms (parameters as inputs, blockwise and grouped). They run once, when the program loads."""
import numpy as np

from ..blob import unpack_subbyte
from ..registry import op

C = "constexpr"


def _along(v, axis, rank):
    v = np.asarray(v)
    if v.ndim == 1 and rank > 1:
        shape = [1] * rank
        shape[axis % rank] = -1
        return v.reshape(shape)
    return v


@op("constexpr_affine_dequantize", family=C, since=16)
def constexpr_affine_dequantize(a):
    q = a.tensor("quantized_data").astype(np.float32)
    ax = a.int("axis", 0)
    zp = _along(a.tensor("zero_point").astype(np.float32), ax, q.ndim)
    scale = _along(a.f("scale"), ax, q.ndim)
    return (q - zp) * scale


@op("constexpr_cast", family=C, since=16)
def constexpr_cast(a):
    return a.tensor("source_val").astype(np.float32)


def _unpack_indices(a, packed, count, nbits):
    raw = np.asarray(packed, np.uint8).reshape(-1).tobytes()
    bits_name = {1: "uint1", 2: "uint2", 3: "uint3", 4: "uint4", 6: "uint6"}
    if nbits == 8:
        if len(raw) != count:
            a.fail(f"{len(raw)} index bytes for {count} values")
        return np.frombuffer(raw, np.uint8)
    if (count * nbits + 7) // 8 != len(raw):
        a.fail(f"{len(raw)} packed bytes for {count} {nbits}-bit indices")
    return unpack_subbyte(raw, bits_name[nbits], count)


def _block_expand(a, small, full_shape):
    """Repeat each entry of ``small`` over its block so that it covers ``full_shape``."""
    if small.ndim != len(full_shape):
        a.fail(f"parameter of rank {small.ndim} for data of rank {len(full_shape)}")
    for ax, (n, m) in enumerate(zip(full_shape, small.shape)):
        if m == 0 or n % m:
            a.fail(f"axis {ax}: {m} blocks do not divide size {n}")
        small = np.repeat(small, n // m, axis=ax)
    return small


@op("constexpr_lut_to_dense", family=C, since=16)
def constexpr_lut_to_dense(a):
    lut = a.tensor("lut")
    if a.has("shape"):  # iOS16: one LUT, packed indices, explicit shape
        shape = a.ints("shape")
        count = int(np.prod(shape))
        nbits = {2: 1, 4: 2, 8: 3, 16: 4, 64: 6, 256: 8}.get(lut.size)
        if nbits is None:
            a.fail(f"LUT of {lut.size} entries (must be 2, 4, 8, 16, 64 or 256)")
        idx = _unpack_indices(a, a.tensor("indices"), count, nbits)
        return lut.reshape(-1)[idx].reshape(shape)
    return _lut_dense(a, a.tensor("indices").astype(np.int64), lut)


def _lut_dense(a, idx, lut):
    """iOS18 LUT: lut [*groups (rank of idx), palettes, vector]; each index picks a vector
    laid out along vector_axis."""
    if lut.ndim != idx.ndim + 2:
        a.fail(f"lut rank {lut.ndim} for indices rank {idx.ndim}")
    groups = _block_expand(a, np.arange(int(np.prod(lut.shape[:-2]))).reshape(lut.shape[:-2]), idx.shape)
    flat = lut.reshape(-1, lut.shape[-2], lut.shape[-1])
    if idx.size and (idx.min() < 0 or idx.max() >= lut.shape[-2]):
        a.fail(f"index past the {lut.shape[-2]} palette entries")
    vals = flat[groups, idx]  # *idx.shape, vec
    vec = lut.shape[-1]
    if vec == 1:
        return vals[..., 0]
    ax = a.int("vector_axis", 0) % idx.ndim
    vals = np.moveaxis(vals, -1, ax + 1)
    shp = list(idx.shape)
    shp[ax] *= vec
    return vals.reshape(shp)


@op("constexpr_sparse_to_dense", family=C, since=16)
def constexpr_sparse_to_dense(a):
    nz = a.tensor("nonzero_data")
    if a.has("shape"):  # iOS16: packed bit mask
        shape = a.ints("shape")
        count = int(np.prod(shape))
        mask = _unpack_indices(a, a.tensor("mask"), count, 1).astype(bool).reshape(shape)
    else:
        mask = a.tensor("mask").astype(bool)
    if int(mask.sum()) != nz.size:
        a.fail(f"mask has {int(mask.sum())} set bits for {nz.size} non-zero values")
    out = np.zeros(mask.shape, nz.dtype)
    out[mask] = nz.reshape(-1)
    return out


@op("constexpr_blockwise_shift_scale", family=C, since=18)
def constexpr_blockwise_shift_scale(a):
    data = a.tensor("data").astype(np.float32)
    scale = _block_expand(a, a.f("scale"), data.shape)
    if a.has("offset"):
        data = data - _block_expand(a, a.tensor("offset").astype(np.float32), data.shape)
    return scale * data


@op("constexpr_lut_to_sparse", family=C, since=18)
def constexpr_lut_to_sparse(a):
    mask = a.tensor("indices_mask").astype(bool)
    nz = a.tensor("indices_nonzero_data").astype(np.int64).reshape(-1)
    if int(mask.sum()) != nz.size:
        a.fail(f"mask has {int(mask.sum())} set bits for {nz.size} indices")
    dense_idx = np.zeros(mask.shape, np.int64)
    dense_idx[mask] = nz
    lut = a.tensor("lut")
    values = _lut_dense(a, dense_idx, lut)
    vec = lut.shape[-1]
    out_mask = mask if vec == 1 else np.repeat(mask, vec, axis=a.int("vector_axis", 0) % mask.ndim)
    return out_mask, values[out_mask]


@op("constexpr_sparse_blockwise_shift_scale", family=C, since=18)
def constexpr_sparse_blockwise_shift_scale(a):
    mask = a.tensor("data_mask").astype(bool)
    nz = a.tensor("nonzero_data").astype(np.float32)
    dense = np.zeros(mask.shape, np.float32)
    dense[mask] = nz
    if a.has("offset"):
        off = _block_expand(a, a.tensor("offset").astype(np.float32), mask.shape)
        dense = np.where(mask, dense - off, 0)
    dense = dense * _block_expand(a, a.f("scale"), mask.shape)
    return mask, dense[mask]
