#!/usr/bin/env python3
"""Writes the small seed corpora under fuzz/corpus/ from real files this library produces:
program files, MIL text (both dialects), Model protobufs, weight blobs and manifests."""
import pathlib
import sys

import numpy as np

import aneforge as af

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def nets():
    rng = np.random.default_rng(0)
    x = af.input((1, 3, 8, 8), name="x")
    yield "conv_relu_mean", af.compile(af.conv(x, rng.standard_normal((4, 3, 3, 3)).astype(np.float32), pad=1).relu().mean((2, 3)))
    a = af.input((2, 16), name="a")
    yield "softmax_topk", af.compile([af.softmax(a, -1), af.topk(a, 3)[1], a > 0])
    yield "linear_ln", af.compile(af.layer_norm(af.linear(a, rng.standard_normal((12, 16)).astype(np.float32)), (12,)))
    yield "pool_upsample", af.compile(af.upsample_bilinear(af.max_pool(x, 2, 2), 1.5))
    w = rng.standard_normal((8, 16)).astype(np.float32)
    yield "linear_int8", af.compile(af.linear(a, w), compress="int8")
    yield "linear_int4", af.compile(af.linear(a, w), compress="int4")


def main() -> int:
    import tempfile
    for d in ("program_file", "mil_text", "mil_proto", "mil_blob", "manifest"):
        (ROOT / d).mkdir(parents=True, exist_ok=True)
    for name, net in nets():
        with tempfile.TemporaryDirectory() as t:
            net.save(f"{t}/p.afprog")
            (ROOT / "program_file" / f"{name}.afprog").write_bytes(pathlib.Path(f"{t}/p.afprog").read_bytes())
            for opset in ("ios17", "ios18"):
                (ROOT / "mil_text" / f"{name}_{opset}.mil").write_text(net.mil_text(opset))
                net.export_mlpackage(f"{t}/m.mlpackage", opset=opset, overwrite=True)
                data = pathlib.Path(f"{t}/m.mlpackage/Data/com.apple.CoreML")
                (ROOT / "mil_proto" / f"{name}_{opset}.mlmodel").write_bytes((data / "model.mlmodel").read_bytes())
                (ROOT / "mil_blob" / f"{name}_{opset}.bin").write_bytes((data / "weights" / "weight.bin").read_bytes())
                (ROOT / "manifest" / f"{name}_{opset}.json").write_bytes(pathlib.Path(f"{t}/m.mlpackage/Manifest.json").read_bytes())
    print(f"seeds written under {ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
