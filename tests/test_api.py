"""The Python API as the seed shows it: build, compile, call, inspect."""
import numpy as np
import pytest

import aneforge as af


def test_seed_quickstart_shape_and_repr(rng):
    W = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    x = af.input((1, 3, 32, 32), name="image")
    y = af.conv(x, W, pad=1).relu().mean((2, 3))
    assert y.shape == (1, 16) and y.dtype == "fp16" and y.op == "mean"
    assert repr(x) == "Tensor('image', (1, 3, 32, 32), fp16, op=input)"
    assert repr(y).startswith("Tensor('mean_") and "(1, 16), fp16, op=mean)" in repr(y)
    net = af.compile(y)
    out = net(rng.standard_normal((1, 3, 32, 32)).astype(np.float32))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (1, 16)


def test_list_and_dict_outputs(rng):
    x = af.input((2, 4), name="x")
    a, b = x.relu(), x * 2
    xs = rng.standard_normal((2, 4)).astype(np.float32)
    la, lb = af.compile([a, b])(xs)
    np.testing.assert_array_equal(la, np.maximum(af.round_fp16(xs), 0))
    d = af.compile({"pos": a, "double": b})(x=xs)
    assert list(d) == ["pos", "double"]
    np.testing.assert_array_equal(d["double"], af.round_fp16(2 * af.round_fp16(xs)))


def test_inputs_by_position_name_and_order(rng):
    a = af.input((3,), name="a")
    b = af.input((3,), name="b")
    net = af.compile(a - b)
    av, bv = np.array([1, 2, 3], np.float32), np.array([10, 20, 30], np.float32)
    np.testing.assert_array_equal(net(av, bv), av - bv)
    np.testing.assert_array_equal(net(b=bv, a=av), av - bv)
    np.testing.assert_array_equal(net(av, b=bv), av - bv)
    swapped = af.compile(a - b, inputs=[b, a])
    np.testing.assert_array_equal(swapped(bv, av), av - bv)
    assert [n for n, _, _ in swapped.inputs] == ["b", "a"]


def test_float16_float64_and_list_inputs():
    x = af.input((2,), name="x")
    net = af.compile(x * 3)
    for arr in (np.array([1, 2], np.float16), np.array([1, 2], np.float64), [1.0, 2.0]):
        np.testing.assert_array_equal(net(arr), [3, 6])
    strided = np.arange(4, dtype=np.float32)[::2]
    np.testing.assert_array_equal(net(strided), [0, 6])


def test_scalars_on_either_side():
    x = af.input((3,), name="x")
    xs = np.array([1, 2, 4], np.float32)
    net = af.compile([x + 1, 1 + x, x - 1, 1 - x, x * 2, 2 * x, x / 2, 2 / x, -x])
    outs = net(xs)
    for got, want in zip(outs, [xs + 1, 1 + xs, xs - 1, 1 - xs, xs * 2, 2 * xs, xs / 2, 2 / xs, -xs]):
        np.testing.assert_allclose(got, want, rtol=1e-3)
    # NumPy arrays on the left defer to the Tensor.
    y = np.ones(3, np.float32) + x
    assert isinstance(y, af.Tensor)


def test_summary_lists_layers(capsys, rng):
    x = af.input((1, 3, 8, 8), name="image")
    y = af.conv(x, rng.standard_normal((4, 3, 3, 3)).astype(np.float32), pad=1).relu().mean((2, 3))
    net = af.compile(y)
    text = net.summary()
    assert capsys.readouterr().out == text
    for word in ("conv+relu", "mean", "(1, 4, 8, 8)", "(1, 4)", "image", "weights: 216 B"):
        assert word in text
    assert net.num_layers == 2  # relu fused into the conv


def test_relu_feeding_two_consumers_is_not_fused(rng):
    x = af.input((1, 2, 4, 4), name="x")
    c = af.conv(x, rng.standard_normal((3, 2, 1, 1)).astype(np.float32))
    net = af.compile([c, c.relu()])  # the conv result is itself an output
    a, b = net(rng.standard_normal((1, 2, 4, 4)).astype(np.float32))
    assert net.num_layers == 2 and (a < 0).any()
    np.testing.assert_array_equal(b, np.maximum(a, 0))


def test_ops_listing_has_categories():
    table = af.ops()
    names = {o.name for o in table}
    for n in ("conv", "matmul", "linear", "add", "sub", "mul", "div", "relu", "mean", "sum",
              "reshape", "transpose", "permute"):
        assert n in names
        assert callable(getattr(af, n))
    assert {o.category for o in table} >= {"linalg", "binary", "activation", "reduction", "shape"}
    assert all(o.doc for o in table)
    assert "padding" in str(__import__("inspect").signature(af.conv))


def test_method_forms_match_functions(rng):
    x = af.input((2, 3, 4), name="x")
    xs = rng.standard_normal((2, 3, 4)).astype(np.float32)
    a, b = af.compile([x.reshape(6, 4).sum(0), af.sum(af.reshape(x, (6, 4)), axis=0)])(xs)
    np.testing.assert_array_equal(a, b)
    t1, t2, t3 = af.compile([x.transpose(0, 2), x.permute(2, 1, 0), x.mT])(xs)
    np.testing.assert_array_equal(t1, af.round_fp16(xs).transpose(2, 1, 0))
    np.testing.assert_array_equal(t2, t1)
    np.testing.assert_array_equal(t3, af.round_fp16(xs).transpose(0, 2, 1))
    with pytest.raises(ValueError, match="up to 2 dimensions.*mT"):
        x.T  # torch deprecates .T above 2-D


def test_graph_can_be_reused_and_nets_are_independent(rng):
    x = af.input((4,), name="x")
    y = (x * 2).relu()
    n1, n2 = af.compile(y), af.compile(y, precision="fp32")
    xs = np.array([0.1, -1, 3, 1e-5], np.float32)
    assert n1(xs)[3] == 0.0  # 2e-5 is subnormal in fp16: flushed
    assert n2(xs)[3] == pytest.approx(2e-5)


def test_compress_int8_shrinks_weights(rng):
    W = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    x = af.input((1, 32, 8, 8), name="x")
    y = af.conv(x, W, pad=1)
    dense, small = af.compile(y), af.compile(y, compress="int8")
    assert small.weight_bytes < 0.6 * dense.weight_bytes
    xs = rng.standard_normal((1, 32, 8, 8)).astype(np.float32)
    assert af.testing.cosine(small(xs), dense(xs)) > 0.9999
    with pytest.raises(ValueError, match="format 'int3' is not supported"):
        af.compile(y, compress="int3")


def test_threads_setting():
    n = af.num_threads()
    af.set_num_threads(1)
    assert af.num_threads() == 1
    af.set_num_threads(n)
    assert af.num_threads() == n
