"""Bad input gets a clear Python exception at the user's line, never a crash."""
import traceback
import warnings

import numpy as np
import pytest

import aneforge as af


def test_conv_channel_mismatch_message():
    x = af.input((1, 3, 32, 32))
    with pytest.raises(ValueError) as e:
        af.conv(x, np.zeros((16, 4, 3, 3), np.float32))
    assert str(e.value) == "conv: weight (16, 4, 3, 3) expects 4 input channels, got x (1, 3, 32, 32)"


def test_error_traceback_points_at_user_line():
    x = af.input((1, 3, 32, 32))
    try:
        af.conv(x, np.zeros((16, 4, 3, 3), np.float32))  # THIS LINE
    except ValueError as e:
        frames = traceback.extract_tb(e.__traceback__)
        assert any("THIS LINE" in (f.line or "") for f in frames)


@pytest.mark.parametrize("build, pattern", [
    (lambda: af.conv(af.input((1, 3, 8, 8)), np.zeros((4, 3, 3, 3), np.float32), pad="full"), "pad must be"),
    (lambda: af.conv(af.input((1, 3, 8, 8)), np.zeros((4, 3, 3, 3), np.float32), stride=0), "stride must be >= 1"),
    (lambda: af.conv(af.input((1, 4, 8, 8)), np.zeros((6, 2, 3, 3), np.float32), groups=4), "groups=4 expects 8"),
    (lambda: af.conv(af.input((1, 3, 8, 8)), np.zeros((4, 3, 3, 3), np.float32), bias=np.zeros(5, np.float32)), r"bias must have shape \(4,\)"),
    (lambda: af.conv(af.input((3, 8, 8)), np.zeros((4, 3, 3, 3), np.float32)), r"weight must be \(O, C/groups, k\)"),
    (lambda: af.conv(af.input((8, 8)), np.zeros((4, 3, 3, 3), np.float32)), "x must have rank 3 to 4"),
    (lambda: af.conv(af.input((1, 3, 8, 8)), np.zeros((4, 3, 3), np.float32)), "weight must be OIHW"),
    (lambda: af.conv(af.input((1, 3, 2, 2)), np.zeros((4, 3, 3, 3), np.float32)), "does not fit"),
    # torch: "Output size is too small"; a window larger than the padded input has no output.
    (lambda: af.max_pool2d(af.input((1, 1, 3, 3)), 5), r"does not fit x \(1, 1, 3, 3\) padded by \(0, 0\)"),
    (lambda: af.avg_pool2d(af.input((1, 1, 3, 3)), 4), "too small"),
    (lambda: af.max_pool2d(af.input((1, 1, 3, 8)), (4, 2), ceil_mode=True), "does not fit"),
    (lambda: af.conv(af.input((1, 3, 8, 8)), np.zeros((4, 3, 2, 2), np.float32), pad="same", stride=2), "needs stride 1"),
    (lambda: af.matmul(af.input((3, 4)), af.input((5, 6))), "inner dimensions differ"),
    (lambda: af.linear(af.input((3, 4)), np.zeros((2, 5), np.float32)), "expects 5 input features"),
    (lambda: af.add(af.input((2, 3)), af.input((4, 3))), "do not broadcast"),
    (lambda: af.add(af.input((2,)), af.input((2,), dtype="int32")), "dtypes differ"),
    (lambda: af.input((2,), dtype="int32") + 0.5, "cannot combine a int32 tensor with the float"),
    (lambda: af.div(af.input((2,), dtype="int32"), af.input((2,), dtype="int32")), "must be fp16 or fp32"),
    (lambda: af.input((1, 2, 3)).mean(3), "axis 3 is out of range for rank 3"),
    (lambda: af.input((1, 2, 3)).sum((1, -2)), "repeats an axis"),
    (lambda: af.input((1, 2, 3)).reshape(4, -1), r"cannot reshape x \(1, 2, 3\)"),
    (lambda: af.input((1, 2, 3)).reshape(-1, -1), "more than one -1"),
    (lambda: af.input((1, 2, 3)).permute(0, 0, 1), "not a permutation"),
    (lambda: af.input((1, 2, 3)).transpose(0, 5), "out of range"),
    (lambda: af.input((1, 2, 3, 4, 5, 6)), "maximum rank 5"),
    (lambda: af.input((1, 0)), "non-positive"),
    (lambda: af.input((1,), dtype="float8"), "unknown dtype 'float8'"),
    (lambda: af.compile([]), "outputs list is empty"),
])
def test_build_errors(build, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        build()


def test_bad_attribute_values_name_the_op():
    x = af.input((1, 3, 8, 8))
    with pytest.raises(TypeError, match="reshape: shape has an invalid value 'abc'"):
        af.reshape(x, "abc")
    with pytest.raises(TypeError, match="sum: dim has an invalid value 'a'"):
        af.sum(x, axis="a")
    with pytest.raises(TypeError, match="compile: target must be a target or chip name"):
        af.compile(x.relu(), target=5)
    with pytest.raises(TypeError, match="compile: backend must be"):
        af.compile(x.relu(), backend=None)


def test_type_errors():
    with pytest.raises(TypeError, match="expected a Tensor, a number or a NumPy array"):
        af.relu("x")
    with pytest.raises(TypeError, match="compile: outputs must be"):
        af.compile(3)
    with pytest.raises(TypeError, match="missing a required argument"):
        af.conv(af.input((1, 3, 8, 8)))
    with pytest.raises(TypeError, match="a lazy Tensor has no truth value"):
        bool(af.input((1,)))


def test_call_errors_name_the_input():
    x = af.input((1, 3, 4, 4), name="image")
    net = af.compile(x.relu())
    good = np.zeros((1, 3, 4, 4), np.float32)
    cases = [
        ((good[0],), {}, r"input 'image' expects shape \(1, 3, 4, 4\), got \(3, 4, 4\)"),
        ((good, good), {}, "expects 1 input"),
        ((), {}, "missing input 'image'"),
        ((), {"imag": good}, "unexpected input 'imag'"),
        ((good,), {"image": good}, "twice"),
        ((good.astype(np.int64) + 4097,), {}, r"input 'image' \(fp16\): the value 4097 .* not exactly representable in fp16"),
        ((good.astype(np.complex64),), {}, "got complex64"),
    ]
    for args, kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            net(*args, **kwargs)
    for bad in ("hello", None, object()):
        with pytest.raises(TypeError, match="input 'image' must be a NumPy array"):
            net(bad)
    np.testing.assert_array_equal(net(good.astype(np.int64) + 3), good + 3)  # exact ints convert


def test_compile_errors():
    a = af.input((2,), name="dup")
    b = af.input((2,), name="dup")
    with pytest.raises(ValueError, match="two graph inputs are named 'dup'"):
        af.compile(a + b)
    c = af.input((2,), name="c")
    with pytest.raises(ValueError, match="missing from inputs="):
        af.compile(a + c, inputs=[a])
    with pytest.raises(ValueError, match="precision must be"):
        af.compile(a.relu(), precision="bf16")
    with pytest.raises(ValueError, match="backend must be one of"):
        af.compile(a.relu(), backend="gpu")


def test_a_window_that_fits_only_with_padding_matches_torch():
    import torch
    import torch.nn.functional as F
    from aneforge.testing import assert_fp16_close
    x = np.random.default_rng(0).standard_normal((1, 1, 3, 3)).astype(np.float32)
    for fn, ref in ((af.max_pool2d, F.max_pool2d), (af.avg_pool2d, F.avg_pool2d)):
        got = af.compile(fn(af.input((1, 1, 3, 3)), 4, padding=2))(x)
        want = ref(torch.from_numpy(x), 4, padding=2).numpy()
        assert_fp16_close(got, want, ulps=2)


def _overflowing():
    x = af.input((1, 4), name="x")
    big = np.eye(4, dtype=np.float32) * 1000
    return x, af.linear(af.linear(x, big).relu(), big)


def test_check_finite_names_the_first_layer_that_overflowed():
    """fp16 holds up to 65504: 100 * 1000 overflows in the first linear, and everything after
    is inf/NaN. check_finite=True says which layer, its op and its input range."""
    x, y = _overflowing()
    xs = np.full((1, 4), 100, np.float32)
    with pytest.raises(FloatingPointError, match=r"layer 'linear_\d+' \(linear(\+relu)?\) gave 4 inf/NaN of 4 values "
                                                 r"from finite inputs in \[0, 1000\]"):
        af.compile(y, check_finite=True)(xs)
    with pytest.raises(FloatingPointError, match="output 0: 4 inf/NaN from finite inputs .*backend='sim'"):
        af.compile(y, check_finite=True, backend="mil")(xs)
    np.testing.assert_array_equal(af.compile(y, check_finite=True)(xs / 1e4), af.compile(y)(xs / 1e4))  # fine when finite


def test_an_output_overflowing_from_finite_inputs_warns_once_per_net():
    x, y = _overflowing()
    net = af.compile(y)
    xs = np.full((1, 4), 100, np.float32)
    with pytest.warns(RuntimeWarning, match="output 0: 4 inf/NaN from finite inputs.*check_finite=True"):
        net(xs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net(xs)  # once per net
        af.compile(y)(np.full((1, 4), np.inf, np.float32))  # inf in, inf out: nothing to report


def test_fp32_programs_run_on_the_sim_only(tmp_path):
    """The MIL program is fp16 (the engine's precision): an fp32 program on the mil backend
    computed fp16 silently (error 2.7e-3 on a 4-input linear); now it says so."""
    x = af.input((2, 4), name="x")
    y = af.linear(x, np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match="precision='fp32' runs on the sim only"):
        af.compile(y, precision="fp32", backend="mil")
    af.compile(y, precision="fp32").save(tmp_path / "p.afp")
    with pytest.raises(ValueError, match="precision='fp32' runs on the sim only"):
        af.load_program(tmp_path / "p.afp", backend="mil")
