"""af.grad against PyTorch autograd (precision="fp32": relative error <= 1e-4) and against
central finite differences of the compiled forward program, op by op; gradients are graphs,
compiled and run like any other (and emitted as MIL: the mil backend runs them too)."""
import numpy as np
import pytest
import torch

import aneforge as af
from aneforge.testing import assert_fp32_close

# name -> (af function of the inputs, torch function, input shapes, kind)
CASES = {
    "add_broadcast": (lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)], "normal"),
    "sub_broadcast": (lambda a, b: a - b, lambda a, b: a - b, [(2, 3, 4), (3, 1)], "normal"),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [(3, 4), (3, 4)], "normal"),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [(3, 4), (1, 4)], "positive"),
    "neg": (lambda a: -a, lambda a: -a, [(5,)], "normal"),
    "relu": (lambda a: a.relu(), torch.relu, [(4, 5)], "normal"),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid, [(4, 5)], "normal"),
    "tanh": (lambda a: a.tanh(), torch.tanh, [(4, 5)], "normal"),
    "exp": (lambda a: a.exp(), torch.exp, [(4, 5)], "normal"),
    "log": (lambda a: a.log(), torch.log, [(4, 5)], "positive"),
    "sqrt": (lambda a: a.sqrt(), torch.sqrt, [(4, 5)], "positive"),
    "square": (lambda a: a.square(), torch.square, [(4, 5)], "normal"),
    "abs": (lambda a: af.abs(a), torch.abs, [(4, 5)], "normal"),
    "cast_fp32": (lambda a: a.cast("fp32").square(), lambda a: a.square(), [(4, 5)], "normal"),
    "maximum_broadcast": (lambda a, b: af.maximum(a, b), torch.maximum, [(3, 4), (4,)], "normal"),
    "minimum": (lambda a, b: af.minimum(a, b), torch.minimum, [(3, 4), (3, 4)], "normal"),
    "silu": (lambda a: af.silu(a), torch.nn.functional.silu, [(4, 5)], "normal"),
    "softplus": (lambda a: af.softplus(a, beta=2.0, threshold=1.0), lambda a: torch.nn.functional.softplus(a, 2.0, 1.0),
                 [(4, 5)], "normal"),
    "leaky_relu": (lambda a: af.leaky_relu(a, 0.2), lambda a: torch.nn.functional.leaky_relu(a, 0.2), [(4, 5)], "normal"),
    "sum_dim": (lambda a: a.sum(dim=1), lambda a: a.sum(dim=1), [(3, 4, 2)], "normal"),
    "mean_keepdim": (lambda a: a.mean(dim=(0, 2), keepdim=True), lambda a: a.mean(dim=(0, 2), keepdim=True), [(3, 4, 2)], "normal"),
    "softmax": (lambda a: a.softmax(dim=-1), lambda a: a.softmax(dim=-1), [(3, 6)], "normal"),
    "log_softmax": (lambda a: af.log_softmax(a, dim=0), lambda a: torch.log_softmax(a, 0), [(5, 3)], "normal"),
    "reshape_permute": (lambda a: a.reshape(4, 6).permute(1, 0), lambda a: a.reshape(4, 6).permute(1, 0), [(2, 3, 4)], "normal"),
    "transpose": (lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [(2, 3, 4)], "normal"),
    "matmul_batched": (lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (4, 5)], "normal"),
    "linear_bias": (lambda x, w, b: af.linear(x, w, b), lambda x, w, b: torch.nn.functional.linear(x, w, b),
                    [(2, 3, 6), (4, 6), (4,)], "normal"),
}


def _inputs(shapes, kind, rng):
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    return [np.abs(x) + 0.5 for x in xs] if kind == "positive" else xs


def _af_grads(fn, xs, weights, precision="fp32"):
    ins = [af.input(x.shape, name=f"in{i}") for i, x in enumerate(xs)]
    y = fn(*ins)
    loss = af.sum(y * weights)
    grads = af.grad(loss, ins)
    return af.compile([loss] + grads, precision=precision)(*xs), (ins, y)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_match_torch_autograd(name, rng):
    fn, tfn, shapes, kind = CASES[name]
    xs = _inputs(shapes, kind, rng)
    ins = [af.input(x.shape, name=f"in{i}") for i, x in enumerate(xs)]
    w = rng.standard_normal(fn(*ins).shape).astype(np.float32)
    out, _ = _af_grads(fn, xs, w)
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    (tfn(*ts) * torch.from_numpy(w)).sum().backward()
    for i, (g, t) in enumerate(zip(out[1:], ts)):
        assert_fp32_close(g, t.grad.numpy(), rtol=1e-4, atol=1e-5, what=f"{name} d/d input {i}")


@pytest.mark.parametrize("name", ["mul", "div", "sigmoid", "softmax", "log_softmax", "linear_bias", "matmul_batched",
                                  "silu", "softplus"])
def test_gradients_match_finite_differences(name, rng):
    fn, _, shapes, kind = CASES[name]
    xs = [x.astype(np.float32) for x in _inputs(shapes, kind, rng)]
    ins = [af.input(x.shape, name=f"in{i}") for i, x in enumerate(xs)]
    w = rng.standard_normal(fn(*ins).shape).astype(np.float32)
    out, _ = _af_grads(fn, xs, w)
    fwd = af.compile(af.sum(fn(*ins) * w), precision="fp32")
    eps = 1e-2
    for i, x in enumerate(xs):
        for j in rng.choice(x.size, size=min(6, x.size), replace=False):
            plus, minus = [a.copy() for a in xs], [a.copy() for a in xs]
            plus[i].flat[j] += eps
            minus[i].flat[j] -= eps
            fd = (float(fwd(*plus)) - float(fwd(*minus))) / (2 * eps)
            assert abs(out[1 + i].flat[j] - fd) <= 2e-2 * max(1.0, abs(fd)), (name, i, j, out[1 + i].flat[j], fd)


def test_gradient_programs_run_on_the_mil_backend(rng):
    x = af.input((4, 6), name="x")
    W = rng.standard_normal((3, 6)).astype(np.float32)
    loss = af.mean(af.linear(x, W).relu().square())
    (gx,) = af.grad(loss, [x])
    xs = rng.standard_normal((4, 6)).astype(np.float32)
    af.testing.assert_equivalent(af.compile(gx, backend="mil")(xs), af.compile(gx)(xs), ulps=2, floor_ulps=4)


def test_non_differentiable_ops_pass_no_gradient(rng):
    x = af.input((4, 6), name="x")
    with pytest.raises(ValueError, match="one element"):
        af.grad(x * 2, [x])
    other = af.input((3,), name="other")
    g = af.grad(af.sum(x), [x, other])
    assert g[1].shape == (3,)
    np.testing.assert_array_equal(af.compile(g[1])(), np.zeros(3))
    assert af.ops("relu")[0].differentiable and af.ops("relu")[0].gradient == "yes"
    assert af.ops("floor")[0].gradient == "none" and af.ops("stack")[0].gradient == "built ops"
    # no gradient flows through a comparison or floor: the result is zero, not an error
    (g,) = af.grad(af.sum(af.floor(x) + (x > 0).cast("fp16")), [x])
    np.testing.assert_array_equal(af.compile(g)(), np.zeros((4, 6)))


def test_sgd_on_a_linear_model_with_resident_weights(rng):
    """A few SGD steps, the weights resident: the program returns new weights as itself."""
    X = rng.standard_normal((32, 8)).astype(np.float32)
    true_w = rng.standard_normal((1, 8)).astype(np.float32)
    Y = X @ true_w.T
    x, yt = af.input((32, 8), name="x"), af.input((32, 1), name="y")
    w = af.input((1, 8), name="w")
    loss = af.mean((af.linear(x, w) - yt).square())
    (gw,) = af.grad(loss, [w])
    step = af.compile({"loss": loss, "w_next": w - 0.1 * gw}, precision="fp32")
    step.make_resident("w_next", "w")
    first = float(step(x=X, y=Y, w=np.zeros((1, 8), np.float32))["loss"])
    for _ in range(60):
        last = float(step(x=X, y=Y)["loss"])
    assert last < 1e-3 * first
