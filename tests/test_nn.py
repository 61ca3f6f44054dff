"""af.nn layers against torch.nn: the same weights (state_dict in PyTorch's names and layouts,
both directions), the same outputs, and gradients through the layers; BatchNorm2d's running
statistics and Dropout in training mode; learning-rate schedules against torch's."""
import numpy as np
import pytest
import torch

import aneforge as af
from aneforge.testing import assert_fp32_close

tnn = torch.nn


def _to_torch(sd):
    return {k: torch.from_numpy(v) for k, v in sd.items()}


LAYERS = {
    "linear": (lambda: af.nn.Linear(6, 4), lambda: tnn.Linear(6, 4), (3, 6)),
    "conv2d": (lambda: af.nn.Conv2d(3, 5, 3, stride=2, padding=1, groups=1), lambda: tnn.Conv2d(3, 5, 3, 2, 1), (2, 3, 8, 8)),
    "conv2d_grouped": (lambda: af.nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False),
                       lambda: tnn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False), (2, 4, 5, 5)),
    "layernorm": (lambda: af.nn.LayerNorm(8), lambda: tnn.LayerNorm(8), (2, 3, 8)),
    "groupnorm": (lambda: af.nn.GroupNorm(2, 4), lambda: tnn.GroupNorm(2, 4), (2, 4, 3, 3)),
    "rmsnorm": (lambda: af.nn.RMSNorm(8), lambda: tnn.RMSNorm(8), (2, 8)),
    "batchnorm_eval": (lambda: af.nn.BatchNorm2d(3).eval(), lambda: tnn.BatchNorm2d(3).eval(), (2, 3, 4, 4)),
    "sequential": (lambda: af.nn.Sequential(af.nn.Conv2d(2, 4, 3), af.nn.ReLU(), af.nn.Flatten(), af.nn.Linear(16, 3)),
                   lambda: tnn.Sequential(tnn.Conv2d(2, 4, 3), tnn.ReLU(), tnn.Flatten(), tnn.Linear(16, 3)), (2, 2, 4, 4)),
    "mha": (lambda: af.nn.MultiheadAttention(8, 2), lambda: tnn.MultiheadAttention(8, 2), (5, 2, 8)),
    "conv1d": (lambda: af.nn.Conv1d(3, 5, 3, stride=2, padding=1), lambda: tnn.Conv1d(3, 5, 3, 2, 1), (2, 3, 9)),
    "conv_transpose2d": (lambda: af.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
                         lambda: tnn.ConvTranspose2d(4, 3, 3, 2, 1, 1), (2, 4, 5, 5)),
    "activations": (lambda: af.nn.Sequential(af.nn.ReLU6(), af.nn.Identity(7), af.nn.Hardswish(), af.nn.SiLU()),
                    lambda: tnn.Sequential(tnn.ReLU6(), tnn.Identity(7), tnn.Hardswish(), tnn.SiLU()), (2, 3, 4, 4)),
    "upsample_nearest": (lambda: af.nn.Upsample(scale_factor=2), lambda: tnn.Upsample(scale_factor=2), (1, 2, 3, 3)),
    "upsample_bilinear": (lambda: af.nn.Upsample(size=(6, 8), mode="bilinear", align_corners=False),
                          lambda: tnn.Upsample(size=(6, 8), mode="bilinear", align_corners=False), (1, 2, 3, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_torch_with_torch_weights(name, rng):
    make, make_torch, shape = LAYERS[name]
    layer, ref = make(), make_torch()
    with torch.no_grad():  # non-trivial norm parameters and running stats
        for k, v in ref.state_dict().items():
            if v.dtype.is_floating_point and ("norm" in name or k.startswith("running")):
                v.copy_(torch.rand_like(v) + 0.5)
    assert set(layer.state_dict()) == {k for k in ref.state_dict() if not k.endswith("num_batches_tracked")}
    layer.load_state_dict(ref.state_dict())
    X = rng.standard_normal(shape).astype(np.float32)
    x = af.input(shape, name="x")
    y = layer(x, x, x)[0] if name == "mha" else layer(x)
    net = af.compile(y, precision="fp32")
    got = net(x=X, **{n: v for n, v in _param_feeds(layer).items()})
    with torch.no_grad():
        t = torch.from_numpy(X)
        want = (ref(t, t, t, need_weights=False)[0] if name == "mha" else ref(t)).numpy()
    assert_fp32_close(got, want, rtol=1e-4, atol=1e-5, what=name)


def _param_feeds(layer):
    return layer.feeds()


def test_state_dict_round_trips_into_torch_and_refuses_mismatches():
    layer = af.nn.Sequential(af.nn.Linear(4, 3), af.nn.ReLU(), af.nn.Linear(3, 2))
    ref = tnn.Sequential(tnn.Linear(4, 3), tnn.ReLU(), tnn.Linear(3, 2))
    ref.load_state_dict(_to_torch(layer.state_dict()))  # strict in torch: names and shapes agree
    bad = dict(layer.state_dict())
    bad["0.weight"] = np.zeros((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"0.weight has shape \(3, 5\)"):
        layer.load_state_dict(bad)
    with pytest.raises(KeyError, match="unexpected"):
        layer.load_state_dict({**layer.state_dict(), "3.bias": np.zeros(2)})


def test_gradients_through_layers_match_torch(rng):
    model = af.nn.Sequential(af.nn.Conv2d(1, 4, 3, padding=1), af.nn.GroupNorm(2, 4), af.nn.GELU(),
                             af.nn.MaxPool2d(2), af.nn.Flatten(), af.nn.Linear(4 * 3 * 3, 3))
    ref = tnn.Sequential(tnn.Conv2d(1, 4, 3, padding=1), tnn.GroupNorm(2, 4), tnn.GELU(), tnn.MaxPool2d(2), tnn.Flatten(),
                         tnn.Linear(36, 3))
    ref.load_state_dict(_to_torch(model.state_dict()))
    X = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    Y = np.array([0, 2], np.int32)
    x, y = af.input(X.shape, name="x"), af.input((2,), dtype="int32", name="y")
    loss = af.cross_entropy(model(x), y)
    named = model.named_parameters()
    grads = af.compile(af.grad(loss, [t for _, t in named]), precision="fp32")(x=X, y=Y, **_param_feeds(model))
    tl = torch.nn.functional.cross_entropy(ref(torch.from_numpy(X)), torch.from_numpy(Y).long())
    tl.backward()
    tgrads = dict(ref.named_parameters())
    for (n, _), g in zip(named, grads):
        assert_fp32_close(g, tgrads[n].grad.numpy(), rtol=1e-4, atol=1e-5, what=n)


def test_batchnorm_training_updates_running_stats_as_torch(rng):
    bn, ref = af.nn.BatchNorm2d(3), tnn.BatchNorm2d(3)
    head, thead = af.nn.Linear(3 * 4 * 4, 2), tnn.Linear(48, 2)
    thead.load_state_dict(_to_torch(head.state_dict()))
    X = rng.standard_normal((4, 3, 4, 4)).astype(np.float32) * 2 + 1
    Y = np.array([0, 1, 1, 0], np.int32)
    x, y = af.input(X.shape, name="x"), af.input((4,), dtype="int32", name="y")
    model = af.nn.Sequential(bn, af.nn.Flatten(), head)
    loss = af.cross_entropy(model(x), y)
    step = af.compile_train_step(loss, model.parameters(), af.optim.SGD(lr=0.1), inputs=[x, y], precision="fp32")
    opt = torch.optim.SGD(list(ref.parameters()) + list(thead.parameters()), lr=0.1)
    for _ in range(3):
        got = step(X, Y)
        opt.zero_grad()
        tl = torch.nn.functional.cross_entropy(thead(ref(torch.from_numpy(X)).flatten(1)), torch.from_numpy(Y).long())
        tl.backward()
        opt.step()
        assert got == pytest.approx(tl.item(), rel=1e-5)
    model.update_from(step)
    for k in ("running_mean", "running_var", "weight", "bias"):
        np.testing.assert_allclose(bn.state_dict()[k], ref.state_dict()[k].numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_drops_in_training_and_not_in_eval(rng):
    drop = af.nn.Dropout(0.25)
    w = af.parameter(np.ones((1, 400), np.float32), "w_drop")
    x = af.input((1, 400), name="x")
    step = af.compile_train_step(af.sum(drop(x * w)), [w], af.optim.SGD(lr=0.0), inputs=[x], precision="fp32")
    ones = np.ones((1, 400), np.float32)
    totals = [step(ones) for _ in range(20)]
    assert len(set(totals)) > 1  # fresh masks each step
    assert np.mean(totals) == pytest.approx(400, rel=0.05)  # kept entries are scaled by 1 / (1 - p)
    drop.eval()
    assert float(af.compile(af.sum(drop(x)))(ones)) == 400
    with pytest.raises(ValueError, match="p must be in"):
        af.nn.Dropout(1.0)


def test_dynamic_loss_scaling_skips_overflowing_steps_and_grows():
    w = af.parameter(np.array([[1.0]], np.float32), "w_scale")
    x = af.input((1, 1), name="x")
    ls = af.LossScale(init_scale=1024.0, growth_interval=2)
    step = af.compile_train_step(af.sum(af.linear(x, w)), [w], af.optim.SGD(lr=0.001), inputs=[x], loss_scale=ls)
    step(np.array([[1.0]], np.float32))  # gradient 1 * 1024: fine
    step(np.array([[1.0]], np.float32))
    assert step.loss_scale == 2048.0 and step.skipped == 0  # grew after 2 good steps
    before = step.parameters()["w_scale"].copy()
    step(np.array([[60000.0]], np.float32))  # 60000 * 2048 overflows fp16: skipped, scale halves
    assert step.skipped == 1 and step.loss_scale == 1024.0
    np.testing.assert_array_equal(step.parameters()["w_scale"], before)
    step(np.array([[1.0]], np.float32))
    np.testing.assert_allclose(step.parameters()["w_scale"], before - 0.001, rtol=1e-3)


def test_schedules_match_torch_lr_schedulers():
    p = [torch.zeros(1, requires_grad=True)]
    for make, tmake in [
        (lambda: af.schedules.step(0.1, step_size=3, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        (lambda: af.schedules.cosine(0.1, total=10, eta_min=0.01),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, eta_min=0.01)),
    ]:
        opt = torch.optim.SGD(p, lr=0.1)
        sched, tsched = make(), tmake(opt)
        for i in range(10):
            assert sched(i) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-6)
            opt.step()
            tsched.step()
    warm = af.schedules.warmup(af.schedules.constant(0.1), steps=4)
    assert [warm(i) for i in range(6)] == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])
    with pytest.raises(ValueError, match="total must be"):
        af.schedules.cosine(0.1, total=0)


def test_embedding_matches_torch_and_trains_its_rows(rng):
    emb, ref = af.nn.Embedding(10, 4), tnn.Embedding(10, 4)
    ref.load_state_dict(_to_torch(emb.state_dict()))
    ids = np.array([[1, 3, 3], [9, 0, 1]], np.int32)
    x = af.input(ids.shape, dtype="int32", name="ids")
    out = af.compile(emb(x), precision="fp32")(ids=ids, **emb.feeds())
    np.testing.assert_allclose(out, ref(torch.from_numpy(ids).long()).detach().numpy(), rtol=1e-6)
    target = rng.standard_normal((2, 3, 4)).astype(np.float32)
    step = af.compile_train_step(af.mse_loss(emb(x), target), emb.parameters(), af.optim.SGD(lr=0.5), inputs=[x],
                                 precision="fp32")
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    for _ in range(3):
        got = step(ids)
        opt.zero_grad()
        tl = torch.nn.functional.mse_loss(ref(torch.from_numpy(ids).long()), torch.from_numpy(target))
        tl.backward()
        opt.step()
        assert got == pytest.approx(tl.item(), rel=1e-5)
    emb.update_from(step)
    np.testing.assert_allclose(emb.state_dict()["weight"], ref.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_multihead_attention_masks_and_weights_as_torch(rng):
    mha, ref = af.nn.MultiheadAttention(8, 2, batch_first=True), tnn.MultiheadAttention(8, 2, batch_first=True)
    ref.load_state_dict(_to_torch(mha.state_dict()))
    Q = rng.standard_normal((2, 4, 8)).astype(np.float32)
    K = rng.standard_normal((2, 5, 8)).astype(np.float32)
    pad = np.array([[False, False, False, True, True], [False, False, False, False, True]])  # True: ignore that key
    blocked = np.zeros((4, 5), bool)
    blocked[0, 1] = True  # query 0 may not see key 1
    q, k = af.input(Q.shape, name="q"), af.input(K.shape, name="k")
    out, weights = mha(q, k, k, key_padding_mask=pad, attn_mask=blocked)
    got = af.compile([out, weights], precision="fp32")(q=Q, k=K, **mha.feeds())
    with torch.no_grad():
        want = ref(torch.from_numpy(Q), torch.from_numpy(K), torch.from_numpy(K), key_padding_mask=torch.from_numpy(pad),
                   attn_mask=torch.from_numpy(blocked))
    for g, w, what in zip(got, want, ("output", "weights")):
        assert_fp32_close(g, w.numpy(), rtol=1e-4, atol=1e-5, what=what)
    net = af.compile(mha(q, k, k, average_attn_weights=False)[1], precision="fp32")
    used = {i[0] for i in net.inputs}
    per_head = net(q=Q, k=K, **{n: v for n, v in mha.feeds().items() if n in used})
    assert per_head.shape == (2, 2, 4, 5)


def test_inference_nets_default_to_the_current_parameters(rng):
    """af.compile of a graph with parameters asks only for the data: parameters and buffers
    default to their current values (overridable by name), as a torch module runs."""
    torch = pytest.importorskip("torch")
    af.nn.manual_seed(0)
    model = af.nn.Sequential(af.nn.Linear(6, 5), af.nn.ReLU(), af.nn.ReLU(), af.nn.Linear(5, 3)).eval()
    x = af.input((4, 6), name="x")
    net = af.compile(model(x))
    assert [n for n, _, _ in net.inputs][0] == "x"  # the data first, positionally
    xs = rng.standard_normal((4, 6)).astype(np.float32)
    ref = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    state = {k: torch.from_numpy(np.asarray(v)) for k, v in model.state_dict().items()}
    ref.load_state_dict(state)
    with torch.no_grad():
        want = ref(torch.from_numpy(xs)).numpy()
    np.testing.assert_allclose(net(xs), want, rtol=0.02, atol=0.02)
    np.testing.assert_array_equal(net(xs), net(x=xs, **model.feeds()))
    zero_last = net(xs, **{"3_weight": np.zeros((3, 5), np.float32)})  # overridable by name
    np.testing.assert_array_equal(zero_last, np.broadcast_to(model.feeds()["3_bias"].astype(np.float16), (4, 3)))
    p = af.parameter(np.full((6,), 2.0, np.float32), name="scale")
    np.testing.assert_array_equal(af.compile(x * p)(xs), xs.astype(np.float16).astype(np.float32) * 2)


def test_buffers_default_too_and_follow_update_from(rng):
    af.nn.manual_seed(1)
    model = af.nn.Sequential(af.nn.Conv2d(2, 3, 3, padding=1), af.nn.BatchNorm2d(3)).eval()
    x = af.input((1, 2, 4, 4), name="x")
    net = af.compile(model(x))
    xs = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(net(xs), net(xs, **model.feeds()))

    class Step:  # what update_from reads: new running statistics
        def parameters(self):
            return {}

        def buffers(self):
            return {"1_running_mean": np.full(3, 5.0, np.float32)}
    model.update_from(Step())
    assert model.feeds()["1_running_mean"][0] == 5.0
    np.testing.assert_array_equal(net(xs), net(xs, **model.feeds()))  # the compiled net follows


def test_module_list_and_dict_name_parameters_as_torch():
    class Net(af.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = af.nn.ModuleList([af.nn.Linear(4, 4) for _ in range(2)])
            self.heads = af.nn.ModuleDict({"a": af.nn.Linear(4, 2), "b": af.nn.Linear(4, 3)})

        def forward(self, x):
            for b in self.blocks:
                x = b(x).relu()
            return self.heads["a"](x), self.heads["b"](x)

    class Ref(tnn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = tnn.ModuleList([tnn.Linear(4, 4) for _ in range(2)])
            self.heads = tnn.ModuleDict({"a": tnn.Linear(4, 2), "b": tnn.Linear(4, 3)})

        def forward(self, x):
            for b in self.blocks:
                x = b(x).relu()
            return self.heads["a"](x), self.heads["b"](x)
    net, ref = Net(), Ref()
    assert list(net.state_dict()) == list(ref.state_dict())
    net.load_state_dict(ref.state_dict())
    X = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    got = af.compile(net(af.input((3, 4), name="x")), precision="fp32")(X)
    with torch.no_grad():
        want = ref(torch.from_numpy(X))
    for g, w in zip(got, want):
        assert_fp32_close(g, w.numpy(), rtol=1e-5, atol=1e-6)
    assert len(net.blocks) == 2 and "a" in net.heads and list(net.heads.keys()) == ["a", "b"]
    with pytest.raises(TypeError, match="not an af.nn.Module"):
        net.blocks.append(torch.nn.Linear(2, 2))


def test_a_layer_with_its_own_parameters_trains():
    """The documented way (register_parameter, p) gives a trainable, saveable parameter."""
    class Scale(af.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.register_parameter("gain", np.full(n, 2.0, np.float32))

        def forward(self, x):
            return x * self.p("gain")
    m = af.nn.Sequential(Scale(3))
    assert list(m.state_dict()) == ["0.gain"]
    x = af.input((4, 3), name="x")
    loss = af.mse_loss(m(x), af.input((4, 3), name="y"))
    step = af.compile_train_step(loss, m.parameters(), af.optim.SGD(lr=0.5), precision="fp32")
    X = np.ones((4, 3), np.float32)
    step(X, np.zeros((4, 3), np.float32))
    # d/dg mean((g x)^2) = 2 g x^2 / 1 (per element, mean over 4 rows of 3: each gain sees 4/12)
    m.update_from(step)
    np.testing.assert_allclose(m.state_dict()["0.gain"], 2.0 - 0.5 * (2 * 2.0 * 4 / 12), rtol=1e-5)
    with pytest.raises(ValueError, match="without '.'"):
        Scale(2).register_parameter("a.b", np.ones(2))
