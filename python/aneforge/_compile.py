"""af.compile: the whole graph into one program, and the callable Net around it."""
from __future__ import annotations

import inspect

import os

import numpy as np

from . import _core
from ._tensor import Tensor



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


def compile(outputs, *, target=None, compress=None, precision="fp16", backend="sim",  # noqa: A001
            inputs=None, rounding="nearest_even", flush_subnormals=True, dump=None, opset="ios18",
            max_programs=8, calibration=None, min_cosine=None, max_weight_error=None,
            weight_rounding=None, check_finite=False, fold_constants=True) -> "Net":
    """Compile the graph that computes ``outputs`` into one program and load it on ``backend``.

    target: a compiler target ("h13" ... "h18") or a chip name ("M1", "M4 Pro", "A17 Pro");
        default "h16g" (M4). The whole graph is checked against it before anything is
        emitted: unsupported ops and shapes raise af.TargetError (a ValueError).

    outputs: a Tensor, a tuple or list of Tensors, or a dict name -> Tensor. The net returns
        the same structure (a tuple stays a tuple) of NumPy arrays.
    precision: "fp16" (the engine's storage, default) or "fp32" (same program in float32,
        for comparison).
    compress: weight compression of conv and linear layers (docs/compression.md): None,
        "int8" (per output channel), "int8:<block>" (a scale per <block> inputs), "int4"
        (a 16-entry LUT), "int4:<rows>" (a LUT per <rows> output channels), "sparse"
        (bitmask and non-zeros), "sparse:<fraction>" (magnitude pruning),
        "sparse+int8" / "sparse+int4" (combined), "auto" (per layer the smallest format
        the target streams that passes the gate), a dict {layer: format} or a callable
        layer -> format. The weights stay compressed in the program, its files and its MIL.
    calibration, min_cosine: the accuracy gate: input batches, and the output cosine the
        compressed program must reach on them against the uncompressed one; layers step
        down to safer formats (int4 -> int8 -> fp16), most sensitive first. Without
        calibration, layers whose stored weight is off by more than max_weight_error
        (relative L2; default 0.02 for int8, 0.12 for int4) step down, then the outputs on
        synthetic inputs (N(0, 1), ids over their table) must keep min_cosine (default 0.99;
        0 turns it off), input-dependent part included; where they cannot be drawn, a
        UserWarning names the layers at risk.
    check_finite: on the sim, check every layer's output: the first one holding inf/NaN from
        finite inputs (fp16 overflow) raises FloatingPointError naming it and its input range;
        on the other backends the outputs are checked. (Without it, a net warns once when an
        output holds inf/NaN and no input did.)
    fold_constants: False keeps layers whose inputs are all constants as layers, so the MIL
        computes them rather than holding values the sim folded (for testing the MIL).
    weight_rounding: "gptq" (default with calibration: data-aware rounding that compensates
        each weight's rounding error using the layer's calibration inputs) or "nearest".
    inputs: optional list fixing the order of positional inputs (default: creation order).
    rounding, flush_subnormals: the simulator's fp16 numerics (see docs/numerics.md);
        rounding="target" takes the tie rounding the reference reports for the target.
    dump: "passes" prints the program after each compiler pass (also kept in net.pass_log).
    backend: "sim" (the simulator, default), "mil" (runs the emitted MIL program, text and
        weight blob, in the MIL reference interpreter: what the engine would be given),
        "engine" (the Apple Neural Engine; af.EngineError saying why where there is none) or
        "auto" (the engine where there is one, else the simulator). See af.devices().
    opset: the MIL opset the mil backend runs, "ios18" (default) or "ios17".
    max_programs: for inputs with a flexible batch (``af.input((None, 3, 224, 224))``), how
        many per-batch programs the net keeps (least recently used dropped). The engine runs
        static shapes: each batch size is its own program, compiled on first use (or ahead of
        time with ``net.compile_for(batch=8)``); batch 1 is compiled here.
    """
    return compile_graph(outputs, target=target, compress=compress, precision=precision, backend=backend,
                         inputs=inputs, rounding=rounding, flush_subnormals=flush_subnormals, dump=dump, opset=opset,
                         max_programs=max_programs, calibration=calibration, min_cosine=min_cosine,
                         max_weight_error=max_weight_error, weight_rounding=weight_rounding,
                         check_finite=check_finite, fold_constants=fold_constants)


def compile_defaults(**given) -> dict:
    """af.compile's keyword options, its defaults updated with ``given`` (for compile_graph)."""
    params = inspect.signature(compile).parameters
    return {**{k: p.default for k, p in params.items() if k != "outputs"}, **given}


def compile_graph(outputs, *, target, compress, precision, backend, inputs, rounding, flush_subnormals, dump, opset,
                  max_programs, calibration, min_cosine, max_weight_error, weight_rounding, check_finite,
                  fold_constants, synthetic=None) -> "Net":
    """af.compile, and ``synthetic``: the input batches the data-free compression gate runs
    (for models that know what their inputs look like, e.g. a text encoder's token ids and
    an all-ones attention mask); by default drawn from the inputs (_gate.synthetic_batches)."""
    if target is not None and not isinstance(target, str):
        raise TypeError(f"compile: target must be a target or chip name such as 'h16g' or 'M4', got {target!r}")
    if not isinstance(backend, str):
        raise TypeError(f"compile: backend must be one of {_BACKENDS}, got {backend!r}")
    if backend not in _BACKENDS:
        raise ValueError(f"compile: backend must be one of {_BACKENDS}, got {backend!r}")
    backend, target = _resolve_backend(backend, target)
    if rounding == "target":
        reported = _core.find_target(str(target or "h16g"))["rounding"]
        rounding = "nearest_away" if reported.startswith("nearest_away") else "nearest_even"
    if dump not in (None, "passes"):
        raise ValueError(f"compile: dump must be None or 'passes', got {dump!r}")
    if isinstance(outputs, Tensor):
        outs, names, mode = [outputs], [], 0
    elif isinstance(outputs, dict):
        if not outputs:
            raise ValueError("compile: the outputs dict is empty")
        names = [str(k) for k in outputs]
        outs, mode = list(outputs.values()), 2
    elif isinstance(outputs, (list, tuple)):
        if not outputs:
            raise ValueError("compile: the outputs list is empty")
        outs, names, mode = list(outputs), [], 3 if isinstance(outputs, tuple) else 1
    else:
        raise TypeError(f"compile: outputs must be a Tensor, a list or a dict of Tensors, got {type(outputs).__name__}")
    for i, t in enumerate(outs):
        if not isinstance(t, Tensor):
            raise TypeError(f"compile: output {i} is a {type(t).__name__}, not a Tensor")
    ins = []
    if inputs is not None:
        for t in inputs:
            if not isinstance(t, Tensor):
                raise TypeError(f"compile: inputs= must hold Tensors, got {type(t).__name__}")
            ins.append(t._t)
    defaults, state = _state_defaults(outs)
    if defaults and inputs is None:  # the caller's data first, positionally; then the state
        ins = [t._t for t in _data_inputs(outs, state)] + [t._t for t in state]
    from . import _flex
    if _flex.is_flexible(outs):
        structure = ["single", "list", "dict", "tuple"][mode]
        options = dict(target=target, compress=compress, precision=precision, backend=backend,
                       rounding=rounding, flush_subnormals=flush_subnormals, dump=dump, opset=opset,
                       calibration=calibration, min_cosine=min_cosine, max_weight_error=max_weight_error,
                       weight_rounding=weight_rounding, check_finite=check_finite,
                       fold_constants=fold_constants)
        return _flex.FlexNet(outs, structure, names, inputs, options, max_programs)

    def build(layers: dict, packed=None, act_scales=None) -> "Net":
        prog = _core.compile([t._t for t in outs], names, ins, precision, rounding, flush_subnormals,
                             target or "", "", dump == "passes", {k: str(v) for k, v in layers.items()}, packed or {},
                             act_scales or {}, bool(check_finite), bool(fold_constants))
        net = Net(prog, backend, mode, opset=opset)
        net._defaults = defaults
        net._check_finite = bool(check_finite)
        return net

    if compress is None and calibration is None:
        if weight_rounding is not None:
            raise ValueError("compile: weight_rounding= applies to compressed weights; give compress=")
        net = build({})
    else:
        from ._compress import compile_compressed
        from ._gptq import layer_inputs

        def capture(layer_names, batches, what="gram"):
            from ._gate import feeds
            return layer_inputs([t._t for t in outs], ins, layer_names, batches, feeds, what)
        net, report = compile_compressed(build, compress, calibration, min_cosine,
                                         None if max_weight_error is None else float(max_weight_error), target,
                                         capture, weight_rounding, synthetic)
        net._compression = report
    if dump == "passes":
        print(net.pass_log, end="")
    return net


class Net:
    """A compiled program loaded on a backend. Call it with NumPy arrays."""

    def __init__(self, program, backend, mode, opset="ios18"):
        self._program = program
        self._mode = mode
        if backend == "mil":
            from ._milnet import from_program
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
            from ._compress import _report
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

    def __call__(self, *args, **kwargs):
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


def _state_defaults(outs):
    """The graph inputs that are af.parameter masters or af.buffer tensors, with their current
    values: an inference net takes them as defaults (overridable by name)."""
    from ._train import _BUFFERS, _PARAMS, _input_ids
    masters = {e[2]._t.node_id: e for e in list(_PARAMS.values())}
    defaults, state = {}, []
    for nid, t in sorted(_input_ids(outs).items()):
        entry = masters.get(nid) or _BUFFERS.get(nid)
        if entry is not None:
            defaults[entry[1]] = entry  # read at each call: entry[0] follows update_from
            state.append(t)
    return defaults, state


def _data_inputs(outs, state):
    from ._train import _input_ids
    skip = {t._t.node_id for t in state}
    return [t for nid, t in sorted(_input_ids(outs).items()) if nid not in skip]


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
