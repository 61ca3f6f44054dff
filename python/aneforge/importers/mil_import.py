"""af.from_mlpackage and af.trace_mlpackage: an ML Program (.mlpackage, ours or one made by
coremltools) into an af graph, so Core ML models get af's targets, compression, sim and engine
dispatch.

The package is read by the mil backend's reader (every path and size in it is untrusted and
checked there); its constants, the constexpr_* decompressions included, are resolved by the
interpreter. Each op of the main function is mapped by its entry in the MIL table (mil_ops.py),
except ops whose inputs are all constants (and ``shape``, static here), which the interpreter
folds. Weight layers take the name of their const ("features_0_0" for "features_0_0_weight").
"""
from __future__ import annotations

import numpy as np

from ..compiler.build import compile as _compile
from ..graph import functional as _F
from ..graph.tensor import Tensor
from ..mil.interp import Args, Interpreter
from ..mil.ir import MilError
from ..mil.package import read_mlpackage
from .mil_ops import MIL, UNSUPPORTED

_NEVER_FOLDED = {k for k, why in UNSUPPORTED.items() if why.startswith(("random", "state"))}


class TracedMil:
    """An ML Program as an af graph: ``inputs`` (name -> af input) and ``outputs`` (name ->
    Tensor, in the program's order)."""

    def __init__(self, inputs, outputs, opset):
        self.inputs, self.outputs, self.opset = inputs, outputs, opset

    def __repr__(self):
        return f"TracedMil(inputs={list(self.inputs)}, outputs={list(self.outputs)}, opset=ios{self.opset})"


class _Params:
    """One op's inputs by parameter name: af Tensors or NumPy constants; constant parameters
    also through the interpreter's typed accessors (``args``), whose errors name the op."""

    def __init__(self, op, values, opset, types):
        self.op, self.values, self.opset = op, values, opset
        consts = {k: v for k, v in values.items() if not any(isinstance(x, Tensor) for x in v)}
        self.args = Args(op, consts, opset, types)

    def has(self, name):
        return name in self.values

    def raw(self, name, default=...):
        if name not in self.values:
            if default is ...:
                raise NotImplementedError(f"missing input {name!r}")
            return default
        v = self.values[name]
        return v[0] if len(v) == 1 else v

    def list(self, name):
        return list(self.values[name])

    def x(self, name):
        from .mil_ops import _t
        return _t(self.raw(name))

    def const(self, name):
        v = self.raw(name)
        if isinstance(v, Tensor):
            raise NotImplementedError(f"input {name!r} computed in the program (a constant is expected)")
        return np.asarray(v)

    def _constant(self, name):
        if name in self.values and any(isinstance(x, Tensor) for x in self.values[name]):
            raise NotImplementedError(f"input {name!r} computed in the program (a constant is expected)")

    def __getattr__(self, accessor):  # int, ints, float, bool, str, axis: constants, as the interpreter reads them
        if accessor not in ("int", "ints", "float", "bool", "str", "axis"):
            raise AttributeError(accessor)

        def read(name, *default):
            self._constant(name)
            return getattr(self.args, accessor)(name, *default)
        return read


class _Context:
    def __init__(self):
        self.op, self.names = None, {}

    def layer(self, t: Tensor, param: str) -> Tensor:
        args = self.op.inputs.get(param) or []
        name = args[0][1] if args and args[0][0] == "var" else ""
        for suffix in ("_to_fp16", "_weight", ".weight", "_W"):  # coremltools casts consts as "<name>_to_fp16"
            if name.endswith(suffix):
                name = name[:-len(suffix)]
        name = name or self.op.name
        if name:
            k = self.names[name] = self.names.get(name, 0) + 1
            t._t.set_name(name if k == 1 else f"{name}_{k}")
        return t


def _input(name, t, input_shapes):
    if t.kind != "tensor":
        raise NotImplementedError(f"from_mlpackage: input {name!r} is a {t.kind}, not a tensor (stateful programs "
                                  "keep their state in af with Net.make_resident)")
    if name in input_shapes:
        shape = tuple(int(s) for s in input_shapes[name])
    else:
        shape = []
        for i, d in enumerate(t.shape):
            if d is None and i > 0:
                raise ValueError(f"from_mlpackage: input {name!r} has an unknown size at dimension {i}; the engine "
                                 f"runs static shapes: pass input_shapes={{{name!r}: (...)}}")
            shape.append(1 if d is None else int(d))
    kind = "fp16" if t.dtype.startswith("fp") else "bool" if t.dtype == "bool" else "int32"
    return _F.input(tuple(shape), kind, name=name)


def _values(interp, op, env):
    values = {}
    for k, args in op.inputs.items():
        values[k] = [env[v] if kind == "var" else interp._literal(op, v) for kind, v in args]
    for k, typed in op.attributes.items():
        if k not in values and typed is not None and op.type != "const":
            values[k] = [interp._literal(op, typed)]
    return values


def trace_mlpackage(path, *, input_shapes=None) -> TracedMil:
    """The ML Program at ``path`` (an .mlpackage directory, or a model.mlmodel with weights/
    beside it) mapped into an af graph: its inputs (an unknown batch size is 1;
    ``input_shapes`` {name: shape} sets any) and outputs."""
    _spec, prog, blobs, _ins, _outs = read_mlpackage(path)
    interp = Interpreter(prog, blobs)
    fn = interp.fn
    input_shapes = dict(input_shapes or {})
    unknown = set(input_shapes) - {n for n, _ in fn.inputs}
    if unknown:
        raise ValueError(f"from_mlpackage: input_shapes names {sorted(unknown)}, which are not inputs of the "
                         f"program (inputs: {[n for n, _ in fn.inputs]})")
    env = dict(interp.consts)
    inputs = {}
    for name, t in fn.inputs:
        inputs[name] = env[name] = _input(name, t, input_shapes)
    ops = [o for o in fn.block.ops if o.type != "const" and not o.type.startswith("constexpr_")]
    _check_supported(ops, set(env) - set(inputs))
    ctx = _Context()
    for o in ops:
        vars_in = [v for args in o.inputs.values() for kind, v in args if kind == "var"]
        if o.type == "shape" and isinstance(env[vars_in[0]], Tensor):
            env[o.outputs[0][0]] = np.asarray(env[vars_in[0]].shape, np.int32)
            continue
        if all(not isinstance(env[v], Tensor) for v in vars_in) and o.type not in _NEVER_FOLDED:
            interp._run_op(o, env)  # constants only: the interpreter computes them
            continue
        ctx.op = o
        try:
            p = _Params(o, _values(interp, o, env), interp.opset, interp.types)
            result = MIL[o.type](ctx, p)
        except (NotImplementedError, ValueError, TypeError) as e:
            raise type(e)(f"from_mlpackage: op {o.name!r} ({o.type}): {e}") from None
        results = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(results) != len(o.outputs):
            raise MilError(f"op {o.name!r} ({o.type}): {len(results)} outputs mapped, the program declares "
                           f"{len(o.outputs)}")
        for (name, _), r in zip(o.outputs, results):
            env[name] = r
    outputs = {}
    for name in fn.block.outputs:
        v = env[name]
        outputs[name] = v if isinstance(v, Tensor) else _F.as_tensor(np.asarray(v, np.float32))
    return TracedMil(inputs, outputs, interp.opset)


def _check_supported(ops, const: set):
    missing: dict = {}
    for o in ops:
        vars_in = [v for args in o.inputs.values() for kind, v in args if kind == "var"]
        if all(v in const for v in vars_in) and o.type not in _NEVER_FOLDED or o.type == "shape":
            const.update(n for n, _ in o.outputs)
            continue
        if o.type not in MIL:
            missing.setdefault(o.type, o.name)
    if missing:
        rows = "\n".join(f"  {t}: {UNSUPPORTED.get(t, 'not mapped yet')}; at op {n!r}" for t, n in sorted(missing.items()))
        raise NotImplementedError(f"from_mlpackage: {len(missing)} MIL op(s) have no mapping to af ops:\n{rows}\n"
                                  "docs/import.md lists the table (load_mlpackage runs the program on the mil "
                                  "backend as it is).")


def from_mlpackage(path, *, input_shapes=None, **compile_options):
    """A compiled Net from an ML Program (an .mlpackage made by af or coremltools), mapped op by
    op (docs/import.md) and compiled with ``compile_options`` (those of af.compile: target,
    compress, precision, backend, ...). One output returns an array; several, a dict by the
    program's output names."""
    traced = trace_mlpackage(path, input_shapes=input_shapes)
    outs = traced.outputs
    result = next(iter(outs.values())) if len(outs) == 1 else outs
    return _compile(result, inputs=list(traced.inputs.values()), **compile_options)
