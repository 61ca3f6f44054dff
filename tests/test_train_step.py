"""The fused train step: forward, backward and the optimizer update in one program with
resident weights, moments and step count; optimizers against torch.optim step by step, the
same program on the mil backend, and a real dataset trained to a stated accuracy."""
import numpy as np
import pytest
import torch

import aneforge as af


def _problem(rng, n=16, k=5, c=3):
    W0 = (rng.standard_normal((c, k)) * 0.1).astype(np.float32)
    X = rng.standard_normal((n, k)).astype(np.float32)
    Y = rng.integers(0, c, n).astype(np.int32)
    return W0, np.zeros(c, np.float32), X, Y


OPTIMIZERS = {
    "sgd": (lambda: af.optim.SGD(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd_momentum_dampening": (lambda: af.optim.SGD(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
                               lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    "sgd_nesterov": (lambda: af.optim.SGD(lr=0.1, momentum=0.9, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "adam": (lambda: af.optim.Adam(lr=0.01, weight_decay=0.1), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    "adamw": (lambda: af.optim.AdamW(lr=0.01, betas=(0.8, 0.99)), lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99))),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_step_matches_torch_optim(name, rng):
    make, make_torch = OPTIMIZERS[name]
    W0, b0, X, Y = _problem(rng)
    w, b = af.parameter(W0, "w"), af.parameter(b0, "b")
    x, y = af.input(X.shape, name="x"), af.input(Y.shape, dtype="int32", name="y")
    step = af.compile_train_step(af.cross_entropy(af.linear(x, w, b), y), [w, b], make(), inputs=[x, y], precision="fp32")
    tw, tb = torch.tensor(W0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    opt = make_torch([tw, tb])
    for i in range(6):
        lr = 0.05 if i == 4 else None  # a scheduled learning rate reaches the program as an input
        got = step(X, Y, lr=lr)
        if lr is not None:
            for g in opt.param_groups:
                g["lr"], keep = lr, g["lr"]
        opt.zero_grad()
        ref = torch.nn.functional.cross_entropy(torch.from_numpy(X) @ tw.T + tb, torch.from_numpy(Y).long())
        ref.backward()
        opt.step()
        if lr is not None:
            for g in opt.param_groups:
                g["lr"] = keep
        assert got == pytest.approx(ref.item(), rel=1e-5)
    ps = step.parameters()
    np.testing.assert_allclose(ps["w"], tw.detach().numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ps["b"], tb.detach().numpy(), rtol=1e-4, atol=1e-6)
    assert step.steps == 6


def test_the_step_is_one_program_with_resident_state(rng):
    W0, b0, X, Y = _problem(rng)
    w, b = af.parameter(W0, "w"), af.parameter(b0, "b")
    x, y = af.input(X.shape, name="x"), af.input(Y.shape, dtype="int32", name="y")
    loss = af.cross_entropy(af.linear(x, w, b), y)
    step = af.compile_train_step(loss, [w, b], af.optim.Adam(lr=0.01), inputs=[x, y])
    names = [n for n, _, _ in step.net.inputs]
    assert names[:3] == ["x", "y", "lr"] and "w" in names and "step_t" in names
    first = step(X, Y)
    later = [step(X, Y) for _ in range(20)]
    assert later[-1] < 0.8 * first  # it trains (fp16 program, weights and moments resident)
    # The same program on the mil backend (no resident state there: the state goes round the host).
    w2, b2 = af.parameter(W0, "w"), af.parameter(b0, "b")
    loss2 = af.cross_entropy(af.linear(x, w2, b2), y)
    mil = af.compile_train_step(loss2, [w2, b2], af.optim.Adam(lr=0.01), inputs=[x, y], backend="mil")
    sim_losses = [first] + later
    mil_losses = [mil(X, Y) for _ in range(21)]
    np.testing.assert_allclose(mil_losses, sim_losses, rtol=2e-3)
    with pytest.raises(ValueError, match="is not an af.parameter"):
        af.compile_train_step(loss, [x], af.optim.SGD())
    with pytest.raises(ValueError, match="one element"):
        af.compile_train_step(af.linear(x, w, b), [w], af.optim.SGD())
    with pytest.raises(ValueError, match="invalid lr"):
        af.optim.Adam(lr=-1)


def test_digits_trains_to_90_percent(rng):
    """scikit-learn's 8x8 digits (1797 images): a small MLP trained only by the compiled fp16
    train step on the simulator reaches >= 90% on the 297 held-out images."""
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    X = (d.data / 16.0).astype(np.float32)
    Y = d.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(X))
    X, Y = X[order], Y[order]
    xtr, ytr, xte, yte = X[:1500], Y[:1500], X[1500:], Y[1500:]
    w1 = af.parameter(rng.standard_normal((64, 64)).astype(np.float32) * 0.125, "w1")
    b1 = af.parameter(np.zeros(64, np.float32), "b1")
    w2 = af.parameter(rng.standard_normal((10, 64)).astype(np.float32) * 0.125, "w2")
    b2 = af.parameter(np.zeros(10, np.float32), "b2")
    x, y = af.input((50, 64), name="x"), af.input((50,), dtype="int32", name="y")
    logits = af.linear(af.linear(x, w1, b1).relu(), w2, b2)
    step = af.compile_train_step(af.cross_entropy(logits, y), [w1, b1, w2, b2], af.optim.Adam(lr=3e-3),
                                 inputs=[x, y])
    for epoch in range(8):
        for xb, yb in af.data.batches(xtr, ytr, 50, shuffle=True, seed=epoch):
            step(xb, yb)
    p = step.parameters()
    h = np.maximum(xte @ p["w1"].T + p["b1"], 0)
    accuracy = float(((h @ p["w2"].T + p["b2"]).argmax(1) == yte).mean())
    assert accuracy >= 0.90, accuracy
