"""Every differentiable row of tests/pytorch_table.py, differentiated: af.grad of a weighted sum
of the call's outputs with respect to every float tensor it uses (inputs and weights alike)
against PyTorch autograd (precision="fp32": relative error <= 1e-4; fp16: cosine >= 0.999) and
against central finite differences of the compiled fp32 forward program (ggml's
test-backend-ops habit: every op, both checks)."""
import re

import numpy as np
import pytest

import aneforge as af

torch = pytest.importorskip("torch")
F = torch.nn.functional

from pytorch_table import POOL, ROWS, af_call, make_arrays, names_in  # noqa: E402

# Piecewise-constant calls: the gradient is zero almost everywhere (checked against torch),
# but a finite difference straddles the jumps.
NO_FINITE_DIFFERENCES = re.compile(r"floor|ceil|round|sign\(")


def _flat(result):
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in _flat(r)]
    return [result]


def _torch_case(row, arrays, weights_too=True):
    torch_call = row[0]
    used = sorted(set(names_in(torch_call)) | set(names_in(af_call(row))))
    env = {"torch": torch, "F": F}
    leaves = {}
    for n in used:
        if POOL[n][1] == "index":
            env[n] = torch.from_numpy(arrays[n]).long()
        elif weights_too or POOL[n][1] == "input":
            env[n] = leaves[n] = torch.tensor(arrays[n], requires_grad=True)
        else:
            env[n] = torch.tensor(arrays[n])
    try:
        outs = [o for o in _flat(eval(torch_call, env)) if o.dtype.is_floating_point]  # noqa: S307
    except RuntimeError:  # torch refuses gradients for some arguments (batch_norm's running stats)
        if not weights_too:
            raise
        return _torch_case(row, arrays, weights_too=False)
    return used, leaves, outs


def _differentiable(row):
    _, leaves, outs = _torch_case(row, make_arrays(np.random.default_rng(7)))
    return bool(leaves) and any(o.requires_grad for o in outs)


GRAD_ROWS = [r for r in ROWS if _differentiable(r)]


def _af_graph(row, used):
    env, ins = {"af": af}, {}
    for n in used:
        shape, kind, _ = POOL[n]
        env[n] = af.input(shape, name=n, dtype="int32" if kind == "index" else "fp16")
        if kind != "index":
            ins[n] = env[n]
    outs = [o for o in _flat(eval(af_call(row), env)) if o.dtype in ("fp16", "fp32")]  # noqa: S307
    return env, ins, outs


def _weights(outs, seed=3):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in outs]


def _loss(outs, weights):
    total = None
    for o, w in zip(outs, weights):
        term = af.sum(o.cast("fp32") * w)
        total = term if total is None else total + term
    return total


def _input_names(net):
    return [i[0] for i in net.inputs]


def _compare(row, precision):
    arrays = make_arrays(np.random.default_rng(7))
    used, leaves, t_outs = _torch_case(row, arrays)
    weights = _weights(t_outs)
    sum(((o * torch.from_numpy(w)).sum() for o, w in zip(t_outs, weights) if o.requires_grad)).backward()
    env, ins, outs = _af_graph(row, used)
    names = sorted(ins)
    grads = af.grad(_loss(outs, weights), [ins[n] for n in names])
    feeds = {n: arrays[n] for n in used}
    net = af.compile(grads, precision=precision)
    got = net(**{n: feeds[n] for n in _input_names(net)})
    got = got if isinstance(got, (list, tuple)) else [got]
    return {n: (g, leaves[n].grad) for n, g in zip(names, got) if n in leaves}, (env, ins, outs, weights, feeds)


@pytest.mark.parametrize("row", GRAD_ROWS, ids=[r[0] for r in GRAD_ROWS])
def test_gradient_matches_torch_autograd_fp32(row):
    pairs, _ = _compare(row, "fp32")
    for name, (got, want) in pairs.items():
        want = np.zeros_like(got) if want is None else want.numpy()
        err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-3)
        assert err <= 1e-4, f"{row[0]}: d/d{name} relative error {err:.2e}"


@pytest.mark.parametrize("row", GRAD_ROWS, ids=[r[0] for r in GRAD_ROWS])
def test_gradient_matches_torch_autograd_fp16(row):
    pairs, _ = _compare(row, "fp16")
    for name, (got, want) in pairs.items():
        want = np.zeros_like(got) if want is None else want.numpy()
        if not np.any(want):
            assert np.abs(got).max() <= 1e-3, f"{row[0]}: d/d{name} should be zero"
            continue
        cos = float(np.dot(got.ravel(), want.ravel()) / (np.linalg.norm(got) * np.linalg.norm(want)))
        assert cos >= 0.999, f"{row[0]}: d/d{name} cosine {cos:.5f}"


FD_ROWS = [r for r in GRAD_ROWS if not NO_FINITE_DIFFERENCES.search(r[0])]


@pytest.mark.parametrize("row", FD_ROWS, ids=[r[0] for r in FD_ROWS])
def test_gradient_matches_finite_differences(row):
    pairs, (env, ins, outs, weights, feeds) = _compare(row, "fp32")
    forward = af.compile(_loss(outs, weights), precision="fp32")
    rng = np.random.default_rng(11)
    eps = 1e-3
    for name, (got, _) in pairs.items():
        for j in rng.choice(got.size, size=min(4, got.size), replace=False):
            plus, minus = dict(feeds), dict(feeds)
            plus[name], minus[name] = feeds[name].copy(), feeds[name].copy()
            plus[name].flat[j] += eps
            minus[name].flat[j] -= eps
            fd = (float(forward(**plus)) - float(forward(**minus))) / (2 * eps)
            assert abs(got.flat[j] - fd) <= 2e-2 * max(1.0, abs(fd)), (row[0], name, int(j), float(got.flat[j]), fd)


def _d2s(x, r=2):  # DCR depth_to_space in torch
    n, c, h, w = x.shape
    return x.reshape(n, r, r, c // (r * r), h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c // (r * r), h * r, w * r)


# Ops the PyTorch table does not reach: af function, torch function (None: finite differences
# only, where torch has no single call), input shapes ("i:" prefix: an int32 input below n).
EXTRA = {
    "linear_activation": (lambda x: af.linear_activation(x, 2.0, 0.5), lambda x: 2 * x + 0.5, [(3, 5)]),
    "scaled_tanh": (lambda x: af.scaled_tanh(x, 1.5, 0.7), lambda x: 1.5 * torch.tanh(0.7 * x), [(3, 5)]),
    "clamped_relu": (lambda x: af.clamped_relu(x, 0.1, 1.0),
                     lambda x: torch.clamp(torch.where(x >= 0, x, 0.1 * x), max=1.0), [(3, 5)]),
    "thresholded_relu": (lambda x: af.thresholded_relu(x, 0.3), lambda x: torch.where(x > 0.3, x, 0 * x), [(3, 5)]),
    "log_sum": (lambda x: af.log_sum(af.abs(x) + 0.5, dim=1), lambda x: torch.log((x.abs() + 0.5).sum(1)), [(3, 5)]),
    "l1_norm": (lambda x: af.l1_norm(x, dim=1), lambda x: x.abs().sum(1), [(3, 5)]),
    "sum_square": (lambda x: af.sum_square(x, dim=(1, 2)), lambda x: (x * x).sum((1, 2)), [(2, 3, 4)]),
    "crop": (lambda x: af.crop(x, 1, 2, 3, 4), lambda x: x[..., 1:4, 2:6], [(2, 2, 5, 7)]),
    "slice_by_size": (lambda x: af.slice_by_size(x, [0, 1, 2], [2, 2, -1]), lambda x: x[0:2, 1:3, 2:], [(3, 4, 5)]),
    "depth_to_space": (lambda x: af.depth_to_space(x, 2), _d2s, [(1, 8, 3, 4)]),
    "space_to_depth": (lambda x: af.depth_to_space(af.space_to_depth(x, 2), 2), lambda x: x, [(1, 2, 4, 6)]),
    "channel_layer_norm": (lambda x, w, b: af.channel_layer_norm(x, w, b),
                           lambda x, w, b: F.layer_norm(x.permute(0, 2, 3, 1), (4,), w, b).permute(0, 3, 1, 2),
                           [(2, 4, 3, 3), (4,), (4,)]),
    "channel_rms_norm": (lambda x, w: af.channel_rms_norm(x, w),
                         lambda x, w: F.rms_norm(x.permute(0, 2, 3, 1), (4,), w).permute(0, 3, 1, 2), [(2, 4, 3, 3), (4,)]),
    "dynamic_conv": (lambda x, w: af.dynamic_conv(x, w, padding=1, stride=2), lambda x, w: F.conv2d(x, w, padding=1, stride=2),
                     [(2, 3, 7, 7), (4, 3, 3, 3)]),
    "resize_nearest": (lambda x: af.resize_nearest(x, (5, 7)), lambda x: F.interpolate(x, size=(5, 7), mode="nearest"),
                       [(1, 2, 3, 4)]),
    "upsample_bilinear": (lambda x: af.upsample_bilinear(x, 2), lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"),
                          [(1, 2, 3, 4)]),
    "cross_product": (lambda a, b: af.cross_product(a, b), lambda a, b: torch.linalg.cross(a, b), [(4, 3), (4, 3)]),
    "lrn": (lambda x: af.lrn(x, 3), lambda x: F.local_response_norm(x, 3), [(2, 5, 3, 3)]),
    "minmax_norm": (lambda x: af.minmax_norm(x, dim=-1, eps=0.1),
                    lambda x: (x - x.amin(-1, True)) / (x.amax(-1, True) - x.amin(-1, True) + 0.1), [(3, 6)]),
    "scaled_elementwise": (lambda x, y: af.scaled_elementwise(x, y, op="mul", x_scale=2.0, y_scale=0.5, bias=1.0),
                           lambda x, y: (2 * x) * (0.5 * y) + 1, [(3, 4), (3, 4)]),
    "sdpa_additive_mask": (lambda q, k, v, m: af.sdpa(q, k, v, attn_mask=m),
                           lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
                           [(1, 2, 4, 8), (1, 2, 5, 8), (1, 2, 5, 8), (1, 1, 4, 5)]),
    "space_to_channel": (lambda x: af.space_to_channel(x, 2, 3), None, [(1, 2, 4, 6)]),
    "channel_to_space": (lambda x: af.channel_to_space(x, 2, 1), None, [(1, 4, 2, 3)]),
    "space_to_batch": (lambda x: af.space_to_batch(x, [2, 2], [1, 1, 0, 0]), None, [(1, 2, 2, 4)]),
    "batch_to_space": (lambda x: af.batch_to_space(x, [2, 2]), None, [(4, 2, 2, 3)]),
    "flatten_channels": (lambda x: af.flatten_channels(x), lambda x: x.reshape(2, -1, 1, 1), [(2, 3, 2, 2)]),
    "input_view": (lambda x: af.input_view(x, (2, 5), offset=3), lambda x: x.reshape(-1)[3:13].reshape(2, 5), [(4, 4)]),
    "dynamic_slice": (lambda x, s: af.dynamic_slice(x, s, 3, dim=1), None, [(2, 6), "i:4"]),
    "dynamic_update_slice": (lambda x, u, s: af.dynamic_update_slice(x, u, s, dim=1), None, [(2, 6), (2, 3), "i:4"]),
    "cost_volume": (lambda l, r: af.cost_volume(l, r, 3), None, [(1, 4, 3, 6), (1, 4, 3, 6)]),
    "affine": (lambda x, t: af.affine(x, t * 0.3 + _EYE, size=(4, 5)),
               lambda x, t: F.grid_sample(x, F.affine_grid(t * 0.3 + torch.from_numpy(_EYE), (2, 3, 4, 5), align_corners=False),
                                          align_corners=False), [(2, 3, 5, 6), (2, 2, 3)]),
    "affine_align_corners": (lambda x, t: af.affine(x, t * 0.3 + _EYE, align_corners=True),
                             lambda x, t: F.grid_sample(x, F.affine_grid(t * 0.3 + torch.from_numpy(_EYE), (1, 2, 4, 4),
                                                                         align_corners=True), align_corners=True),
                             [(1, 2, 4, 4), (1, 2, 3)]),
    "cross_correlation": (lambda x, y: af.cross_correlation(x, y, 1), None, [(1, 3, 4, 4), (1, 3, 4, 4)]),
}


_EYE = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)


def _extra_inputs(shapes, rng):
    out = []
    for s in shapes:
        if isinstance(s, str):
            out.append(np.array([rng.integers(0, int(s[2:]))], np.int32))
        else:
            out.append(rng.standard_normal(s).astype(np.float32))
    return out


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_gradients_of_ops_outside_the_table(name):
    fn, tfn, shapes = EXTRA[name]
    rng = np.random.default_rng(5)
    xs = _extra_inputs(shapes, rng)
    ins = [af.input(x.shape, name=f"in{i}", dtype="int32" if x.dtype == np.int32 else "fp16") for i, x in enumerate(xs)]
    y = fn(*ins)
    w = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    loss = af.sum(y.cast("fp32") * w)
    fl = [i for i, x in enumerate(xs) if x.dtype == np.float32]
    net = af.compile(af.grad(loss, [ins[i] for i in fl]), precision="fp32")
    grads = net(**{n: xs[int(n[2:])] for n in _input_names(net)})
    grads = grads if isinstance(grads, (list, tuple)) else [grads]
    if tfn is not None:
        ts = [torch.tensor(x, requires_grad=True) if x.dtype == np.float32 else torch.from_numpy(x) for x in xs]
        (tfn(*ts) * torch.from_numpy(w)).sum().backward()
        for g, i in zip(grads, fl):
            want = ts[i].grad.numpy()
            err = np.abs(g - want).max() / max(np.abs(want).max(), 1e-3)
            assert err <= 1e-4, f"{name}: d/d input {i} relative error {err:.2e}"
    forward = af.compile(loss, precision="fp32")
    eps = 1e-3
    for g, i in zip(grads, fl):
        for j in rng.choice(xs[i].size, size=min(4, xs[i].size), replace=False):
            plus, minus = [a.copy() for a in xs], [a.copy() for a in xs]
            plus[i].flat[j] += eps
            minus[i].flat[j] -= eps
            fd = (float(forward(*plus)) - float(forward(*minus))) / (2 * eps)
            assert abs(g.flat[j] - fd) <= 2e-2 * max(1.0, abs(fd)), (name, i, int(j), float(g.flat[j]), fd)


def _ops_in(outs):
    seen, stack, ops = set(), list(outs), set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t.op not in ("input", "const", None):
            ops.add(t.op)
        stack.extend(t.inputs)
    return ops


def test_every_op_with_a_gradient_is_checked_here_or_named():
    """Ops the table's calls do not reach are in EXTRA."""
    covered = set()
    for row in GRAD_ROWS:
        used, _, _ = _torch_case(row, make_arrays(np.random.default_rng(7)))
        covered |= _ops_in(_af_graph(row, used)[2])
    elsewhere = set(EXTRA) | {"cast"}  # cast: tests/test_autodiff.py
    assert not [i.name for i in af.ops() if i.gradient == "not yet"]
    with_grad = {i.name for i in af.ops() if i.gradient == "yes"}
    missing = with_grad - covered - elsewhere
    assert not missing, f"ops with a gradient checked nowhere: {sorted(missing)}"


def test_large_gradients_stay_within_the_engines_axis_limit(rng):
    """Every axis of a program is at most 65536 long on the engine: the conv weight gradient
    is summed over chunks of images and rows, GroupNorm's backward keeps x's own axes. Checked
    against torch where the chunking is in force (one image of 260x260 output positions)."""
    X = rng.standard_normal((2, 2, 262, 262)).astype(np.float32)
    W = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    x, w = af.input(X.shape, name="x"), af.input(W.shape, name="w")
    y = af.group_norm(af.conv2d(x, w), 3)
    G = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    gx, gw = af.compile(af.grad(af.sum(y.cast("fp32") * G), [x, w]), precision="fp32")(x=X, w=W)  # default target
    tx, tw = torch.tensor(X, requires_grad=True), torch.tensor(W, requires_grad=True)
    (F.group_norm(F.conv2d(tx, tw), 3) * torch.from_numpy(G)).sum().backward()
    for got, want, what in ((gx, tx.grad, "x"), (gw, tw.grad, "w")):
        err = np.abs(got - want.numpy()).max() / np.abs(want.numpy()).max()
        assert err <= 1e-4, f"d/d{what}: relative error {err:.2e}"
    model = af.nn.Sequential(af.nn.Conv2d(1, 8, 3, padding=1), af.nn.ReLU(), af.nn.MaxPool2d(2), af.nn.Flatten(),
                             af.nn.Linear(8 * 14 * 14, 10))
    xb, yb = af.input((128, 1, 28, 28), name="xb"), af.input((128,), dtype="int32", name="yb")
    step = af.compile_train_step(af.cross_entropy(model(xb), yb), model.parameters(), af.optim.Adam(), inputs=[xb, yb])
    assert np.isfinite(step(rng.random((128, 1, 28, 28), dtype=np.float32), np.zeros(128, np.int32)))


@pytest.mark.parametrize("kernel,stride,padding", [(2, None, 0), (4, None, 0), ((2, 3), None, 0), (3, 2, 1), (2, 1, 0)],
                         ids=["2x2-tiled", "4x4-tiled", "2x3-tiled", "3-stride2-pad1", "2-stride1"])
def test_max_pool_gradient_goes_to_the_first_maximum_as_torch(kernel, stride, padding, rng):
    """Windows full of ties (small integers; ReLU's zeros): torch gives each window's gradient to
    its first maximum in row-major order, and so must we, in the tiled form (stride = kernel)
    and the general one. Exact: each entry is one g or a sum of a few."""
    X = rng.integers(-2, 3, (2, 3, 12, 12)).astype(np.float32)
    x = af.input(X.shape, name="x")
    y = af.max_pool2d(af.relu(x), kernel, stride, padding)
    G = rng.integers(1, 9, tuple(y.shape)).astype(np.float32)
    [got] = af.compile(af.grad(af.sum(y.cast("fp32") * G), [x]), precision="fp32")(x=X)
    tx = torch.tensor(X, requires_grad=True)
    (F.max_pool2d(F.relu(tx), kernel, stride, padding) * torch.from_numpy(G)).sum().backward()
    np.testing.assert_array_equal(got, tx.grad.numpy())
