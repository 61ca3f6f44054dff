"""Weight compression in af.compile: formats per layer, the accuracy gate, data-aware rounding.

compress: None, a format, "auto", a dict {layer: format} (layers not named stay fp16), or a
callable layer -> format or None. Formats (docs/compression.md): "int8", "int8:<block>",
"int4", "int4:<rows per LUT>", "sparse", "sparse:<fraction pruned>", and
"sparse[:<fraction>]+int8[:<block>]" or "+int4[:<rows>]". Layers are the conv, linear and
embedding layers with a constant weight, named as in net.summary().

Each layer has a ladder: its format, then safer ones (int4 -> int8 per channel -> int8
with a scale per 32 inputs where the target streams it; sparse+X -> sparse -> fp16), fp16
last; with "auto", every format the target streams natively, smallest first. With
``calibration`` and ``min_cosine`` the compressed program's outputs on the calibration
inputs must reach that cosine against the uncompressed program's; the layers whose
compression alone hurts most step down their ladder first, until the gate holds.
Calibration also turns on data-aware rounding (GPTQ, gptq.py). Without calibration, a
weight-space gate: a layer whose stored weight differs from the (pruned) original by more
than ``max_weight_error`` (relative L2; by default 0.02 for int8 and fp16 values and 0.12
for int4, about 3x and 1.3x what they give on Gaussian weights) steps down its ladder.
"""
from __future__ import annotations

import numpy as np

import warnings

from .. import _core
from .gate import DATA_FREE_MIN_COSINE, CannotSynthesize, OutputGate, synthetic_batches

MAX_WEIGHT_ERROR = {"fp16": 0.02, "int8": 0.02, "int4": 0.12}  # relative L2, by how values are stored


def value_kind(fmt: str) -> str:
    """How a format stores its values: "fp16" (dense or sparse), "int8" or "int4"."""
    last = fmt.split("+")[-1]
    return "fp16" if last.startswith("sparse") or last == "fp16" else last.split(":")[0]


def _int8_safe(streams, shape):
    """The most accurate int8 format the target streams for this weight."""
    if "int8" not in streams:
        return None
    kernel = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    block = 32 * kernel
    return f"int8:{block}" if "blockwise" in streams and cols % block == 0 and cols > block else "int8"


def misfit(fmt, shape):
    """Why ``fmt``'s block or LUT rows cannot apply to a weight of ``shape`` ("" if they can)."""
    values = fmt.partition("+")[2] if fmt.startswith("sparse") else fmt
    kind, _, n = values.partition(":")
    if not n or kind not in ("int8", "int4"):
        return ""
    n = int(n)
    if kind == "int4":
        return f"{n} rows per LUT do not divide its {shape[0]} output channels" if shape[0] % n else ""
    kernel = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if n % kernel:
        return f"block {n} is not a multiple of its {kernel}-element kernel"
    return f"block {n} does not divide its {cols} inputs per output channel" if cols % n else ""


def ladder(fmt, streams, shape):
    """``fmt`` and the safer formats a layer steps down through, "fp16" last; a block or LUT
    grouping that does not fit the layer gives way to per channel (int8) or per tensor (int4)."""
    if fmt == "w8a8":  # int8 activations first go back to fp16, then the weights step down
        return ["w8a8"] + ladder("int8", streams, shape)
    sparse, values = "", fmt
    if fmt.startswith("sparse"):
        sparse, _, values = fmt.partition("+")
    if values and misfit(values, shape):
        values = values.partition(":")[0]
    rungs = [values] if values else []
    safe8 = _int8_safe(streams, shape)
    if values.startswith("int4") and safe8:  # per channel first: fewer bytes than blocks
        rungs.append("int8")
    if values.startswith(("int4", "int8")) and values != safe8 and safe8 and safe8 != "int8":
        rungs.append(safe8)
    out = [f"{sparse}+{v}" if sparse else v for v in rungs]
    if sparse:
        out.append(sparse)
    out.append("fp16")
    return list(dict.fromkeys(out))


def auto_ladder(streams, shape, stored):
    """Every format the target streams for this weight, smallest first, while smaller than fp16
    (sparse ones only when the weight has exact zeros: ``stored`` < its size)."""
    n, rows = int(np.prod(shape)), shape[0]
    cand = {}
    if "int4-lut" in streams:
        cand["int4"] = n / 2 + 32
        cand["int4:1"] = n / 2 + 32 * rows
    safe8 = _int8_safe(streams, shape)
    if safe8:
        cand["int8"] = n + 2 * rows
        cand[safe8] = n + 2 * n / 32 if safe8 != "int8" else cand["int8"]
    if "sparse" in streams and stored < n:
        mask = (n + 7) // 8
        cand["sparse"] = mask + 2 * stored
        if "int4-lut" in streams:
            cand["sparse+int4"] = mask + (stored + 1) // 2 + 32
            cand["sparse+int4:1"] = mask + (stored + 1) // 2 + 32 * rows
        if safe8:
            cand["sparse+int8"] = mask + stored + 2 * rows
    return [f for f, b in sorted(cand.items(), key=lambda kv: kv[1]) if b < 2 * n] + ["fp16"]


def format_of(pk) -> str:
    """The format string of a packed weight ("sparse+int8:32", "int4:1", ...)."""
    kind = pk.format.split("+")[-1]
    n = pk.block if kind == "int8" else pk.group_rows if kind == "int4" else 0
    values = "" if kind == "sparse" else f"{kind}:{n}" if n else kind
    if pk.format.startswith("sparse"):
        return f"sparse+{values}" if values else "sparse"
    return values


def split_packed(compress):
    """A compress dict's PackedWeights values (weights packed already, e.g. by
    net.packed_weights() of a gated net) apart from its format strings."""
    if not isinstance(compress, dict):
        return compress, {}
    fixed = {k: v for k, v in compress.items() if isinstance(v, _core.PackedWeights)}
    return {k: v for k, v in compress.items() if k not in fixed}, fixed


def estimate_bytes(fmt, shape) -> float:
    """Bytes a dense weight of ``shape`` takes in ``fmt`` (sparse formats as if nothing were zero)."""
    n, rows = float(np.prod(shape)), shape[0]
    if fmt == "fp16":
        return 2 * n
    mask = n / 8 if fmt.startswith("sparse") else 0
    values = fmt.split("+")[-1] if "+" in fmt or not fmt.startswith("sparse") else "fp16"
    kind, _, k = values.partition(":")
    k = int(k) if k else 0
    if kind == "int4":
        return mask + n / 2 + 32 * (rows / k if k else 1)
    if kind in ("int8", "w8a8"):
        return mask + n + 2 * (n / k if k else rows)
    return mask + 2 * n


def _formats(compress, layers) -> dict:
    if compress is None:
        return {}
    if isinstance(compress, str):  # every layer with a weight: conv, linear and embedding tables
        return {name: compress for name in layers}
    if isinstance(compress, dict):
        unknown = sorted(set(compress) - set(layers))
        if unknown:
            raise ValueError(f"compile: compress names layers the program does not have: {unknown}; "
                             f"its layers with weights: {sorted(layers)}")
        return {k: v for k, v in compress.items() if v not in (None, "fp16")}
    if callable(compress):
        out = {}
        for name in layers:
            f = compress(name)
            if f not in (None, "fp16"):
                out[name] = f
        return out
    raise TypeError(f"compile: compress must be None, a format, 'auto', a dict or a callable, got {type(compress).__name__}")


class _Rounding:
    """Packed weights by data-aware rounding, per (layer, format), computed once."""

    def __init__(self, build, base, gram):
        self.build, self.base, self.gram, self.cache = build, base, gram, {}

    def packed(self, formats):
        todo = {n: f for n, f in formats.items() if n in self.gram and (n, f) not in self.cache}
        if todo:
            plain = self.build(todo)
            for n, f in todo.items():
                pk = _core.packed_weight(plain._program, n)
                w = _core.dense_weight(self.base._program, n)
                self.cache[(n, f)] = None if pk is None else _repack(pk, w, self.gram[n])
        return {n: self.cache[(n, f)] for n, f in formats.items() if self.cache.get((n, f)) is not None}


def _repack(pk, w, H):
    from .gptq import gptq, refit_lut, repack
    pk = refit_lut(pk, w, H)
    return repack(pk, gptq(w.reshape(pk.shape), pk, H))


def compile_compressed(build, compress, calibration, min_cosine, max_weight_error, target, capture=None,
                       weight_rounding=None, synthetic=None):
    """``build(formats, packed=None)`` compiles with those per-layer formats and returns a Net;
    ``capture(names, calibration)`` gives each layer's input Gram matrix; ``synthetic``: the
    batches the data-free gate draws (default: from the inputs, _gate.synthetic_batches).
    Returns (net, report)."""
    compress, fixed = split_packed(compress)
    fixed_formats = {k: format_of(v) for k, v in fixed.items()}
    plain_build = build

    def build(formats, packed=None, act_scales=None):  # noqa: F811 - the layers packed already ride along
        return plain_build({**formats, **fixed_formats}, {**(packed or {}), **fixed}, act_scales)
    base = plain_build({})
    layers = {name: (op, shape) for name, op, shape, *_ in base._program.weight_layers}
    unknown = sorted(set(fixed) - set(layers))
    if unknown:
        raise ValueError(f"compile: compress names layers the program does not have: {unknown}; "
                         f"its layers with weights: {sorted(layers)}")
    layers = {k: v for k, v in layers.items() if k not in fixed}
    streams = _core.find_target(target or "h16g")["streams"]
    misfits = {}
    if compress == "auto":
        sparse_all = build({n: "sparse" for n in layers}) if "sparse" in streams else base
        stored = {r[0]: r[4] for r in sparse_all._program.weight_layers}  # sparse: 2 bytes a value + mask
        ladders = {}
        for n, (op, shape) in layers.items():  # embedding tables too: compress= means the whole model
            count = int(np.prod(shape))
            nnz = (stored[n] - (count + 7) // 8) // 2 if "sparse" in streams else count
            ladders[n] = auto_ladder(streams, tuple(shape), nnz)
    else:
        formats = _formats(compress, layers)
        for n, f in formats.items():
            if f != "w8a8":
                _core.check_compress_format(str(f), n)
        ladders = {n: ladder(f, streams, tuple(layers[n][1])) for n, f in formats.items()}
        misfits = {n: f"{f} does not fit ({misfit(f, tuple(layers[n][1]))}): {ladders[n][0]} instead"
                   for n, f in formats.items() if f != "w8a8" and misfit(f, tuple(layers[n][1]))}
    # Why a layer stays fp16 (compression_report()["layers"][i]["why"]).
    kept = {n: "no format smaller than fp16 that the target streams" if n in ladders else "not named in compress="
            for n in layers if n not in ladders or ladders[n][0] == "fp16"}
    ladders = {n: lad for n, lad in ladders.items() if lad[0] != "fp16"}
    if weight_rounding not in (None, "nearest", "gptq"):
        raise ValueError(f"compile: weight_rounding must be 'nearest' or 'gptq', got {weight_rounding!r}")
    if calibration is not None:
        calibration = list(calibration)
        if not calibration:
            raise ValueError("compile: calibration holds no batches")
        if min_cosine is None:
            raise ValueError("compile: calibration= needs min_cosine= (the output cosine the gate must hold)")
    elif weight_rounding == "gptq":
        raise ValueError("compile: weight_rounding='gptq' needs calibration= (the inputs whose layer activations it uses)")
    act_scales = {}
    w8a8 = sorted(n for n, lad in ladders.items() if "w8a8" in lad)
    if w8a8:
        info = _core.find_target(target or "h16g")
        if int(info["family"][1:3]) < 16:
            raise _core.TargetError(f"compile: w8a8 (int8 activations) needs a target that computes int8 natively: "
                                    f"h16 (M4) and later; {info['name']} is {info['family']}. Use int8 (weights only).")
        if calibration is None:
            raise ValueError("compile: w8a8 needs calibration= (the inputs its activation scales are fitted on) "
                             "and min_cosine=")
        amax = capture(set(w8a8), calibration, "amax") if capture else {}
        for n in w8a8:  # symmetric: the largest calibration magnitude maps to 127, scale held in fp16
            s = float(np.float16(max(amax.get(n, 0.0), 1e-30) / 127))
            act_scales[n] = max(s, 2.0 ** -14) if np.isfinite(s) else 65504.0 / 127
        for n in w8a8:
            if n not in amax:  # no capturable input (grouped conv): weights only
                ladders[n] = ladders[n][1:]
    rounding = None
    if calibration is not None and weight_rounding != "nearest" and capture is not None:
        rounding = _Rounding(build, base, capture(set(ladders), calibration))

    packed_before = {}  # (layer, format) -> its packed weight: each layer is packed (k-means, ...) once

    def make(formats):
        weights = {n: "int8" if f == "w8a8" else f for n, f in formats.items()}
        scales = {n: act_scales[n] for n, f in formats.items() if f == "w8a8"}
        packed = rounding.packed(weights) if rounding else {}
        packed.update({n: packed_before[(n, f)] for n, f in weights.items() if n not in packed and packed_before.get((n, f)) is not None})
        net = build(weights, packed, scales)
        for n, f in weights.items():
            if (n, f) not in packed_before:
                packed_before[(n, f)] = _core.packed_weight(net._program, n)
        return net

    pos = {n: 0 for n in ladders}

    def formats_at(p):
        return {n: ladders[n][i] for n, i in p.items() if ladders[n][i] != "fp16"}

    report = {n: {"tried": [ladders[n][0]]} for n in ladders}
    report.update({n: {"why": w} for n, w in kept.items()})
    for n, note in misfits.items():
        report.setdefault(n, {})["fits"] = note
    net = make(formats_at(pos))
    if calibration is None:
        while True:  # the weight-space gate first (cheap): failing layers step down until none fails
            failing = []
            for name, _, _, enc, _, _, err, _ in net._program.weight_layers:
                if name not in pos or enc == "fp16":
                    continue
                limit = max_weight_error if max_weight_error is not None else MAX_WEIGHT_ERROR[value_kind(enc)]
                if err > limit:
                    failing.append(name)
                    report[name]["fallback"] = f"weight error {err:.4f} > {limit}"
            if not failing:
                break
            for n in failing:
                pos[n] += 1
                report[n]["tried"].append(ladders[n][pos[n]])
            net = make(formats_at(pos))
        compressed = sorted(n for n in pos if ladders[n][pos[n]] != "fp16")
        if not compressed:
            return net, _report(net, report, None)
        try:  # then the outputs, on synthetic inputs
            # Pruning asked for is not the gate's to undo (as the weight gate measures against the
            # pruned weight): the reference is the program with that pruning and fp16 values.
            pruned = {n: lad[0].split("+")[0] for n, lad in ladders.items() if lad[0].startswith("sparse:")}
            ref = build(pruned) if pruned else base
            gate = OutputGate(ref, synthetic if synthetic is not None else synthetic_batches(base), centered=True)
            if not gate.varies():
                raise CannotSynthesize("the uncompressed program's outputs on synthetic N(0, 1) inputs are constant "
                                       "or not finite")
        except CannotSynthesize as e:
            warnings.warn(f"compile: compress= without calibration= could not check the compressed program's outputs "
                          f"({e}); only the weight-space gate ran, and the output may no longer depend on the "
                          f"input as it should. Layers at risk: {', '.join(compressed)}. Pass calibration= "
                          f"(a few input batches) and min_cosine= to gate on real outputs.", UserWarning, stacklevel=4)
            return net, _report(net, report, None, gate=f"weights only ({e})")
        threshold = DATA_FREE_MIN_COSINE if min_cosine is None else min_cosine
        pos, net, cos = _step_down(ladders, layers, pos, net, make, formats_at, gate, threshold, report)
        return net, _report(net, report, cos, gate="synthetic inputs")
    gate = OutputGate(base, calibration, centered=False)
    pos, net, cos = _step_down(ladders, layers, pos, net, make, formats_at, gate, min_cosine, report)
    if cos < min_cosine:
        raise ValueError(f"compile: the compressed program reaches cosine {cos:.6f} on the calibration data, "
                         f"below min_cosine={min_cosine}, even with every layer in fp16")
    for n in ladders:
        if ladders[n][pos[n]] == "w8a8":
            report[n]["activations"] = f"int8, scale {act_scales[n]:.6g}"
            report[n]["format"] = "w8a8"
    return net, _report(net, report, cos, set(rounding.gram) if rounding else set(), gate="calibration")


def _step_down(ladders, layers, pos, net, make, formats_at, gate, min_cosine, report):
    """While ``gate(net)`` < min_cosine, layers step down their ladders: each compressed layer's
    effect alone is measured, the most damage undone per byte added goes first, and the
    fewest layers that make the gate hold are found by bisection. Returns (pos, net, cosine)."""
    cos = gate(net)
    live = [n for n in pos if ladders[n][pos[n]] != "fp16"]
    if cos >= min_cosine or not live:
        return pos, net, cos
    alone = {n: gate(make({n: ladders[n][pos[n]]})) for n in live}
    for n, c in alone.items():
        report[n]["cosine_alone"] = c

    # Stepping down a big embedding table costs far more bytes than a small linear that hurts as much.
    def damage_per_byte(n):
        shape = layers[n][1]
        extra = estimate_bytes(ladders[n][pos[n] + 1], shape) - estimate_bytes(ladders[n][pos[n]], shape)
        return (1.0 - alone[n]) / max(extra, 1.0)
    order = sorted(alone, key=damage_per_byte, reverse=True)
    while cos < min_cosine:
        movable = [n for n in order if ladders[n][pos[n]] != "fp16"]
        if not movable:
            break

        def trial(k):
            p = dict(pos)
            for n in movable[:k]:
                p[n] += 1
            t = make(formats_at(p))
            return p, t, gate(t)
        best = trial(len(movable))
        if best[2] >= min_cosine:  # the fewest layers to step down for the gate to hold
            lo, hi = 1, len(movable)
            while lo < hi:
                mid = (lo + hi) // 2
                t = trial(mid)
                if t[2] >= min_cosine:
                    hi, best = mid, t
                else:
                    lo = mid + 1
        for n in ladders:
            if best[0][n] != pos[n]:
                report[n]["tried"].append(ladders[n][best[0][n]])
                report[n]["fallback"] = f"alone it gives cosine {alone[n]:.6f}"
        pos, net, cos = best
    return pos, net, cos


def _report(net, extra, cos, data_aware=frozenset(), gate="weights only"):
    """data_aware: the layers whose weights GPTQ rounded (when compressed); gate: what the
    accuracy gate measured ("calibration", "synthetic inputs" or "weights only (why)")."""
    rows = []
    for name, op, shape, enc, held, fp16, err, prune in net._program.weight_layers:
        r = {"layer": name, "op": op, "weight_shape": tuple(shape), "format": enc, "bytes": held, "fp16_bytes": fp16,
             "weight_error": err if enc != "fp16" else 0.0, "pruned_error": prune}
        r.update({k: v for k, v in extra.get(name, {}).items() if k != "tried" or len(v) > 1})
        if enc == "fp16" and "why" not in r:
            r["why"] = (f"fell back: {r['fallback']}" if "fallback" in r else
                        "fewer than 16 values" if int(np.prod(shape)) < 16 else "compress= not given")
        if r["format"] == "w8a8":
            r["weight_error"] = err
        if enc != "fp16":
            r["rounding"] = "gptq" if name in data_aware else "nearest"
        rows.append(r)
    return {"layers": rows, "min_cosine": cos, "gate": gate, "bytes": sum(r["bytes"] for r in rows),
            "fp16_bytes": sum(r["fp16_bytes"] for r in rows),
            "weight_rounding": "gptq" if any(r.get("rounding") == "gptq" for r in rows) else "nearest"}
