"""FlexNet: a net whose inputs have a flexible batch dimension, one program per batch size
(the graph rebuilt by graph/flex.py's replay)."""
from __future__ import annotations

import collections
import threading

import numpy as np

from ..graph.flex import all_inputs, check_outputs, flex_leaves, replay
from .net import Net


class FlexNet(Net):
    """A net whose inputs have a flexible batch dimension: one program per batch size,
    compiled on first use and kept in a bounded cache (least recently used dropped).
    What describes a program (summary, text, num_layers, options, ...) is the batch-1
    program's; saving and exporting take one batch size: ``net.compile_for(batch=8).save(p)``."""

    def __init__(self, outputs, structure, names, inputs, options: dict, max_programs: int, compile_fixed):
        """compile_fixed(outputs, inputs=..., **options): af.compile for one batch size (given
        by the caller, who defines it, so this module need not import it)."""
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
        self._compile_fixed = compile_fixed
        self.max_programs = max_programs
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self._specs = self._input_specs(inputs)
        first = self.compile_for(1)  # checks the graph and the target now, at the user's line
        if options.get("compress") is not None:  # the gate runs once: every batch size holds these weights
            self._options = dict(options, compress=first.packed_weights())

    def _input_specs(self, order):
        """(name, shape with None, dtype, flexible) per input, in call order."""
        flex = flex_leaves(self._outputs)
        if order is None:
            order = sorted(all_inputs(self._outputs), key=lambda t: t._t.node_id)
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
        check_outputs(self._outputs, outs, batch)
        fixed = {t.name: t for t in all_inputs(outs)}
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
        return self._compile_fixed(structured, inputs=order, **self._options)

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


class RebuiltNet(FlexNet):
    """A flexible-batch net whose graph is built again for each batch size by ``build(batch)``
    -> (outputs as af.compile takes them, inputs in call order): for importers whose models
    state their shapes (ONNX), where rebuilding is cheaper and surer than replaying a trace."""

    def __init__(self, build, specs, options: dict, max_programs: int, compile_fixed):
        """specs: (name, shape with None at the batch, dtype, follows the batch) per input."""
        self._build_graph, self._given_specs = build, list(specs)
        super().__init__(None, None, None, None, options, max_programs, compile_fixed)

    def _input_specs(self, order):
        return self._given_specs

    def _build(self, batch):
        outputs, inputs = self._build_graph(batch)
        return self._compile_fixed(outputs, inputs=inputs, **self._options)
