"""Image resizing family: nearest and bilinear up/down sampling, crops, affine and resample
(grid sampling), per the MIL definitions' sampling grids."""
import numpy as np

from ..registry import op
from .elementwise import num

I = "image_resizing"


def grid(n_in, n_out, mode):
    """Source coordinates of the output samples along one axis (resize_bilinear's modes)."""
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            g = np.array([(n_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0])
        else:
            g = i * (n_in - 1) / (n_out - 1)
    elif mode == "DEFAULT":
        g = i * ((n_in - n_in / n_out) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    elif mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        g = 0.5 * delta + i * delta
    elif mode in ("UNALIGN_CORNERS", "HALF_PIXEL"):
        g = (i + 0.5) * n_in / n_out - 0.5
    elif mode == "ASYMMETRIC":
        g = i * n_in / n_out
    else:
        raise ValueError(f"unknown sampling mode '{mode}'")
    # The definitions clamp the grid to [0, n_in - 1]; the upper clamp is applied to the
    # indices instead (as PyTorch does): the same values, and no 0 * inf at the border.
    return np.maximum(g, 0)


def _lerp_axis(x, g, axis):
    i0 = np.minimum(np.floor(g).astype(np.int64), x.shape[axis] - 1)
    i1 = np.minimum(i0 + 1, x.shape[axis] - 1)
    f = (g - i0).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = -1
    f = f.reshape(shape)
    return np.take(x, i0, axis=axis) * (1 - f) + np.take(x, i1, axis=axis) * f


def bilinear(x, gh, gw):
    """(1-fy)((1-fx) x00 + fx x01) + fy((1-fx) x10 + fx x11), the usual order of terms."""
    h, w = x.shape[-2:]
    y0 = np.minimum(np.floor(gh).astype(np.int64), h - 1)
    x0 = np.minimum(np.floor(gw).astype(np.int64), w - 1)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy = (gh - y0).astype(np.float32)[:, None]
    fx = (gw - x0).astype(np.float32)[None, :]
    rows0, rows1 = x[..., y0, :], x[..., y1, :]
    top = (1 - fx) * rows0[..., x0] + fx * rows0[..., x1]
    bot = (1 - fx) * rows1[..., x0] + fx * rows1[..., x1]
    return (1 - fy) * top + fy * bot


def nearest(x, out_h, out_w):
    """Source index floor(i * in / out) on each of the last two axes."""
    h, w = x.shape[-2:]
    ih = np.minimum((np.arange(out_h) * h) // out_h, h - 1)
    iw = np.minimum((np.arange(out_w) * w) // out_w, w - 1)
    return x[..., ih, :][..., iw]


def _out_sizes(a, x):
    sh, sw = a.float("scale_factor_height", 1.0), a.float("scale_factor_width", 1.0)
    oh, ow = a.out_shape()[-2:]
    if oh is None or ow is None:
        oh, ow = int(np.floor(x.shape[-2] * sh)), int(np.floor(x.shape[-1] * sw))
    return oh, ow


@op("upsample_nearest_neighbor", family=I)
def upsample_nearest_neighbor(a):
    x = a.tensor("x")
    return nearest(x, *_out_sizes(a, x))


@op("resize_nearest_neighbor", family=I)
def resize_nearest_neighbor(a):
    x = a.tensor("x")
    return nearest(x, a.int("target_size_height"), a.int("target_size_width"))


@op("upsample_bilinear", family=I)
def upsample_bilinear(a):
    x = num(a, "x")
    oh, ow = _out_sizes(a, x)
    align = a.bool("align_corners", True)
    half = a.bool("half_pixel_centers", not align) if a.opset >= 16 else not align
    mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half else "ASYMMETRIC")
    return bilinear(x, grid(x.shape[-2], oh, mode), grid(x.shape[-1], ow, mode))


@op("resize_bilinear", family=I)
def resize_bilinear(a):
    x = num(a, "x")
    mode = a.str("sampling_mode", "DEFAULT")
    oh, ow = a.int("target_size_height", 1), a.int("target_size_width", 1)
    return bilinear(x, grid(x.shape[-2], oh, mode), grid(x.shape[-1], ow, mode))


@op("resize", family=I, since=17)
def resize(a):
    x = num(a, "x")
    shp = a.ints("shape")
    k = a.int("resized_dims")
    if k > 2 or k > len(shp) or len(shp) > x.ndim:
        a.fail(f"resized_dims {k} with shape {shp}")
    target = list(x.shape)
    for j in range(1, k + 1):
        target[-j] = shp[-j] if shp[-j] else x.shape[-j]
    mode = a.str("sampling_mode", "DEFAULT")
    linear = a.str("interpolation_mode", "LINEAR") == "LINEAR"
    for j in range(1, k + 1):
        ax = x.ndim - j
        g = grid(x.shape[ax], target[ax], mode)
        if linear:
            x = _lerp_axis(x, g, ax)
        else:
            x = np.take(x, np.minimum((np.arange(target[ax]) * x.shape[ax]) // target[ax], x.shape[ax] - 1), axis=ax)
    return x


@op("crop", family=I)
def crop(a):
    x = a.tensor("x")
    ch, cw = a.ints("crop_height"), a.ints("crop_width")
    return x[..., ch[0]:x.shape[-2] - ch[1], cw[0]:x.shape[-1] - cw[1]]


def _sample(x, px, py, mode, padding, value):
    """x [B, C, H, W]; px, py [B, Ho, Wo] pixel coordinates -> [B, C, Ho, Wo]."""
    b, c, h, w = x.shape

    def fix(i, n):
        if padding == "border":
            return np.clip(i, 0, n - 1), np.ones(i.shape, bool)
        if padding in ("reflection", "symmetric"):
            if n == 1:
                return np.zeros_like(i), np.ones(i.shape, bool)
            if padding == "reflection":
                period = 2 * (n - 1)
                m = np.mod(i, period)
                return np.where(m >= n, period - m, m), np.ones(i.shape, bool)
            m = np.mod(i, 2 * n)
            return np.where(m >= n, 2 * n - 1 - m, m), np.ones(i.shape, bool)
        inside = (i >= 0) & (i < n)
        return np.clip(i, 0, n - 1), inside

    bidx = np.arange(b)[:, None, None]

    def at(iy, ix):
        iy2, oky = fix(iy, h)
        ix2, okx = fix(ix, w)
        v = x[bidx, :, iy2, ix2]  # B, Ho, Wo, C
        v = np.where((oky & okx)[..., None], v, np.float32(value))
        return np.moveaxis(v, -1, 1)

    if mode == "nearest":
        return at(np.floor(py + 0.5).astype(np.int64), np.floor(px + 0.5).astype(np.int64))
    x0, y0 = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
    fx, fy = (px - x0)[:, None].astype(np.float32), (py - y0)[:, None].astype(np.float32)
    return ((at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy)
            + (at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx) * fy)


def _to_pixels(u, n, mode, align):
    if mode == "unnormalized":
        return u
    if mode == "normalized_zero_to_one":
        u = u * 2 - 1
    return (u + 1) / 2 * (n - 1) if align else ((u + 1) * n - 1) / 2


@op("resample", family=I)
def resample(a):
    x = num(a, "x")
    co = num(a, "coordinates").astype(np.float64)
    mode = a.str("coordinates_mode", "normalized_minus_one_to_one")
    align = a.bool("align_corners", True)
    px = _to_pixels(co[..., 0], x.shape[-1], mode, align)
    py = _to_pixels(co[..., 1], x.shape[-2], mode, align)
    return _sample(x, px, py, a.str("sampling_mode", "bilinear"), a.str("padding_mode", "constant"),
                   a.float("padding_value", 0.0))


@op("affine", family=I)
def affine(a):
    x = num(a, "x")
    m = num(a, "transform_matrix").astype(np.float64)
    oh, ow = a.int("output_height"), a.int("output_width")
    mode = a.str("coordinates_mode", "normalized_minus_one_to_one")
    align = a.bool("align_corners", True)
    if m.shape[0] not in (1, x.shape[0]):
        a.fail(f"transform_matrix {m.shape} for batch {x.shape[0]}")
    m = np.broadcast_to(m, (x.shape[0], 6))
    if mode == "unnormalized":
        gx, gy = np.meshgrid(np.arange(ow, dtype=np.float64), np.arange(oh, dtype=np.float64))
    else:
        lin = (lambda n: np.linspace(-1, 1, n) if n > 1 else np.zeros(1)) if align else (
            lambda n: (2 * np.arange(n) + 1) / n - 1)
        gx, gy = np.meshgrid(lin(ow), lin(oh))
    sx = m[:, 0, None, None] * gx + m[:, 1, None, None] * gy + m[:, 2, None, None]
    sy = m[:, 3, None, None] * gx + m[:, 4, None, None] * gy + m[:, 5, None, None]
    px = _to_pixels(sx, x.shape[-1], mode, align)
    py = _to_pixels(sy, x.shape[-2], mode, align)
    return _sample(x, px, py, a.str("sampling_mode", "bilinear"), a.str("padding_mode", "constant"),
                   a.float("padding_value", 0.0))


@op("crop_resize", family=I)
def crop_resize(a):
    x = num(a, "x")
    if a.has("boxes"):  # iOS17: boxes [N, 4] and box_indices [N] (default 0..N-1)
        boxes = num(a, "boxes").astype(np.float64).reshape(-1, 4)
        idx = a.tensor("box_indices").astype(np.float64).reshape(-1, 1) if a.has("box_indices") else \
            np.arange(boxes.shape[0], dtype=np.float64)[:, None]
        roi = np.concatenate([idx, boxes], axis=1)
    else:
        roi = num(a, "roi").astype(np.float64).reshape(a.tensor("roi").shape[0], -1)
    th, tw = a.int("target_height", 1), a.int("target_width", 1)
    norm = a.bool("normalized_coordinates", False)
    scale = a.float("spatial_scale", 1.0)
    box_mode = a.str("box_coordinate_mode", "CORNERS_HEIGHT_FIRST")
    mode = a.str("sampling_mode", "DEFAULT")
    pad_value = a.float("pad_value", 0.0)  # samples outside the image (iOS16 names it)
    b, c, h, w = x.shape
    outs = []
    for r in roi:
        idx = None
        if r.size == 5:
            idx, r = int(r[0]), r[1:]
        if box_mode == "CORNERS_HEIGHT_FIRST":
            y1, x1, y2, x2 = r
        elif box_mode == "CORNERS_WIDTH_FIRST":
            x1, y1, x2, y2 = r
        elif box_mode == "CENTER_SIZE_HEIGHT_FIRST":
            cy, cx, bh, bw = r
            y1, x1, y2, x2 = cy - bh / 2, cx - bw / 2, cy + bh / 2, cx + bw / 2
        else:
            cx, cy, bw, bh = r
            y1, x1, y2, x2 = cy - bh / 2, cx - bw / 2, cy + bh / 2, cx + bw / 2
        if norm:
            y1, y2, x1, x2 = y1 * (h - 1), y2 * (h - 1), x1 * (w - 1), x2 * (w - 1)
        y1, y2, x1, x2 = (v * scale for v in (y1, y2, x1, x2))
        gy = y1 + _unit_grid(th, mode) * (y2 - y1)
        gx = x1 + _unit_grid(tw, mode) * (x2 - x1)
        src = x if idx is None else x[idx:idx + 1]
        py, px = np.meshgrid(gy, gx, indexing="ij")
        sampled = _sample(src, np.broadcast_to(px, (src.shape[0],) + px.shape),
                          np.broadcast_to(py, (src.shape[0],) + py.shape), "bilinear", "border", 0.0)
        outside = (py < 0) | (py > h - 1) | (px < 0) | (px > w - 1)  # a sample point off the image
        outs.append(np.where(outside, np.float32(pad_value), sampled))
    y = np.stack(outs)
    if a.has("boxes"):  # iOS17 output: [N, C, H, W]
        y = y.reshape((y.shape[0],) + y.shape[2:])
    return y


def _unit_grid(n, mode):
    """Sample positions in [0, 1] across a box, per sampling mode."""
    i = np.arange(n, dtype=np.float64)
    if n == 1:
        return np.array([0.5]) if mode in ("ALIGN_CORNERS", "OFFSET_CORNERS", "UNALIGN_CORNERS") else np.zeros(1)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        return i / (n - 1)
    if mode == "OFFSET_CORNERS" or mode == "UNALIGN_CORNERS":
        return (i + 0.5) / n
    return i / n * (n / (n - 1)) * ((n - 1) / n)
