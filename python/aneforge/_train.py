"""Parameters and the fused train step: forward, backward (af.grad) and the optimizer update
compiled into ONE program whose weights, optimizer moments and step count are resident
state (outputs aliased to inputs between calls), so a step moves the minibatch in and the
loss out.
"""
from __future__ import annotations

import numpy as np

from ._tensor import Tensor

_INITIAL: dict = {}  # node id of a parameter -> (its initial value, its name)


def parameter(array, name=None) -> Tensor:
    """A trainable tensor holding ``array`` until a train step updates it. The program keeps
    an fp32 master copy (a resident fp32 input) and computes with its fp16 value: updates
    smaller than fp16's resolution accumulate instead of being lost."""
    import aneforge as af
    a = np.array(array, dtype=np.float32)
    if a.ndim == 0 or not np.isfinite(a).all():
        raise ValueError(f"parameter: needs a finite array with at least one dimension, got shape {a.shape}")
    name = name or f"param_{len(_INITIAL)}"
    master = af.input(a.shape, dtype="fp32", name=name)
    t = master.cast("fp16")
    _INITIAL[t._t.node_id] = (a, name, master)
    return t


class TrainStep:
    """``step(*batch, lr=None)`` runs one training step and returns the loss (a float);
    ``step.parameters()`` gives {name: array} of the current weights."""

    def __init__(self, net, params, n_batch, n_state, initial, optimizer):
        self.net, self._names, self.optimizer = net, [_INITIAL[p._t.node_id][1] for p in params], optimizer
        self._n_batch, self._n_state = n_batch, n_state
        self._state = list(initial)  # values of params, states and t, in program input order
        self._resident = hasattr(net._exe, "alias")
        # outputs: loss, then the new params, states and t; inputs: the batch, lr, then the
        # params, states and t: output 1 + k is input n_batch + 1 + k on the next step.
        if self._resident:
            for k in range(len(initial)):
                net.make_resident(1 + k, n_batch + 1 + k)
        self._started = False
        self._last = None
        self.steps = 0

    def __call__(self, *batch, lr=None):
        if len(batch) != self._n_batch:
            raise ValueError(f"train step expects {self._n_batch} batch input(s), got {len(batch)}")
        rate = np.array([self.optimizer.lr if lr is None else lr], np.float32)
        if self._resident and self._started:
            out = self.net(*batch, rate)
        else:
            out = self.net(*batch, rate, *self._state)
        if not self._resident:
            self._state = list(out[1:])
        self._started = True
        self._last = out
        self.steps += 1
        return float(np.asarray(out[0]).reshape(-1)[0])

    def parameters(self) -> dict:
        vals = self._state if self._last is None else self._last[1:]
        return {n: np.asarray(v) for n, v in zip(self._names, vals)}


def compile_train_step(loss, params, optimizer, inputs=None, precision="fp16", backend="sim", target=None):
    """One program: ``loss`` and its gradients (af.grad) w.r.t. ``params`` (af.parameter
    tensors), then ``optimizer``'s update of each. ``inputs``: the batch inputs in call order
    (default: the graph inputs that are not parameters, in creation order)."""
    import aneforge as af
    if not isinstance(loss, Tensor) or int(np.prod(loss.shape)) != 1:
        raise ValueError("compile_train_step: loss must be a Tensor with one element")
    params = list(params)
    for p in params:
        if p._t.node_id not in _INITIAL:
            raise ValueError(f"compile_train_step: {p.name} is not an af.parameter")
    if inputs is None:
        ids = {p._t.node_id for p in params}
        seen, stack, found = set(), [loss._t], []
        while stack:
            t = stack.pop()
            if t.node_id in seen:
                continue
            seen.add(t.node_id)
            if t.op == "input" and t.node_id not in ids:
                found.append(t)
            stack.extend(t.inputs)
        inputs = [Tensor(t) for t in sorted(found, key=lambda t: t.node_id)]
    inputs = list(inputs)
    fp16 = precision == "fp16"
    grads = af.grad(loss, params)
    # The update runs in fp32: fp32 masters, moments and step count (fp16 moments underflow:
    # Adam's v = (1 - beta2) g^2 flushes to zero for |g| < 0.008).
    lr = af.input((1,), dtype="fp32", name="lr")
    t = af.input((1,), dtype="fp32", name="step_t")
    t_next = t + 1.0
    new_params, states, new_states, initial, masters = [], [], [], [], []
    for p, g in zip(params, grads):
        _, name, master = _INITIAL[p._t.node_id]
        masters.append(master)
        init = optimizer.state(p.shape)
        st = [af.input(p.shape, dtype="fp32", name=f"{name}_state{k}") for k in range(len(init))]
        np_, ns = optimizer.update(master, g.cast("fp32"), st, t_next, lr, False)
        new_params.append(np_)
        states += st
        new_states += ns
        initial.append(init)
    init_values = [_INITIAL[p._t.node_id][0] for p in params] + [s for st in initial for s in st] + \
                  [np.zeros(1, np.float32)]
    order = inputs + [lr] + masters + states + [t]
    net = af.compile([loss] + new_params + new_states + [t_next], inputs=order, precision=precision,
                     backend=backend, target=target)
    return TrainStep(net, params, len(inputs), len(states), init_values, optimizer)


__all__ = ["parameter", "compile_train_step", "TrainStep"]
