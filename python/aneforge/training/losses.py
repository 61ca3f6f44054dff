"""Losses with PyTorch's names, arguments and semantics (torch.nn.functional), built from ops
that have gradients, so ``af.grad(loss, params)`` differentiates them.

    loss = af.cross_entropy(logits, labels)                 # labels: int32 class indices
    loss = af.cross_entropy(logits, probs, label_smoothing=0.1)
    loss = af.mse_loss(pred, target)
    loss = af.binary_cross_entropy_with_logits(logits, target)
"""
from __future__ import annotations

import numpy as np

from ..graph.tensor import Tensor, as_tensor
from ..graph import functional as _F

__all__ = ["cross_entropy", "mse_loss", "binary_cross_entropy_with_logits"]


def _reduce(per, reduction, what):
    if reduction == "mean":
        return _F.mean(per)
    if reduction == "sum":
        return _F.sum(per)
    if reduction == "none":
        return per
    raise ValueError(f"{what}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _unsupported(what, **given):
    for name, value in given.items():
        if value is not None:
            raise ValueError(f"{what}: {name}= is not supported yet (give None)")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,  # noqa: A002
                  reduction="mean", label_smoothing=0.0) -> Tensor:
    """torch.nn.functional.cross_entropy: ``input`` logits (N, C) or (N, C, d1, ...);
    ``target`` int class indices (N,) / (N, d1, ...) or class probabilities shaped like
    ``input``. label_smoothing mixes the target with the uniform distribution."""
    _unsupported("cross_entropy", weight=weight, size_average=size_average, reduce=reduce)
    x = as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"cross_entropy: input must be (N, C, ...) logits, got shape {x.shape}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    C = x.shape[1]
    t = as_tensor(np.asarray(target, np.int32) if isinstance(target, (list, np.ndarray)) and
                  np.asarray(target).dtype.kind in "iu" else target)
    logp = _F.log_softmax(x, dim=1)
    if t.dtype == "int32":
        if ignore_index != -100:
            raise ValueError("cross_entropy: ignore_index is not supported yet (leave it -100)")
        if t.shape != (x.shape[0],) + tuple(x.shape[2:]):
            raise ValueError(f"cross_entropy: class-index target must have shape {(x.shape[0],) + tuple(x.shape[2:])}, "
                             f"got {t.shape}")
        q = _F.cast(_F.one_hot(t, C), x.dtype)  # (N, d..., C)
        if x.ndim > 2:
            q = q.permute(0, x.ndim - 1, *range(1, x.ndim - 1))
    else:
        if t.shape != x.shape:
            raise ValueError(f"cross_entropy: probability target must have the input's shape {x.shape}, got {t.shape}")
        q = t
    if label_smoothing:
        q = q * (1.0 - label_smoothing) + label_smoothing / C
    per = -_F.sum(q * logp, dim=1)
    return _reduce(per, reduction, "cross_entropy")


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean") -> Tensor:  # noqa: A002
    """torch.nn.functional.mse_loss: mean (or sum) of squared differences."""
    _unsupported("mse_loss", size_average=size_average, reduce=reduce)
    x, t = as_tensor(input), as_tensor(target)
    d = x - t
    return _reduce(d * d, reduction, "mse_loss")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,  # noqa: A002
                                     reduction="mean", pos_weight=None) -> Tensor:
    """torch.nn.functional.binary_cross_entropy_with_logits, computed stably as
    max(x, 0) - x * y + log(1 + exp(-|x|))."""
    _unsupported("binary_cross_entropy_with_logits", weight=weight, size_average=size_average, reduce=reduce,
                 pos_weight=pos_weight)
    x, y = as_tensor(input), as_tensor(target)
    per = _F.relu(x) - x * y + _F.softplus(-_F.abs(x))
    return _reduce(per, reduction, "binary_cross_entropy_with_logits")
