"""Optimizers with PyTorch's defaults and update rules (torch.optim), written as graph ops so
the update compiles into the train-step program (af.compile_train_step): each returns the
new parameter and its new state tensors from the parameter, its gradient, its state, the
step count t (1 on the first step) and the learning rate (a program input, so schedules
need no recompiling).

    opt = af.optim.AdamW(lr=3e-3)
    step = af.compile_train_step(loss, params, opt, inputs=[x, y])
"""
from __future__ import annotations

import numpy as np

from ..graph import functional as _F

__all__ = ["SGD", "Adam", "AdamW"]

# fp16 programs: an eps below fp16's smallest normal would flush to zero (and 0/0 on a
# parameter with no gradient yet); it is raised to this.
FP16_MIN_EPS = 2.0 ** -14


class Optimizer:
    lr: float

    def state(self, shape) -> list:
        """Initial state tensors of one parameter, as NumPy arrays."""
        return []

    def update(self, p, g, state, t, lr, fp16):
        raise NotImplementedError


def _check(name, value, lo=0.0, hi=None):
    if not isinstance(value, (int, float)) or value < lo or (hi is not None and value >= hi):
        raise ValueError(f"invalid {name}: {value!r}")


class SGD(Optimizer):
    """torch.optim.SGD: momentum, dampening, Nesterov and (L2) weight decay."""

    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        _check("lr", lr)
        _check("momentum", momentum)
        _check("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov

    def state(self, shape):
        return [np.zeros(shape, np.float32)] if self.momentum else []

    def update(self, p, g, state, t, lr, fp16):
        if self.weight_decay:
            g = g + p * self.weight_decay
        new_state = []
        if self.momentum:
            (buf,) = state
            # torch starts the buffer at the first gradient (no dampening on step 1)
            later = _F.cast(_F.greater(t, 1.0), g.dtype) if self.dampening else None
            scale = 1.0 - self.dampening * later if later is not None else 1.0 - self.dampening
            buf = buf * self.momentum + g * scale
            new_state = [buf]
            g = g + buf * self.momentum if self.nesterov else buf
        return p - g * lr, new_state


class Adam(Optimizer):
    """torch.optim.Adam (bias-corrected moments; weight_decay as L2 in the gradient)."""

    decoupled = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        _check("lr", lr)
        _check("beta1", betas[0], 0.0, 1.0)
        _check("beta2", betas[1], 0.0, 1.0)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay

    def state(self, shape):
        return [np.zeros(shape, np.float32), np.zeros(shape, np.float32)]

    def update(self, p, g, state, t, lr, fp16):
        b1, b2 = self.betas
        if self.weight_decay and self.decoupled:
            p = p * (1.0 - lr * self.weight_decay)
        elif self.weight_decay:
            g = g + p * self.weight_decay
        m, v = state
        m = m * b1 + g * (1.0 - b1)
        v = v * b2 + g * g * (1.0 - b2)
        c1 = 1.0 - _F.pow(b1, t)  # bias corrections 1 - beta^t
        c2 = 1.0 - _F.pow(b2, t)
        eps = max(self.eps, FP16_MIN_EPS) if fp16 else self.eps
        step = (m / c1) / (_F.sqrt(v / c2) + eps)
        return p - step * lr, [m, v]


class AdamW(Adam):
    """torch.optim.AdamW: weight decay decoupled from the gradient (default 0.01)."""

    decoupled = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(lr, betas, eps, weight_decay)
