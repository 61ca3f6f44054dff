"""Reference cases for the op table: each op against PyTorch/NumPy float32.

A case builds a graph from graph inputs and computes the same thing with torch on float32
tensors. `check_case` runs it twice:
- precision="fp32": against the reference on the same inputs, tight tolerance;
- precision="fp16": against the reference evaluated on the fp16-rounded inputs (so the
  op's own error is what is measured), with the fp16 policy of aneforge.testing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

import aneforge as af
from aneforge.testing import assert_fp16_close, assert_fp32_close


@dataclass
class Case:
    name: str
    build: Callable
    ref: Callable
    inputs: list                      # [(shape, kind)], kind: normal/positive/nonzero/bool/int/unit
    ulps: float = 2.0                 # per-element bound (aneforge.testing)
    rtol32: float = 1e-5
    atol32: float = 1e-5
    tags: set = field(default_factory=set)
    floor_ulps: float = 0.0           # absolute floor in ulps of the largest result; set with a reason

    def __repr__(self):
        return self.name


def make_input(shape, kind, rng):
    if kind == "bool":
        return rng.random(shape) > 0.5
    if kind == "int":
        return rng.integers(-20, 20, shape).astype(np.int32)
    if kind.startswith("index:"):  # valid indices below N, led by both sides of each 2048-row chunk edge
        n = int(kind[6:])
        x = rng.integers(0, n, shape).astype(np.int32)
        edges = sorted({v for e in range(0, n, 2048) for v in (e - 1, e, e + 1) if 0 <= v < n} | {n - 1})
        flat = x.reshape(-1)
        flat[:min(flat.size, len(edges))] = edges[:flat.size]
        return x
    x = rng.standard_normal(shape).astype(np.float32)
    if kind == "positive":
        x = np.abs(x) + 0.1
    elif kind == "nonzero":
        x = np.where(np.abs(x) < 0.25, 0.5, x)
    elif kind == "unit":
        x = np.clip(x * 0.4, -0.95, 0.95)
    elif kind == "wide":
        x = x * 4
    return x.astype(np.float32)


def _dtype(a):
    return "bool" if a.dtype == np.bool_ else "int32" if a.dtype == np.int32 else "fp16"


def to_torch(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def run_case(case: Case, arrays, precision):
    xs = [af.input(a.shape, dtype=_dtype(a), name=f"in{i}") for i, a in enumerate(arrays)]
    y = case.build(*xs)
    outs = y if isinstance(y, (list, tuple)) else [y]
    return af.compile(list(outs), precision=precision)(*arrays)


def reference(case: Case, arrays):
    with torch.no_grad():
        r = case.ref(*[to_torch(a) for a in arrays])
    rs = r if isinstance(r, (list, tuple)) else [r]
    return [np.asarray(t.detach().numpy() if hasattr(t, "detach") else t) for t in rs]


def check_case(case: Case, rng, arrays=None):
    arrays = arrays or [make_input(s, k, rng) for s, k in case.inputs]
    got32 = run_case(case, arrays, "fp32")
    for g, r in zip(got32, reference(case, arrays)):
        if r.dtype == np.bool_ or np.issubdtype(r.dtype, np.integer):
            np.testing.assert_array_equal(g, r, err_msg=f"{case.name} fp32")
        else:
            assert_fp32_close(g, r, rtol=case.rtol32, atol=case.atol32, what=f"{case.name} fp32")
    rounded = [af.round_fp16(a) if a.dtype == np.float32 else a for a in arrays]
    got16 = run_case(case, arrays, "fp16")
    for g, r in zip(got16, reference(case, rounded)):
        if r.dtype == np.bool_ or np.issubdtype(r.dtype, np.integer):
            np.testing.assert_array_equal(g, r, err_msg=f"{case.name} fp16")
        else:
            with np.errstate(over="ignore"):
                r16 = r.astype(np.float16).astype(np.float32)  # the engine stores fp16 results
            assert_fp16_close(g, r16, ulps=case.ulps, floor_ulps=case.floor_ulps, what=f"{case.name} fp16")
