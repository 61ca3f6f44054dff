"""pytest plugin: run coremltools' own MIL op tests (coremltools/converters/mil/mil/ops/tests)
on the mil backend. coremltools builds each program, converts it to an ML Program and, on
macOS, compares Core ML's prediction with expected outputs that the test computes with
NumPy/SciPy. Here that comparison step is replaced: the converted package is loaded with
af.load_mlpackage and run by the interpreter, with coremltools' tolerances.

Applicable tests are those that reach the comparison with expected outputs; each writes one
JSON line (test id, op family, outcome) to $ANEFORGE_CONFORMANCE_LOG.
Use: scripts/mil_conformance.py (sets the environment coremltools reads)."""
from __future__ import annotations

import gc
import json
import os
import re

import numpy as np
import pytest

LOG = os.environ.get("ANEFORGE_CONFORMANCE_LOG")


def _family(nodeid: str) -> str:
    m = re.search(r"/(iOS\d+|coreml_dialect)/test_([a-z_]+)\.py", nodeid)
    return m.group(2) if m else "other"


def _record(outcome, detail="", ulp=False):
    """ulp: whether the outputs also meet our own tolerance policy (_meets_our_policy)."""
    if not LOG:
        return
    nodeid = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" (")[0]
    with open(LOG, "a") as f:
        f.write(json.dumps({"test": nodeid, "family": _family(nodeid), "outcome": outcome, "ulp": ulp,
                            "detail": detail[:300]}) + "\n")


def _meets_our_policy(pred, expected_outputs, fp16_compute) -> bool:
    """aneforge.testing's policy (docs/numerics.md): an fp16 program within 2 fp16 ulps per
    element (+ the 2^-14 floor), an fp32 program within rtol 1e-5 and 1e-5 of its largest
    value; integer and string outputs exact. coremltools' expected values come from unrounded
    inputs, so in fp16 programs the inputs' own rounding counts against this bound."""
    from aneforge import testing
    for name, expected in expected_outputs.items():
        got, exp = np.asarray(pred[name]), np.asarray(expected)
        try:
            if got.shape != exp.shape and got.size == exp.size:
                got = got.reshape(exp.shape)
            if exp.dtype == object or exp.dtype.kind in "USbiu":
                if not np.array_equal(got, exp):
                    return False
            elif fp16_compute:
                testing.assert_fp16_close(got, exp, ulps=2.0)
            else:
                testing.assert_fp32_close(got, exp)
        except AssertionError:
            return False
    return True


def _compare_on_mil_backend(mlmodel, input_key_values, expected_outputs, dtype="fp32", atol=1e-04, rtol=1e-05,
                            also_compare_shapes=True, state=None, allow_mismatch_ratio=0.0):
    import aneforge as af
    if expected_outputs is None:
        return None
    if not getattr(mlmodel, "is_package", False) or mlmodel.get_spec().WhichOneof("Type") != "mlProgram":
        pytest.skip("not an ML Program (neuralnetwork backend)")
    if state is not None:
        _record("not_applicable", "stateful model")
        pytest.skip("stateful models are not run by the conformance plugin")
    try:
        net = af.load_mlpackage(mlmodel.package_path, flush_subnormals=False)
        feeds = {k: np.asarray(v) for k, v in (input_key_values or {}).items()}
        pred = net(**feeds)
    except Exception as e:  # an unsupported op or a crash of ours: a failure, recorded
        _record("error", f"{type(e).__name__}: {e}")
        raise
    # coremltools' own rule: fp16 programs (and the non-CPU units) get relaxed tolerances. A
    # program whose inputs or outputs are fp16 computes in fp16 whatever the backend flag says
    # (e.g. the conv stress tests' fp16 variants, whose expected values use unrounded inputs).
    fp16_compute = any(t.dtype == "fp16" for o in net.program.main.block.ops for _, t in o.outputs)
    fp16_compute |= any(t == "fp16" for _, _, t in net.inputs)
    if dtype == "fp16" or fp16_compute:
        atol, rtol = max(atol * 100.0, 5e-1), max(rtol * 100.0, 5e-2)
    try:
        for name, expected in expected_outputs.items():
            got = pred[name]
            exp = np.asarray(expected)
            if also_compare_shapes:
                assert got.shape == exp.shape, f"output {name}: shape {got.shape} != expected {exp.shape}"
            if exp.dtype == object or exp.dtype.kind in "US":
                assert np.array_equal(got, exp)
                continue
            bad = ~np.isclose(got.astype(np.float64), exp.astype(np.float64), atol=atol, rtol=rtol, equal_nan=True)
            if bad.mean() > allow_mismatch_ratio:
                np.testing.assert_allclose(got, exp, atol=atol, rtol=rtol, err_msg=f"output {name}")
    except AssertionError as e:
        _record("fail", str(e))
        raise
    _record("pass", ulp=_meets_our_policy(pred, expected_outputs, dtype == "fp16" or fp16_compute))
    return pred


def pytest_configure(config):
    from coremltools.converters.mil import testing_utils
    from coremltools.converters.mil.mil.ops.tests import testing_utils as op_testing_utils
    testing_utils.compare_backend = _compare_on_mil_backend
    op_testing_utils.compare_backend = _compare_on_mil_backend


def pytest_addoption(parser):
    parser.addoption("--conformance-sample", type=int, default=1,
                     help="keep every Nth collected test (deterministic), for a short run")


def pytest_collection_modifyitems(config, items):
    n = config.getoption("--conformance-sample")
    if n > 1:
        items[:] = [it for i, it in enumerate(items) if i % n == 0]


def pytest_collection_finish(session):
    # coremltools' convert() ends with gc.collect(), which walked every collected test item,
    # torch and coremltools itself each time (60% of the run). Frozen, those are left out;
    # objects made by the tests are still collected.
    gc.freeze()


def pytest_unconfigure(config):
    # back into the collector before exit, so that what the tests left in cycles with frozen
    # objects is freed at shutdown as it was before (nanobind reports instances never freed)
    import gc
    gc.unfreeze()
    gc.collect()
