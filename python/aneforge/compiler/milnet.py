"""backend="mil": a compiled program run through its emitted MIL (the text and weight blob
the engine would get) by the MIL interpreter, with the same call convention as the sim."""
from __future__ import annotations

import numpy as np

from .. import _core
from .. import mil as _mil

_NP_OUT = {"fp16": np.float32, "fp32": np.float32, "int32": np.int32, "bool": np.bool_,
           "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "fp64": np.float64,
           "int64": np.int64}


def _as_output(x, dt):
    """An output as the user's dtype; int32 and bool come from the engine's fp16 (NaN -> 0,
    +-inf saturate, as on the sim)."""
    x = np.asarray(x)
    if dt == "int32" and x.dtype.kind == "f":
        x = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=2**31 - 1, neginf=-2**31)
        return np.clip(x, -2**31, 2**31 - 1).astype(np.int32)
    if dt == "bool" and x.dtype.kind == "f":
        return x != 0
    return x.astype(_NP_OUT.get(dt, np.float32))


class MilExecutable:
    """Runs an interpreter over named inputs and returns outputs in the structure ``mode``
    (0: one array, 1: list, 2: dict keyed by ``out_names``)."""

    def __init__(self, interp, in_specs, out_specs, mode, label="net", convert=False, program=None):
        self.interp = interp
        self.program = program  # a compiled program: its integer inputs go in as the engine takes them
        self.convert = convert  # packages: any numeric array converts to the input dtype (as Core ML)
        self.in_specs = list(in_specs)     # [(user name, mil name, shape, dtype)]
        self.out_specs = list(out_specs)   # [(user name, mil name, dtype)]
        self.mode = mode
        self.label = label

    def _engine_ports(self, feeds):
        """Integer inputs as the engine takes them: checked (IndexError for an id outside its
        table), and an index input into a table of more than 2048 rows as one row per chunk,
        the ids offset by the chunk's first row (exact here on the host)."""
        arrays = [feeds[m] if dt == "int32" else None for _, m, _, dt in self.in_specs]
        _core.check_int_inputs(self.program, [None if a is None else np.ascontiguousarray(a, np.float32) for a in arrays])
        for i, (_, mil_name, _, dt) in enumerate(self.in_specs):
            rows = _core.index_port_rows(self.program, i) if dt == "int32" else 1
            if rows > 1:
                a = feeds[mil_name]
                feeds[mil_name] = np.stack([a - np.float32(2048 * k) for k in range(rows)])

    def _names(self):
        return ", ".join(f"{n} {tuple(s)}" for n, _, s, _ in self.in_specs) or "none"

    def __call__(self, *args, **kwargs):
        n = len(self.in_specs)
        if len(args) > n:
            raise ValueError(f"{self.label} expects {n} input(s) ({self._names()}), got {len(args)} positional arguments")
        given = list(args) + [None] * (n - len(args))
        names = [s[0] for s in self.in_specs]
        for k, v in kwargs.items():
            if k not in names:
                raise ValueError(f"{self.label} got an unexpected input '{k}'; its inputs are: {self._names()}")
            i = names.index(k)
            if given[i] is not None:
                raise ValueError(f"{self.label} got input '{k}' twice (by position and by name)")
            given[i] = v
        feeds = {}
        for (name, mil_name, shape, dtype), v in zip(self.in_specs, given):
            if v is None:
                raise ValueError(f"{self.label} is missing input '{name}' with shape {tuple(shape)}; its inputs are: {self._names()}")
            a = np.asarray(v)
            if a.dtype == object:
                raise TypeError(f"input '{name}': expected a NumPy array, got {type(v).__name__}")
            if self.convert and a.shape != tuple(shape) and all(d is not None for d in shape) and a.size == int(np.prod(shape)):
                a = a.reshape(shape)  # a package takes any array of the right size (e.g. a scalar for shape (1,))
            if len(a.shape) != len(shape) or any(d is not None and d != g for d, g in zip(shape, a.shape)):
                want = tuple("?" if d is None else d for d in shape)
                raise ValueError(f"input '{name}' expects shape {want}, got {tuple(a.shape)}")
            if dtype in ("fp16", "fp32", "fp64") and a.dtype.kind not in "fbiu":
                raise ValueError(f"input '{name}' ({dtype}) expects float32, float16 or float64, got {a.dtype}")
            if dtype in ("fp16", "fp32") and a.dtype.kind in "biu" and not self.convert:
                v = a.astype(np.float64)  # integers convert when exact, as on the sim
                exact = v.astype(np.float16) if dtype == "fp16" else v.astype(np.float32)
                bad = np.flatnonzero((exact.astype(np.float64) != v) | (np.abs(v) > 2**24))
                if bad.size:
                    raise ValueError(f"input '{name}' ({dtype}): the value {int(v.flat[bad[0]])} at flat index {bad[0]} "
                                     f"is not exactly representable" + (" in fp16" if dtype == "fp16" else ""))
            if dtype in ("int32", "bool") and self.program is not None:
                if a.dtype.kind not in "biu":
                    raise ValueError(f"input '{name}' ({dtype}) expects an integer or bool array data, got {a.dtype}")
                a = a.astype(np.float32)  # the engine holds int32 and bool in fp16 (docs/engine.md)
            feeds[mil_name] = a
        if self.program is not None:
            self._engine_ports(feeds)
        res = self.interp.run(feeds)
        outs = [_as_output(res[mil_name], dt) for _, mil_name, dt in self.out_specs]
        if self.mode == 0:
            return outs[0]
        if self.mode == 1:
            return outs
        if self.mode == 3:
            return tuple(outs)
        return {name: o for (name, _, _), o in zip(self.out_specs, outs)}


def from_program(program, mode, opset: int):
    """The mil backend for a compiled program: emit MIL text + blob, parse, interpret."""
    text = _core.mil_text(program, opset)
    blob = _core.mil_blob(program, opset)
    ir = _mil.parse_text(text, source=f"MIL (ios{opset})")
    storage = _mil.Storage(ties_away=program.ties_away, flush_subnormals=program.flush_subnormals)
    interp = _mil.Interpreter(ir, _mil.blobs_for_text(blob), storage)
    fn = interp.fn
    if len(fn.inputs) != len(program.inputs) or len(fn.block.outputs) != len(program.outputs):
        raise RuntimeError("MIL emission: the function's inputs/outputs do not mirror the program's")
    ins = [(name, mil_name, shape, dt) for (name, shape, dt), (mil_name, _) in zip(program.inputs, fn.inputs)]
    outs = [(name, mil_name, dt) for (name, _, dt), mil_name in zip(program.outputs, fn.block.outputs)]
    return MilExecutable(interp, ins, outs, mode, program=program)


class PackageNet:
    """An ML Program (.mlpackage) running on the mil backend. Call it with NumPy arrays by
    position or by input name; it returns a dict of output name -> array, as Core ML's
    predict does."""

    backend = "mil"

    def __init__(self, path, flush_subnormals=True, rounding="nearest_even"):
        import os
        self.path = os.fspath(path)
        spec, prog, blobs, _, _ = _mil.read_mlpackage(self.path)
        self.specification_version = spec
        self.program = prog
        storage = _mil.Storage(ties_away=rounding == "nearest_away", flush_subnormals=flush_subnormals)
        self._interp = _mil.Interpreter(prog, blobs, storage)
        fn = self._interp.fn
        # A flexible dimension (None) takes the size of the array given; the engine itself
        # needs fixed shapes (one program per shape).
        ins = [(name, name, t.shape, t.dtype) for name, t in fn.inputs]
        types = {n: t for o in fn.block.ops for n, t in o.outputs}
        outs = [(name, name, types[name].dtype if name in types else "fp32") for name in fn.block.outputs]
        self._exe = MilExecutable(self._interp, ins, outs, mode=2, label=os.path.basename(self.path), convert=True)

    def __call__(self, *args, **kwargs) -> dict:
        return self._exe(*args, **kwargs)

    @property
    def inputs(self) -> list:
        """(name, shape, dtype) of each input, in positional order."""
        return [(n, tuple(t.shape), t.dtype) for n, t in self._interp.fn.inputs]

    @property
    def outputs(self) -> list:
        return [(n, m, dt) for n, m, dt in self._exe.out_specs]

    @property
    def opset(self) -> str:
        return self._interp.fn.opset

    def op_counts(self) -> dict:
        """MIL op type -> how many times the main function uses it."""
        counts = {}
        for o in self._interp.fn.block.ops:
            counts[o.type] = counts.get(o.type, 0) + 1
        return counts

    def __repr__(self):
        ins = ", ".join(f"{n}{tuple(s)}" for n, s, _ in self.inputs)
        return f"PackageNet({self.path}, {self.opset}, inputs: {ins}, backend=mil)"


def load_mlpackage(path, flush_subnormals=True, rounding="nearest_even") -> PackageNet:
    """Load an ML Program (.mlpackage directory, or a bare model.mlmodel with weights/ beside
    it) on the mil backend, which runs it on any machine. Works for packages this library
    exports and for ML Programs made by coremltools. A malformed package raises ValueError
    (or OSError when files are missing) naming the file and what is wrong."""
    return PackageNet(path, flush_subnormals, rounding)
