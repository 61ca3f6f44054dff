"""Parameters and the fused train step: forward, backward (af.grad) and the optimizer update
compiled into ONE program whose weights, optimizer moments, buffers (BatchNorm running
statistics), step count and loss scale are resident state (outputs aliased to inputs between
calls), so a step moves the minibatch in and the loss out.

fp16 programs scale the loss dynamically (as torch.cuda.amp.GradScaler): the gradients of
loss * scale are unscaled in fp32; a step whose gradients are not all finite is skipped
(weights, moments and step count unchanged) and the scale halves; after `growth_interval`
good steps in a row it doubles. All of it runs in the program.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compiler import build
from ..graph import functional as F
from ..graph.autodiff import grad
from ..graph.state import BUFFERS as _BUFFERS, NOISE as _NOISE, PARAMS as _PARAMS, input_ids as _input_ids
from ..graph.tensor import Tensor


@dataclass
class LossScale:
    """Dynamic loss scaling for fp16 programs (torch GradScaler's rule; the initial scale is
    lower than torch's 65536 because the gradients themselves are fp16 here)."""
    init_scale: float = 1024.0
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    growth_interval: int = 200


class TrainStep:
    """``step(*batch, lr=None)`` runs one training step and returns the loss (a float);
    ``step.parameters()`` gives {name: array} of the current weights, ``step.buffers()`` the
    buffers; ``step.loss_scale`` and ``step.skipped`` report the loss scaling."""

    def __init__(self, net, names, n_opt_state, buffer_names, n_batch, noise_shapes, initial, optimizer, scaled,
                 seed=0):
        self.net, self._names, self._buffer_names, self.optimizer = net, names, buffer_names, optimizer
        self._n_opt_state, self._scaled = n_opt_state, scaled
        self._n_batch, self._noise = n_batch, noise_shapes
        self._state = list(initial)  # values of the resident state, in program input order
        self._resident = hasattr(net._exe, "alias")
        first_state = n_batch + len(noise_shapes) + 1
        if self._resident:
            for k in range(len(initial)):
                net.make_resident(1 + k, first_state + k)
        self._rng = np.random.default_rng(seed)
        self._started = False
        self._last = None
        self.steps = 0
        self.skipped = 0

    def __call__(self, *batch, lr=None):
        if len(batch) != self._n_batch:
            raise ValueError(f"train step expects {self._n_batch} batch input(s), got {len(batch)}")
        rate = np.array([self.optimizer.lr if lr is None else lr], np.float32)
        noise_in = [self._rng.random(s, dtype=np.float32) for s in self._noise]
        if self._resident and self._started:
            out = self.net(*batch, *noise_in, rate)
        else:
            out = self.net(*batch, *noise_in, rate, *self._state)
        if not self._resident:
            self._state = list(out[1:1 + len(self._state)])
        self._started = True
        self._last = out
        self.steps += 1
        if float(np.asarray(out[-1]).reshape(-1)[0]) == 0.0:
            self.skipped += 1
        return float(np.asarray(out[0]).reshape(-1)[0])

    def _values(self):
        return self._state if self._last is None else self._last[1:1 + len(self._state)]

    def parameters(self) -> dict:
        return {n: np.asarray(v) for n, v in zip(self._names, self._values())}

    def buffers(self) -> dict:
        vals = self._values()[len(self._names) + self._n_opt_state:]
        return {n: np.asarray(v) for n, v in zip(self._buffer_names, vals)}

    @property
    def loss_scale(self):
        """The current loss scale (None without loss scaling)."""
        if not self._scaled:
            return None
        return float(np.asarray(self._values()[-2]).reshape(-1)[0])


def compile_train_step(loss, params, optimizer, inputs=None, precision="fp16", backend="sim", target=None,
                       loss_scale="auto"):
    """One program: ``loss`` and its gradients (af.grad) w.r.t. ``params`` (af.parameter
    tensors), then ``optimizer``'s update of each, and the update of every af.buffer the loss
    graph uses. ``inputs``: the batch inputs in call order (default: the graph inputs that are
    not parameters, buffers or noise, in creation order). ``loss_scale``: "auto" (dynamic for
    fp16, none for fp32), None, or an af.LossScale."""
    if not isinstance(loss, Tensor) or int(np.prod(loss.shape)) != 1:
        raise ValueError("compile_train_step: loss must be a Tensor with one element")
    params = list(params)
    for p in params:
        if p._t.node_id not in _PARAMS:
            raise ValueError(f"compile_train_step: {p.name} is not an af.parameter")
    if loss_scale == "auto":
        loss_scale = LossScale() if precision == "fp16" else None
    if loss_scale is not None and not isinstance(loss_scale, LossScale):
        raise ValueError(f"compile_train_step: loss_scale must be 'auto', None or an af.LossScale, got {loss_scale!r}")
    used = _input_ids([loss])
    masters_ids = {_PARAMS[p._t.node_id][2]._t.node_id for p in params}
    bufs = [_BUFFERS[i] for i in used if i in _BUFFERS and _BUFFERS[i][3] is not None]
    # Buffers updated from this graph (BatchNorm's running stats feed no loss, so look at the updates too).
    for entry in _BUFFERS.values():
        if entry[3] is not None and all(entry is not b for b in bufs):
            ins = set(_input_ids([entry[3]])) - {entry[2]._t.node_id}
            if ins and ins <= set(used):
                bufs.append(entry)
    noise_ts = [t for i, t in sorted(_input_ids([loss] + [b[3] for b in bufs]).items()) if i in _NOISE]
    if inputs is None:
        skip = masters_ids | set(_BUFFERS) | set(_NOISE)
        inputs = [t for i, t in sorted(used.items()) if i not in skip]
    inputs = list(inputs)
    fp32 = "fp32"
    lr = F.input((1,), dtype=fp32, name="lr")
    t = F.input((1,), dtype=fp32, name="step_t")
    if loss_scale is not None:
        scale = F.input((1,), dtype=fp32, name="loss_scale")
        good = F.input((1,), dtype=fp32, name="good_steps")
        grads = [g.cast(fp32) / scale for g in grad(loss.cast(fp32) * scale, params)]
        bad = None  # sum of g * 0: NaN when any gradient is inf or NaN
        for g in grads:
            z = F.sum(g * 0.0).reshape((1,))
            bad = z if bad is None else bad + z
        ok = F.equal(bad, 0.0)
    else:
        grads = [g.cast(fp32) for g in grad(loss, params)]
        ok = None
    okf = ok.cast(fp32) if ok is not None else None
    t_next = t + (okf if okf is not None else 1.0)

    def keep_if_ok(new, old):
        return new if ok is None else F.where(ok, new, old)

    # The update runs in fp32: fp32 masters, moments and step count (fp16 moments underflow:
    # Adam's v = (1 - beta2) g^2 flushes to zero for |g| < 0.008).
    new_params, states, new_states, initial, masters = [], [], [], [], []
    for p, g in zip(params, grads):
        _, name, master = _PARAMS[p._t.node_id]
        masters.append(master)
        init = optimizer.state(p.shape)
        st = [F.input(p.shape, dtype=fp32, name=f"{name}_state{k}") for k in range(len(init))]
        np_, ns = optimizer.update(master, g, st, t_next, lr, False)
        new_params.append(keep_if_ok(np_, master))
        states += st
        new_states += [keep_if_ok(n, o) for n, o in zip(ns, st)]
        initial.append(init)
    buf_in, buf_new = [b[2] for b in bufs], [keep_if_ok(b[3], b[2]) for b in bufs]
    init_values = [_PARAMS[p._t.node_id][0] for p in params] + [s for st in initial for s in st] + \
                  [b[0] for b in bufs] + [np.zeros(1, np.float32)]
    order = inputs + noise_ts + [lr] + masters + states + buf_in + [t]
    outs = [loss] + new_params + new_states + buf_new + [t_next]
    if loss_scale is not None:
        ls = loss_scale
        good_next = F.where(ok, good + 1.0, good * 0.0)
        grow = F.greater_equal(good_next, float(ls.growth_interval))
        scale_next = F.where(ok, F.where(grow, scale * ls.growth_factor, scale), scale * ls.backoff_factor)
        order += [scale, good]
        outs += [scale_next, F.where(grow, good * 0.0, good_next)]
        init_values += [np.array([ls.init_scale], np.float32), np.zeros(1, np.float32)]
    outs.append(okf if okf is not None else t_next * 0.0 + 1.0)  # 1: the update was applied
    net = build.compile(outs, inputs=order, precision=precision, backend=backend, target=target)
    return TrainStep(net, [_PARAMS[p._t.node_id][1] for p in params], len(states), [b[1] for b in bufs], len(inputs),
                     [tuple(x.shape) for x in noise_ts], init_values, optimizer, loss_scale is not None)


__all__ = ["compile_train_step", "TrainStep", "LossScale"]
