"""af.from_torch and af.trace_torch: a PyTorch nn.Module into an af graph through torch.export.

The module is exported (in eval mode) to the core ATen opset (``run_decompositions``); each
ATen node is mapped by its entry in the ATen table (aten.py), except nodes computed from
constants alone (masks, position ids), which torch folds at import. Parameters and buffers become
constants (batch norm is then folded by the compiler), or af.parameter tensors with
``trainable=True``; layers with a weight take the name of their module ("features.0.0"), and
the outputs the names the model gives them.
"""
from __future__ import annotations

import contextlib
import operator

import numpy as np

from ..compiler.build import compile as _compile
from ..graph import functional as _F
from ..graph.state import parameter as _parameter
from ..graph.tensor import Tensor, borrowing_arrays
from . import aten_math  # noqa: F401  (registers its entries in the ATen table)
from .aten import ATEN, UNSUPPORTED, SymSize, Wide, aten


_SYM_OPS = {operator.mul: operator.mul, operator.add: operator.add, operator.sub: operator.sub,
            operator.floordiv: operator.floordiv}


def register_aten(name: str, fn) -> None:
    """Map the core ATen op ``name`` ("aten.erfinv.default" or "erfinv.default") to
    ``fn(ctx, *args, **kwargs)`` building af ops: tensor arguments arrive as af Tensors (or
    NumPy arrays while they are constants), sizes as ints. It then serves every import."""
    if not callable(fn):
        raise TypeError(f"register_aten: fn must be callable, got {type(fn).__name__}")
    key = name[len("aten."):] if name.startswith("aten.") else name
    if "." not in key:
        raise ValueError(f"register_aten: name an overload, e.g. '{key}.default' (got {name!r})")
    aten(key)(fn)


class TracedTorch:
    """An exported module as an af graph: ``inputs`` (name -> af input), ``outputs`` (a
    Tensor, tuple or dict as the module returns them), ``parameters`` (name -> af.parameter,
    with trainable=True). Extend the graph, then af.compile(outputs) or
    af.compile_train_step(loss, list(parameters.values()), optimizer)."""

    def __init__(self, inputs, outputs, parameters):
        self.inputs, self.outputs, self.parameters = inputs, outputs, parameters

    def __repr__(self):
        return (f"TracedTorch(inputs={list(self.inputs)}, outputs={_describe(self.outputs)}, "
                f"{len(self.parameters)} parameters)")


def _describe(outs):
    if isinstance(outs, dict):
        return list(outs)
    return f"{len(outs)} tensors" if isinstance(outs, tuple) else "one tensor"


class _Context:
    """What an ATen entry sees of the node being mapped: the module it came from (to name
    weight layers) and the size conversions."""

    def __init__(self):
        self.node = None
        self.names: dict = {}
        self.zero_one: set = set()  # node ids of integer tensors known to hold only 0 and 1 (masks)
        self.batch_ref = None  # with dynamic_batch: an input whose first size is the batch

    def layer(self, t: Tensor) -> Tensor:
        """``t`` named after the module that computed it ("encoder.layer.0.attention.query")."""
        stack = self.node.meta.get("nn_module_stack") or {}
        if stack:
            path = list(stack.values())[-1][0]
            path = path.replace("L['self'].", "").replace("L__self___", "") if isinstance(path, str) else ""
            if path:
                k = self.names[path] = self.names.get(path, 0) + 1
                t._t.set_name(path if k == 1 else f"{path}_{k}")
        return t

    @staticmethod
    def sizes(shape, numel=None):
        """A list of sizes, the one following the batch as -1. A -1 of the model's own beside
        it (Swin's windows.view(-1, ...)) is resolved from ``numel``, the traced element count."""
        shape = list(shape)
        if numel is not None and -1 in shape and any(isinstance(s, SymSize) for s in shape):
            known = int(np.prod([int(s) for s in shape if not (s == -1 and not isinstance(s, SymSize))]))
            shape[shape.index(-1)] = numel // max(known, 1)
        out = [-1 if isinstance(s, SymSize) else int(s) for s in shape]
        if out.count(-1) > 1:
            raise NotImplementedError(f"a reshape to {list(shape)} with more than one size following the batch")
        return out


def _to_torch(x):
    import torch
    if isinstance(x, torch.Tensor):
        return x
    a = np.asarray(x)
    return torch.from_numpy(a.astype(np.float32) if a.dtype.kind == "f" else a)


def _source_line(node) -> str:
    """The user's file:line of the call that made ``node`` (from the export's stack trace)."""
    trace = node.meta.get("stack_trace") or ""
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip().startswith("File ")]
    user = [ln for ln in lines if "/torch/" not in ln]
    return (user or lines or ["(no source line)"])[-1]


def _export(module, example_inputs, dynamic_batch, example_kwargs=None):
    import torch
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: module must be a torch.nn.Module, got {type(module).__name__}")
    if isinstance(example_inputs, (torch.Tensor, np.ndarray)):
        example_inputs = (example_inputs,)
    kwargs = {k: _to_torch(v) for k, v in (example_kwargs or {}).items()}
    if not isinstance(example_inputs, (tuple, list)) or not example_inputs and not kwargs:
        raise TypeError("from_torch: example_inputs must be a tuple of tensors (the arguments of forward)")
    args = tuple(_to_torch(a) for a in example_inputs)
    dynamic = None
    if dynamic_batch:  # exported at batch 2: torch specialises a size of 1
        args = tuple(torch.cat([a[:1], a[:1]]) for a in args)
        kwargs = {k: torch.cat([v[:1], v[:1]]) for k, v in kwargs.items()}
        batch = torch.export.Dim("batch")
        dynamic = (tuple({0: batch} for _ in args), {k: {0: batch} for k in kwargs}) if kwargs else \
            tuple({0: batch} for _ in args)
    was_training = module.training
    module.eval()
    try:
        ep = torch.export.export(module, args, kwargs or None, dynamic_shapes=dynamic)
        ep = ep.run_decompositions()
    except Exception as e:  # noqa: BLE001 - torch's own errors name the construct (control flow, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"from_torch: torch.export could not capture {type(module).__name__}: {first}. "
                         "Data-dependent control flow and shapes cannot run on the engine (static programs): "
                         "make the branch a function of shapes, or split the model there") from None
    finally:
        module.train(was_training)
    return ep, args


def _constant_nodes(ep, trainable) -> set:
    """The nodes computed from constants alone (parameters, buffers, lifted constants, sizes):
    torch folds them at import, as the compiler folds constant layers; random ops never fold."""
    specs = {s.arg.name: s.kind.name for s in ep.graph_signature.input_specs}
    const = set()
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            kind = specs[node.name]
            if kind != "USER_INPUT" and not (trainable and kind == "PARAMETER"):
                const.add(node.name)
        elif node.op == "call_function":
            name = _op_name(node.target)
            if UNSUPPORTED.get(name, "").startswith("random") or name.startswith("higher_order."):
                continue
            if all(a.name in const for a in node.all_input_nodes):
                const.add(node.name)
    return const


def _fold(node, a, kw):
    """Run ``node`` with torch on constant arguments; the result as NumPy (floats float32,
    integers int32, bools bool)."""
    import torch

    def to_torch(v):
        if isinstance(v, np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(v))
            return t.long() if v.dtype.kind in "iu" else t
        if isinstance(v, (list, tuple)):
            return type(v)(to_torch(x) for x in v)
        return v

    def to_numpy(v):
        if isinstance(v, torch.Tensor):
            v = v.detach()
            if v.dtype == torch.bool:
                return v.numpy()
            return v.to(torch.float32).numpy() if v.is_floating_point() else v.numpy().astype(np.int32)
        if isinstance(v, (list, tuple)):
            return type(v)(to_numpy(x) for x in v)
        return v
    with torch.no_grad():
        return to_numpy(node.target(*to_torch(list(a)), **{k: to_torch(v) for k, v in kw.items()}))


def _check_supported(ep, const):
    """One error for every op the table lacks, each with the user's source line."""
    missing = {}
    for node in ep.graph.nodes:
        if node.op != "call_function" or node.name in const:
            continue
        name = _op_name(node.target)
        if name.startswith("higher_order."):
            raise ValueError(f"from_torch: the model uses {name} ({_source_line(node)}): control flow cannot run "
                             "on the engine, whose programs are static; make the branch a function of shapes")
        if name not in ATEN and name not in _SYM_NAMES:
            missing.setdefault(name, _source_line(node))
    if missing:
        rows = "\n".join(f"  aten.{n}: {UNSUPPORTED.get(n, 'not mapped yet')}; at {where}"
                         for n, where in sorted(missing.items()))
        raise NotImplementedError(f"from_torch: {len(missing)} ATen op(s) have no mapping to af ops:\n{rows}\n"
                                  "Rewrite them in ops the table has (docs/import.md lists it), or map one with "
                                  "af.register_aten(name, fn).")


_SYM_NAMES = {"sym_size.int", "mul", "add", "sub", "floordiv"}
_WIDE_OPS = {"view.default", "_unsafe_view.default", "reshape.default", "permute.default", "clone.default"}


def _op_name(target) -> str:
    if target is operator.getitem:
        return "getitem"
    if target in _SYM_OPS:
        return target.__name__
    name = str(target)
    if name.startswith("aten."):
        return name[len("aten."):]
    if "higher_order" in name or type(target).__name__ == "HigherOrderOperator":
        return f"higher_order.{getattr(target, '__name__', name)}"
    return name


def trace_torch(module, example_inputs, *, trainable=False, dynamic_batch=False, example_kwargs=None) -> TracedTorch:
    """``module`` (a torch.nn.Module) exported with ``example_inputs`` (and keyword arguments
    ``example_kwargs``) and mapped into an af graph: the graph's inputs (named as forward
    names them), outputs and (trainable=True) parameters."""
    import torch
    ep, args = _export(module, example_inputs, dynamic_batch, example_kwargs)
    const = _constant_nodes(ep, trainable)
    _check_supported(ep, const)
    sig = ep.graph_signature
    specs = {s.arg.name: s for s in sig.input_specs}
    env, inputs, params = {}, {}, {}
    ctx = _Context()
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            spec = specs[node.name]
            kind = spec.kind.name
            if kind == "USER_INPUT":
                val = node.meta["val"]  # the traced tensor: a symbolic size follows the batch
                shape = tuple(d if isinstance(d, int) else None for d in val.shape)
                dtype = "int32" if not val.dtype.is_floating_point else "fp16"
                env[node.name] = inputs[node.name] = _F.input(shape, dtype, name=node.name)
                if dynamic_batch and ctx.batch_ref is None and shape and shape[0] is None:
                    ctx.batch_ref = env[node.name]
            else:
                # non-persistent buffers (position ids) and lifted constants live in ep.constants
                value = ep.state_dict[spec.target] if spec.target in ep.state_dict else ep.constants[spec.target]
                arr = value.detach().to(torch.float32).numpy() if value.is_floating_point() else \
                    value.detach().numpy() if value.dtype == torch.bool else value.detach().numpy().astype(np.int32)
                if trainable and kind == "PARAMETER" and arr.ndim >= 1:
                    env[node.name] = params[spec.target] = _parameter(arr, name=spec.target)
                else:
                    env[node.name] = arr
        elif node.op == "call_function":
            ctx.node = node
            name = _op_name(node.target)
            a = [_arg(env, x) for x in node.args]
            kw = {k: _arg(env, v) for k, v in node.kwargs.items()}
            if node.name in const and name not in _SYM_NAMES:
                env[node.name] = _fold(node, a, kw)
            elif name == "sym_size.int":
                n = a[0].shape[a[1]]
                env[node.name] = SymSize(n) if dynamic_batch and a[1] == 0 else int(n)
            elif node.target in _SYM_OPS:
                r = _SYM_OPS[node.target](int(a[0]), int(a[1]))
                env[node.name] = SymSize(r) if isinstance(a[0], SymSize) or isinstance(a[1], SymSize) else r
            else:
                if name not in _WIDE_OPS and any(isinstance(v, Wide) for v in a):
                    raise NotImplementedError(f"from_torch: aten.{name} at {_source_line(node)} takes a tensor of "
                                              f"more than 5 dimensions (the engine's maximum rank); only views and "
                                              "permutes that come back to 5 or fewer are mapped")
                try:
                    env[node.name] = ATEN[name](ctx, *a, **kw)
                except (NotImplementedError, ValueError, TypeError) as e:
                    raise type(e)(f"from_torch: aten.{name} at {_source_line(node)}: {e}") from None
        elif node.op == "output":
            outs = [_arg(env, x) for x in node.args[0]]
    user_outs = [o for o, s in zip(outs, sig.output_specs) if s.kind.name == "USER_OUTPUT"]
    user_outs = [o if isinstance(o, Tensor) else _F.as_tensor(np.asarray(o, np.float32)) for o in user_outs]
    return TracedTorch(inputs, _structure(user_outs, ep.call_spec.out_spec), params)


def _arg(env, x):
    import torch.fx
    if isinstance(x, torch.fx.Node):
        return env[x.name]
    if isinstance(x, (list, tuple)):
        return type(x)(_arg(env, v) for v in x)
    return x


def _structure(outs, spec):
    """The outputs as the module returns them: a dict (and HF ModelOutput) by its keys, a
    tuple, or one tensor."""
    if spec is None or spec.is_leaf():
        return outs[0]
    keys = spec.context if isinstance(spec.context, (list, tuple)) else None
    if keys and all(isinstance(k, str) for k in keys) and len(keys) == len(outs) and \
            all(c.num_leaves == 1 for c in spec.children()):
        return dict(zip(keys, outs))
    return tuple(outs)


def from_torch(module, example_inputs, *, dynamic_batch=False, trainable=False, example_kwargs=None,
               **compile_options):
    """A compiled Net from a torch.nn.Module: exported with ``example_inputs`` (the arguments
    of forward; ``example_kwargs`` by keyword), mapped op by op (docs/import.md), compiled with ``compile_options`` (those of
    af.compile: target, compress, precision, backend, ...). ``dynamic_batch``: any batch size
    (one program per size, as af.input((None, ...))); ``trainable``: parameters as
    af.parameter (defaults to their values; use af.trace_torch to build a loss on them)."""
    # A static-shape import compiles at once and drops its graph, so the graph may read the
    # module's weights in place (peak memory: the program's fp16 copy, not a float32 one more).
    # A flexible batch keeps its graph to compile new sizes later: it copies them.
    with borrowing_arrays() if not dynamic_batch else contextlib.nullcontext():
        traced = trace_torch(module, example_inputs, trainable=trainable, dynamic_batch=dynamic_batch,
                             example_kwargs=example_kwargs)
        return _compile(traced.outputs, inputs=list(traced.inputs.values()), **compile_options)
