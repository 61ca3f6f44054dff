"""Reference network graphs built from af ops (random or given weights), used by the cost
model's published-measurement checks, benchmarks and tests."""
from __future__ import annotations

import numpy as np

from .compiler.build import compile as _compile
from .graph import functional as _F


def _conv_bn(x, cin, cout, k, stride, rng, relu=True):
    w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
    mean = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    var = (rng.random(cout) + 0.5).astype(np.float32)
    gamma = (rng.random(cout) + 0.5).astype(np.float32)
    beta = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    y = _F.batch_norm(_F.conv(x, w, stride=stride, pad=k // 2), mean, var, gamma, beta)
    return y.relu() if relu else y


def resnet18(batch=1, size=224, classes=1000, seed=0):
    """ResNet-18 (torchvision topology) with random weights; returns (input, logits)."""
    rng = np.random.default_rng(seed)
    x = _F.input((batch, 3, size, size), name="image")
    h = _conv_bn(x, 3, 64, 7, 2, rng)
    h = _F.max_pool(h, 3, 2, 1)
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            s = stride if block == 0 else 1
            y = _conv_bn(h, cin, cout, 3, s, rng)
            y = _conv_bn(y, cout, cout, 3, 1, rng, relu=False)
            sc = _conv_bn(h, cin, cout, 1, s, rng, relu=False) if (s != 1 or cin != cout) else h
            h = (y + sc).relu()
            cin = cout
    fc = (rng.standard_normal((classes, 512)) / np.sqrt(512)).astype(np.float32)
    return x, _F.linear(h.mean((2, 3)), fc, np.zeros(classes, np.float32))


def conv_stack(layers=16, channels=256, size=32, seed=0):
    rng = np.random.default_rng(seed)
    x = _F.input((1, channels, size, size), name="x")
    h = x
    for _ in range(layers):
        w = (rng.standard_normal((channels, channels, 3, 3)) * np.sqrt(2.0 / (channels * 9))).astype(np.float32)
        h = _F.conv(h, w, pad=1).relu()
    return x, h


def gemm(m=256, k=4096, n=4096, seed=0):
    rng = np.random.default_rng(seed)
    x = _F.input((m, k), name="x")
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    return x, _F.matmul(x, w)


# Published engine measurements (sbryngelson/ANEForge README and bench/results; ane-guide s9).
PUBLISHED = [
    ("ResNet-18 fp16, batch 1, 224x224", "h17s", "M5 Pro", lambda: resnet18(), 330.0,
     "ANEForge README, real_models_fp16_results.json"),
    ("16x conv3x3, 256 ch, 32x32", "h13g", "M1 Max", lambda: conv_stack(), 1920.0,
     "ANEForge device_compare_wattcomplete_results_M1.json"),
    ("16x conv3x3, 256 ch, 32x32", "h17s", "M5 Pro", lambda: conv_stack(), 757.0,
     "ANEForge device_compare_wattcomplete_results_M5.json"),
    ("GEMM 256x4096x4096", "h13g", "M1 Max", lambda: gemm(), 2.0 * 256 * 4096 * 4096 / 3.6e12 * 1e6,
     "ANEForge (3.6 TFLOP/s)"),
    ("GEMM 256x4096x4096", "h17s", "M5 Pro", lambda: gemm(), 2.0 * 256 * 4096 * 4096 / 6.6e12 * 1e6,
     "ANEForge (6.6 TFLOP/s)"),
]


def cost_model_errors():
    """(workload, target, chip, published us, estimated us, error %) for each published point."""
    rows, cache = [], {}
    for name, target, chip, build, published, source in PUBLISHED:
        if name not in cache:
            x, y = build()
            cache[name] = _compile(y, target=target)
        est = cache[name].estimate(target)["total_us"]
        rows.append((name, target, chip, published, est, 100.0 * (est - published) / published, source))
    return rows


def cost_model_markdown() -> str:
    lines = ["| workload | target (chip) | published | estimated | error | source |", "|---|---|---|---|---|---|"]
    for name, target, chip, pub, est, err, src in cost_model_errors():
        lines.append(f"| {name} | {target} ({chip}) | {pub:.0f} us | {est:.0f} us | {err:+.0f}% | {src} |")
    return "\n".join(lines) + "\n"
