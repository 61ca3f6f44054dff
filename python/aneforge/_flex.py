"""Flexible batch: ``af.input((None, 3, 224, 224))``.

The engine runs static shapes, so each batch size is its own program. A graph that starts at a
flexible input is built once at a placeholder batch (TRACE_BATCH) and every af call on it is
recorded (the function and the arguments as given). For batch b the calls are replayed on
inputs of batch b, so sizes the ops infer (``reshape(-1, ...)``, ``x[:, 1:]``, ``flatten(1)``)
follow the batch; a size the user computed from ``x.shape`` is a number in the recording and
cannot, which the checks below turn into an error instead of a wrong program.
"""
from __future__ import annotations

import collections
import threading

import numpy as np

from ._compile import Net, compile as compile_static

# The placeholder batch while a flexible graph is built: a prime no layer size is likely to
# share, so a size computed from x.shape (and fixed in the graph) fails to rebuild for other
# batches instead of passing unnoticed.
TRACE_BATCH = 13


class FlexInput:
    """The recipe of a flexible graph input."""

    def __init__(self, shape, dtype, name, node_id):
        self.shape = tuple(shape)  # None marks the batch dimension (dim 0)
        self.dtype = dtype
        self.name = name
        self.node_id = node_id  # of the input built at the placeholder batch

    def at(self, batch: int) -> tuple:
        return tuple(batch if d is None else d for d in self.shape)


class Call:
    """One recorded af call: replayed for each batch size."""

    __slots__ = ("fn", "args", "kwargs")

    def __init__(self, fn, args, kwargs):
        self.fn, self.args, self.kwargs = fn, args, kwargs


def _tensors_in(value):
    from ._tensor import Tensor
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors_in(v)


def record(fn, args, kwargs, result):
    """Attach the call to its results when any argument comes from a flexible input."""
    if not any(t._recipe is not None for t in _tensors_in((args, kwargs))):
        return result
    call = Call(fn, args, kwargs)
    outs = result if isinstance(result, tuple) else (result,)
    for i, t in enumerate(outs):
        if all(t is not a for a in _tensors_in((args, kwargs))):  # x[...] returns x itself
            t._recipe = (call, i if isinstance(result, tuple) else None)
    return result


def is_flexible(tensors) -> bool:
    return any(t._recipe is not None for t in tensors)


def replay(outputs: list, batch: int) -> tuple[list, dict]:
    """The outputs rebuilt for ``batch``, and old input name -> new input Tensor."""
    from ._tensor import Tensor, input as make_input
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


def _check_outputs(traced: list, rebuilt: list, batch: int):
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


def _flex_leaves(outputs) -> dict:
    """node id -> FlexInput for every flexible input the recorded calls reach."""
    found, seen, stack = {}, set(), list(outputs)
    while stack:
        v = stack.pop()
        for t in _tensors_in(v):
            r = t._recipe
            if r is None or id(r) in seen:
                continue
            seen.add(id(r))
            if isinstance(r, FlexInput):
                found[r.node_id] = r
            else:
                stack.append((r[0].args, r[0].kwargs))
    return found


class FlexNet(Net):
    """A net whose inputs have a flexible batch dimension: one program per batch size,
    compiled on first use and kept in a bounded cache (least recently used dropped).
    What describes a program (summary, text, num_layers, options, ...) is the batch-1
    program's; saving and exporting take one batch size: ``net.compile_for(batch=8).save(p)``."""

    def __init__(self, outputs, structure, names, inputs, options: dict, max_programs: int):
        if not isinstance(max_programs, int) or isinstance(max_programs, bool) or max_programs < 1:
            raise ValueError(f"compile: max_programs must be an int >= 1, got {max_programs!r}")
        if options.get("calibration") is not None:
            raise ValueError("compile: calibration= needs fixed shapes: build the graph with the calibration batch "
                             "size (af.input((16, ...))), compile it, and pass net.packed_weights() as compress= "
                             "when compiling other batch sizes (docs/compression.md)")
        self._outputs = outputs
        self._structure = structure  # "single", "list", "tuple" or "dict"
        self._names = names
        self._options = options
        self.max_programs = max_programs
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self._specs = self._input_specs(inputs)
        first = self.compile_for(1)  # checks the graph and the target now, at the user's line
        if options.get("compress") is not None:  # the gate runs once: every batch size holds these weights
            self._options = dict(options, compress=first.packed_weights())

    def _input_specs(self, order):
        """(name, shape with None, dtype, flexible) per input, in call order."""
        flex = _flex_leaves(self._outputs)
        if order is None:
            order = sorted(_all_inputs(self._outputs), key=lambda t: t._t.node_id)
        specs = []
        for t in order:
            r = flex.get(t._t.node_id)
            specs.append((r.name, r.shape, r.dtype, True) if r else (t.name, t.shape, t.dtype, False))
        return specs

    @property
    def flexible(self) -> bool:
        return True

    @property
    def inputs(self) -> list:
        """(name, shape, dtype) of each input; None marks the batch dimension."""
        return [(n, s, d) for n, s, d, _ in self._specs]

    def compile_for(self, batch: int):
        """The program for ``batch`` (compiled now if it is not cached): a Net with fixed
        shapes that can be saved or exported."""
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValueError(f"compile_for: batch must be an int >= 1, got {batch!r}")
        with self._lock:
            if batch in self._cache:
                self._cache.move_to_end(batch)
                return self._cache[batch]
        net = self._build(batch)
        with self._lock:
            self._cache[batch] = net
            self._cache.move_to_end(batch)
            while len(self._cache) > self.max_programs:
                self._cache.popitem(last=False)
        return net

    @property
    def compiled_batches(self) -> list:
        """The batch sizes with a compiled program, least recently used first."""
        with self._lock:
            return list(self._cache)

    def _build(self, batch):
        try:
            outs, new_inputs = replay(self._outputs, batch)
        except (ValueError, TypeError) as e:
            raise ValueError(f"the graph cannot be rebuilt for batch {batch}: {e}. A size computed from "
                             "x.shape is fixed in the graph; use -1 in reshape/view (or x.flatten(1)) so it "
                             "follows the batch") from None
        _check_outputs(self._outputs, outs, batch)
        fixed = {t.name: t for t in _all_inputs(outs)}
        order = [new_inputs[n] if flex else fixed[n] for n, _, _, flex in self._specs
                 if n in new_inputs or n in fixed]
        if self._structure == "dict":
            structured = dict(zip(self._names, outs))
        elif self._structure == "tuple":
            structured = tuple(outs)
        elif self._structure == "list":
            structured = list(outs)
        else:
            structured = outs[0]
        return compile_static(structured, inputs=order, **self._options)

    def _batch_of(self, args, kwargs) -> int:
        given = {}
        for (name, _, _, _), a in zip(self._specs, args):
            given[name] = a
        given.update(kwargs)
        batch = None
        for name, shape, _, flex in self._specs:
            if not flex or name not in given:
                continue
            got = getattr(given[name], "shape", None)
            if got is None:
                got = np.shape(given[name])
            want = ", ".join("batch" if d is None else str(d) for d in shape)
            if len(got) != len(shape) or any(d is not None and g != d for g, d in zip(got, shape)):
                raise ValueError(f"input '{name}' has shape {tuple(got)}; expected ({want}), where batch "
                                 "(dim 0) may vary and the other dimensions are fixed")
            if batch is None:
                batch = int(got[0])
                first = name
            elif got[0] != batch:
                raise ValueError(f"inputs '{first}' and '{name}' have batch sizes {batch} and {got[0]}; "
                                 "every flexible input takes the same batch")
        if batch is None:
            raise ValueError(f"net is missing its flexible input(s): {[s[0] for s in self._specs if s[3]]}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        return batch

    def __call__(self, *args, **kwargs):
        return self.compile_for(self._batch_of(args, kwargs))(*args, **kwargs)

    def _fixed_only(self, what):
        raise ValueError(f"{what}: a flexible-batch net holds one program per batch size; "
                         f"use net.compile_for(batch=N).{what}(...)")

    def save(self, path, overwrite=False):
        self._fixed_only("save")

    def export_mlpackage(self, path, opset="ios18", overwrite=False):
        self._fixed_only("export_mlpackage")

    def mil_text(self, opset="ios18"):
        self._fixed_only("mil_text")

    def weight_blob(self, opset="ios18"):
        self._fixed_only("weight_blob")

    def text(self):
        return self.compile_for(1).text()

    def summary(self, file=None):
        return self.compile_for(1).summary(file)

    def estimate(self, target=None):
        return self.compile_for(1).estimate(target)

    def __repr__(self):
        ins = ", ".join(f"{n}({', '.join('batch' if d is None else str(d) for d in s)})"
                        for n, s, _, _ in self._specs)
        return f"Net(flexible batch, inputs: {ins}, compiled for batch sizes {self.compiled_batches})"


def _all_inputs(outputs):
    """The graph-input Tensors reachable from ``outputs`` (through the C++ graph)."""
    from ._tensor import Tensor
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


def _delegate(name):
    return property(lambda self: getattr(self.compile_for(1), name),
                    doc=f"{name} of the batch-1 program (the same for every batch size but the shapes).")


for _name in ("outputs", "num_layers", "weight_bytes", "pass_log", "target", "compress", "precision",
              "rounding", "flush_subnormals", "options", "backend", "opset"):
    setattr(FlexNet, _name, _delegate(_name))


def _delegate_method(name):
    def method(self, *args, **kwargs):
        return getattr(self.compile_for(1), name)(*args, **kwargs)
    method.__name__ = name
    method.__doc__ = f"{name}() of the batch-1 program (every batch size holds the same weights)."
    return method


for _name in ("compression_report", "packed_weights"):
    setattr(FlexNet, _name, _delegate_method(_name))
