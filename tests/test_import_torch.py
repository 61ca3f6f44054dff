"""af.from_torch / af.trace_torch: PyTorch modules through torch.export and the ATen table,
against PyTorch float32 on the same inputs; the errors a model the table cannot map gets."""
import numpy as np
import pytest

import aneforge as af

torch = pytest.importorskip("torch")
nn = torch.nn
Fn = torch.nn.functional

from torch_vision_refs import mobilenet_v2  # noqa: E402


def _min_cos(a, b):
    return min(af.testing.cosine(x, y) for x, y in zip(np.asarray(a), np.asarray(b)))


class Block(nn.Module):
    """A GPT-style block: fused qkv, heads by view/transpose, a causal mask buffer, GELU MLP."""

    def __init__(self, d=32, heads=4, t=8):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.register_buffer("mask", torch.tril(torch.ones(t, t)).bool())

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=-1)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / (c // self.heads) ** 0.5
        att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.proj(y)
        return {"hidden": x + self.out(Fn.gelu(self.fc(self.ln2(x)))), "attention": att}


@pytest.fixture(scope="module")
def mnv2():
    m = mobilenet_v2(seed=1, image_size=32, batches=1)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = m(x).numpy()
    return m, x, ref


def test_mobilenet_v2_imports_and_matches_torch(mnv2):
    m, x, ref = mnv2
    net = af.from_torch(m, (x,))
    got = net(x.numpy())
    assert got.shape == ref.shape
    # The mapping is exact: in float32 the program is torch's to rounding (measured 1 - 2e-10);
    # in fp16 it is bit for bit the hand-written af.models.mobilenet_v2 of the same weights.
    fp32 = af.from_torch(m, (x,), precision="fp32")(x.numpy())
    assert _min_cos(fp32, ref) >= 0.999999
    sd = {k: v.numpy() for k, v in m.state_dict().items()}
    np.testing.assert_array_equal(got, af.models.mobilenet_v2(sd, image_size=32)(x.numpy()))
    assert _min_cos(got, ref) >= 0.998  # measured 0.9989: 53 layers of fp16 storage, small logits
    names = [r["layer"] for r in net.compression_report()["layers"]]
    assert names[:3] == ["features.0.0", "features.1.conv.0.0", "features.1.conv.1"] and names[-1] == "classifier.1"
    assert len(names) == 53  # batch norm folded: a weight layer per conv and the classifier
    mil = af.from_torch(m, (x,), backend="mil")(x.numpy())
    # Two fp16 computations of one program through 53 layers (as test_vision_models' ResNet-18
    # check): they differ by roundings the depth amplifies (measured cosine 0.99990).
    assert _min_cos(mil, got) >= 0.9998


def test_mobilenet_v2_with_a_flexible_batch(mnv2):
    m, x, _ = mnv2
    net = af.from_torch(m, (x[:1],), dynamic_batch=True)
    assert net.flexible
    xs = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = m(xs).numpy()
    assert _min_cos(net(xs.numpy()), ref) >= 0.998  # as above (fp16 storage)


def test_a_transformer_block_keeps_its_output_names():
    torch.manual_seed(0)
    m = Block().eval()
    x = torch.randn(2, 8, 32)
    traced = af.trace_torch(m, (x,))
    assert list(traced.inputs) == ["x"] and set(traced.outputs) == {"hidden", "attention"}
    net = af.compile(traced.outputs)
    got = net(x.numpy())
    with torch.no_grad():
        ref = m(x)
    for k in ("hidden", "attention"):
        assert af.testing.cosine(got[k], ref[k].numpy()) >= 0.99999  # measured 0.9999999
    assert [r["layer"] for r in net.compression_report()["layers"]] == ["qkv", "proj", "fc", "out"]
    mil = af.compile(traced.outputs, backend="mil")(x.numpy())
    af.testing.assert_equivalent(mil["hidden"], got["hidden"], ulps=2)


def test_sdpa_and_tuple_outputs():
    class Attention(nn.Module):
        def forward(self, q, k, v):
            o = Fn.scaled_dot_product_attention(q, k, v, is_causal=True)
            return o, o.sum(-1)
    q, k, v = (torch.randn(1, 2, 8, 16, generator=torch.Generator().manual_seed(s)) for s in range(3))
    net = af.from_torch(Attention(), (q, k, v))
    got = net(q.numpy(), k.numpy(), v.numpy())
    ref = Attention()(q, k, v)
    assert isinstance(got, tuple) and len(got) == 2
    assert af.testing.cosine(got[0], ref[0].numpy()) >= 0.99999


def test_trainable_parameters_train_as_torch_does():
    """trainable=True: the parameters are af.parameters; one SGD step of the compiled train
    step moves them as torch's SGD does."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    traced = af.trace_torch(m, (x,), trainable=True)
    assert sorted(traced.parameters) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert list(traced.inputs) == ["input"]  # Sequential.forward(input): the names forward gives
    labels = af.input((8,), "int32", name="y")
    loss = af.cross_entropy(traced.outputs, labels)
    step = af.compile_train_step(loss, list(traced.parameters.values()), af.optim.SGD(lr=0.1), precision="fp32",
                                 inputs=[*traced.inputs.values(), labels])
    got_loss = step(x.numpy(), y.numpy().astype(np.int32))
    ref_loss = Fn.cross_entropy(m(x), y)
    ref_loss.backward()
    assert got_loss == pytest.approx(ref_loss.item(), rel=1e-5)
    with torch.no_grad():
        for p in m.parameters():
            p -= 0.1 * p.grad
    for name, p in m.named_parameters():
        np.testing.assert_allclose(step.parameters()[name], p.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_unmapped_ops_are_listed_with_the_users_line():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.prod(x, dim=1) + torch.cdist(x, x).sum(-1)
    with pytest.raises(NotImplementedError) as e:
        af.from_torch(Odd(), (torch.randn(4, 4),))
    text = str(e.value)
    assert "2 ATen op(s) have no mapping" in text
    assert "aten.prod.dim_int" in text and "aten._cdist_forward.default" in text
    assert "test_import_torch.py" in text and "af.register_aten" in text


def test_register_aten_maps_an_op():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.prod(x, dim=1)
    x = torch.rand(4, 4) + 0.5
    from aneforge.importers.aten import ATEN
    assert "prod.dim_int" not in ATEN
    af.register_aten("aten.prod.dim_int", lambda ctx, a, dim, keepdim=False: af.exp(af.sum(af.log(a), dim, keepdim)))
    try:
        got = af.from_torch(Odd(), (x,), precision="fp32")(x.numpy())
    finally:
        del ATEN["prod.dim_int"]
    np.testing.assert_allclose(got, torch.prod(x, dim=1).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="name an overload"):
        af.register_aten("prod", lambda ctx, a, b: a)


def test_data_dependent_control_flow_is_refused():
    class Branchy(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x - 1
    with pytest.raises(ValueError, match="torch.export could not capture Branchy.*static"):
        af.from_torch(Branchy(), (torch.randn(3),))


def test_bad_arguments():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        af.from_torch(lambda x: x, (torch.randn(2),))
    with pytest.raises(TypeError, match="example_inputs"):
        af.from_torch(nn.ReLU(), ())


def test_the_module_is_left_in_its_mode():
    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    m.train()
    net = af.from_torch(m, (torch.randn(2, 4),))  # exported in eval mode: no dropout
    assert m.training
    x = torch.randn(2, 4)
    m.eval()
    with torch.no_grad():
        assert af.testing.cosine(net(x.numpy()), m(x).numpy()) >= 0.99999


def test_resizing_pooling_and_integer_division_map_as_torch():
    class Odd(nn.Module):
        def forward(self, x, ids):
            a = Fn.adaptive_avg_pool2d(x, (3, 5))                      # windows that do not divide 8x8
            b = Fn.interpolate(x, size=(12, 12), mode="nearest")       # not a whole factor
            c = Fn.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            d = ids / 4                                                # true division of integers
            return a, b, c, d
    x = torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    ids = torch.arange(12).reshape(3, 4)
    got = af.from_torch(Odd(), (x, ids), precision="fp32")(x.numpy(), ids.numpy().astype(np.int32))
    ref = Odd()(x, ids)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r.numpy(), rtol=1e-5, atol=1e-5)


def test_integer_cumsum_is_exact_or_refused():
    """Integers live in fp16 on the engine (exact to 2048): counts of a mask map, a running sum
    of arbitrary integers is refused rather than rounded."""
    class Positions(nn.Module):
        def forward(self, ids):
            mask = ids.ne(0).int()
            return torch.cumsum(mask, dim=1) * mask

    class Running(nn.Module):
        def forward(self, ids):
            return torch.cumsum(ids, dim=1)
    ids = torch.tensor([[5, 7, 0, 0], [3, 1, 2, 0]])
    got = af.from_torch(Positions(), (ids,))(ids.numpy().astype(np.int32))
    np.testing.assert_array_equal(got, Positions()(ids).numpy())
    with pytest.raises(NotImplementedError, match="exact to 2048"):
        af.from_torch(Running(), (ids,))


def test_masks_and_ids_become_floats_where_the_model_says():
    class Scaled(nn.Module):
        def forward(self, x, ids):
            return x * (ids > 2).float() + ids.float() / 8
    x, ids = torch.randn(2, 5), torch.tensor([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]])
    got = af.from_torch(Scaled(), (x, ids), precision="fp32")(x.numpy(), ids.numpy().astype(np.int32))
    np.testing.assert_allclose(got, Scaled()(x, ids).numpy(), rtol=1e-6, atol=1e-6)


def test_views_past_rank_5_come_back_or_are_refused():
    """The engine's tensors have at most 5 dimensions: a 6-D view, a permute and a view back
    (Swin's window partition) run at 5 dimensions; a 6-D tensor an op needs is refused."""
    class Windows(nn.Module):
        def forward(self, x):  # (B, H, W, C) into 2 x 2 windows
            b, h, w, c = x.shape
            x = x.view(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5)
            return x.reshape(-1, 4, c) * 2

    class Wide(nn.Module):
        def forward(self, x):
            return x.view(2, 2, 2, 2, 2, 3).sum(-1)
    x = torch.randn(2, 4, 6, 3, generator=torch.Generator().manual_seed(0))
    got = af.from_torch(Windows(), (x,))(x.numpy())
    np.testing.assert_array_equal(got, af.round_fp16(Windows()(x).numpy()))  # a copy of the values, doubled
    with pytest.raises(NotImplementedError, match="more than 5 dimensions"):
        af.from_torch(Wide(), (torch.randn(16, 6),))


def test_argmax_and_one_position_per_row():
    """CLIP's pooling: hidden[arange(B), ids.argmax(-1)]."""
    class Pool(nn.Module):
        def forward(self, h, ids):
            return h[torch.arange(h.shape[0]), ids.argmax(dim=-1)], ids.argmin(dim=1)
    h = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([[1, 9, 2, 0, 3], [7, 1, 1, 8, 2], [0, 0, 5, 1, 1]])
    got = af.from_torch(Pool(), (h, ids))(h.numpy(), ids.numpy().astype(np.int32))
    ref = Pool()(h, ids)
    np.testing.assert_array_equal(got[0], af.round_fp16(ref[0].numpy()))
    np.testing.assert_array_equal(got[1], ref[1].numpy())


def test_as_strided_maps_only_the_tensor_itself():
    class Strided(nn.Module):
        def forward(self, x):
            return x.as_strided((2, 2), (1, 2))  # a transposed view of memory
    with pytest.raises(NotImplementedError, match="as_strided to size \\[2, 2\\], stride \\[1, 2\\]"):
        af.from_torch(Strided(), (torch.randn(2, 2),))


class _Math(nn.Module):
    def forward(self, x, y, ids):
        u = x.clamp(-0.95, 0.95)
        return (torch.sinh(x), torch.cosh(x), torch.tan(u), torch.asin(u), torch.acos(u), torch.atan2(y, x),
                torch.asinh(x), torch.acosh(x.abs() + 1.5), torch.atanh(u), torch.log2(x.abs() + 0.1),
                torch.log10(x.abs() + 0.1), torch.log1p(x.abs() * 0.05), torch.expm1(x * 0.05), torch.trunc(x * 3),
                torch.div(x, y, rounding_mode="floor"), torch.div(ids, 3, rounding_mode="trunc"),
                torch.remainder(x * 4, 1.5), torch.fmod(x * 4, 1.5), torch.remainder(ids, 4), 2.0 ** x,
                torch.clamp(x, min=y), torch.isnan(x / (x - x)), torch.isinf(x / 0), torch.logical_xor(x > 0, y > 0),
                torch.any(x > 2), torch.var(x, dim=1, unbiased=True), x.max(dim=1), x.min(dim=0),
                torch.sort(x, dim=1), torch.topk(x, 2), torch.flip(x, (0, 1)), torch.diagonal(x, 1),
                Fn.pad(x[None, None], (2, 1, 1, 2), mode="reflect"), Fn.pad(x[None, None], (2, 1, 1, 2), mode="replicate"),
                Fn.avg_pool1d(x[None], 2), Fn.adaptive_avg_pool1d(x[None], 3))


def test_math_sorting_and_padding_map_as_torch():
    """The entries of aten_math.py, each against torch in float32 (exact formulas) and in fp16."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    ids = torch.arange(-12, 12).reshape(4, 6)
    args = (x, y, ids)
    feeds = (x.numpy(), y.numpy(), ids.numpy().astype(np.int32))
    ref = [r for out in _Math()(*args) for r in (out if isinstance(out, tuple) else (out,))]
    got32 = af.from_torch(_Math(), args, precision="fp32")(*feeds)
    got32 = [g_ for out in got32 for g_ in (out if isinstance(out, tuple) else (out,))]
    assert len(got32) == len(ref)
    for i, (g_, r) in enumerate(zip(got32, ref)):
        r = r.numpy()
        if r.dtype.kind in "biu":
            np.testing.assert_array_equal(g_, r, err_msg=f"output {i}")
        else:
            # the composed formulas (asin through atan, log1p and expm1 through Goldberg's and
            # Kahan's forms) in float32: measured within 3e-6 relative
            np.testing.assert_allclose(g_, r, rtol=2e-5, atol=2e-6, err_msg=f"output {i}")
    rounded = [torch.from_numpy(af.round_fp16(v.numpy())) for v in (x, y)] + [ids]
    ref16 = [r for out in _Math()(*rounded) for r in (out if isinstance(out, tuple) else (out,))]
    got16 = af.from_torch(_Math(), args)(rounded[0].numpy(), rounded[1].numpy(), feeds[2])
    got16 = [g_ for out in got16 for g_ in (out if isinstance(out, tuple) else (out,))]
    for i, (g_, r) in enumerate(zip(got16, ref16)):
        r = r.numpy()
        if r.dtype.kind in "biu":
            np.testing.assert_array_equal(g_, r, err_msg=f"fp16 output {i}")
        else:
            # Each step of a composed formula rounds to fp16: near a zero of the result (sinh,
            # asinh, atanh at 0; log2, log10 at 1) the error is that of the larger terms:
            # measured up to 0.45 ulps of the largest output beyond 2 ulps of each element.
            af.testing.assert_fp16_close(g_, r, ulps=2.0, floor_ulps=0.5, what=f"fp16 output {i}")


def test_a_vit_patch_embedding_wider_than_the_kernel_limit_compiles_for_every_target():
    # Conv2d(3, 32, 16, stride 16): every target limits a kernel's width to 13 or 15; the
    # compiler makes it pixel_unshuffle + a 1x1 conv (70 x 50 leaves rows and columns no
    # patch reads, as torch leaves them)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 32, 16, 16).eval()
    x = torch.randn(1, 3, 70, 50)
    with torch.no_grad():
        want = conv(x).numpy()
    sim = None
    for target in ("h13", "h16g", "h18"):
        got = af.from_torch(conv, (x,), target=target)(x.numpy())
        assert got.shape == want.shape == (1, 32, 4, 3)
        assert np.abs(got - want).max() / np.abs(want).max() <= 1e-3  # measured 3.5e-4: one fp16 rounding
        sim = got if sim is None else sim
        assert np.array_equal(got, sim)
    for fold in (True, False):
        mil = af.from_torch(conv, (x,), backend="mil", fold_constants=fold)
        assert np.array_equal(mil(x.numpy()), sim)
    wide = torch.nn.Conv2d(3, 8, 16, 1).eval()  # not a patch embedding: still refused, saying why
    with pytest.raises(af.TargetError, match="kernel width 16 .* exceeds target h16g"):
        af.from_torch(wide, (x,))
