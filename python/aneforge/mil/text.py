"""Parser of MIL text: program(1.0) (iOS17 and earlier, scalars as tensor<T, []>) and
program(1.3) (iOS18, bare scalars). This is the form the engine's compile calls take."""
from __future__ import annotations

import re

import numpy as np

from .ir import NUMPY_DTYPES, Block, Function, MilError, Op, Program, TensorType, check_shape, opset_number

_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<num>[-+]?(?:0[xX][0-9a-fA-F]*\.?[0-9a-fA-F]*(?:[pP][-+]?\d+)?|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<ident>-?[A-Za-z_@][A-Za-z0-9_@.]*)
  | (?P<arrow>->)
  | (?P<punct>[()\[\]{}<>,=;?])
""", re.VERBOSE)

SCALAR_TYPES = set(NUMPY_DTYPES) | {"string", "bf16"}
MAX_TEXT = 1 << 30


class BlobRef:
    """BLOBFILE(path, offset): a constant whose data lives in a weight file."""

    def __init__(self, path: str, offset: int):
        self.path, self.offset = path, offset

    def __repr__(self):
        return f"BLOBFILE({self.path!r}, {self.offset})"


def tokenize(text: str):
    if len(text) > MAX_TEXT:
        raise MilError(f"MIL text of {len(text)} characters is larger than the 1 GiB limit")
    toks, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise MilError(f"MIL text line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind != "ws":
            toks.append((kind, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    toks.append(("eof", "", line))
    return toks


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


class _Parser:
    def __init__(self, text: str, source: str):
        self.toks = tokenize(text)
        self.i = 0
        self.source = source

    # -- tokens ----------------------------------------------------------------------
    def peek(self, k=0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def fail(self, msg):
        raise MilError(f"{self.source} line {self.peek()[2]}: {msg} (at {self.peek()[1]!r})")

    def next(self):
        t = self.toks[self.i]
        if t[0] == "eof":
            self.fail("unexpected end of text")
        self.i += 1
        return t

    def accept(self, value):
        if self.peek()[1] == value and self.peek()[0] != "str":
            self.i += 1
            return True
        return False

    def expect(self, value):
        if not self.accept(value):
            self.fail(f"expected {value!r}")

    def ident(self):
        t = self.next()
        if t[0] != "ident":
            self.i -= 1
            self.fail("expected a name")
        return t[1]

    # -- types -----------------------------------------------------------------------
    def type(self) -> TensorType:
        name = self.ident()
        if name in ("tensor", "state"):
            self.expect("<")
            if name == "state":
                inner = self.type()
                self.expect(">")
                return TensorType(inner.dtype, inner.shape, "state")
            dtype = self.ident()
            if dtype not in SCALAR_TYPES:
                self.i -= 1
                self.fail(f"unknown dtype '{dtype}'")
            self.expect(",")
            self.expect("[")
            dims = []
            while not self.accept("]"):
                if dims:
                    self.expect(",")
                if self.accept("?"):
                    dims.append(None)
                else:
                    t = self.next()
                    if t[0] != "num" or not t[1].isdigit():
                        self.i -= 1
                        self.fail("expected a dimension")
                    dims.append(int(t[1]))
            self.expect(">")
            return TensorType(dtype, check_shape(dims, f"{self.source} line {self.peek()[2]}"))
        if name in ("dict", "list", "tuple"):
            self.expect("<")
            parts = [self.type()]
            while self.accept(","):
                parts.append(self.type())
            self.expect(">")
            return TensorType(parts[0].dtype, (), name)
        if name in SCALAR_TYPES:
            return TensorType(name, ())
        self.i -= 1
        self.fail("expected a type")

    def starts_literal(self) -> bool:
        kind, v, _ = self.peek()
        if kind != "ident":
            return False
        if v in ("tensor", "dict", "state"):
            return self.peek(1)[1] == "<"
        return v in SCALAR_TYPES and self.peek(1)[1] == "("

    # -- literals --------------------------------------------------------------------
    def scalar(self, dtype):
        kind, v, _ = self.next()
        if kind == "str":
            return _unquote(v)
        if kind == "ident" and v in ("true", "false"):
            return v == "true"
        if kind == "ident" and v.lstrip("-") in ("inf", "nan"):
            return float(v)
        if kind != "num":
            self.i -= 1
            self.fail("expected a value")
        if dtype in ("fp16", "fp32", "fp64", "bf16"):
            return float.fromhex(v) if "x" in v.lower() else float(v)
        try:
            return int(v, 0) if "x" in v.lower() else int(v)
        except ValueError:
            return float(v)

    def literal(self):
        t = self.type()
        if not t.is_static:
            self.fail(f"a literal of type {t} needs a fixed shape")
        self.expect("(")
        if t.kind == "dict":  # buildInfo: {{"k", "v"}, ...}
            self.expect("{")
            d = {}
            while not self.accept("}"):
                self.accept(",")
                self.expect("{")
                k = self.scalar("string")
                self.expect(",")
                d[k] = self.scalar("string")
                self.expect("}")
            self.expect(")")
            return t, d
        if self.accept("BLOBFILE"):
            self.expect("(")
            self.expect("path")
            self.expect("=")
            _, path = self.literal()
            self.expect(",")
            self.expect("offset")
            self.expect("=")
            _, offset = self.literal()
            self.expect(")")
            self.expect(")")
            return t, BlobRef(str(path), int(offset))
        if self.accept("["):
            vals = []
            while not self.accept("]"):
                if vals:
                    self.expect(",")
                vals.append(self.scalar(t.dtype))
            self.expect(")")
            return t, self._array(t, vals)
        v = self.scalar(t.dtype)
        self.expect(")")
        return t, (v if t.dtype == "string" else self._array(t, [v]))

    def _array(self, t: TensorType, vals):
        if t.dtype == "string":
            if t.shape:
                return np.array(vals, dtype=object).reshape(t.shape)
            return vals[0]
        n = int(np.prod(t.shape)) if t.shape else 1
        if len(vals) != n:
            self.fail(f"{t} literal has {len(vals)} values, expected {n}")
        if t.dtype not in NUMPY_DTYPES:
            self.fail(f"literal of dtype {t.dtype} is not supported")
        with np.errstate(over="ignore"):
            return np.array(vals, dtype=np.float64 if t.dtype in ("fp16", "fp32", "fp64") else None).astype(
                NUMPY_DTYPES[t.dtype]).reshape(t.shape)

    # -- structure -------------------------------------------------------------------
    def attributes(self) -> dict:
        attrs = {}
        if self.accept("["):
            while not self.accept("]"):
                if attrs:
                    self.expect(",")
                k = self.ident()
                self.expect("=")
                attrs[k] = self.literal()
        return attrs

    def argument(self):
        if self.accept("("):
            items = []
            while not self.accept(")"):
                if items:
                    self.expect(",")
                items.extend(self.argument())
            return items
        if self.starts_literal():
            return [("value", self.literal())]
        return [("var", self.ident())]

    def statement(self) -> Op:
        outs = []
        paren = self.accept("(")
        while True:
            t = self.type()
            outs.append((self.ident(), t))
            if not self.accept(","):
                break
        if paren:
            self.expect(")")
        self.expect("=")
        op_type = self.ident()
        self.expect("(")
        inputs = {}
        while not self.accept(")"):
            if inputs:
                self.expect(",")
            k = self.ident()
            self.expect("=")
            if k in inputs:
                self.fail(f"input '{k}' given twice")
            inputs[k] = self.argument()
        attrs = self.attributes()
        self.expect(";")
        name_attr = attrs.pop("name", None)
        name = name_attr[1] if name_attr else outs[0][0]
        return Op(op_type, str(name), inputs, outs, {k: v for k, v in attrs.items()})

    def function(self) -> Function:
        self.expect("func")
        name = self.ident()
        self.expect("<")
        opset = self.ident()
        self.expect(">")
        self.expect("(")
        inputs = []
        while not self.accept(")"):
            if inputs:
                self.expect(",")
            t = self.type()
            inputs.append((self.ident(), t))
        self.attributes()
        self.expect("{")
        ops = []
        while not self.accept("}"):
            ops.append(self.statement())
        self.expect("->")
        self.expect("(")
        outs = []
        while not self.accept(")"):
            if outs:
                self.expect(",")
            outs.append(self.ident())
        self.expect(";")
        opset_number(opset)
        return Function(name, opset, inputs, Block([], ops, outs))

    def program(self) -> Program:
        self.expect("program")
        self.expect("(")
        t = self.next()
        if t[0] != "num":
            self.fail("expected the program version")
        self.expect(")")
        self.attributes()
        self.expect("{")
        prog = Program(t[1], source=self.source)
        while not self.accept("}"):
            f = self.function()
            if f.name in prog.functions:
                self.fail(f"function '{f.name}' defined twice")
            prog.functions[f.name] = f
        if self.peek()[0] != "eof":
            self.fail("text after the end of the program")
        prog.opset_number = opset_number(prog.main.opset)
        return prog


def parse(text: str, source: str = "MIL text") -> Program:
    """MIL text -> Program. Constants in weight files stay BlobRefs until resolved."""
    try:
        return _Parser(text, source).program()
    except MilError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, RecursionError) as e:  # no check above names it
        raise MilError(f"{source}: malformed MIL text ({type(e).__name__}: {str(e)[:120]})") from None
