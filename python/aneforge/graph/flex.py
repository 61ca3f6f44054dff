"""Flexible batch: ``af.input((None, 3, 224, 224))``.

The engine runs static shapes, so each batch size is its own program. A graph that starts at a
flexible input is built once at a placeholder batch (TRACE_BATCH) and every af call on it is
recorded (the function and the arguments as given). For batch b the calls are replayed on
inputs of batch b, so sizes the ops infer (``reshape(-1, ...)``, ``x[:, 1:]``, ``flatten(1)``)
follow the batch; a size the user computed from ``x.shape`` is a number in the recording and
cannot, which the checks below turn into an error instead of a wrong program.
"""
from __future__ import annotations

from .tensor import Tensor, input as make_input
from .trace import TRACE_BATCH, FlexInput, tensors_in


def replay(outputs: list, batch: int) -> tuple[list, dict]:
    """The outputs rebuilt for ``batch``, and old input name -> new input Tensor."""
    memo: dict = {}
    new_inputs: dict = {}

    def rebuild(value):
        if isinstance(value, Tensor):
            return tensor(value)
        if isinstance(value, list):
            return [rebuild(v) for v in value]
        if isinstance(value, tuple):
            return tuple(rebuild(v) for v in value)
        if isinstance(value, dict):
            return {k: rebuild(v) for k, v in value.items()}
        return value

    def tensor(t):
        r = t._recipe
        if r is None:
            return t  # constants and fixed-shape inputs are shared by every batch size
        if isinstance(r, FlexInput):
            if id(r) not in memo:
                memo[id(r)] = make_input(r.at(batch), r.dtype, r.name)
                new_inputs[r.name] = memo[id(r)]
            return memo[id(r)]
        call, index = r
        if id(call) not in memo:
            memo[id(call)] = call.fn(*rebuild(call.args), **rebuild(call.kwargs))
        out = memo[id(call)]
        out = out if index is None else out[index]
        if out.name != t.name:  # names as traced (and as named() set them): compress dicts and reports hold
            out._t.set_name(t.name)
        return out

    return [tensor(t) for t in outputs], new_inputs


def check_outputs(traced: list, rebuilt: list, batch: int):
    """Every output dim either stays as traced or scales with the batch."""
    for i, (a, b) in enumerate(zip(traced, rebuilt)):
        sa, sb = a.shape, b.shape
        ok = len(sa) == len(sb) and all(
            db == da or (da % TRACE_BATCH == 0 and db == da // TRACE_BATCH * batch) for da, db in zip(sa, sb))
        if not ok:
            raise ValueError(
                f"output {i} has shape {sa} at the placeholder batch {TRACE_BATCH} but {sb} at batch {batch}: "
                "a size computed from x.shape is fixed in the graph; use -1 in reshape/view (or x.flatten(1)) "
                "so it follows the batch")


def flex_leaves(outputs) -> dict:
    """node id -> FlexInput for every flexible input the recorded calls reach."""
    found, seen, stack = {}, set(), list(outputs)
    while stack:
        v = stack.pop()
        for t in tensors_in(v):
            r = t._recipe
            if r is None or id(r) in seen:
                continue
            seen.add(id(r))
            if isinstance(r, FlexInput):
                found[r.node_id] = r
            else:
                stack.append((r[0].args, r[0].kwargs))
    return found


def all_inputs(outputs):
    """The graph-input Tensors reachable from ``outputs`` (through the C++ graph)."""
    seen, stack, found = set(), [t._t for t in outputs], []
    while stack:
        t = stack.pop()
        key = (t.node_id, t.name)
        if key in seen:
            continue
        seen.add(key)
        if t.op == "input":
            found.append(Tensor(t))
        stack.extend(t.inputs)
    return found
