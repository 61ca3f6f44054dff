"""af.grad: gradients as graphs of other ops (each op's OpDef::grad in the C++ table)."""
from __future__ import annotations

from .. import _core
from .tensor import Tensor


def grad(loss: Tensor, params) -> list:
    """d loss / d p for each p of ``params`` (graph inputs or any tensors the loss depends on),
    as Tensors to compile like any other; ``loss`` has one element. A param the loss does not
    depend on gets zeros; an op on the way without a gradient is a ValueError naming it
    (``af.ops()`` marks the differentiable ones)."""
    if not isinstance(loss, Tensor):
        raise TypeError(f"grad: loss must be a Tensor, got {type(loss).__name__}")
    single = isinstance(params, Tensor)
    ps = [params] if single else list(params)
    for p in ps:
        if not isinstance(p, Tensor):
            raise TypeError(f"grad: params must be Tensors, got {type(p).__name__}")
    gs = [Tensor(t) for t in _core.grad(loss._t, [p._t for p in ps])]
    return gs[0] if single else gs
