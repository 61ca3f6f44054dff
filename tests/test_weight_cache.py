"""The simulator's weight cache (af.set_sim_weight_cache): a conv's fp16-stored weight kept as
float32 by its program, within a process-wide limit; what the user sees is memory, not values."""
import subprocess
import sys
import textwrap

import pytest

import aneforge as af

SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import aneforge as af
    from aneforge.graph import functional as F
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((512, 512, 3, 3)) * 0.02).astype(np.float32)  # 9.4 MB as float32
    x = rng.standard_normal((1, 512, 8, 8)).astype(np.float32)
    y = F.conv2d(af.input(x.shape, name="x"), w, padding=1)
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    af.set_sim_weight_cache(0)
    out0 = af.compile(y)(x=x)
    out0 = af.compile(y)(x=x)
    peak0, held0 = peak(), af.sim_weight_cache()["bytes"]
    af.set_sim_weight_cache(256 << 20)
    net = af.compile(y)
    out1 = net(x=x)
    out2 = net(x=x)
    peak1, held1 = peak(), af.sim_weight_cache()["bytes"]
    del net
    print(json.dumps({"same": bool(np.array_equal(out0.view(np.uint32), out1.view(np.uint32)) and
                                   np.array_equal(out1.view(np.uint32), out2.view(np.uint32))),
                      "grown": peak1 - peak0, "held0": held0, "held1": held1,
                      "after": af.sim_weight_cache()["bytes"]}))
""")


def test_a_kept_weight_costs_its_float32_bytes_and_changes_no_value():
    import json
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout.strip().splitlines()[-1])
    fp32 = 512 * 512 * 9 * 4
    assert m["same"]
    assert m["held0"] == 0 and m["held1"] == fp32 and m["after"] == 0
    # the kept copy is new memory: the process's peak grows by its size (measured 1.00x; the
    # margin is for allocator pages)
    assert 0.95 * fp32 <= m["grown"] <= 1.1 * fp32, m


def test_limit_is_checked_and_reported():
    before = af.sim_weight_cache()["limit"]
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        af.set_sim_weight_cache(-1)
    af.set_sim_weight_cache(12345)
    try:
        assert af.sim_weight_cache()["limit"] == 12345
    finally:
        af.set_sim_weight_cache(before)
