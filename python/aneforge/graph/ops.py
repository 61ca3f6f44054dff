"""Python functions for every op of the C++ op table, generated from the table itself.

Each op's signature (names, defaults, which parameters are tensors) lives in its C++ OpDef,
so adding an op there makes ``af.<name>`` (and ``Tensor.<name>`` for methods) appear here.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import numbers

from .. import _core
from .tensor import OPS as _TENSOR_OPS, Tensor, as_tensor
from .trace import record

OPS = _TENSOR_OPS  # the name -> function table, shared with tensor.py's operators
TABLE: list = []

_TENSOR_KINDS = ("tensor", "tensor?", "tensors")

# The Python API shows PyTorch's parameter names (af::python_name in the op table); the
# table keeps MIL's (axis, keepdims, pad), and the seed's spellings stay accepted as aliases.
ALIASES = {"padding": "pad", "pad": "padding", "dim": "axis", "axis": "dim", "keepdim": "keepdims", "keepdims": "keepdim"}


def _translate(name, names, kwargs):
    """kwargs with aliases renamed to the function's parameter names; an unknown keyword
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
    params = [(py, k, d, p) for (p, k, d), py in zip(spec["params"], spec["python_names"])]
    sig_params = []
    for pname, kind, dflt, _ in params:
        if dflt == "*":
            sig_params.append(inspect.Parameter(pname, inspect.Parameter.VAR_POSITIONAL))
            continue
        default = inspect.Parameter.empty if dflt == "" else ast.literal_eval(dflt)
        sig_params.append(inspect.Parameter(pname, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
    sig = inspect.Signature(sig_params)
    multi = spec["num_outputs"] != 1

    names = [p[0] for p in params]
    spec["py_params"] = [(p, k, d) for p, k, d, _ in params]

    defaults = {p.name: p.default for p in sig_params if p.default is not inspect.Parameter.empty}
    varargs = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in sig_params)

    def bind_fast(args, kwargs):
        """sig.bind + apply_defaults for calls without *operands (graph building calls an op
        per layer; Signature.bind is a third of that): None where sig.bind must decide."""
        if varargs or len(args) > len(names):
            return None
        a = dict(zip(names, args))
        for k, v in kwargs.items():
            if k in a:
                return None
            a[k] = v
        for n in names[len(args):]:
            if n not in a:
                if n not in defaults:
                    return None
                a[n] = defaults[n]
        return a

    def fn(*args, **kwargs):
        kwargs = _translate(name, names, kwargs)
        a = bind_fast(args, kwargs)
        if a is None:
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{name}{sig}: {e}") from None
            bound.apply_defaults()
            a = dict(bound.arguments)
        for pname, kind, dflt, _ in params:  # *operands may also be given as one list
            if dflt == "*" and len(a[pname]) == 1 and isinstance(a[pname][0], (list, tuple)):
                a[pname] = a[pname][0]
        # Python scalars take the dtype of the tensors around them, preferring a float one.
        seen = [t.dtype for pname, kind, _, _ in params if kind in _TENSOR_KINDS
                for t in (a[pname] if kind == "tensors" else [a[pname]]) if isinstance(t, Tensor)]
        ref = next((d for d in seen if d in ("fp16", "fp32")), seen[0] if seen else None)
        if ref == "bool" and name == "where" and any(isinstance(a[p], float) for p in ("x", "y") if p in a):
            ref = "fp16"  # where(mask, 1.0, -1.0): the values are floats, only the condition is bool
        tensors, attrs = [], {}
        for pname, kind, _, table_name in params:
            v = a[pname]
            if kind == "tensor":
                tensors.append(as_tensor(v, ref, f"{name}: {pname}")._t)
            elif kind == "tensor?":
                attrs[f"has_{table_name}"] = v is not None
                if v is not None:
                    tensors.append(as_tensor(v, ref, f"{name}: {pname}")._t)
            elif kind == "tensors":
                tensors.extend(as_tensor(t, ref, f"{name}: {pname}")._t for t in v)
            else:
                attrs[table_name] = _norm_attr(kind, v, name, pname)
        outs = _core.make(name, tensors, attrs)
        result = Tensor(outs[0]) if len(outs) == 1 and not multi else tuple(Tensor(t) for t in outs)
        return record(fn, args, kwargs, result)

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
        for alias in [spec["name"], *spec["aliases"]]:
            OPS[alias] = fn
            if spec["method"] and not hasattr(Tensor, alias):
                setattr(Tensor, alias, fn)


_install()


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One entry of the op table as the Python API sees it."""
    name: str
    category: str
    signature: str          # the Python signature, PyTorch's parameter names
    doc: str
    kind: str               # "native" (one engine op), "bridge" (lowered in-program) or "composite"
    differentiable: bool
    first_family: str       # the first engine family that runs it natively ("h13" = all)
    aliases: tuple          # other names (PyTorch's), e.g. ("cat",) for concat
    mil_op: str
    method: bool            # also a Tensor method
    num_outputs: int
    # "yes"; "none": integer-valued or constant almost everywhere (comparisons, floor,
    # argmax), so no gradient flows through it; "built ops" (composites); "not yet".
    gradient: str = "yes"

    @property
    def native(self) -> bool:
        return self.kind == "native"

    @property
    def bridge(self) -> bool:
        return self.kind == "bridge"


def _info(spec) -> OpInfo:
    kind = "bridge" if spec["bridge"] else "composite" if spec["composite"] else "native"
    return OpInfo(spec["name"], spec["category"], f"{spec['name']}{inspect.signature(OPS[spec['name']])}",
                  spec["doc"], kind, spec["differentiable"], spec["min_family"], tuple(spec["aliases"]),
                  spec["mil_op"], spec["method"], spec["num_outputs"], spec["gradient"])


def ops(name: str | None = None, category: str | None = None) -> list[OpInfo]:
    """The op table as OpInfo entries: every op, the op called ``name`` (or one of its
    aliases: ``af.ops("cat")`` is concat), or the ops of ``category``."""
    import difflib
    infos = [_info(s) for s in TABLE]
    if name is not None:
        infos = [i for i in infos if name == i.name or name in i.aliases]
        if not infos:
            close = difflib.get_close_matches(str(name), list(OPS), n=3)
            raise ValueError(f"no op named {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    if category is not None:
        cats = sorted({s["category"] for s in TABLE})
        if category not in cats:
            raise ValueError(f"no op category {category!r}; the categories are {', '.join(cats)}")
        infos = [i for i in infos if i.category == category]
    return infos
