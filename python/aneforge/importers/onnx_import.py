"""af.from_onnx and af.trace_onnx: an ONNX model (opsets 13-21) into an af graph.

The file is untrusted: the onnx package parses and checks it (onnx.checker) before any node is
read. Local functions are inlined. Each node of the default domain is mapped by its entry in the
ONNX table (onnx_ops.py), except nodes computed from constants alone (initializers, shapes, which
are static here), which the onnx package's reference evaluator folds, as the compiler folds
constant layers. Weight layers take the name of their initializer ("features.0.0" for
"features.0.0.weight"); outputs keep the model's names.
"""
from __future__ import annotations

import os

import numpy as np

from ..compiler.build import compile as _compile
from ..graph import functional as _F
from ..graph.tensor import Tensor, borrowing_arrays
from .onnx_ops import ONNX, UNSUPPORTED

OPSETS = range(13, 22)  # the default domain's versions the table follows
_NEVER_FOLDED = {k for k, why in UNSUPPORTED.items() if why.startswith(("random", "control flow"))}
_FOLD_LIMIT = 1 << 28  # elements a folded constant may hold (1 GiB of float32): the file is untrusted
_SHAPE_OPS = {"Shape", "Size"}  # static shapes: their outputs are constants


class TracedOnnx:
    """An ONNX model as an af graph: ``inputs`` (name -> af input) and ``outputs`` (name ->
    Tensor, in the model's order). Extend the graph, then af.compile(outputs)."""

    def __init__(self, inputs, outputs, opset):
        self.inputs, self.outputs, self.opset = inputs, outputs, opset

    def __repr__(self):
        return f"TracedOnnx(inputs={list(self.inputs)}, outputs={list(self.outputs)}, opset={self.opset})"


class _Context:
    """What an ONNX entry sees: the node being mapped (attributes, output count) and the
    naming of weight layers after their initializers."""

    def __init__(self, env):
        self.env, self.node, self.names = env, None, {}

    def layer(self, t: Tensor, weight) -> Tensor:
        name = next((n for n in self.node.input if n and self.env.get(n) is weight), "")
        for suffix in (".weight", "_weight", ".W"):
            if name.endswith(suffix):
                name = name[:-len(suffix)]
        if (not name or name.startswith("onnx::")) and self.node.name.startswith("/"):
            # torch's TorchScript exporter names folded weights "onnx::Conv_537" and the node
            # after its module path: "/features/features.0/features.0.0/Conv"
            path: list = []
            for part in self.node.name.strip("/").split("/")[:-1]:
                if path and part.startswith(path[-1] + "."):
                    path[-1] = part  # "features" then "features.0": one module, named in full
                else:
                    path.append(part)
            name = ".".join(path) or name
        name = name or self.node.name
        if name:
            k = self.names[name] = self.names.get(name, 0) + 1
            t._t.set_name(name if k == 1 else f"{name}_{k}")
        return t


def _load(model):
    import onnx
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"from_onnx: no file {path!r}")
        try:
            model = onnx.load(path)
        except Exception as e:  # noqa: BLE001 - the parser's own message says what is wrong
            raise ValueError(f"from_onnx: {path!r} is not an ONNX model: {e}") from None
    elif isinstance(model, bytes):
        try:
            model = onnx.load_from_string(model)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"from_onnx: the bytes are not an ONNX model: {e}") from None
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"from_onnx: expected a path, bytes or onnx.ModelProto, got {type(model).__name__}")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"from_onnx: the model does not pass onnx.checker: {str(e).strip().splitlines()[0]}") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset not in OPSETS:
        raise ValueError(f"from_onnx: the model uses opset {opset} of the default domain; opsets "
                         f"{OPSETS.start}-{OPSETS.stop - 1} are supported (onnx.version_converter.convert_version "
                         "converts a model)")
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    return model, opset


def _attributes(node) -> dict:
    import onnx
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = onnx.numpy_helper.to_array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        out[a.name] = v
    return out


def _input_shape(value_info, input_shapes) -> tuple:
    name = value_info.name
    if name in input_shapes:
        return tuple(int(s) for s in input_shapes[name])
    dims = value_info.type.tensor_type.shape.dim
    shape = []
    for i, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value > 0:
            shape.append(int(d.dim_value))
        elif i == 0:
            shape.append(1)  # a symbolic batch: one sample (input_shapes= sets another)
        else:
            what = d.dim_param or "unknown"
            raise ValueError(f"from_onnx: input {name!r} has a symbolic size {what!r} at dimension {i}; the engine "
                             f"runs static shapes: pass input_shapes={{{name!r}: (...)}}")
    return tuple(shape)


def _input_dtype(value_info) -> str:
    import onnx
    elem = value_info.type.tensor_type.elem_type
    kind = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)).kind
    return {"f": "fp16", "i": "int32", "u": "int32", "b": "bool"}.get(kind) or \
        _fail(f"input {value_info.name!r} has element type {onnx.TensorProto.DataType.Name(elem)}")


def _fail(msg):
    raise NotImplementedError(f"from_onnx: {msg}")


def _constant_names(graph, known: set) -> set:
    """The values computed from constants alone (folded at import)."""
    const = set(known)
    for node in graph.node:
        ins = [n for n in node.input if n]
        if node.op_type in _SHAPE_OPS or (node.domain in ("", "ai.onnx") and node.op_type not in _NEVER_FOLDED
                                           and all(n in const for n in ins)):
            const.update(o for o in node.output if o)
    return const


def _check_supported(graph, const: set):
    """One error for every operator the table lacks, each with the nodes that use it."""
    missing: dict = {}
    for node in graph.node:
        if all(o in const for o in node.output if o):
            continue
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        if key not in ONNX:
            missing.setdefault(key, []).append(node.name or f"(unnamed, output {node.output[0]!r})")
    if missing:
        rows = "\n".join(f"  {op}: {UNSUPPORTED.get(op, 'not mapped yet')}; at node {nodes[0]!r}"
                         + (f" and {len(nodes) - 1} more" if len(nodes) > 1 else "")
                         for op, nodes in sorted(missing.items()))
        raise NotImplementedError(f"from_onnx: {len(missing)} operator(s) have no mapping to af ops:\n{rows}\n"
                                  "docs/import.md lists the table; export the model with these rewritten, or build "
                                  "the rest of the graph with af ops (af.trace_onnx returns it).")


def _fold(node, opset, values):
    """Run ``node`` on constant inputs with the onnx reference evaluator."""
    import onnx
    _check_fold_size(node, values)
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    names = [n for n in node.input if n]
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(values[n]).dtype), None)
              for n in names]
    outputs = [helper.make_value_info(o, onnx.TypeProto()) for o in node.output if o]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    results = ReferenceEvaluator(model).run(None, {n: np.asarray(values[n]) for n in names})
    return [np.asarray(r) for r in results]


def _check_fold_size(node, values):
    """Refuse a folded constant too large to hold, before it is made (ConstantOfShape [1e12])."""
    def arg(i):
        return np.asarray(values[node.input[i]]) if len(node.input) > i and node.input[i] else None
    count = None
    if node.op_type in ("ConstantOfShape", "Expand") and arg(1 if node.op_type == "Expand" else 0) is not None:
        shape = arg(1 if node.op_type == "Expand" else 0).astype(np.float64).reshape(-1)
        count = float(np.prod(np.maximum(shape, 1)))
        if node.op_type == "Expand":
            count = max(count, float(arg(0).size))
    elif node.op_type == "Tile":
        count = float(arg(0).size) * float(np.prod(np.maximum(arg(1).astype(np.float64), 1)))
    elif node.op_type == "Range":
        start, limit, delta = (float(arg(i).reshape(-1)[0]) for i in range(3))
        count = abs((limit - start) / delta) if delta else float("inf")
    if count is not None and count > _FOLD_LIMIT:
        raise ValueError(f"from_onnx: {node.op_type} node {node.name!r} would make a constant of {count:.3g} "
                         f"elements (more than {_FOLD_LIMIT}); the model is malformed or too large")


def _initializer(t):
    import onnx
    try:
        a = onnx.numpy_helper.to_array(t)
    except Exception as e:  # noqa: BLE001 - sizes that disagree with the data, unknown types
        raise ValueError(f"from_onnx: initializer {t.name!r} cannot be read: {e}") from None
    if tuple(a.shape) != tuple(t.dims):
        raise ValueError(f"from_onnx: initializer {t.name!r} holds shape {a.shape}, not its declared {tuple(t.dims)}")
    if a.dtype.kind == "f":
        return a.astype(np.float32)
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    return a


def trace_onnx(model, *, input_shapes=None) -> TracedOnnx:
    """``model`` (a path, bytes or onnx.ModelProto, opsets 13-21) mapped into an af graph: its
    inputs (a symbolic batch size is 1; ``input_shapes`` {name: shape} sets any) and outputs."""
    return _trace(*_load(model), input_shapes)


def _trace(model, opset, input_shapes) -> TracedOnnx:
    # The arrays are the importer's own (initializers are read into fresh float32 arrays), so
    # the graph's constants read them in place: no second copy of the weights.
    with borrowing_arrays():
        return _trace_graph(model, opset, input_shapes)


def _trace_graph(model, opset, input_shapes) -> TracedOnnx:
    graph = model.graph
    input_shapes = dict(input_shapes or {})
    env: dict = {t.name: _initializer(t) for t in graph.initializer}
    inputs = {}
    for vi in graph.input:
        if vi.name in env:
            continue  # an initializer listed as an input (older exporters): a constant
        inputs[vi.name] = env[vi.name] = _F.input(_input_shape(vi, input_shapes), _input_dtype(vi), name=vi.name)
    unknown = set(input_shapes) - set(inputs)
    if unknown:
        raise ValueError(f"from_onnx: input_shapes names {sorted(unknown)}, which are not inputs of the model "
                         f"(inputs: {list(inputs)})")
    const = _constant_names(graph, set(env) - set(inputs))
    _check_supported(graph, const)
    used = {n for node in graph.node for n in node.input} | {o.name for o in graph.output}
    ctx = _Context(env)
    for node in graph.node:
        outs = [o for o in node.output]
        ins = [env[n] if n else None for n in node.input]
        if all(o in const for o in outs if o) and node.op_type not in _SHAPE_OPS:
            results = _fold(node, opset, env)
        else:
            ctx.node = node
            try:
                result = ONNX[node.op_type](ctx, *ins, **_attributes(node))
            except (NotImplementedError, ValueError, TypeError) as e:
                raise type(e)(f"from_onnx: {node.op_type} node {node.name!r}: {e}") from None
            results = list(result) if isinstance(result, (tuple, list)) else [result]
        for i, name in enumerate(outs):
            if not name:
                continue
            if i >= len(results) or results[i] is None:
                if name in used:
                    raise NotImplementedError(f"from_onnx: {node.op_type} node {node.name!r}: output {i} "
                                              f"({name!r}) is used, and only the first output is mapped")
                continue
            env[name] = results[i]
    outputs = {}
    for o in graph.output:
        v = env[o.name]
        outputs[o.name] = v if isinstance(v, Tensor) else _F.as_tensor(np.asarray(v, np.float32))
    return TracedOnnx(inputs, outputs, opset)


def from_onnx(model, *, input_shapes=None, dynamic_batch=False, max_programs=8, **compile_options):
    """A compiled Net from an ONNX model (a path, bytes or onnx.ModelProto; opsets 13-21),
    mapped op by op (docs/import.md) and compiled with ``compile_options`` (those of
    af.compile: target, compress, precision, backend, ...). A symbolic batch size is 1;
    ``input_shapes`` ({input name: shape}) sets symbolic sizes; ``dynamic_batch=True`` takes
    any batch size on the inputs whose first size is symbolic (a program per size, at most
    ``max_programs`` kept). One output returns an array; several, a dict by the model's names."""
    loaded, opset = _load(model)
    if not dynamic_batch:
        traced = _trace(loaded, opset, input_shapes)
        return _compile(_result(traced), inputs=list(traced.inputs.values()), **compile_options)
    from ..compiler.flexnet import RebuiltNet
    fixed = dict(input_shapes or {})
    first = _trace(loaded, opset, fixed)  # batch 1: checks the model now, at the user's line
    flexible = {vi.name for vi in loaded.graph.input if vi.name in first.inputs and vi.name not in fixed
                and _symbolic_batch(vi)}
    if not flexible:
        raise ValueError(f"from_onnx: dynamic_batch=True, but no input has a symbolic first size (inputs: "
                         f"{list(first.inputs)}); export the model with a dynamic batch axis")
    specs = [(n, (None,) + tuple(t.shape[1:]) if n in flexible else tuple(t.shape), t.dtype, n in flexible)
             for n, t in first.inputs.items()]

    def build(batch):
        shapes = dict(fixed, **{n: (batch,) + tuple(first.inputs[n].shape[1:]) for n in flexible})
        traced = first if batch == 1 else _trace(loaded, opset, shapes)
        return _result(traced), list(traced.inputs.values())
    return RebuiltNet(build, specs, compile_options, max_programs, _compile)


def _symbolic_batch(value_info) -> bool:
    dims = value_info.type.tensor_type.shape.dim
    return bool(dims) and not (dims[0].HasField("dim_value") and dims[0].dim_value > 0)


def _result(traced):
    outs = traced.outputs
    return next(iter(outs.values())) if len(outs) == 1 else outs
