"""Net: a compiled program loaded on a backend (sim, mil or the engine), and where programs
can run."""
from __future__ import annotations

import os

import numpy as np

from .. import _core

_BACKENDS = ("sim", "mil", "engine", "auto")


def devices() -> list:
    """Where programs can run: ``sim`` and ``mil`` everywhere, and the Neural Engine with
    its detected target (from the chip) and the dispatch path in use (``e5rt`` or
    ``inmemory``), or the reason it is unavailable."""
    e = _core.engine_probe()
    return [
        {"name": "sim", "available": True, "description": "CPU simulator of the engine's fp16 numerics"},
        {"name": "mil", "available": True, "description": "reference interpreter of the emitted MIL program"},
        {"name": "engine", "available": e["available"], "target": e["target"] or None, "chip": e["chip"] or None,
         "path": e["path"] or None, "library": e["library"] or None, "reason": e["reason"] or None,
         "loaded_programs": e["loaded_programs"], "max_loaded_programs": e["max_loaded_programs"],
         "cache": e["cache"], "description": "the Apple Neural Engine, without CoreML"},
    ]


def _resolve_backend(backend, target):
    """backend "auto": the engine where there is one, else the simulator. For the engine the
    default target is the detected one."""
    if backend not in ("auto", "engine"):
        return backend, target
    e = _core.engine_probe()
    if backend == "auto":
        if not e["available"]:
            return "sim", target
        backend = "engine"
    if not e["available"]:
        raise _core.EngineError(f"backend 'engine' is unavailable: {e['reason']}")
    return backend, target or e["target"]


class Net:
    """A compiled program loaded on a backend. Call it with NumPy arrays."""

    def __init__(self, program, backend, mode, opset="ios18"):
        if program.precision == "fp32" and backend != "sim":
            raise ValueError(f"precision='fp32' runs on the sim only: the MIL program the {backend} backend runs is "
                             "emitted in fp16, the engine's precision (use backend='sim' to compare in float32)")
        self._program = program
        self._mode = mode
        if backend == "mil":
            from .milnet import from_program
            self._exe = from_program(program, mode, _opset(opset))
        else:
            self._exe = _core.Executable(program, backend, mode)
        self.backend = backend
        self.opset = opset

    @property
    def flexible(self) -> bool:
        """True for nets with a flexible batch (af.input((None, ...))): one program per batch size."""
        return False

    def compile_for(self, batch: int) -> "Net":
        """This net, when its batch is ``batch``: a net with fixed shapes has one program.
        (Nets built from ``af.input((None, ...))`` compile one per batch size.)"""
        have = self.inputs[0][1][0] if self.inputs and self.inputs[0][1] else None
        if batch != have:
            raise ValueError(f"compile_for: this net was compiled for fixed shapes (batch {have}); build it "
                             "from af.input((None, ...)) for a flexible batch")
        return self

    @property
    def compress(self):
        """The weight compression per layer ({layer: format}), None when there is none."""
        return dict(self._program.compress_layers) or None

    def packed_weights(self) -> dict:
        """{layer: af.PackedWeights} of the compressed layers, as this program holds them
        (arrays: q8, scales, q4, lut, mask, nz16; dequantize()). Pass the dict as
        ``compress=`` to compile another graph with the same layer names (another batch or
        sequence length) with exactly these weights, gate and data-aware rounding included."""
        return {name: _core.packed_weight(self._program, name) for name, _, _, enc, *_ in self._program.weight_layers
                if enc != "fp16"}

    def compression_report(self) -> dict:
        """Per layer with a weight: format, bytes held, fp16 bytes, the stored weight's relative
        error, and the gate's measurements (cosine with only that layer compressed, and why a
        layer fell back); with the program's min cosine on the calibration data."""
        rep = getattr(self, "_compression", None)
        if rep is None:
            from .compress import _report
            rep = _report(self, {}, None)
        return rep

    @property
    def precision(self) -> str:
        return self._program.precision

    @property
    def rounding(self) -> str:
        return "nearest_away" if self._program.ties_away else "nearest_even"

    @property
    def flush_subnormals(self) -> bool:
        return self._program.flush_subnormals

    @property
    def options(self) -> dict:
        """The compile options this net was built with (restored by af.load_program)."""
        return {"target": self.target, "compress": self.compress, "precision": self.precision,
                "rounding": self.rounding, "flush_subnormals": self.flush_subnormals,
                "backend": self.backend, "opset": self.opset}

    _defaults: dict = {}  # input name -> [value, ...] of the parameter or buffer a call may leave out

    _check_finite = False
    _warned_nonfinite = False

    _host_held: dict = {}  # input name -> value, for a backend that holds no inputs itself (mil)

    def __call__(self, *args, **kwargs):
        if self._host_held:
            given = {n for n, _, _ in self.inputs[:len(args)]} | set(kwargs)
            for k in list(self._host_held):
                if k in given:  # a given value replaces the held one (the backend checks its shape)
                    v = np.array(args[[n for n, _, _ in self.inputs].index(k)] if k not in kwargs else kwargs[k],
                                 np.float32, copy=True)
                    if v.shape == self._host_held[k].shape:
                        self._host_held[k][...] = v  # in place: a shared input stays shared
                else:
                    kwargs[k] = self._host_held[k]
        if self._defaults:
            given = {n for n, _, _ in self.inputs[:len(args)]} | set(kwargs)
            kwargs = {**{k: e[0] for k, e in self._defaults.items() if k not in given}, **kwargs}
        out = self._exe(*args, **kwargs)
        if not self._warned_nonfinite or (self._check_finite and self.backend != "sim"):
            self._watch_nonfinite(out, args, kwargs)
        return out

    def _watch_nonfinite(self, out, args, kwargs):
        """An output holding inf/NaN while no input did: fp16 overflowed inside. A RuntimeWarning
        once per net; with check_finite on a backend whose layers are not visible, an error."""
        named = out.items() if isinstance(out, dict) else enumerate(out if isinstance(out, (list, tuple)) else [out])
        bad = [(k, int(np.size(v) - np.isfinite(v).sum())) for k, v in named
               if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.isfinite(v).all()]
        if not bad:
            return
        for v in list(args) + list(kwargs.values()):
            a = np.asarray(v) if not isinstance(v, np.ndarray) else v
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                return
        what = ", ".join(f"output {k!r}: {n} inf/NaN" for k, n in bad)
        if self._check_finite:
            raise FloatingPointError(f"check_finite: {what} from finite inputs (the {self.backend} backend shows no "
                                     "layers: compile with backend='sim', check_finite=True to find the first one)")
        import warnings
        self._warned_nonfinite = True
        warnings.warn(f"{what} from finite inputs: fp16 overflowed inside the program (it holds magnitudes up to "
                      "65504); af.compile(..., check_finite=True) names the first layer that overflowed "
                      "(warned once per net)", RuntimeWarning, stacklevel=3)

    def make_resident(self, output, input) -> None:  # noqa: A002 - PyTorch-style name
        """Keep ``output`` on the backend as ``input`` of the next call (weights, optimizer
        moments, KV caches): the engine binds one buffer to both, so a step moves only its
        real inputs and outputs. The first call gives ``input``; later calls may leave it
        out (or give it, to replace the state). ``output`` is an index or a dict key,
        ``input`` a name or an index. Before the first call on the engine."""
        outs = [n for n, _, _ in self.outputs] if self._mode == 2 else None
        if isinstance(output, str):
            if outs is None or output not in outs:
                raise ValueError(f"make_resident: no output named {output!r}" + (f"; outputs: {outs}" if outs else ""))
            output = outs.index(output)
        names = [n for n, _, _ in self.inputs]
        if isinstance(input, str):
            if input not in names:
                raise ValueError(f"make_resident: no input named {input!r}; inputs: {names}")
            input = names.index(input)
        if not hasattr(self._exe, "alias"):
            raise NotImplementedError(f"the {self.backend} backend has no resident state (sim and engine do)")
        self._exe.alias(int(output), int(input))
        self._defaults = {k: v for k, v in self._defaults.items() if k != names[int(input)]}  # the state, not its first value

    def hold_input(self, input) -> None:  # noqa: A002 - PyTorch-style name
        """Keep ``input`` (a name or an index) with the program between calls, starting at
        zeros: calls may leave it out, a call that gives it replaces it, and ``write_input``
        changes some of its rows in place. A KV cache held so costs a decode step only its new
        rows: the sim reads the held value where it is, the engine keeps it in its input
        buffer. The mil backend keeps it on the host and passes it to each call."""
        i = self._input_index(input, "hold_input")
        name, shape, _ = self.inputs[i]
        if hasattr(self._exe, "hold"):
            self._exe.hold(i)
        else:
            if self._host_held is Net._host_held:
                self._host_held = {}
            self._host_held.setdefault(name, np.zeros(shape, np.float32))
        self._defaults = {k: v for k, v in self._defaults.items() if k != name}

    def share_input(self, input, other, other_input=None) -> None:  # noqa: A002
        """Make ``input`` of this net the very buffer of ``other``'s held input
        ``other_input`` (the same name by default; held now if it was not): a KV cache that
        prefill and decode programs both read exists once, and ``write_input`` on either net
        changes it for both. Same backend, shape and dtype. Nets that share a buffer take one
        lock, so their calls never overlap."""
        if not isinstance(other, Net):
            raise TypeError(f"share_input: other must be a Net, got {type(other).__name__}")
        if other.backend != self.backend:
            raise ValueError(f"share_input: this net runs on {self.backend!r} and the other on {other.backend!r}; "
                             "shared inputs live on one backend")
        i = self._input_index(input, "share_input")
        name, shape, dtype = self.inputs[i]
        j = other._input_index(name if other_input is None else other_input, "share_input")
        oname, oshape, odtype = other.inputs[j]
        if tuple(shape) != tuple(oshape) or dtype != odtype:
            raise ValueError(f"share_input: input {name!r} {tuple(shape)} {dtype} cannot share {oname!r} "
                             f"{tuple(oshape)} {odtype}: shared inputs have one shape and dtype")
        if hasattr(self._exe, "share_input"):
            self._exe.share_input(i, other._exe, j)
        else:  # the mil backend keeps held inputs on the host: one array in both nets
            other.hold_input(j)
            if self._host_held is Net._host_held:
                self._host_held = {}
            self._host_held[name] = other._host_held[oname]
        self._defaults = {k: v for k, v in self._defaults.items() if k != name}

    def write_input(self, input, rows, start, dim=0) -> None:  # noqa: A002
        """Write ``rows`` into the held ``input`` at ``start`` along ``dim`` (as
        ``held[..., start:start + n, ...] = rows``), rounded to the input's dtype; the rest of
        the input keeps its value."""
        i = self._input_index(input, "write_input")
        name, shape, _ = self.inputs[i]
        rows = np.ascontiguousarray(rows, np.float32)
        rank = len(shape)
        d = dim + rank if dim < 0 else dim
        if not 0 <= d < rank or rows.ndim != rank or any(rows.shape[k] != shape[k] for k in range(rank) if k != d):
            raise ValueError(f"write_input: rows {rows.shape} for input {name!r} {tuple(shape)} must have its rank and "
                             f"match it on every dim but dim={dim}")
        n = rows.shape[d]
        if not 0 <= start <= shape[d] - n:
            raise ValueError(f"write_input: rows {start}..{start + n - 1} are outside dim {dim} of input {name!r} "
                             f"{tuple(shape)}")
        if hasattr(self._exe, "write_rows"):
            self._exe.write_rows(i, d, int(start), rows)
            return
        if name not in self._host_held:
            raise ValueError(f"write_input: input {name!r} is not held (hold_input)")
        index = (slice(None),) * d + (slice(start, start + n),)
        self._host_held[name][index] = rows

    def _input_index(self, input, what) -> int:  # noqa: A002
        names = [n for n, _, _ in self.inputs]
        if isinstance(input, str):
            if input not in names:
                raise ValueError(f"{what}: no input named {input!r}; inputs: {names}")
            return names.index(input)
        if not 0 <= int(input) < len(names):
            raise ValueError(f"{what}: no input {input}; the net has {len(names)}")
        return int(input)

    @property
    def inputs(self) -> list:
        """(name, shape, dtype) of each input, in positional order."""
        return self._program.inputs

    @property
    def outputs(self) -> list:
        return self._program.outputs

    @property
    def num_layers(self) -> int:
        return self._program.num_layers

    @property
    def weight_bytes(self) -> int:
        return self._program.weight_bytes

    @property
    def pass_log(self) -> str:
        """The program after each compiler pass (compile with dump="passes")."""
        return self._program.pass_log

    def text(self) -> str:
        """The compiled program, one line per layer."""
        return self._program.text()

    def save(self, path, overwrite=False) -> None:
        """Write the compiled program (graph, weights, target) to a versioned, checksummed
        file, atomically and durably: a crash leaves the old file or the new one. An existing
        program file is replaced; any other file only with ``overwrite=True``."""
        _core.save_program(self._program, os.fspath(path), self._mode, bool(overwrite))

    def mil_text(self, opset="ios18") -> str:
        """The program as MIL text: opset "ios17" (program(1.0)) or "ios18" (program(1.3))."""
        return _core.mil_text(self._program, _opset(opset))

    def weight_blob(self, opset="ios18") -> bytes:
        """The MILBlob v2 weight file the MIL text refers to (@model_path/weights/weight.bin)."""
        return _core.mil_blob(self._program, _opset(opset))

    def export_mlpackage(self, path, opset="ios18", overwrite=False) -> None:
        """Write a complete .mlpackage (Manifest.json, Model protobuf with the ML Program,
        weights): specification 8 for ios17, 9 for ios18. Written beside ``path`` and moved
        into place; a package this library wrote is replaced atomically, any other directory
        (or '.') is refused, and a file only with ``overwrite=True``."""
        _core.export_mlpackage(self._program, os.fspath(path), _opset(opset), bool(overwrite))

    @property
    def target(self) -> str:
        return self._program.target

    def estimate(self, target=None) -> dict:
        """Estimated engine latency: dispatch overhead + per fused layer
        max(flops / peak, bytes / bandwidth). ``target`` defaults to the compiled one; a
        different target is checked first (its limits and op support)."""
        if target is not None:
            _core.check_target(self._program, str(target))
        return _core.estimate(self._program, "" if target is None else str(target))

    def summary(self, file=None) -> str:
        """Print (and return) the program's layers with their shapes and sizes."""
        text = self._program.summary()
        print(text, end="", file=file)
        return text

    def __repr__(self):
        ins = ", ".join(f"{n}{s}" for n, s, _ in self.inputs)
        return f"Net({self.num_layers} layers, inputs: {ins or 'none'}, backend={self.backend})"


def _opset(opset) -> int:
    table = {"ios17": 17, "ios18": 18, 17: 17, 18: 18, "17": 17, "18": 18}
    if opset not in table:
        raise ValueError(f"opset must be 'ios17' or 'ios18', got {opset!r}")
    return table[opset]


def load_program(path, backend="sim", opset="ios18") -> Net:
    """Load a program written by ``Net.save`` with every compile option it was built with
    (target, compress, precision, rounding, subnormal flush, output structure); ``backend``
    and ``opset`` choose where it runs. A missing, truncated, corrupt or newer file raises
    OSError with the reason."""
    if backend not in _BACKENDS:
        raise ValueError(f"load_program: backend must be one of {_BACKENDS}, got {backend!r}")
    prog, mode = _core.load_program(os.fspath(path))
    return Net(prog, backend, mode, opset=opset)
