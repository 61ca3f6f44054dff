"""af.input((None, ...)): one program per batch size, each checked against torch; a bounded
cache; ahead-of-time compile_for; errors that say which dimension may vary."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aneforge as af
from aneforge.testing import assert_fp32_close


@pytest.fixture
def cnn(rng):
    W = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    L = (rng.standard_normal((5, 8 * 4 * 4)) * 0.1).astype(np.float32)
    x = af.input((None, 3, 8, 8), name="image")
    h = af.max_pool2d(af.conv2d(x, W, padding=1).relu(), 2)
    logits = af.linear(h.reshape(-1, 8 * 4 * 4), L)   # -1 follows the batch
    tail = h[:, 1:, ::2].flatten(1).mean(dim=1)         # slices and flatten too

    def reference(xs):
        t = F.max_pool2d(F.conv2d(torch.from_numpy(xs), torch.from_numpy(W), padding=1).relu(), 2)
        return (t.reshape(len(xs), -1) @ torch.from_numpy(L).T).numpy(), t[:, 1:, ::2].flatten(1).mean(dim=1).numpy()
    return x, (logits, tail), reference


def test_each_batch_size_runs_its_own_program(cnn, rng):
    x, outs, reference = cnn
    net = af.compile(outs, precision="fp32")
    assert net.flexible and net.inputs == [("image", (None, 3, 8, 8), "fp16")]
    for b in (1, 3, 5, 3):
        xs = rng.standard_normal((b, 3, 8, 8)).astype(np.float32)
        got = net(xs)
        assert isinstance(got, tuple)
        for g, e in zip(got, reference(xs)):
            assert g.shape == e.shape
            assert_fp32_close(g, e, rtol=1e-4, atol=1e-5)
    assert sorted(net.compiled_batches) == [1, 3, 5]


def test_the_mil_backend_runs_each_batch_program_emitted(cnn, rng):
    _, outs, _ = cnn
    sim, mil = af.compile(outs), af.compile(outs, backend="mil")
    for b in (2, 4):
        xs = rng.standard_normal((b, 3, 8, 8)).astype(np.float32)
        for g, e in zip(mil(xs), sim(xs)):
            assert g.shape[0] == b
            af.testing.assert_equivalent(g, e, ulps=2, floor_ulps=4)


def test_the_cache_is_bounded_least_recently_used_first(cnn, rng):
    _, outs, _ = cnn
    net = af.compile(outs, max_programs=2)
    for b in (2, 3, 2, 4):
        net(np.zeros((b, 3, 8, 8), np.float32))
    assert net.compiled_batches == [2, 4]
    with pytest.raises(ValueError, match="max_programs"):
        af.compile(outs, max_programs=0)


def test_compile_for_ahead_of_time_gives_a_fixed_net_that_saves(cnn, rng, tmp_path):
    _, outs, reference = cnn
    net = af.compile(outs, precision="fp32")
    n8 = net.compile_for(batch=8)
    assert not n8.flexible and n8.inputs[0][1] == (8, 3, 8, 8)
    assert net.compile_for(8) is n8
    n8.save(tmp_path / "b8.afp")
    xs = rng.standard_normal((8, 3, 8, 8)).astype(np.float32)
    got = af.load_program(tmp_path / "b8.afp")(xs)
    for g, e in zip(got, reference(xs)):
        assert_fp32_close(g, e, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="compile_for"):
        net.save(tmp_path / "flex.afp")
    assert not (tmp_path / "flex.afp").exists()
    with pytest.raises(ValueError, match="fixed shapes"):
        n8.compile_for(batch=2)


def test_fixed_inputs_keep_their_place_beside_flexible_ones(rng):
    bias = af.input((4,), name="bias")
    x = af.input((None, 4), name="x")
    net = af.compile({"y": (x * 2 + bias).relu()})
    assert [n for n, _, _ in net.inputs] == ["bias", "x"]
    bs, xs = rng.standard_normal(4).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    out = net(bs, xs)
    assert list(out) == ["y"]
    np.testing.assert_allclose(out["y"], np.maximum(xs * 2 + bs, 0), rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(net(x=xs, bias=bs)["y"], out["y"])


def test_attention_with_heads_split_by_reshape(rng):
    x = af.input((None, 6, 8), name="x")
    q = x.reshape(-1, 6, 2, 4).transpose(1, 2)
    y = af.scaled_dot_product_attention(q, q, q, is_causal=True).transpose(1, 2).reshape(-1, 6, 8)
    net = af.compile(y, precision="fp32")
    for b in (1, 3):
        xs = rng.standard_normal((b, 6, 8)).astype(np.float32)
        t = torch.from_numpy(xs).reshape(b, 6, 2, 4).transpose(1, 2)
        ref = F.scaled_dot_product_attention(t, t, t, is_causal=True).transpose(1, 2).reshape(b, 6, 8)
        assert_fp32_close(net(xs), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_errors_say_which_dimensions_may_vary(cnn):
    x, outs, _ = cnn
    net = af.compile(outs)
    with pytest.raises(ValueError, match=r"expected \(batch, 3, 8, 8\), where batch \(dim 0\) may vary"):
        net(np.zeros((2, 3, 9, 8), np.float32))
    with pytest.raises(ValueError, match="only the batch dimension"):
        af.input((1, None, 4))
    with pytest.raises(TypeError, match="tuple of ints"):
        af.input(None)
    a, b = af.input((None, 4), name="a"), af.input((None, 4), name="b")
    two = af.compile(a + b)
    with pytest.raises(ValueError, match="batch sizes 2 and 3"):
        two(np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32))


def test_a_size_taken_from_x_shape_is_an_error_not_a_wrong_program(rng):
    x = af.input((None, 3, 4), name="x")
    flat = x.reshape(x.shape[0], -1)            # x.shape[0] is the placeholder 13
    with pytest.raises(ValueError, match=r"cannot be rebuilt for batch 1.*use -1"):
        af.compile(flat.sum(1))
    ok = af.compile(x.reshape(-1, 12).sum(1))   # what to write instead
    xs = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(ok(xs), xs.reshape(2, -1).sum(1), rtol=5e-3, atol=5e-3)


def test_static_graphs_record_nothing():
    x = af.input((2, 3))
    y = (x * 2)[:, 1:].relu()
    assert y._recipe is None and not af.compile(y).flexible
