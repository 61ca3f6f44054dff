"""The bridge ops: each lowered into native ops inside the one program, checked against
PyTorch or a direct NumPy reference."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aneforge as af
from aneforge.testing import assert_fp16_close, assert_fp32_close


def compile_run(build, arrays, precision="fp16", names=None):
    xs = [af.input(a.shape, dtype="int32" if a.dtype == np.int32 else "fp16", name=f"in{i}") for i, a in enumerate(arrays)]
    out = build(*xs)
    net = af.compile(list(out) if isinstance(out, tuple) else out, precision=precision)
    return net, net(*arrays)


def test_programs_contain_only_native_layers(rng):
    x = af.input((2, 16), name="x")
    v, i = af.topk(x, 4)
    net = af.compile([v, i, af.argmax(x, 1), af.sdpa(x[:, None], x[:, None], x[:, None])])
    bridges = {o.name for o in af.ops() if o.bridge}
    assert bridges and not {op for _, op, _ in net._program.layers} & bridges


# ---- attention -----------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{}, {"is_causal": True}, {"scale": 0.3}, {"mask": "bool"}, {"mask": "float"}])
@pytest.mark.parametrize("shapes", [((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4)), ((6, 16), (6, 16), (6, 16))])
def test_sdpa_matches_torch(shapes, kw, rng):
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    L, S = shapes[0][-2], shapes[1][-2]
    extra, tkw = [], {}
    if kw.get("is_causal"):
        tkw["is_causal"] = True
    if "scale" in kw:
        tkw["scale"] = kw["scale"]
    if kw.get("mask") == "bool":
        m = rng.random((L, S)) > 0.3
        m[:, 0] = True  # no fully masked rows
        extra = [m]
    elif kw.get("mask") == "float":
        extra = [rng.standard_normal((L, S)).astype(np.float32)]
    def build(q_, k_, v_, *m_):
        return af.sdpa(q_, k_, v_, attn_mask=m_[0] if m_ else (extra[0] if extra and extra[0].dtype == np.bool_ else None), **tkw)
    arrays = [q, k, v] + ([extra[0]] if extra and extra[0].dtype != np.bool_ else [])
    ref = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)),
                                         attn_mask=torch.from_numpy(extra[0]) if extra else None, **tkw).numpy()
    _, got32 = compile_run(build, arrays, "fp32")
    assert_fp32_close(got32, ref, rtol=1e-4, atol=1e-5)
    _, got16 = compile_run(build, arrays)
    assert_fp16_close(got16, ref, roundings=8)


def test_sdpa_long_sequence_is_tiled_and_exact(rng):
    q = rng.standard_normal((1, 1200, 16)).astype(np.float32)
    k = rng.standard_normal((1, 1100, 16)).astype(np.float32)
    v = rng.standard_normal((1, 1100, 16)).astype(np.float32)
    net, got = compile_run(lambda a, b, c: af.sdpa(a, b, c, is_causal=True), [q, k, v], "fp32")
    assert sum(op == "softmax" for _, op, _ in net._program.layers) >= 2  # query blocks
    ref = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)), is_causal=True).numpy()
    assert_fp32_close(got, ref, rtol=1e-4, atol=1e-5)


# ---- ranking -------------------------------------------------------------------------

@pytest.mark.parametrize("fn", ["argmax", "argmin"])
@pytest.mark.parametrize("dim, keep", [(1, False), (0, True), (-1, True), (None, False)])
def test_argmax_argmin(fn, dim, keep, rng):
    x = rng.integers(-5, 5, (4, 7, 3)).astype(np.float32)  # many ties: first index wins
    _, got = compile_run(lambda t: getattr(af, fn)(t, dim, keepdims=keep), [x])
    ref = getattr(torch, fn)(torch.from_numpy(x), dim=dim, keepdim=keep).numpy()
    if dim is None and keep:
        ref = ref.reshape([1] * x.ndim)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("n", [1, 2, 7, 16, 33])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_values_and_stable_indices(n, descending, rng):
    x = rng.integers(-4, 4, (3, n)).astype(np.float32)  # ties
    _, (v, i) = compile_run(lambda t: af.sort(t, -1, descending), [x])
    rv, ri = torch.sort(torch.from_numpy(x), dim=-1, descending=descending, stable=True)
    np.testing.assert_array_equal(v, rv.numpy())
    np.testing.assert_array_equal(i, ri.numpy())


def test_sort_on_inner_axis_and_fp16_values(rng):
    x = rng.standard_normal((2, 9, 3)).astype(np.float32)
    _, (v, i) = compile_run(lambda t: af.sort(t, 1), [x])
    xr = af.round_fp16(x)
    np.testing.assert_array_equal(v, np.sort(xr, axis=1))
    np.testing.assert_array_equal(i, np.argsort(xr, axis=1, kind="stable"))


@pytest.mark.parametrize("k, largest", [(1, True), (3, True), (5, False)])
def test_topk_matches_torch(k, largest, rng):
    x = rng.permutation(60).reshape(3, 20).astype(np.float32) / 7  # distinct values
    _, (v, i) = compile_run(lambda t: af.topk(t, k, largest=largest), [x])
    rv, ri = torch.topk(torch.from_numpy(af.round_fp16(x)), k, largest=largest)
    np.testing.assert_array_equal(v, rv.numpy())
    np.testing.assert_array_equal(i, ri.numpy())


def test_ranking_envelope_is_checked():
    with pytest.raises(ValueError, match="exact in fp16 up to 2048"):
        af.argmax(af.input((1, 5000)), 1)
    with pytest.raises(ValueError, match="k=9 must be in 1..8"):
        af.topk(af.input((2, 8)), 9)


# ---- geometry ------------------------------------------------------------------------

def test_cross_product(rng):
    a, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    _, got = compile_run(af.cross_product, [a, b], "fp32")
    np.testing.assert_allclose(got, torch.linalg.cross(torch.from_numpy(a), torch.from_numpy(b)).numpy(), rtol=1e-5, atol=1e-6)
    a2 = rng.standard_normal((2, 3, 5)).astype(np.float32)
    _, got = compile_run(lambda x, y: af.cross_product(x, y, dim=1), [a2, a2[::-1].copy()], "fp32")
    np.testing.assert_allclose(got, np.cross(a2, a2[::-1], axis=1), rtol=1e-5, atol=1e-6)


def test_cross_correlation_and_cost_volume(rng):
    x = rng.standard_normal((1, 4, 6, 7)).astype(np.float32)
    y = rng.standard_normal((1, 4, 6, 7)).astype(np.float32)
    D = 2
    _, got = compile_run(lambda a, b: af.cross_correlation(a, b, D), [x, y], "fp32")
    yp = np.pad(y, ((0, 0), (0, 0), (D, D), (D, D)))
    ref = np.stack([(x * yp[:, :, D + dy:D + dy + 6, D + dx:D + dx + 7]).mean(1)
                    for dy in range(-D, D + 1) for dx in range(-D, D + 1)], 1)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    _, got = compile_run(lambda a, b: af.cost_volume(a, b, 3), [x, y], "fp32")
    ref = np.zeros((1, 3, 6, 7), np.float32)
    for d in range(3):
        ref[:, d, :, d:] = (x[..., d:] * y[..., :7 - d]).mean(1)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_farthest_point_sampling(rng):
    pts = rng.standard_normal((2, 40, 3)).astype(np.float32)
    _, got = compile_run(lambda p: af.farthest_point_sampling(p, 6), [pts], "fp32")
    for b in range(2):
        sel, dist = [0], np.full(40, np.inf)
        for _ in range(5):
            dist = np.minimum(dist, ((pts[b] - pts[b, sel[-1]]) ** 2).sum(-1))
            sel.append(int(np.argmax(dist)))
        np.testing.assert_array_equal(got[b], sel)


def test_radius_search(rng):
    pts = rng.uniform(-1, 1, (2, 30, 3)).astype(np.float32)
    qs = rng.uniform(-1, 1, (2, 5, 3)).astype(np.float32)
    _, got = compile_run(lambda p, q: af.radius_search(p, q, 0.7, 4), [pts, qs], "fp32")
    for b in range(2):
        for m in range(5):
            near = np.nonzero(((pts[b] - qs[b, m]) ** 2).sum(-1) <= 0.49)[0][:4]
            np.testing.assert_array_equal(got[b, m], np.pad(near, (0, 4 - len(near)), constant_values=-1))


# ---- normalisation and elementwise -------------------------------------------------------

def test_minmax_norm_and_lrn(rng):
    x = rng.standard_normal((2, 6, 4, 5)).astype(np.float32)
    _, got = compile_run(lambda t: af.minmax_norm(t, (2, 3)), [x], "fp32")
    lo, hi = x.min((2, 3), keepdims=True), x.max((2, 3), keepdims=True)
    np.testing.assert_allclose(got, (x - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    for precision in ("fp32", "fp16"):
        _, got = compile_run(lambda t: af.lrn(t, 3, 0.1, 0.6, 2.0), [x], precision)
        ref = F.local_response_norm(torch.from_numpy(x), 3, 0.1, 0.6, 2.0).numpy()
        (assert_fp32_close(got, ref, rtol=1e-5) if precision == "fp32" else assert_fp16_close(got, ref, roundings=6))


def test_scaled_elementwise(rng):
    x, y = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4,)).astype(np.float32)
    for op, fn in [("add", np.add), ("mul", np.multiply), ("maximum", np.maximum)]:
        _, got = compile_run(lambda a, b: af.scaled_elementwise(a, b, op, 0.5, -2.0, 0.25), [x, y], "fp32")
        np.testing.assert_allclose(got, fn(x * 0.5, y * -2.0) + 0.25, rtol=1e-6)


# ---- layout --------------------------------------------------------------------------

def test_space_to_channel_round_trip(rng):
    x = rng.standard_normal((2, 3, 4, 6)).astype(np.float32)
    _, got = compile_run(lambda t: af.space_to_channel(t, 2, 3), [x], "fp32")
    ref = x.reshape(2, 3, 2, 2, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 18, 2, 2)
    np.testing.assert_array_equal(got, ref)
    _, back = compile_run(lambda t: af.channel_to_space(af.space_to_channel(t, 2, 3), 2, 3), [x], "fp32")
    np.testing.assert_array_equal(back, x)


def _space_to_batch_ref(x, bh, bw, pads):
    x = np.pad(x, ((0, 0), (0, 0), pads[:2], pads[2:]))
    n, c, h, w = x.shape
    out = np.zeros((bh * bw * n, c, h // bh, w // bw), np.float32)
    for i in range(bh):
        for j in range(bw):
            out[(i * bw + j) * n:(i * bw + j + 1) * n] = x[:, :, i::bh, j::bw]
    return out


def test_space_to_batch_and_back(rng):
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    _, got = compile_run(lambda t: af.space_to_batch(t, (2, 2), (1, 0, 0, 2)), [x], "fp32")
    np.testing.assert_array_equal(got, _space_to_batch_ref(x, 2, 2, (1, 0, 0, 2)))
    _, back = compile_run(lambda t: af.batch_to_space(af.space_to_batch(t, (2, 2), (1, 0, 0, 2)), (2, 2), (1, 0, 0, 2)),
                          [x], "fp32")
    np.testing.assert_array_equal(back, x)


def test_flatten_channels_input_view_dynamic_slice(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    _, got = compile_run(af.flatten_channels, [x], "fp32")
    np.testing.assert_array_equal(got, x.reshape(2, 60, 1, 1))
    _, got = compile_run(lambda t: af.input_view(t, (4, 5), offset=17), [x], "fp32")
    np.testing.assert_array_equal(got, x.reshape(-1)[17:37].reshape(4, 5))
    seq = rng.standard_normal((3, 10, 4)).astype(np.float32)
    xi = af.input((3, 10, 4), name="seq")
    start = af.input((1,), dtype="int32", name="start")
    net = af.compile(af.dynamic_slice(xi, start, 4, dim=1))
    for s, want in [(2, 2), (0, 0), (8, 6), (-3, 0)]:  # start is clamped to [0, n - length]
        out = net(seq, np.array([s], np.int32))
        np.testing.assert_array_equal(out, af.round_fp16(seq)[:, want:want + 4])


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_dynamic_update_slice_writes_a_window_and_keeps_the_rest(rng, precision):
    """A KV cache's write: (1, heads, positions, dim) with new rows at a runtime position."""
    cache = af.round_fp16(rng.standard_normal((1, 2, 10, 4)).astype(np.float32))
    new = af.round_fp16(rng.standard_normal((1, 2, 3, 4)).astype(np.float32))
    ci, ui = af.input((1, 2, 10, 4), name="cache"), af.input((1, 2, 3, 4), name="new")
    start = af.input((1,), dtype="int32", name="start")
    net = af.compile(af.dynamic_update_slice(ci, ui, start, dim=2), precision=precision)
    for s, at in [(0, 0), (4, 4), (7, 7), (9, 7), (-2, 0)]:  # start is clamped to [0, n - length]
        want = cache.copy()
        want[:, :, at:at + 3] = new
        np.testing.assert_array_equal(net(cache, new, np.array([s], np.int32)), want)
    with pytest.raises(ValueError, match="must match x"):
        af.dynamic_update_slice(ci, af.input((1, 3, 3, 4)), start, dim=2)


def test_bridges_join_larger_graphs(rng):
    """A bridge in the middle of a graph: conv -> topk over channels -> further math."""
    W = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    img = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    x = af.input((1, 3, 6, 6), name="img")
    feat = af.conv(x, W, pad=1).mean((2, 3))
    vals, idx = af.topk(feat, 3)
    net = af.compile([vals * 2 + 1, idx], precision="fp32")
    v, i = net(img)
    ref = F.conv2d(torch.from_numpy(img), torch.from_numpy(W), padding=1).mean((2, 3))
    rv, ri = torch.topk(ref, 3)
    np.testing.assert_allclose(v, rv.numpy() * 2 + 1, rtol=1e-5)
    np.testing.assert_array_equal(i, ri.numpy())


def test_every_bridge_op_is_tested_here():
    import pathlib
    text = pathlib.Path(__file__).read_text()
    bridges = [o.name for o in af.ops() if o.bridge and o.category != "indexing"]  # indexing: test_ops.py
    assert len(bridges) == 21  # the 19 of the reference, argmax and argmin counted apart, dynamic_update_slice
    assert [b for b in bridges if f"af.{b}" not in text and f"\"{b}\"" not in text] == []
