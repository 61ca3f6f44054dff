"""Every foundation op against torch.nn.functional in float32, at the fp16 tolerance policy
(aneforge.testing), and bit-level fp16 behaviour against NumPy's float16."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aneforge as af
from aneforge.testing import assert_fp16_close, assert_fp32_close, cosine


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float32))


def run_both(build, inputs):
    """Compile the graph `build` makes in fp16 and fp32; return both results."""
    xs = [af.input(a.shape, name=f"in{i}") for i, a in enumerate(inputs)]
    y = build(*xs)
    return af.compile(y)(*inputs), af.compile(y, precision="fp32")(*inputs)


CONV_CASES = [
    dict(shape=(1, 3, 32, 32), w=(16, 3, 3, 3), pad=1),
    dict(shape=(2, 4, 9, 7), w=(6, 4, 3, 3), stride=2, pad=1, bias=True),
    dict(shape=(1, 5, 11, 13), w=(7, 5, 5, 3), stride=(2, 1), pad=(2, 1), dilation=(1, 2)),
    dict(shape=(1, 8, 10, 10), w=(8, 1, 3, 3), pad=1, groups=8, bias=True),       # depthwise
    dict(shape=(1, 4, 10, 10), w=(12, 1, 3, 3), pad=1, groups=4),                 # depthwise x3
    dict(shape=(1, 6, 8, 8), w=(9, 2, 3, 3), groups=3, dilation=2, pad=2),
    dict(shape=(1, 3, 16, 16), w=(5, 3, 1, 1)),                                    # pointwise
    dict(shape=(1, 3, 15, 15), w=(4, 3, 5, 4), pad="same", dilation=(2, 1)),
    dict(shape=(1, 3, 15, 15), w=(4, 3, 3, 3), pad="valid", stride=3),
    dict(shape=(1, 1, 1, 1), w=(3, 1, 1, 1), bias=True),                           # size-1 dims
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: str(c["w"]) + str(c.get("groups", 1)))
def test_conv_matches_torch(case, rng):
    x = rng.standard_normal(case["shape"]).astype(np.float32)
    w = (rng.standard_normal(case["w"]) / np.sqrt(np.prod(case["w"][1:]))).astype(np.float32)
    b = rng.standard_normal(case["w"][0]).astype(np.float32) if case.get("bias") else None
    kw = {k: case[k] for k in ("stride", "pad", "dilation", "groups") if k in case}
    got16, got32 = run_both(lambda t: af.conv(t, w, b, **kw), [x])
    tkw = dict(kw)
    if "pad" in tkw:
        tkw["padding"] = tkw.pop("pad")
    ref = F.conv2d(_t(x), _t(w), None if b is None else _t(b), **tkw).numpy()
    assert_fp32_close(got32, ref, rtol=1e-4, atol=1e-5)
    assert_fp16_close(got16, ref, roundings=4)


@pytest.mark.parametrize("sa, sb", [((5, 7), (7, 3)), ((2, 5, 7), (7, 4)), ((3, 1, 4, 6), (2, 6, 5)),
                                    ((6,), (6, 4)), ((4, 6), (6,)), ((6,), (6,)), ((1, 1), (1, 1))])
def test_matmul_matches_torch(sa, sb, rng):
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    got16, got32 = run_both(lambda x, y: x @ y, [a, b])
    ref = torch.matmul(_t(a), _t(b)).numpy()
    assert_fp32_close(got32, ref, rtol=1e-4)
    assert_fp16_close(got16, ref, roundings=4)


def test_matmul_with_constant_operand(rng):
    a = rng.standard_normal((3, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    got16, _ = run_both(lambda x: x @ w, [a])
    assert_fp16_close(got16, a @ w, roundings=4)
    got16, _ = run_both(lambda x: w.T @ x.T, [a])  # constant on the left
    assert_fp16_close(got16, w.T @ a.T, roundings=4)


@pytest.mark.parametrize("xshape", [(7, 10), (2, 3, 10), (10,)])
def test_linear_matches_torch(xshape, rng):
    x = rng.standard_normal(xshape).astype(np.float32)
    w = rng.standard_normal((5, 10)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    got16, got32 = run_both(lambda t: af.linear(t, w, b), [x])
    ref = F.linear(_t(x), _t(w), _t(b)).numpy()
    assert_fp32_close(got32, ref, rtol=1e-4)
    assert_fp16_close(got16, ref, roundings=4)


BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("sa, sb", [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((1, 3, 1), (2, 1, 5)),
                                    ((5,), ()), ((), (3, 2)), ((1, 1, 1, 1, 7), (3, 1, 2, 1, 7))])
def test_binary_broadcast_matches_torch(op, sa, sb, rng):
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    if op == "div":
        b = np.where(np.abs(b) < 0.2, 0.5, b).astype(np.float32)
    got16, got32 = run_both(getattr(af, op), [a, b])
    ref = BINARY[op](_t(a), _t(b)).numpy()
    assert_fp32_close(got32, ref)
    assert_fp16_close(got16, ref, roundings=3 if op != "div" else 6)


def test_relu_and_specials():
    x = np.array([-2, -0.0, 0, 1e-3, 3, np.inf, -np.inf, np.nan], np.float32)
    got16, got32 = run_both(af.relu, [x])
    ref = F.relu(_t(x)).numpy()
    assert_fp16_close(got16, ref)
    assert_fp32_close(got32, ref)


@pytest.mark.parametrize("shape, axis, keep", [((2, 3, 4, 5), (2, 3), False), ((2, 3, 4, 5), 1, True),
                                               ((2, 3, 4, 5), (0, 2), False), ((2, 3, 4, 5), None, False),
                                               ((7,), 0, True), ((2, 3, 4, 5, 6), (1, 3, 4), True),
                                               ((4, 4000), -1, False)])
@pytest.mark.parametrize("op", ["mean", "sum"])
def test_reductions_match_torch(op, shape, axis, keep, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    got16, got32 = run_both(lambda t: getattr(t, op)(axis, keepdims=keep), [x])
    tx = _t(x)
    ref = getattr(tx, op)(dim=axis, keepdim=keep) if axis is not None else getattr(tx, op)()
    if axis is None and keep:
        ref = ref.reshape([1] * len(shape))
    ref = ref.numpy()
    assert_fp32_close(got32, ref, rtol=1e-4, atol=1e-5)
    # Reductions round once at the end; the worst case is the inputs' own rounding summed.
    assert_fp16_close(got16, ref, roundings=4 if op == "mean" else 8)


def test_shape_ops_match_numpy(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    x_in = af.input((2, 3, 4, 5), name="x")
    outs = af.compile([x_in.reshape(6, -1), x_in.permute(3, 1, 0, 2), x_in.transpose(-1, 0)],
                      precision="fp32")(x)
    np.testing.assert_array_equal(outs[0], x.reshape(6, -1))
    np.testing.assert_array_equal(outs[1], x.transpose(3, 1, 0, 2))
    np.testing.assert_array_equal(outs[2], np.swapaxes(x, -1, 0))


def test_rank5_elementwise(rng):
    a = rng.standard_normal((2, 1, 3, 1, 4)).astype(np.float32)
    got16, _ = run_both(lambda t: (t * 2 + 1).relu(), [a])
    assert_fp16_close(got16, np.maximum(a * 2 + 1, 0))


# ---- fp16 storage behaviour --------------------------------------------------------


def test_round_fp16_matches_numpy_float16(rng):
    bits = rng.integers(0, 2**32, 200000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).astype(np.float32)
    got = af.round_fp16(x, flush_subnormals=False)
    np.testing.assert_array_equal(got, ref)
    flushed = af.round_fp16(x)
    sub = (np.abs(ref) < 2**-14) & (ref != 0)
    assert np.all(flushed[sub] == 0)
    np.testing.assert_array_equal(flushed[~sub], ref[~sub])


def test_overflow_becomes_inf_in_the_program():
    x = af.input((4,), name="x")
    net = af.compile(x * 300)
    out = net(np.array([100, 218, 219, -300], np.float32))
    assert out[0] == 30000
    assert out[1] == np.float16(218 * 300)        # 65400: still finite
    assert np.isposinf(out[2]) and np.isneginf(out[3])  # past 65504
    assert np.all(np.isfinite(af.compile(x * 300, precision="fp32")(np.array([100, 218, 219, -300], np.float32))))


@pytest.mark.parametrize("rows", [4, 96])  # 4 x 8: float32 constant; 96 x 64: held as fp16 bits
@pytest.mark.parametrize("table_is", ["constant", "input"])
def test_an_inf_in_an_embedding_table_reaches_every_id_as_the_one_hot_matmul_does(rows, table_is):
    """The engine gathers rows with a one-hot matmul, so an inf in any row makes that column
    NaN for every other id (0 * inf) and stays inf for its own row. The sim checks a constant
    table once at load; the mil backend runs the matmul itself, the reference here."""
    D = 8 if rows == 4 else 64
    table = np.arange(rows * D, dtype=np.float32).reshape(rows, D) / (rows * D)
    table[3, 1] = np.inf
    ids = np.array([[0, 3, 2]], np.int32)
    i = af.input(ids.shape, "int32", name="ids")
    w = af.constant(table) if table_is == "constant" else af.input(table.shape, name="table")
    y = af.embedding(i, w)
    feed = {"ids": ids} if table_is == "constant" else {"ids": ids, "table": table}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the non-finite output is the point
        got = af.compile(y)(**feed)
        ref = af.compile(y, backend="mil")(**feed)
    np.testing.assert_array_equal(got, ref)
    assert np.isinf(got[0, 1, 1]) and np.isnan(got[0, 0, 1]) and np.isnan(got[0, 2, 1])
    assert np.isfinite(np.delete(got, 1, axis=2)).all()
    clean = table.copy()
    clean[3, 1] = 0.5
    w2 = af.constant(clean) if table_is == "constant" else w
    got = af.compile(af.embedding(i, w2))(**({"ids": ids} if table_is == "constant" else {"ids": ids, "table": clean}))
    np.testing.assert_array_equal(got[0], clean[[0, 3, 2]].astype(np.float16).astype(np.float32))


def test_accumulation_is_fp32_not_fp16():
    # 3000 products of 1.0 * 1.0: an fp16 accumulator would stall at 2048.
    x = af.input((1, 3000), name="x")
    net = af.compile(af.linear(x, np.ones((1, 3000), np.float32)))
    assert net(np.ones((1, 3000), np.float32))[0, 0] == 3000


def test_weights_are_stored_as_fp16():
    w = np.array([[1 + 2**-12]], np.float32)  # not representable in fp16: rounds to 1
    x = af.input((1, 1), name="x")
    out16 = af.compile(af.linear(x, w))(np.ones((1, 1), np.float32))
    out32 = af.compile(af.linear(x, w), precision="fp32")(np.ones((1, 1), np.float32))
    assert out16[0, 0] == 1.0 and out32[0, 0] == np.float32(1 + 2**-12)


def test_ties_away_rounding_mode():
    x = af.input((1,), name="x")
    v = np.array([1 + 2**-11], np.float32)  # exactly halfway between two fp16 values
    assert af.compile(x * 1)(v)[0] == 1.0
    assert af.compile(x * 1, rounding="nearest_away")(v)[0] == np.float32(1 + 2**-10)
    assert af.compile(x * 1, target="M1", rounding="target")(v)[0] == 1.0  # even on M1
    assert af.compile(x * 1, target="M5", rounding="target")(v)[0] == np.float32(1 + 2**-10)  # reported "up"


def test_quickstart_cosine_against_torch(rng):
    W = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    img = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    x = af.input((1, 3, 32, 32), name="image")
    y = af.conv(x, W, pad=1).relu().mean((2, 3))
    ref = F.conv2d(_t(img), _t(W), padding=1).relu().mean((2, 3)).numpy()
    assert cosine(af.compile(y)(img), ref) >= 0.9999
    assert cosine(af.compile(y, compress="int8")(img), ref) >= 0.9999


def test_small_cnn_matches_torch(rng):
    """A 4-layer CNN with strides, groups and a classifier head, end to end."""
    chans = [3, 16, 32, 32, 64]
    ws = [(rng.standard_normal((o, i, 3, 3)) * np.sqrt(2 / (i * 9))).astype(np.float32)
          for i, o in zip(chans[:-1], chans[1:])]
    bs = [rng.standard_normal(o).astype(np.float32) * 0.1 for o in chans[1:]]
    fc = rng.standard_normal((10, 64)).astype(np.float32) / 8
    img = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)

    x = af.input((2, 3, 32, 32), name="image")
    h, t = x, _t(img)
    for i, (w, b) in enumerate(zip(ws, bs)):
        stride = 2 if i % 2 else 1
        h = af.conv(h, w, b, stride=stride, pad=1).relu()
        t = F.conv2d(t, _t(w), _t(b), stride=stride, padding=1).relu()
    out = af.compile(af.linear(h.mean((2, 3)), fc))(img)
    ref = F.linear(t.mean((2, 3)), _t(fc)).numpy()
    assert cosine(out, ref) > 0.9999
    assert_fp16_close(out, ref, roundings=12)
