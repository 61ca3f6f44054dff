"""af.from_mlpackage / af.trace_mlpackage: ML Programs into af graphs. Every op case of the op
table, exported by af, imports and runs on the sim as the mil backend runs the same file;
programs made by coremltools' PyTorch converter match PyTorch and the file; the errors."""
import numpy as np
import pytest

import aneforge as af
from aneforge.importers.mil_ops import MIL
from milequiv import build
from optable import make_input
from test_ops import ALL

ct = pytest.importorskip("coremltools")
torch = pytest.importorskip("torch")

# Integer inputs past 2048 enter the emitted program as two fp16 planes (high and low parts):
# the package's interface is those planes, not the af graph's int32 input.
SPLIT_IDS = {"embedding_chunks", "embedding_3000", "one_hot_3000", "index_offset", "index_select_3000", "gather_3000"}
CASES = [c for c in ALL if c.name not in SPLIT_IDS]


def _outputs(out):
    return list(out.values()) if isinstance(out, dict) else [out]


@pytest.mark.parametrize("const_params", [True, False], ids=["const", "runtime"])
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_every_op_case_imports_and_runs_as_the_file_does(case, const_params, tmp_path):
    rng = np.random.default_rng(0)
    arrays = [make_input(s, k, rng) for s, k in case.inputs]
    outs, feeds = build(case, arrays, const_params)
    path = tmp_path / "m.mlpackage"
    af.compile(outs).export_mlpackage(path)
    want = list(af.load_mlpackage(path)(*feeds).values())  # the mil backend: what the file computes
    got = _outputs(af.from_mlpackage(path)(*feeds))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w.dtype.kind in "biu":
            np.testing.assert_array_equal(g.astype(w.dtype), w, err_msg=case.name)
        else:
            # each op's result stored in fp16 on both sides; kernels differ by at most an ulp
            # (measured 1.0: bilinear resizing), NaN and inf where the file has them
            af.testing.assert_fp16_close(g, w, ulps=2.0, what=case.name)


def test_the_mil_ops_af_emits_are_all_in_the_table(tmp_path):
    """Every MIL op the op cases' programs hold (89 kinds) has an entry or folds."""
    from aneforge.mil.package import read_mlpackage
    rng = np.random.default_rng(0)
    seen = set()
    for case in ALL:
        outs, _ = build(case, [make_input(s, k, rng) for s, k in case.inputs], True)
        path = tmp_path / f"{len(seen)}.mlpackage"
        af.compile(outs).export_mlpackage(path)
        seen |= {o.type for o in read_mlpackage(path)[1].main.block.ops}
    unmapped = {t for t in seen if t not in MIL and t not in ("const", "fill", "shape") and not t.startswith("constexpr_")}
    assert unmapped == set()
    assert len(seen) >= 80


class _Block(torch.nn.Module):
    """A pre-norm attention block with static head arithmetic (coremltools traces it)."""

    def __init__(self, d=32, heads=4, t=8):
        super().__init__()
        self.d, self.h, self.t = d, heads, t
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.fc, self.out = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)
        self.register_buffer("mask", torch.triu(torch.full((t, t), -1e4), 1))

    def forward(self, x):
        q, k, v = self.qkv(self.ln1(x)).split(self.d, dim=-1)
        q, k, v = (z.reshape(2, self.t, self.h, self.d // self.h).transpose(1, 2) for z in (q, k, v))
        att = torch.softmax(q @ k.transpose(-2, -1) * (self.d // self.h) ** -0.5 + self.mask, -1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(2, self.t, self.d))
        return x + self.out(torch.nn.functional.gelu(self.fc(self.ln2(x))))


def _models():
    from torch_vision_refs import efficientnet_b0, mobilenet_v2, unet
    torch.manual_seed(0)
    return {"mobilenet_v2": (lambda: mobilenet_v2(seed=1, image_size=32, batches=1), (2, 3, 32, 32), 0.998, 53),
            "efficientnet_b0": (lambda: efficientnet_b0(seed=1, image_size=64, batches=1), (2, 3, 64, 64), 0.9999, 82),
            "unet": (lambda: unet(seed=1, image_size=64, batches=1), (2, 3, 64, 64), 0.9999, 15),
            "block": (lambda: _Block().eval(), (2, 8, 32), 0.9999, 4)}


@pytest.mark.parametrize("precision", ["FLOAT16", "FLOAT32"])
@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0", "unet", "block"])
def test_coremltools_converted_models_import(name, precision, tmp_path):
    make, shape, bound, layers = _models()[name]
    model = make()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    ml = ct.convert(torch.jit.trace(model, x), inputs=[ct.TensorType(name="x", shape=x.shape)],
                    convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                    compute_precision=getattr(ct.precision, precision), skip_model_load=True)
    path = tmp_path / "m.mlpackage"
    ml.save(str(path))
    net = af.from_mlpackage(path)
    got = net(x.numpy())
    with torch.no_grad():
        ref = model(x).numpy()
    cos = min(af.testing.cosine(a, b) for a, b in zip(got.reshape(len(got), -1), ref.reshape(len(ref), -1)))
    # measured: MobileNetV2 0.9987 (53 layers of fp16 storage, as from_torch), EfficientNet-B0
    # 0.99992, UNet 0.999999, the block 0.99999
    assert cos >= bound
    assert len(net.compression_report()["layers"]) == layers  # weight layers: batch norm folded
    want = list(af.load_mlpackage(path)(x=x.numpy()).values())[0]
    assert min(af.testing.cosine(a, b) for a, b in zip(got.reshape(len(got), -1), want.reshape(len(want), -1))) \
        >= (0.9995 if precision == "FLOAT16" else bound)
    # FLOAT16: two fp16 computations of one program, whose roundings differ where the kernels do
    # and depth amplifies (measured MobileNetV2 0.99973, 53 layers; the others >= 0.99993)


def test_compressed_weights_are_read_dequantized(tmp_path):
    """int8 weights are constexpr ops in the file: the reader resolves them to their values,
    and the imported graph can be compressed again."""
    rng = np.random.default_rng(1)
    x = af.input((4, 64), name="x")
    w = rng.standard_normal((32, 64)).astype(np.float32) * 0.1
    path = tmp_path / "q.mlpackage"
    af.compile(af.linear(x, w), compress="int8", min_cosine=0.0).export_mlpackage(path)
    feed = rng.standard_normal((4, 64)).astype(np.float32)
    want = list(af.load_mlpackage(path)(feed).values())[0]
    net = af.from_mlpackage(path)
    af.testing.assert_fp16_close(net(feed), want, ulps=2.0)
    again = af.from_mlpackage(path, compress="int8", min_cosine=0.0)
    assert again.weight_bytes < net.weight_bytes


def test_refusals_name_the_problem(tmp_path):
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 6))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.cumsum(x=mb.reverse(x=x, axes=[1]), axis=1, exclusive=True)

    path = tmp_path / "r.mlpackage"
    ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
               compute_precision=ct.precision.FLOAT32, skip_model_load=True).save(str(path))
    with pytest.raises(NotImplementedError, match="(?s)1 MIL op.s. have no mapping.*reverse: not mapped yet"):
        af.from_mlpackage(path)
    with pytest.raises(OSError, match="not an .mlpackage directory"):
        af.from_mlpackage(tmp_path / "missing.mlpackage")
    bad = tmp_path / "bad.mlpackage"
    bad.mkdir()
    (bad / "Manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        af.from_mlpackage(bad)
    with pytest.raises(ValueError, match=r"input_shapes names \['y'\]"):
        af.from_mlpackage(path, input_shapes={"y": (1,)})


# af's sdpa stores scores and probabilities in fp16 (matmul, softmax, matmul); the file's one op
# keeps them in fp32, so an output that cancels keeps their rounding: measured 0.094 ulps of the
# largest output beyond 2 ulps of its own.
FLOORS = {"sdpa": 0.125}


def _builder_cases():
    """MIL ops af does not emit, from coremltools' builder: (name, input shapes, fn(mb, *xs), opset)."""
    from coremltools.converters.mil import Builder as mb
    r = np.random.default_rng(2)
    return {
        "tan": ([(3, 4)], lambda x: mb.tan(x=mb.mul(x=x, y=0.5)), ct.target.iOS17),
        "sinh-cosh": ([(3, 4)], lambda x: mb.add(x=mb.sinh(x=x), y=mb.cosh(x=x)), ct.target.iOS17),
        "softplus_parametric": ([(2, 3, 4, 4)], lambda x: mb.softplus_parametric(
            x=x, alpha=np.array([0.5, 1.0, 2.0], np.float32), beta=np.array([1.0, 2.0, 0.5], np.float32)),
            ct.target.iOS17),
        "stack": ([(3, 4), (3, 4)], lambda x, y: mb.stack(values=[x, y], axis=1), ct.target.iOS17),
        "flatten2d": ([(2, 3, 4)], lambda x: mb.flatten2d(x=x, axis=2), ct.target.iOS17),
        "one_hot": ([(2, 3)], lambda x: mb.one_hot(indices=mb.cast(x=mb.mul(x=mb.abs(x=x), y=2.0), dtype="int32"),
                                                   one_hot_vector_size=5, axis=1, on_value=2.0, off_value=-1.0),
                    ct.target.iOS17),
        "sdpa": ([(2, 4, 6, 8), (2, 4, 5, 8), (2, 4, 5, 8)],
                 lambda q, k, v: mb.scaled_dot_product_attention(query=q, key=k, value=v,
                                                                 attn_mask=r.standard_normal((6, 5)).astype(np.float32)),
                 ct.target.iOS18),
        "linear-matmul-layer_norm": ([(2, 6)], lambda x: mb.matmul(
            x=mb.layer_norm(x=mb.linear(x=x, weight=r.standard_normal((4, 6)).astype(np.float32)), axes=[-1],
                            gamma=np.full(4, 2.0, np.float32)),
            y=r.standard_normal((3, 4)).astype(np.float32), transpose_y=True), ct.target.iOS17),
    }


@pytest.mark.parametrize("name", sorted(_builder_cases()))
def test_builder_programs_import_and_run_as_the_file_does(name, tmp_path):
    from coremltools.converters.mil import Builder as mb
    shapes, fn, target = _builder_cases()[name]

    specs = dict(input_specs=[mb.TensorSpec(shape=s) for s in shapes], opset_version=target)
    if len(shapes) == 1:  # the builder reads the inputs from the signature
        prog = mb.program(**specs)(lambda x: fn(x))
    elif len(shapes) == 2:
        prog = mb.program(**specs)(lambda x, y: fn(x, y))
    else:
        prog = mb.program(**specs)(lambda q, k, v: fn(q, k, v))

    path = tmp_path / "p.mlpackage"
    ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=target, compute_precision=ct.precision.FLOAT16,
               skip_model_load=True).save(str(path))
    rng = np.random.default_rng(3)
    feeds = [af.round_fp16(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    want = list(af.load_mlpackage(path)(*feeds).values())[0]
    got = af.from_mlpackage(path)(*feeds)
    af.testing.assert_fp16_close(got, want, ulps=2.0, floor_ulps=FLOORS.get(name, 0.0), what=name)
