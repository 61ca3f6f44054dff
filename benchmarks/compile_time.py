"""Compile time: building the graph and compiling it, for ResNet-18, -34 and -50 and for
stacks of transformer blocks of growing depth (issue 25: ResNet-18 <= 50 ms; time linear in
layers).

    python benchmarks/compile_time.py [--repeats 7]

Median of the repeats, weights made once beforehand (initialisation is not compile time).
There is no PyTorch counterpart to set beside it (eager PyTorch does not compile); the goal
is absolute. ms per layer is the compile time divided by the program's layer count.
"""
import argparse
import statistics
import time

import numpy as np

import aneforge as af
from aneforge.compiler.build import compile as af_compile
from aneforge.graph import functional as F
from aneforge.models import vision
from aneforge.models._files import Weights


def median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def resnet(depth, repeats):
    w = Weights(vision._init_resnet(depth, 1000, 0), f"resnet{depth}")
    blocks, bottleneck = vision.RESNETS[depth]
    box = {}

    def build():
        box["y"] = vision.build_resnet(w, blocks, bottleneck, F.input((1, 3, 224, 224), name="pixel_values"))

    def comp():
        box["net"] = af_compile(box["y"])

    build_ms = median_ms(build, repeats)
    comp_ms = median_ms(comp, repeats)
    return build_ms, comp_ms, box["net"].num_layers


def blocks(n, repeats, D=256, S=64):
    """n pre-norm transformer blocks (attention + MLP), fixed sizes: only the depth grows."""
    rng = np.random.default_rng(0)
    ws = [[(rng.standard_normal(s) * 0.05).astype(np.float32) for s in ((3 * D, D), (D, D), (4 * D, D), (D, 4 * D))]
          for _ in range(n)]
    box = {}

    def build():
        x = F.input((1, S, D), name="x")
        h = x
        for qkv, o, up, down in ws:
            a = F.layer_norm(h, (D,))
            qkv_heads = F.linear(a, qkv).reshape(1, S, 3, 4, D // 4).permute(2, 0, 3, 1, 4)
            q, k, v = qkv_heads[0], qkv_heads[1], qkv_heads[2]
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            h = h + F.linear(att.permute(0, 2, 1, 3).reshape(1, S, D), o)
            h = h + F.linear(F.gelu(F.linear(F.layer_norm(h, (D,)), up)), down)
        box["y"] = h

    def comp():
        box["net"] = af_compile(box["y"])

    build_ms = median_ms(build, repeats)
    comp_ms = median_ms(comp, repeats)
    return build_ms, comp_ms, box["net"].num_layers


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"threads {af.num_threads()}, median of {args.repeats}")
    print("| graph | graph build ms | compile ms | layers | compile ms per layer |")
    print("|---|---|---|---|---|")
    for depth in (18, 34, 50):
        b, c, n = resnet(depth, args.repeats)
        print(f"| ResNet-{depth} 224 | {b:.1f} | {c:.1f} | {n} | {c / n:.3f} |", flush=True)
    for n in (4, 8, 16):
        b, c, layers = blocks(n, args.repeats)
        print(f"| {n} transformer blocks | {b:.1f} | {c:.1f} | {layers} | {c / layers:.3f} |", flush=True)


if __name__ == "__main__":
    main()
