"""Shared helpers of the MIL equivalence suite: run one graph on the sim and on the mil
backend (its emitted MIL text and weight blob, interpreted) and compare per element."""
from __future__ import annotations

import numpy as np

import aneforge as af
from aneforge.testing import assert_equivalent

OPSETS = ["ios17", "ios18"]


def dtype_of(a):
    return "bool" if a.dtype == np.bool_ else "int32" if a.dtype == np.int32 else "fp16"


def build(case, arrays, const_params):
    """The case's graph: every array an input, or (const_params) only the first, the rest
    constants as in a model (so emitters take their constant-parameter forms)."""
    xs = [af.input(a.shape, dtype=dtype_of(a), name=f"in{i}") if i == 0 or not const_params else af.constant(a, dtype_of(a))
          for i, a in enumerate(arrays)]
    y = case.build(*xs)
    feeds = arrays[:1] if const_params else arrays
    return (list(y) if isinstance(y, (list, tuple)) else [y]), feeds


def run_both(outputs, feeds, opset, inputs=None, fold=True):
    sim = af.compile(outputs, inputs=inputs, fold_constants=fold)(*feeds)
    mil = af.compile(outputs, backend="mil", opset=opset, inputs=inputs, fold_constants=fold)(*feeds)
    return sim, mil


def check(outputs, feeds, opset, what, ulps=2.0, floor_ulps=0.0, inputs=None, fold=True):
    sim, mil = run_both(outputs, feeds, opset, inputs, fold)
    for i, (s, m) in enumerate(zip(sim, mil)):
        if s.dtype.kind in "biu":
            np.testing.assert_array_equal(m, s, err_msg=f"{what} out{i}")
        else:
            assert_equivalent(s, m, ulps, floor_ulps, f"{what} ({opset}) out{i}")
