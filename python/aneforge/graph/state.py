"""Graph state: af.parameter (trainable, with an fp32 master), af.buffer (non-trainable state
such as BatchNorm's running statistics) and af.noise (random inputs the host sends), with the
registries the compiler (parameters default to their values) and the train step read."""
from __future__ import annotations

import weakref

import numpy as np

from .flex import all_inputs
from .tensor import Tensor, input as make_input


class _Entry(list):
    """What the train step needs to know of a parameter: [initial value, name, fp32 master]."""


# A parameter's entry is held by the tensor returned to the caller, who passes it to
# compile_train_step; the registry points at it weakly, so a dropped model takes its weights
# with it. Buffers and noise are found by walking the graph (their tensors may be gone by
# then), so those entries, small ones, are kept.
PARAMS: "weakref.WeakValueDictionary[int, _Entry]" = weakref.WeakValueDictionary()
BUFFERS: dict = {}  # node id of a buffer input -> [initial value, name, input, new value or None]
NOISE: dict = {}    # node id of a noise input -> its shape


def parameter(array, name=None) -> Tensor:
    """A trainable tensor holding ``array`` until a train step updates it. The program keeps
    an fp32 master copy (a resident fp32 input) and computes with its fp16 value: updates
    smaller than fp16's resolution accumulate instead of being lost."""
    a = np.array(array, dtype=np.float32)
    if a.ndim == 0 or not np.isfinite(a).all():
        raise ValueError(f"parameter: needs a finite array with at least one dimension, got shape {a.shape}")
    global _COUNT
    _COUNT += 1
    name = name or f"param_{_COUNT}"
    master = make_input(a.shape, dtype="fp32", name=name)
    t = master.cast("fp16")
    t._train_entry = entry = _Entry([a, name, master])
    PARAMS[t._t.node_id] = entry
    return t


_COUNT = 0


class _Buffer:
    """``af.buffer(value, name)``: non-trainable state (fp32) the train step keeps resident;
    ``af.buffer.update(buf, new)`` says what the step writes back (BatchNorm's running stats)."""

    def __call__(self, array, name) -> Tensor:
        a = np.array(array, dtype=np.float32)
        t = make_input(a.shape, dtype="fp32", name=name)
        BUFFERS[t._t.node_id] = [a, name, t, None]
        return t

    @staticmethod
    def update(buf: Tensor, new: Tensor) -> None:
        entry = BUFFERS.get(buf._t.node_id)
        if entry is None:
            raise ValueError("buffer.update: the first argument must be an af.buffer")
        if tuple(new.shape) != tuple(buf.shape):
            raise ValueError(f"buffer.update: new value {tuple(new.shape)} does not match the buffer {tuple(buf.shape)}")
        entry[3] = new.cast("fp32")


buffer = _Buffer()


def noise(shape, name) -> Tensor:
    """Uniform [0, 1) noise (fp16) the train step draws afresh for each call (Dropout's masks:
    the engine has no random numbers, so the host sends them with the batch)."""
    t = make_input(tuple(shape), dtype="fp16", name=name)
    NOISE[t._t.node_id] = tuple(shape)
    return t


def input_ids(outputs) -> dict:
    """{node id: input Tensor} of the graph inputs reachable from ``outputs``."""
    return {t._t.node_id: t for t in all_inputs(outputs)}
