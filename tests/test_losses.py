"""Losses against torch.nn.functional: values and gradients (via af.grad, fp32), with class
indices or probabilities, label smoothing, spatial targets and every reduction."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aneforge as af
from aneforge.testing import assert_fp32_close


def _check(af_loss, torch_loss, arrays, grad_of=(0,), int_inputs=()):
    ins = [af.input(a.shape, dtype="int32" if i in int_inputs else "fp32", name=f"in{i}") for i, a in enumerate(arrays)]
    loss = af_loss(*ins)
    grads = af.grad(af.sum(loss), [ins[i] for i in grad_of])
    got = af.compile([loss] + grads, precision="fp32")(*arrays)
    ts = [torch.tensor(a, dtype=torch.long if i in int_inputs else torch.float32, requires_grad=i in grad_of)
          for i, a in enumerate(arrays)]
    ref = torch_loss(*ts)
    ref.sum().backward()
    assert_fp32_close(got[0], ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    for g, i in zip(got[1:], grad_of):
        assert_fp32_close(g, ts[i].grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_with_class_indices(rng, reduction, smoothing):
    logits = rng.standard_normal((6, 5)).astype(np.float32) * 3
    labels = rng.integers(0, 5, 6).astype(np.int32)
    _check(lambda x, t: af.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing),
           lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing),
           [logits, labels], int_inputs=(1,))


def test_cross_entropy_with_probabilities_and_spatial_targets(rng):
    logits = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    probs = np.exp(rng.standard_normal((2, 4, 3, 3))).astype(np.float32)
    probs /= probs.sum(1, keepdims=True)
    _check(lambda x, p: af.cross_entropy(x, p, label_smoothing=0.2),
           lambda x, p: F.cross_entropy(x, p, label_smoothing=0.2), [logits, probs], grad_of=(0, 1))
    labels = rng.integers(0, 4, (2, 3, 3)).astype(np.int32)
    _check(lambda x, t: af.cross_entropy(x, t), lambda x, t: F.cross_entropy(x, t), [logits, labels], int_inputs=(1,))


def test_mse_and_bce_with_logits(rng):
    a, b = rng.standard_normal((2, 3, 4)).astype(np.float32) * 4, rng.random((2, 3, 4)).astype(np.float32)
    _check(af.mse_loss, F.mse_loss, [a, b], grad_of=(0, 1))
    _check(lambda x, y: af.mse_loss(x, y, reduction="sum"), lambda x, y: F.mse_loss(x, y, reduction="sum"), [a, b])
    _check(af.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, [a * 10, b], grad_of=(0, 1))


def test_bad_loss_arguments_are_clear(rng):
    x = af.input((4, 3), name="x")
    with pytest.raises(ValueError, match="class-index target must have shape"):
        af.cross_entropy(x, af.input((3,), dtype="int32", name="t"))
    with pytest.raises(ValueError, match="reduction must be"):
        af.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="weight= is not supported yet"):
        af.cross_entropy(x, af.input((4,), dtype="int32", name="t2"), weight=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="label_smoothing"):
        af.cross_entropy(x, af.input((4,), dtype="int32", name="t3"), label_smoothing=2.0)
