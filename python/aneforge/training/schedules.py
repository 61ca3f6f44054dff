"""Learning-rate schedules: the rate for step (or epoch) ``i`` as a plain function of ``i``,
following torch.optim.lr_scheduler's formulas. The train step takes the rate as a program
input (``step(x, y, lr=schedule(i))``), so a schedule never recompiles anything.

    sched = af.schedules.warmup(af.schedules.cosine(3e-3, total=1000), steps=100)
    for i, (x, y) in enumerate(batches):
        step(x, y, lr=sched(i))
"""
from __future__ import annotations

import math

__all__ = ["constant", "step", "cosine", "warmup"]


def _check(lr, **counts):
    if not isinstance(lr, (int, float)) or lr < 0:
        raise ValueError(f"learning rate must be >= 0, got {lr!r}")
    for k, v in counts.items():
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{k} must be an int >= 1, got {v!r}")


def constant(lr):
    _check(lr)
    return lambda i: float(lr)


def step(lr, step_size, gamma=0.1):
    """lr * gamma ** (i // step_size) (torch StepLR)."""
    _check(lr, step_size=step_size)
    return lambda i: float(lr * gamma ** (i // step_size))


def cosine(lr, total, eta_min=0.0):
    """eta_min + (lr - eta_min) (1 + cos(pi i / total)) / 2, held at eta_min past total
    (torch CosineAnnealingLR's closed form, T_max = total)."""
    _check(lr, total=total)
    return lambda i: float(eta_min + (lr - eta_min) * (1 + math.cos(math.pi * min(i, total) / total)) / 2)


def warmup(schedule, steps, start_factor=0.0):
    """Linear warmup over the first ``steps`` from start_factor x to the schedule's rate
    (torch LinearLR followed by the schedule, shifted by ``steps``)."""
    _check(0.0, steps=steps)
    if not callable(schedule):
        schedule = constant(schedule)

    def rate(i):
        if i < steps:
            return float(schedule(0) * (start_factor + (1 - start_factor) * i / steps))
        return float(schedule(i - steps))
    return rate
