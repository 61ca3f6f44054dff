"""af.compile: the whole graph into one program, and the Net (or FlexNet) around it."""
from __future__ import annotations

import inspect

from .. import _core
from ..graph.state import BUFFERS, PARAMS, input_ids
from ..graph.trace import is_flexible
from ..graph.tensor import Tensor
from .net import _BACKENDS, Net, _resolve_backend


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
    an all-ones attention mask); by default drawn from the inputs (gate.synthetic_batches)."""
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
    if is_flexible(outs):
        from .flexnet import FlexNet
        structure = ["single", "list", "dict", "tuple"][mode]
        options = dict(target=target, compress=compress, precision=precision, backend=backend,
                       rounding=rounding, flush_subnormals=flush_subnormals, dump=dump, opset=opset,
                       calibration=calibration, min_cosine=min_cosine, max_weight_error=max_weight_error,
                       weight_rounding=weight_rounding, check_finite=check_finite,
                       fold_constants=fold_constants)
        return FlexNet(outs, structure, names, inputs, options, max_programs, compile)

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
        from .compress import compile_compressed
        from .gptq import layer_inputs

        def capture(layer_names, batches, what="gram"):
            from .gate import feeds
            return layer_inputs([t._t for t in outs], ins, layer_names, batches, feeds, what)
        net, report = compile_compressed(build, compress, calibration, min_cosine,
                                         None if max_weight_error is None else float(max_weight_error), target,
                                         capture, weight_rounding, synthetic)
        net._compression = report
    if dump == "passes":
        print(net.pass_log, end="")
    return net


def _state_defaults(outs):
    """The graph inputs that are af.parameter masters or af.buffer tensors, with their current
    values: an inference net takes them as defaults (overridable by name)."""
    masters = {e[2]._t.node_id: e for e in list(PARAMS.values())}
    defaults, state = {}, []
    for nid, t in sorted(input_ids(outs).items()):
        entry = masters.get(nid) or BUFFERS.get(nid)
        if entry is not None:
            defaults[entry[1]] = entry  # read at each call: entry[0] follows update_from
            state.append(t)
    return defaults, state


def _data_inputs(outs, state):
    skip = {t._t.node_id for t in state}
    return [t for nid, t in sorted(input_ids(outs).items()) if nid not in skip]


