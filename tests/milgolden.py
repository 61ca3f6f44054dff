"""The programs whose emitted MIL is kept as golden files (tests/golden/mil/<opset>/): every
op case (constant parameters, as in a model), every bridge, the quickstart and a transformer
block. Inputs and weights come from a seed per program, so the text is reproducible.
Regenerate with scripts/update_mil_goldens.py, which runs the equivalence suite first."""
from __future__ import annotations

import hashlib
import pathlib
import re
import zlib

import numpy as np

import aneforge as af

GOLDEN = pathlib.Path(__file__).parent / "golden" / "mil"
OPSETS = ("ios17", "ios18")


def _seed(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _programs():
    from milequiv import build
    from optable import make_input
    from test_mil import BRIDGE_GRAPHS, _transformer_block
    from test_ops import ALL
    for case in ALL:
        rng = _seed(case.name)
        outs, _ = build(case, [make_input(s, k, rng) for s, k in case.inputs], True)
        yield case.name, outs
    for name, fn in sorted(BRIDGE_GRAPHS.items()):
        out = fn(af.input((1, 4, 4, 6), name="x4"), af.input((2, 16), name="x2"), af.input((2, 10, 3), name="pts"))
        yield "bridge_" + name, out if isinstance(out, list) else [out]
    rng = _seed("quickstart")
    x = af.input((1, 3, 8, 8), name="img")
    w = (np.round(rng.standard_normal((4, 3, 3, 3)) * 8) / 8).astype(np.float32)
    yield "quickstart", {"pooled": af.conv(x, w, np.arange(4, dtype=np.float32), pad=1).relu().mean((2, 3), keepdims=True)}
    yield "transformer_block", [_transformer_block(_seed("transformer"))]


def file_name(name):
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") + ".mil"


def emitted():
    """(opset, file name, MIL text, sha256 of the weight blob) for every golden program."""
    for name, outs in _programs():
        net = af.compile(outs)
        for opset in OPSETS:
            yield opset, file_name(name), net.mil_text(opset), hashlib.sha256(net.weight_blob(opset)).hexdigest()
