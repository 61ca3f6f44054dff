"""PyTorch's argument names reach the same parameters as the seed's (padding/pad, dim/axis,
keepdim/keepdims), results compared with torch; an unknown keyword suggests the close one."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aneforge as af


def _run(y, *arrays):
    return af.compile(y, precision="fp32")(*arrays)


def test_torch_names_give_torch_results(rng):
    a = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x = af.input(a.shape, name="x")
    t = torch.from_numpy(a)
    cases = [
        (af.conv(x, w, padding=1), F.conv2d(t, torch.from_numpy(w), padding=1)),
        (af.max_pool(x, 3, 2, padding=1), F.max_pool2d(t, 3, 2, padding=1)),
        (af.softmax(x, dim=1), torch.softmax(t, dim=1)),
        (af.sum(x, dim=(2, 3), keepdim=True), t.sum(dim=(2, 3), keepdim=True)),
        (x.mean(dim=-1, keepdim=True), t.mean(dim=-1, keepdim=True)),
    ]
    for got, want in cases:
        np.testing.assert_allclose(_run(got, a), want.numpy(), rtol=1e-5, atol=1e-5)


def test_seed_names_still_work_and_both_at_once_is_an_error(rng):
    x = af.input((1, 3, 8, 8), name="x")
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    assert af.conv(x, w, pad=1).shape == af.conv(x, w, padding=1).shape == (1, 4, 8, 8)
    assert af.mean(x, axis=1, keepdims=True).shape == (1, 1, 8, 8)
    with pytest.raises(TypeError, match="twice"):
        af.conv(x, w, pad=1, padding=1)


def test_unknown_keyword_suggests_the_close_one():
    x = af.input((1, 3, 8, 8), name="x")
    with pytest.raises(TypeError, match="did you mean 'padding'"):
        af.conv(x, np.ones((4, 3, 3, 3), np.float32), paddin=1)
    with pytest.raises(TypeError, match="did you mean 'dim'"):
        af.softmax(x, dimm=1)


def test_outputs_keep_the_structure_given(rng, tmp_path):
    x = af.input((3,), name="x")
    xs = rng.standard_normal(3).astype(np.float32)
    for backend in ("sim", "mil"):
        out = af.compile((x.relu(), x * 2), backend=backend)(xs)
        assert isinstance(out, tuple) and len(out) == 2
        assert isinstance(af.compile([x.relu()], backend=backend)(xs), list)
    net = af.compile((x.relu(), x * 2))
    net.save(tmp_path / "t.afp")
    assert isinstance(af.load_program(tmp_path / "t.afp")(xs), tuple)


def test_load_program_restores_every_compile_option(tmp_path):
    x = af.input((2, 8), name="x")
    w = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    net = af.compile(af.linear(x, w), target="M2", compress="int8", precision="fp32",
                     rounding="nearest_away", flush_subnormals=False)
    net.save(tmp_path / "n.afp")
    back = af.load_program(tmp_path / "n.afp", opset="ios17")  # fp32 programs run on the sim only
    assert back.options == {**net.options, "opset": "ios17"}
    assert back.options["compress"] == net.options["compress"] and list(net.options["compress"].values()) == ["int8"]
    assert back.options["precision"] == "fp32"
    assert back.options["rounding"] == "nearest_away" and back.options["flush_subnormals"] is False
    assert back.target == net.target
    xs = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    np.testing.assert_array_equal(back(xs), net(xs))


def test_version_comes_from_the_package_metadata():
    import subprocess
    import sys
    from importlib import metadata
    assert af.__version__ == metadata.version("aneforge")
    out = subprocess.run([sys.executable, "-m", "aneforge", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"aneforge {af.__version__}"


def test_int_arrays_convert_when_exact_and_are_refused_otherwise():
    x = af.input((3,), name="x")
    net = af.compile(x * 1)
    np.testing.assert_array_equal(net(np.array([1, -2, 2048], dtype=np.int64)), [1, -2, 2048])
    with pytest.raises(ValueError, match="2049"):
        net(np.array([1, 2, 2049], dtype=np.int32))  # not representable in fp16


def test_nets_needs_no_import_of_its_own():
    import subprocess
    import sys
    code = "import aneforge as af; x, y = af.nets.resnet18(size=32, classes=10); print(y.shape)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "(1, 10)", out.stderr


def test_op_info_by_name_alias_and_category():
    (conv,) = af.ops("conv2d")
    assert conv.name == "conv" and conv.kind == "native" and conv.first_family == "h13"
    assert "padding=0" in conv.signature and {"conv1d", "conv2d"} <= set(conv.aliases)
    assert af.ops("sdpa")[0].kind == "bridge"
    assert {o.name for o in af.ops(category="pooling")} >= {"max_pool", "avg_pool"}
    with pytest.raises(ValueError, match="did you mean"):
        af.ops("conv3")
    with pytest.raises(ValueError, match="categories are"):
        af.ops(category="convolution")
