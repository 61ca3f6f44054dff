"""Python functions for every op of the C++ op table, generated from the table itself.

Each op's signature (names, defaults, which parameters are tensors) lives in its C++ OpDef,
so adding an op there makes ``af.<name>`` (and ``Tensor.<name>`` for methods) appear here.
"""
from __future__ import annotations

import ast
import inspect
import numbers

from . import _core
from ._tensor import Tensor, as_tensor

OPS: dict = {}
TABLE: list = []

_TENSOR_KINDS = ("tensor", "tensor?", "tensors")

# The same argument under PyTorch's name and the seed's: either spelling reaches the op's
# parameter, whichever of the two the op table uses.
ALIASES = {"padding": "pad", "pad": "padding", "dim": "axis", "axis": "dim", "keepdim": "keepdims", "keepdims": "keepdim"}


def _translate(name, names, kwargs):
    """kwargs with aliases renamed to the op's own parameter names; an unknown keyword
    suggests the closest parameter."""
    import difflib
    out = {}
    for k, v in kwargs.items():
        key = k
        if k not in names and ALIASES.get(k) in names:
            key = ALIASES[k]
        if key not in names:
            close = difflib.get_close_matches(k, list(names) + [a for a, b in ALIASES.items() if b in names], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise TypeError(f"{name}() got an unexpected keyword argument '{k}'{hint}")
        if key in out:
            raise TypeError(f"{name}() got '{key}' twice (as '{key}' and its alias)")
        out[key] = v
    return out


def _norm_attr(kind, value, op, pname):
    try:
        return _norm_attr_checked(kind, value, op, pname)
    except (ValueError, TypeError) as e:
        if str(e).startswith(f"{op}:"):
            raise
        raise TypeError(f"{op}: {pname} has an invalid value {value!r} ({e})") from None


def _norm_attr_checked(kind, value, op, pname):
    if value is None:
        return None
    if kind == "axes":
        if isinstance(value, numbers.Integral):
            return (int(value),)
        return tuple(int(v) for v in value)
    if kind == "ints":
        if isinstance(value, numbers.Integral):
            return (int(value),)
        try:
            return tuple(int(v) for v in value)
        except TypeError:
            raise TypeError(f"{op}: {pname} must be an int or a tuple of ints, got {value!r}") from None
    if kind == "int":
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"{op}: {pname} must be an int, got {value!r}")
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return bool(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _make(spec):
    name = spec["name"]
    params = spec["params"]
    sig_params = []
    for pname, kind, dflt in params:
        if dflt == "*":
            sig_params.append(inspect.Parameter(pname, inspect.Parameter.VAR_POSITIONAL))
            continue
        default = inspect.Parameter.empty if dflt == "" else ast.literal_eval(dflt)
        sig_params.append(inspect.Parameter(pname, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
    sig = inspect.Signature(sig_params)
    multi = spec["num_outputs"] != 1

    names = [p[0] for p in params]

    def fn(*args, **kwargs):
        kwargs = _translate(name, names, kwargs)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{name}{sig}: {e}") from None
        bound.apply_defaults()
        a = dict(bound.arguments)
        for pname, kind, dflt in params:  # *operands may also be given as one list
            if dflt == "*" and len(a[pname]) == 1 and isinstance(a[pname][0], (list, tuple)):
                a[pname] = a[pname][0]
        # Python scalars take the dtype of the tensors around them, preferring a float one.
        seen = [t.dtype for pname, kind, _ in params if kind in _TENSOR_KINDS
                for t in (a[pname] if kind == "tensors" else [a[pname]]) if isinstance(t, Tensor)]
        ref = next((d for d in seen if d in ("fp16", "fp32")), seen[0] if seen else None)
        tensors, attrs = [], {}
        for pname, kind, _ in params:
            v = a[pname]
            if kind == "tensor":
                tensors.append(as_tensor(v, ref, f"{name}: {pname}")._t)
            elif kind == "tensor?":
                attrs[f"has_{pname}"] = v is not None
                if v is not None:
                    tensors.append(as_tensor(v, ref, f"{name}: {pname}")._t)
            elif kind == "tensors":
                tensors.extend(as_tensor(t, ref, f"{name}: {pname}")._t for t in v)
            else:
                attrs[pname] = _norm_attr(kind, v, name, pname)
        outs = _core.make(name, tensors, attrs)
        if len(outs) == 1 and not multi:
            return Tensor(outs[0])
        return tuple(Tensor(t) for t in outs)

    fn.__name__ = name
    fn.__qualname__ = name
    fn.__signature__ = sig
    fn.__doc__ = f"{spec['doc']}\n\nCategory: {spec['category']}; MIL: {spec['mil_op'] or '-'}."
    return fn


def _install():
    for spec in _core.op_table():
        if spec["category"] == "graph":
            continue
        TABLE.append(spec)
        fn = _make(spec)
        OPS[spec["name"]] = fn
        if spec["method"] and not hasattr(Tensor, spec["name"]):
            setattr(Tensor, spec["name"], fn)


_install()


def ops(category: str | None = None) -> list:
    """The op table: one dict per op (name, category, bridge, composite, mil_op, doc, params)."""
    return [dict(s) for s in TABLE if category is None or s["category"] == category]
