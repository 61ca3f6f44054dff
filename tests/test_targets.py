"""Targets: the table, chip names, static gating before emission, decompositions, costs."""
import numpy as np
import pytest

import aneforge as af

NAMES = ("h11 h12 m9 t0 h13 h13g t1 h14 h14g h14c h15 h15g h15c m11 "
         "h16 h16g h16c h16s h17 h17a h17g h17s h17c h17d h18 u1 u2 u3").split()


def test_the_28_targets():
    table = af.targets()
    assert sorted(t["name"] for t in table) == sorted(NAMES)
    for t in table:
        assert t["sources"] and t["family"]
        assert t["mil"] == (t["family"] not in ("pre-h13", "reference"))
        assert t["kernel_width_max"] == (15 if t["family"] == "h16+" else 13)
        assert t["spatial_max"] == (65536 if t["family"] == "h16+" else 16384)
    assert af.target_info("h13")["streams"] == ["int4-lut", "sparse"]


@pytest.mark.parametrize("chip, target", [("M1", "h13"), ("m1 max", "h13g"), ("M2", "h14g"), ("M3 Pro", "h15g"),
                                          ("M4", "h16g"), ("M4 Pro", "h16g"), ("A17 Pro", "h16"), ("M5", "h17s"),
                                          ("A14", "h13"), ("H15G", "h15g")])
def test_chip_names_map_to_targets(chip, target):
    assert af.target_info(chip)["name"] == target


def test_unknown_target_lists_the_valid_names():
    x = af.input((4,), name="x")
    with pytest.raises(ValueError, match=r"unknown target 'zzz'; valid targets: h11, h12, .*u3"):
        af.compile(x.relu(), target="zzz")


def test_targets_without_mil_are_refused():
    x = af.input((4,), name="x")
    with pytest.raises(af.TargetError, match="h12 .*cannot compile MIL"):
        af.compile(x.relu(), target="h12")
    with pytest.raises(af.TargetError, match="reference target"):
        af.compile(x.relu(), target="u2")


def test_shape_limits_per_family():
    x = af.input((1, 20000), name="x")
    with pytest.raises(af.TargetError, match=r"input 'x' \(1, 20000\) exceeds target h13 \(M1\)'s limits"):
        af.compile(x.relu(), target="M1")
    assert af.compile(x.relu(), target="M4").num_layers == 1
    y = af.input((1, 2, 8, 8), name="y")
    r = af.reshape(y, (1, 1, 128)) @ np.ones((128, 17000), np.float32)  # output width 17000
    with pytest.raises(af.TargetError, match=r"(matmul|linear) 'matmul_.*': width \(last axis\) 17000 .*exceeds target h14 .*16384"):
        af.compile(r, target="h14")


def test_conv_kernel_width_limit():
    x = af.input((1, 3, 32, 32), name="x")
    y = af.conv(x, np.zeros((4, 3, 1, 15), np.float32))
    with pytest.raises(af.TargetError, match=r"conv '.*': kernel width 15 of weight \(4, 3, 1, 15\) exceeds target "
                                             r"h13 \(M1\)'s limit of 13 \(15 from h16"):
        af.compile(y, target="h13")
    af.compile(y, target="h16g")
    with pytest.raises(af.TargetError, match="kernel width 16"):
        af.compile(af.conv(x, np.zeros((4, 3, 1, 16), np.float32)), target="h17g")


def test_ops_without_decomposition_fail_on_old_families(rng):
    x = af.input((1, 2, 5, 5), name="x")
    y = af.affine(x, np.tile(np.array([[[1, 0, 0], [0, 1, 0]]], np.float32), (1, 1, 1)))
    with pytest.raises(af.TargetError, match=r"affine '.*' \(1, 2, 5, 5\) cannot run on target h13 \(M1\): native from h14"):
        af.compile(y, target="h13")
    af.compile(y, target="h14g")


@pytest.mark.parametrize("op", ["sin", "cos"])
def test_sin_cos_are_decomposed_below_h15(op, rng):
    x = af.input((3, 50), name="x")
    xs = rng.uniform(-6, 6, (3, 50)).astype(np.float32)
    old = af.compile(getattr(af, op)(x), target="h13")
    new = af.compile(getattr(af, op)(x), target="h15g")
    assert op not in [o for _, o, _ in old._program.layers] and op in [o for _, o, _ in new._program.layers]
    ref = getattr(np, op)(af.round_fp16(xs))
    np.testing.assert_allclose(old(xs), ref, atol=8e-3)  # fp16 range reduction and Horner sums
    np.testing.assert_allclose(new(xs), ref, atol=1e-3)
    exact = getattr(np, op)(xs)  # precision="fp32" does not round the inputs
    np.testing.assert_allclose(af.compile(getattr(af, op)(x), target="h13", precision="fp32")(xs), exact, atol=2e-5)


def test_estimate_and_summary():
    from aneforge.nets import conv_stack
    x, y = conv_stack(layers=4, channels=64, size=16)
    net = af.compile(y, target="M1")
    e = net.estimate()
    assert e["target"] == "h13" and len(e["layers"]) == 4 and e["dispatch_us"] == 210
    assert e["total_us"] == pytest.approx(e["dispatch_us"] + sum(l["us"] for l in e["layers"]))
    assert e["total_us"] > net.estimate("M5 Pro")["total_us"]  # faster chip, faster program
    assert "estimated engine latency" in net.summary(file=open("/dev/null", "w"))
    big = af.compile(conv_stack(layers=8, channels=64, size=16)[1], target="M1")
    assert big.estimate()["total_us"] > e["total_us"]
    with pytest.raises(af.TargetError):
        af.compile(af.conv(x, np.zeros((4, 64, 1, 14), np.float32)), target="h16g").estimate("h13")


def test_every_op_type_is_costed(rng):
    x = af.input((1, 8, 6, 6), name="x")
    net = af.compile([af.max_pool(x, 2), af.conv_transpose(x, np.zeros((8, 4, 2, 2), np.float32), stride=2),
                      x.softmax(1), af.linear(x, np.ones((3, 6), np.float32))])
    for layer in net.estimate()["layers"]:
        assert layer["us"] > 0 and layer["bytes"] > 0
