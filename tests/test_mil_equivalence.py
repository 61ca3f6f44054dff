"""The MIL equivalence suite: every op case, every bridge and whole graphs run on the sim
and on the mil backend (the emitted MIL program the engine would get, interpreted op by op)
with the same inputs, in both opsets. They agree per element within the fp16 policy of
aneforge.testing, and non-finite values agree. Inputs that stress fp16 range (NaN, inf,
|x| >= 300, logits far below the max, non-integer resize scales) are included."""
import numpy as np
import pytest

import aneforge as af
from milequiv import OPSETS, build, check
from optable import make_input
from test_mil import BRIDGE_GRAPHS, _transformer_block
from test_ops import ALL

# Floors (in ulps of the largest result) where the emitted program stores intermediate terms
# in fp16 that the sim keeps in fp32, so an element that cancels keeps their rounding.
FLOORS = {
    "batch_norm": 2,            # runtime statistics: (x - mean) * rsqrt(var) * w + b, each stored
    "batch_norm_noaffine": 2,
    "layer_norm": 2,            # runtime weights: mean, x - mean, scaled variance, * w + b
    "layer_norm_bias_only": 2,
    "group_norm": 2,            # layer_norm, then * w + b
    "rms_norm": 2,              # scaled: x / max|x|, mean of squares, rsqrt, * w
    "l2_norm": 2,
    "log_softmax": 1,           # log of an fp16 sum >= 1: absolute error up to half an ulp of 1
    "einsum_implicit_sum": 2,   # two contractions with the first stored in fp16
}


def _floor(case):
    return FLOORS.get(case.name, case.floor_ulps)


@pytest.mark.parametrize("const_params,fold", [(False, True), (True, True), (True, False)],
                         ids=["runtime", "const", "const-unfolded"])
@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("case", ALL, ids=repr)
def test_op_case_sim_equals_mil(case, opset, const_params, fold, rng):
    """const-unfolded: constants stay constants but nothing is folded, so a subgraph of
    constants (static ids, a lowering's ranges) is computed by the MIL, not by sim kernels."""
    arrays = [make_input(s, k, rng) for s, k in case.inputs]
    outs, feeds = build(case, arrays, const_params)
    check(outs, feeds, opset, case.name, max(case.ulps, 2), _floor(case), fold=fold)


def _stressed(case, rng, kind):
    arrays = [make_input(s, k, rng) for s, k in case.inputs]
    x = arrays[0]
    if x.dtype != np.float32:
        return None
    if kind == "special":
        if x.size < 4:
            return None
        flat = x.reshape(-1)
        idx = rng.choice(flat.size, 3, replace=False)
        flat[idx] = [np.nan, np.inf, -np.inf]
    else:
        arrays[0] = (x * 300).astype(np.float32)  # squares overflow fp16 from |x| = 256
    return arrays


def _stressable(kind):
    """The cases whose first input is a float tensor (of 4+ elements for "special")."""
    rng = np.random.default_rng(0)
    return [c for c in ALL if _stressed(c, rng, kind) is not None]


@pytest.mark.parametrize("kind,case", [(k, c) for k in ("special", "x300") for c in _stressable(k)],
                         ids=lambda v: v if isinstance(v, str) else repr(v))
def test_op_case_stressed(case, kind, rng):
    arrays = _stressed(case, rng, kind)
    outs, feeds = build(case, arrays, False)
    check(outs, feeds, "ios18", f"{case.name} {kind}", max(case.ulps, 2), _floor(case))


# The cases a reading of the emitters found; each failed before its emitter was fixed.
def _x(shape, dtype="fp16"):
    return af.input(shape, dtype=dtype, name="x")


STRESS = {
    "upsample_nearest 1.7 on H=5": (lambda x: af.upsample_nearest(x, (1.7, 1.3)), (1, 2, 5, 4), 1),
    "upsample_bilinear 1.7": (lambda x: af.upsample_bilinear(x, (1.7, 2.5)), (1, 2, 5, 4), 1),
    "upsample_bilinear 1.5 align": (lambda x: af.upsample_bilinear(x, 1.5, align_corners=True), (1, 2, 5, 4), 1),
    "resize_nearest 5->7": (lambda x: af.resize_nearest(x, (7, 9)), (1, 2, 5, 4), 1),
    "log_softmax far logits": (lambda x: af.log_softmax(x * 8, -1), (2, 16), 10),
    "softmax far logits": (lambda x: af.softmax(x * 8, -1), (2, 16), 10),
    "rms_norm [300, 1, 2, 3]": (lambda x: af.rms_norm(x, (4,)), (2, 4), 300),
    "l2_norm [300, 1, 2, 3]": (lambda x: af.l2_norm(x, -1), (2, 4), 300),
    "layer_norm 300 runtime weight": (None, (2, 8), 300),
    "softplus beta 2 threshold 3": (lambda x: af.softplus(x, beta=2.0, threshold=3.0), (4, 8), 2),
    "conv_transpose output_padding": (None, (1, 3, 5, 4), 1),
    "threshold NaN": (lambda x: af.threshold(x, 0.1, 20.0), (3, 4), 1),
    "clip inf": (lambda x: af.clip(x, -1.0, float("inf")), (3, 4), 1),
    "clip to fp16 max": (lambda x: af.clip(x, -1e6, 1e6), (3, 4), 1),
}


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(STRESS))
def test_stressing_inputs(name, opset, rng):
    fn, shape, scale = STRESS[name]
    x = _x(shape)
    if name.startswith("layer_norm"):
        w = af.input((shape[-1],), name="w")
        out, extra = af.layer_norm(x, (shape[-1],), w), [rng.standard_normal(shape[-1]).astype(np.float32)]
        inputs = [x, w]
    elif name.startswith("conv_transpose"):
        wt = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
        out, extra, inputs = af.conv_transpose(x, wt, np.ones(2, np.float32), stride=2, pad=1, output_padding=1), [], None
    else:
        out, extra, inputs = fn(x), [], None
    v = (rng.standard_normal(shape) * scale).astype(np.float32)
    if name.startswith(("rms_norm", "l2_norm")):
        v[0] = [300, 1, 2, 3]
    if name in ("threshold NaN", "clip inf", "clip to fp16 max"):
        v.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, 70000]
    # norms and log_softmax: see FLOORS; non-integer bilinear scales: the emitted interpolation
    # weights are fp16 constants (the sim's are fp32), an error of 2^-11 of the input.
    floor = 2 if "norm" in name or "log_softmax" in name else 1 if "bilinear" in name else 0
    check([out], [v] + extra, opset, name, 2, floor, inputs=inputs)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("bridge", sorted(BRIDGE_GRAPHS))
def test_bridge_sim_equals_mil(bridge, opset, rng):
    x4 = af.input((1, 4, 4, 6), name="x4")
    x2 = af.input((2, 16), name="x2")
    pts = af.input((2, 10, 3), name="pts")
    out = BRIDGE_GRAPHS[bridge](x4, x2, pts)
    outs = out if isinstance(out, list) else [out]
    feeds = [rng.standard_normal((1, 4, 4, 6)).astype(np.float32), rng.standard_normal((2, 16)).astype(np.float32),
             rng.random((2, 10, 3)).astype(np.float32)]
    check(outs, feeds, opset, bridge, 2, 2, inputs=[x4, x2, pts])


@pytest.mark.parametrize("opset", OPSETS)
def test_whole_graphs_sim_equals_mil(opset, rng):
    from aneforge.nets import resnet18
    W = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    x = af.input((1, 3, 32, 32), name="image")
    quick = af.conv(x, W, pad=1).relu().mean((2, 3))
    check([quick], [rng.standard_normal((1, 3, 32, 32)).astype(np.float32)], opset, "quickstart", 2, 1)
    xr, res = resnet18(size=64, classes=10)
    check([res], [rng.standard_normal((1, 3, 64, 64)).astype(np.float32)], opset, "resnet18", 2, 4)
    blk = _transformer_block(rng)
    check([blk], [rng.standard_normal((1, 16, 32)).astype(np.float32)], opset, "transformer block", 2, 4)


def test_train_step_programs_sim_equals_mil(rng):
    """The fused train step of a CNN (conv, GroupNorm, max pool, dropout, linear, cross-entropy,
    backward, SGD with momentum, dynamic loss scaling) as MIL: the mil backend runs the
    emitted program and gets the sim's loss and updated weights."""
    def build():
        af.nn.manual_seed(1)
        return af.nn.Sequential(af.nn.Conv2d(2, 4, 3, padding=1, stride=2), af.nn.GroupNorm(2, 4), af.nn.GELU(),
                                af.nn.MaxPool2d(2), af.nn.Flatten(), af.nn.Dropout(0.2), af.nn.Linear(16, 3))
    X = rng.standard_normal((4, 2, 8, 8)).astype(np.float32)
    Y = np.array([0, 2, 1, 2], np.int32)
    steps = {}
    for backend in ("sim", "mil"):
        model = build()
        x, y = af.input(X.shape, name="x"), af.input((4,), dtype="int32", name="y")
        steps[backend] = af.compile_train_step(af.cross_entropy(model(x), y), model.parameters(),
                                               af.optim.SGD(lr=0.1, momentum=0.9), inputs=[x, y], backend=backend)
    for _ in range(3):
        ls, lm = steps["sim"](X, Y), steps["mil"](X, Y)
        assert lm == pytest.approx(ls, rel=2e-3)
    ps, pm = steps["sim"].parameters(), steps["mil"].parameters()
    for k in ps:
        np.testing.assert_allclose(pm[k], ps[k], rtol=2e-3, atol=2e-4, err_msg=k)
    assert steps["sim"].loss_scale == steps["mil"].loss_scale
