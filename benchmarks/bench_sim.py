"""Simulator speed, side by side with PyTorch CPU float32 in one process, same threads.

    python benchmarks/bench_sim.py [--threads N] [--json out.json]

Reports median latencies and the median of per-pair ratios (sim / torch, each pair run back
to back); lower is better. Goals (issue 2):
per-call floor <= 10 us; conv-stack ratio <= 1.5.
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import aneforge as af


def paired_median_times(a, b, warmup=3, min_runs=15, min_seconds=2.0):
    """Median times of a and b, run alternately so both see the same machine noise."""
    for _ in range(warmup):
        a(), b()
    ta, tb, start = [], [], time.perf_counter()
    while len(ta) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    ratio = statistics.median(x / y for x, y in zip(ta, tb))  # per pair: robust to bursts of noise
    return statistics.median(ta), statistics.median(tb), ratio


def per_call_floor_us():
    x = af.input((1, 16), name="x")
    net = af.compile(x.relu())
    a = np.ones((1, 16), np.float32)
    for _ in range(1000):
        net(a)
    n, best = 20000, []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            net(a)
        best.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(best)


def quickstart_case(rng):
    W = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    img = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    x = af.input((1, 3, 32, 32), name="image")
    net = af.compile(af.conv(x, W, pad=1).relu().mean((2, 3)))
    tw, ti = torch.from_numpy(W), torch.from_numpy(img)

    def ref():
        with torch.no_grad():
            return F.conv2d(ti, tw, padding=1).relu().mean((2, 3))
    return "quickstart conv3x3(3->16,32x32)+relu+mean", lambda: net(img), ref


def conv_stack_case(rng, layers=8, ch=64, hw=56):
    ws = [(rng.standard_normal((ch, ch, 3, 3)) * np.sqrt(2 / (ch * 9))).astype(np.float32) for _ in range(layers)]
    bs = [rng.standard_normal(ch).astype(np.float32) * 0.1 for _ in range(layers)]
    img = rng.standard_normal((1, ch, hw, hw)).astype(np.float32)
    x = af.input((1, ch, hw, hw), name="x")
    h = x
    for w, b in zip(ws, bs):
        h = af.conv(h, w, b, pad=1).relu()
    net = af.compile(h)
    tws = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in zip(ws, bs)]
    ti = torch.from_numpy(img)

    def ref():
        with torch.no_grad():
            t = ti
            for w, b in tws:
                t = F.conv2d(t, w, b, padding=1).relu()
            return t
    return f"conv stack {layers}x conv3x3({ch}ch,{hw}x{hw})+bias+relu", lambda: net(img), ref


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=af.num_threads())
    ap.add_argument("--json")
    args = ap.parse_args()
    af.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    results = {"threads": args.threads, "blas": af._core.blas_name(), "cases": []}
    print(f"threads={args.threads}  blas={results['blas']}  torch={torch.__version__}")
    print(f"{'case':52s} {'sim ms':>9s} {'torch ms':>9s} {'ratio':>7s}")
    for name, sim, ref in (quickstart_case(rng), conv_stack_case(rng)):
        ts, tr, ratio = paired_median_times(sim, ref)
        results["cases"].append({"case": name, "sim_ms": ts * 1e3, "torch_ms": tr * 1e3, "ratio": ratio})
        print(f"{name:52s} {ts * 1e3:9.3f} {tr * 1e3:9.3f} {ratio:7.2f}")
    floor = per_call_floor_us()
    results["per_call_floor_us"] = floor
    print(f"per-call floor (tiny relu graph, from Python): {floor:.2f} us")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
