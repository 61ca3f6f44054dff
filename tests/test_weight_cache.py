"""The simulator's weight cache (af.set_sim_weight_cache): a conv's or a linear layer's
fp16-stored weight kept as float32 by its program, within a process-wide limit; what the user
sees is memory, not values. A linear layer over at most 4 rows (a decode step) keeps nothing:
it reads its fp16 rows in place."""
import subprocess
import sys
import textwrap

import pytest

import aneforge as af

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import aneforge as af
    from aneforge.graph import functional as F
    rng = np.random.default_rng(0)
    if LAYER == "conv":
        w = (rng.standard_normal((512, 512, 3, 3)) * 0.02).astype(np.float32)  # 9.4 MB as float32
        x = rng.standard_normal((1, 512, 8, 8)).astype(np.float32)
        y = F.conv2d(af.input(x.shape, name="x"), w, padding=1)
    else:  # "linear <rows>"
        w = (rng.standard_normal((3072, 768)) * 0.02).astype(np.float32)  # 9.4 MB as float32
        x = rng.standard_normal((int(LAYER.split()[1]), 768)).astype(np.float32)
        y = F.linear(af.input(x.shape, name="x"), w)
    def rss():  # resident bytes now
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    def freed_by_deleting(limit):  # a program compiled, run twice, then deleted
        af.set_sim_weight_cache(limit)
        net = af.compile(y)
        outs = [net(x=x), net(x=x)]
        holding, held = rss(), af.sim_weight_cache()["bytes"]
        del net
        return holding - rss(), held, outs
    freed_plain, held0, (out0, _) = freed_by_deleting(0)  # its fp16 weights and buffers
    freed_plain, held0, (out0, _) = freed_by_deleting(0)
    freed_kept, held1, (out1, out2) = freed_by_deleting(256 << 20)  # and the kept copy
    print(json.dumps({"same": bool(np.array_equal(out0.view(np.uint32), out1.view(np.uint32)) and
                                   np.array_equal(out1.view(np.uint32), out2.view(np.uint32))),
                      "kept": freed_kept - freed_plain, "held0": held0, "held1": held1,
                      "after": af.sim_weight_cache()["bytes"]}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the resident size from /proc/self/statm")
@pytest.mark.parametrize("layer, fp32", [("conv", 512 * 512 * 9 * 4), ("linear 197", 3072 * 768 * 4), ("linear 4", 0)])
def test_a_kept_weight_costs_its_float32_bytes_and_changes_no_value(layer, fp32):
    import json
    import os
    # large blocks straight from mmap, so that freeing one gives its pages back at once
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    r = subprocess.run([sys.executable, "-c", f"LAYER = {layer!r}\n" + SCRIPT], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["same"]
    assert m["held0"] == 0 and m["held1"] == fp32 and m["after"] == 0
    if fp32 == 0:  # nothing kept: deleting gives back no more than without the cache
        assert abs(m["kept"]) <= 0.02 * 3072 * 768 * 4, m
        return
    # a program that kept the copy gives back that many more resident bytes when deleted
    # (measured exactly 1.00x; the margin is a few allocator pages)
    assert 0.98 * fp32 <= m["kept"] <= 1.02 * fp32, m


def test_limit_is_checked_and_reported():
    before = af.sim_weight_cache()["limit"]
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        af.set_sim_weight_cache(-1)
    af.set_sim_weight_cache(12345)
    try:
        assert af.sim_weight_cache()["limit"] == 12345
    finally:
        af.set_sim_weight_cache(before)
