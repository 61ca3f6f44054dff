"""The compiler's passes seen from Python: results unchanged, layers fused, dumps."""
import numpy as np
import torch
import torch.nn.functional as F

import aneforge as af
from aneforge.testing import assert_fp16_close, cosine


def test_conv_bn_relu_block_folds_and_matches_torch(rng):
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    mean, var = rng.standard_normal(8).astype(np.float32), rng.random(8).astype(np.float32) + 0.5
    g, b = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    img = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    x = af.input((2, 3, 10, 10), name="img")
    y = af.batch_norm(af.conv(x, w, pad=1), mean, var, g, b).relu()
    net = af.compile(y)
    assert [op for _, op, _ in net._program.layers] == ["conv+relu"]
    ref = F.relu(F.batch_norm(F.conv2d(torch.from_numpy(img), torch.from_numpy(w), padding=1),
                              torch.from_numpy(mean), torch.from_numpy(var), torch.from_numpy(g), torch.from_numpy(b))).numpy()
    assert_fp16_close(net(img), ref, roundings=6)


def test_dump_passes_prints_each_pass(capsys):
    x = af.input((1, 4), name="x")
    net = af.compile((x * 2).relu(), dump="passes")
    out = capsys.readouterr().out
    assert out == net.pass_log
    names = [line.strip("= ") for line in out.splitlines() if line.startswith("==")]
    assert names[:3] == ["graph", "lower_bridges", "fold_constants"] and names[-1] == "plan_memory"


def test_fully_constant_graph_folds_to_no_layers():
    c = af.constant(np.arange(6, dtype=np.float32).reshape(2, 3))
    net = af.compile((c * 2 + 1).sum(1))
    assert net.num_layers == 0
    np.testing.assert_array_equal(net(), [9, 27])


def test_shared_subgraphs_run_once(rng):
    x = af.input((4, 4), name="x")
    a = (x @ x).sigmoid()
    b = (x @ x).sigmoid()
    net = af.compile(a + b)
    assert [op for _, op, _ in net._program.layers] == ["matmul+sigmoid", "add"]
    xs = rng.standard_normal((4, 4)).astype(np.float32)
    assert cosine(net(xs), 2 / (1 + np.exp(-(xs @ xs)))) > 0.9999
