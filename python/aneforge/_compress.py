"""Weight compression in af.compile: formats per layer, and the accuracy gate.

compress: None, a format ("int8": per output channel; "int8:<block>": a scale per <block>
inputs), a dict {layer: format} (layers not named stay fp16), or a callable layer -> format
or None. Layers are the conv and linear layers with a constant weight, named as in
net.summary(). With ``calibration`` and ``min_cosine`` the compressed program's outputs on
the calibration inputs must reach that cosine against the uncompressed program's; layers
fall back to fp16, most sensitive first, until they do. Without calibration, a weight-space
gate: a layer whose stored weight differs from the original by more than
``max_weight_error`` (relative L2; by default 0.02 for int8 and 0.12 for int4, about 3x and
1.3x what they give on Gaussian weights) stays fp16.
"""
from __future__ import annotations

import numpy as np

MAX_WEIGHT_ERROR = {"int8": 0.02, "int4": 0.12}  # relative L2, per format family


def _formats(compress, layers) -> dict:
    if compress is None:
        return {}
    if isinstance(compress, str):  # conv and linear layers; embeddings only when named
        return {name: compress for name, (op, _) in layers.items() if op != "embedding"}
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
    raise TypeError(f"compile: compress must be None, a format, a dict or a callable, got {type(compress).__name__}")


def _feeds(batch):
    if isinstance(batch, dict):
        return (), batch
    if isinstance(batch, (list, tuple)):
        return tuple(batch), {}
    return (batch,), {}


def _flat(out):
    if isinstance(out, dict):
        return [np.asarray(v, np.float64).ravel() for v in out.values()]
    if isinstance(out, (list, tuple)):
        return [np.asarray(v, np.float64).ravel() for v in out]
    return [np.asarray(out, np.float64).ravel()]


def min_cosine_of(net, ref_net, calibration) -> float:
    worst = 1.0
    for batch in calibration:
        args, kwargs = _feeds(batch)
        for a, b in zip(_flat(net(*args, **kwargs)), _flat(ref_net(*args, **kwargs))):
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            cos = 1.0 if na == 0 and nb == 0 else float(a @ b / (na * nb)) if na and nb else 0.0
            worst = min(worst, cos)
    return worst


def compile_compressed(build, compress, calibration, min_cosine, max_weight_error):
    """``build(layers_dict)`` compiles with those per-layer formats and returns a Net.
    Returns (net, report)."""
    base = build({})
    layers = {name: (op, shape) for name, op, shape, *_ in base._program.weight_layers}
    formats = _formats(compress, layers)
    report = {}
    if calibration is None:
        trial = build(formats)
        for name, _, _, enc, held, fp16, err in trial._program.weight_layers:
            limit = max_weight_error if max_weight_error is not None else MAX_WEIGHT_ERROR.get(enc.split(":")[0], 0.02)
            if enc != "fp16" and err > limit:
                formats.pop(name, None)
                report[name] = {"fallback": f"weight error {err:.4f} > {limit}"}
        net = build(formats) if report else trial
        return net, _report(net, report, None)
    if min_cosine is None:
        raise ValueError("compile: calibration= needs min_cosine= (the output cosine the gate must hold)")
    calibration = list(calibration)
    if not calibration:
        raise ValueError("compile: calibration holds no batches")
    net = build(formats)
    cos = min_cosine_of(net, base, calibration)
    if cos < min_cosine and formats:
        # Each layer alone: its effect on the output cosine, the most damaging first.
        alone = {name: min_cosine_of(build({name: f}), base, calibration) for name, f in formats.items()}
        for name in sorted(alone, key=alone.get):
            formats.pop(name)
            report[name] = {"fallback": f"alone it gives cosine {alone[name]:.6f}"}
            net = build(formats)
            cos = min_cosine_of(net, base, calibration)
            if cos >= min_cosine:
                break
        for name, c in alone.items():
            report.setdefault(name, {})["cosine_alone"] = c
    if cos < min_cosine:
        raise ValueError(f"compile: the compressed program reaches cosine {cos:.6f} on the calibration data, "
                         f"below min_cosine={min_cosine}, even with every layer in fp16")
    return net, _report(net, report, cos)


def _report(net, extra, cos):
    rows = []
    for name, op, shape, enc, held, fp16, err in net._program.weight_layers:
        r = {"layer": name, "op": op, "weight_shape": tuple(shape), "format": enc, "bytes": held, "fp16_bytes": fp16,
             "weight_error": err if enc != "fp16" else 0.0}
        r.update(extra.get(name, {}))
        rows.append(r)
    return {"layers": rows, "min_cosine": cos, "bytes": sum(r["bytes"] for r in rows),
            "fp16_bytes": sum(r["fp16_bytes"] for r in rows)}
