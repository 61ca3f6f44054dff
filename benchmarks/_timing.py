"""Timing shared by the benchmarks: alternating pairs in one process, medians and the median
of the per-pair ratios against the first function."""
import statistics
import time


def paired(fns, min_runs=15, min_seconds=2.0):
    """([median seconds of each fn], [median of fns[0] / fn per pair, for each other fn])."""
    for f in fns:
        f()
    times = [[] for _ in fns]
    start = time.perf_counter()
    while len(times[0]) < min_runs or time.perf_counter() - start < min_seconds:
        for f, ts in zip(fns, times):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    med = [statistics.median(ts) for ts in times]
    return med, [statistics.median(a / b for a, b in zip(times[0], ts)) for ts in times[1:]]
