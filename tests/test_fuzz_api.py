"""Property fuzzing of the public API (hypothesis): random graphs of ops are built, compiled
and run; precision="fp32" against PyTorch float32, and the fp16 program on the sim against
its emitted MIL on the mil backend. Hypothesis shrinks a failure to a minimal graph."""
import numpy as np
import pytest
import torch

import aneforge as af
from aneforge.testing import assert_equivalent

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

UNARY = {
    "relu": (af.relu, torch.relu), "sigmoid": (af.sigmoid, torch.sigmoid), "tanh": (af.tanh, torch.tanh),
    "abs": (af.abs, torch.abs), "neg": (lambda x: -x, lambda x: -x), "exp_tanh": (lambda x: af.exp(af.tanh(x)), lambda x: torch.exp(torch.tanh(x))),
    "gelu": (af.gelu, torch.nn.functional.gelu), "silu": (af.silu, torch.nn.functional.silu),
    "square": (lambda x: x * x, lambda x: x * x), "scale": (lambda x: x * 0.5 + 1.0, lambda x: x * 0.5 + 1.0),
}
BINARY = {"add": (lambda a, b: a + b, torch.add), "sub": (lambda a, b: a - b, torch.sub),
          "mul": (lambda a, b: a * b, torch.mul), "maximum": (af.maximum, torch.maximum)}


@st.composite
def graphs(draw):
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "softmax", "transpose"]))
        if kind == "unary":
            steps.append(("unary", draw(st.sampled_from(sorted(UNARY)))))
        elif kind == "binary":
            steps.append(("binary", draw(st.sampled_from(sorted(BINARY))), draw(st.booleans())))
        elif kind in ("reduce", "softmax"):
            steps.append((kind, draw(st.sampled_from(["sum", "mean", "max"])), draw(st.integers(0, 7))))
        else:
            steps.append(("transpose", draw(st.integers(0, 7)), draw(st.integers(0, 7))))
    seed = draw(st.integers(0, 2**16))
    return shape, steps, seed


def build(x, y, steps, lib):
    h, other = x, y
    for s in steps:
        rank = len(h.shape)
        if s[0] == "unary":
            h = UNARY[s[1]][0 if lib == "af" else 1](h)
        elif s[0] == "binary":
            fn = BINARY[s[1]][0 if lib == "af" else 1]
            # the other operand: the second input (same shape as the first) reduced to broadcast
            o = other
            if tuple(o.shape) != tuple(h.shape):
                o = o.mean() if lib == "torch" else af.mean(o)
            h = fn(h, o) if s[2] else fn(o, h)
        elif s[0] == "reduce" and rank > 1:
            ax = s[2] % rank
            if lib == "af":
                h = getattr(af, s[1])(h, ax, keepdims=True)
            else:
                h = h.amax(ax, keepdim=True) if s[1] == "max" else getattr(h, s[1])(ax, keepdim=True)
        elif s[0] == "softmax":
            ax = s[2] % rank
            h = af.softmax(h, ax) if lib == "af" else torch.softmax(h, ax)
        elif s[0] == "transpose" and rank > 1:
            a, b = s[1] % rank, s[2] % rank
            h = af.transpose(h, a, b) if lib == "af" else torch.transpose(h, a, b)
    return h


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_random_graphs_match_torch_and_mil(g):
    shape, steps, seed = g
    rng = np.random.default_rng(seed)
    xa, ya = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    x, y = af.input(shape, name="x"), af.input(shape, name="y")
    out = build(x, y, steps, "af")
    with torch.no_grad():
        ref = build(torch.from_numpy(xa), torch.from_numpy(ya), steps, "torch").numpy()
    got = af.compile(out, precision="fp32", inputs=[x, y])(xa, ya)
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{steps}")
    sim = af.compile(out, inputs=[x, y])(xa, ya)
    mil = af.compile(out, backend="mil", inputs=[x, y])(xa, ya)
    assert_equivalent(sim, mil, 2, 2, f"sim vs mil for {steps}")
