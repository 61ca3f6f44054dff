"""af.load_mlpackage and `aneforge run`: ML Programs run on the mil backend on Linux, ours and
those made by coremltools (its MIL builder and its PyTorch converter), against references;
malformed packages are clear errors."""
import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import aneforge as af
from aneforge.testing import assert_equivalent, assert_fp16_close, cosine

warnings.filterwarnings("ignore")
ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402


@pytest.fixture
def exported(tmp_path, rng):
    x = af.input((1, 3, 12, 12), name="image")
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    net = af.compile({"feat": af.conv(x, w, pad=1).relu().mean((2, 3)), "mask": x > 0})
    return net, x


@pytest.mark.parametrize("opset", ["ios17", "ios18"])
def test_our_export_runs_like_the_sim(exported, tmp_path, rng, opset):
    net, _ = exported
    path = tmp_path / "net.mlpackage"
    net.export_mlpackage(path, opset=opset)
    pkg = af.load_mlpackage(path)
    img = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    got, want = pkg(image=img), net(img)
    assert sorted(got) == ["feat", "mask"]
    assert_equivalent(got["feat"], want["feat"], 2, 1, "feat")
    np.testing.assert_array_equal(got["mask"] != 0, want["mask"])  # bool leaves the package as int32
    assert pkg.inputs == [("image", (1, 3, 12, 12), "fp16")]


def _save(model, tmp_path, name="m"):
    path = tmp_path / f"{name}.mlpackage"
    model.save(str(path))
    return path


def test_coremltools_mil_builder_program(tmp_path, rng):
    w = rng.standard_normal((4, 6)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 6))], opset_version=ct.target.iOS17)
    def prog(x):
        y = mb.linear(x=x, weight=w, bias=np.arange(4, dtype=np.float32))
        y = mb.softmax(x=mb.gelu(x=y, mode="TANH_APPROXIMATION"), axis=-1)
        return mb.reduce_max(x=y, axes=[1], keep_dims=True), mb.topk(x=y, k=2)[1]

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                       compute_precision=ct.precision.FLOAT32, skip_model_load=True)
    pkg = af.load_mlpackage(_save(model, tmp_path))
    x = rng.standard_normal((2, 6)).astype(np.float32)
    out = list(pkg(x).values())
    t = torch.softmax(torch.nn.functional.gelu(torch.from_numpy(x) @ torch.from_numpy(w).T + torch.arange(4.0),
                                               approximate="tanh"), -1)
    np.testing.assert_allclose(out[0], t.amax(1, keepdim=True).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[1], t.topk(2).indices.numpy())


class _Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.c2 = torch.nn.Conv2d(8, 8, 3, stride=2, groups=2)
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x):
        y = torch.relu(self.bn(self.c1(x)))
        y = torch.nn.functional.max_pool2d(y, 2, ceil_mode=True)
        y = torch.nn.functional.silu(self.c2(y))
        y = self.up(y)
        y = torch.nn.functional.layer_norm(y, (6,))
        return torch.log_softmax(self.fc(y.mean((2, 3))), -1), torch.cat([y, -y], 1).amax((1,))


@pytest.mark.parametrize("precision", ["FLOAT16", "FLOAT32"])
def test_coremltools_pytorch_converter_program(tmp_path, precision):
    torch.manual_seed(0)
    m = _Cnn().eval()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 17, 16)
    model = ct.convert(torch.jit.trace(m, x), inputs=[ct.TensorType(name="x", shape=x.shape)], convert_to="mlprogram",
                       minimum_deployment_target=ct.target.iOS17, compute_precision=getattr(ct.precision, precision),
                       skip_model_load=True)
    pkg = af.load_mlpackage(_save(model, tmp_path))
    got = list(pkg(x=x.numpy()).values())
    with torch.no_grad():
        ref = [r.numpy() for r in m(x)]
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        if precision == "FLOAT32":
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)
        else:
            assert cosine(g, r) > 0.9999


def test_runtime_values_match_an_independent_fp16_reference(tmp_path, rng):
    """Each op's result is stored in fp16: a chain of adds rounds at every step."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(64,), dtype=ct.converters.mil.mil.types.fp16)],
                opset_version=ct.target.iOS17)
    def prog(x):
        return mb.add(x=mb.add(x=x, y=np.float16(1000.0)), y=np.float16(-1000.0))

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17, skip_model_load=True)
    pkg = af.load_mlpackage(_save(model, tmp_path))
    x = rng.random(64).astype(np.float32)
    want = ((x.astype(np.float16) + np.float16(1000)) + np.float16(-1000)).astype(np.float32)
    np.testing.assert_array_equal(list(pkg(x).values())[0], want)


# ---- malformed packages ------------------------------------------------------------


def _copy(exported, tmp_path):
    net, _ = exported
    path = tmp_path / "p.mlpackage"
    net.export_mlpackage(path)
    return path


def test_manifest_path_outside_the_package_is_refused(exported, tmp_path):
    path = _copy(exported, tmp_path)
    man = json.loads((path / "Manifest.json").read_text())
    root = man["rootModelIdentifier"]
    man["itemInfoEntries"][root]["path"] = "../../outside.mlmodel"
    (path / "Manifest.json").write_text(json.dumps(man))
    with pytest.raises(ValueError, match="stay inside the package"):
        af.load_mlpackage(path)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_model_file_is_a_clear_error(exported, tmp_path, damage, rng):
    path = _copy(exported, tmp_path)
    model = path / "Data" / "com.apple.CoreML" / "model.mlmodel"
    data = bytearray(model.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        for i in rng.choice(len(data), 40, replace=False):
            data[i] ^= 0xFF
    else:
        data = bytearray()
    model.write_bytes(bytes(data))
    try:
        pkg = af.load_mlpackage(path)
        pkg(rng.standard_normal((1, 3, 12, 12)).astype(np.float32))
    except (ValueError, OSError, TypeError) as e:
        assert str(e)
    # no crash, no hang: either an error naming the problem or (flips in data) a result


def test_blob_offset_past_the_end_is_refused(exported, tmp_path):
    path = _copy(exported, tmp_path)
    blob = path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    blob.write_bytes(blob.read_bytes()[:100])
    with pytest.raises(ValueError, match="weight.bin"):
        af.load_mlpackage(path)


def test_missing_package_and_unknown_op(tmp_path):
    with pytest.raises(OSError, match="not an .mlpackage"):
        af.load_mlpackage(tmp_path / "nope.mlpackage")
    from aneforge import mil
    prog = mil.parse_text("program(1.3)\n{\n func main<ios18>(tensor<fp16, [2]> x) {\n"
                          "  tensor<fp16, [2]> y = frobnicate(x = x)[name = string(\"y\")];\n } -> (y);\n}\n")
    with pytest.raises(ValueError, match="'frobnicate' is not supported"):
        mil.Interpreter(prog)


# ---- aneforge run --------------------------------------------------------------------


def test_cli_run_writes_npy_outputs(exported, tmp_path, rng):
    net, _ = exported
    pkg = tmp_path / "m.mlpackage"
    net.export_mlpackage(pkg)
    img = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    np.save(tmp_path / "img.npy", img)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = subprocess.run([sys.executable, "-m", "aneforge", "run", str(pkg), "--input", f"image={tmp_path / 'img.npy'}",
                        "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["feat.npy", "keep.txt", "mask.npy"]
    assert (out / "keep.txt").read_text() == "mine"
    assert_equivalent(np.load(out / "feat.npy"), net(img)["feat"], 2, 1, "feat")
    args = ["run", str(pkg), "--input", f"image={tmp_path / 'img.npy'}", "--output", str(out)]
    (out / "feat.npy").write_bytes(b"user data")  # an existing file is not replaced without --overwrite
    r = subprocess.run([sys.executable, "-m", "aneforge", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "overwrite" in r.stderr
    assert (out / "feat.npy").read_bytes() == b"user data"
    r = subprocess.run([sys.executable, "-m", "aneforge", *args, "--overwrite"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


def test_cli_run_errors_name_the_inputs(exported, tmp_path):
    net, _ = exported
    pkg = tmp_path / "m.mlpackage"
    net.export_mlpackage(pkg)
    r = subprocess.run([sys.executable, "-m", "aneforge", "run", str(pkg), "--output", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "missing --input for image" in r.stderr and "(1, 3, 12, 12)" in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("data", [b"\x12\x02\x08\x05",          # description.input as a varint
                                  b"\x08\x08\x12\x03\x0a\x01\x41",  # a feature whose name is fine, type missing
                                  b"\xb2\x1f\x02\x08\x07",      # mlProgram.version as 7
                                  b"\xb2\x1f\x03\x12\x01\x08",  # a function entry holding a varint
                                  b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"])
def test_malformed_protobuf_is_a_clear_error(data):
    """Found by the proto fuzzer: a field with the wrong wire type escaped as TypeError."""
    from aneforge.mil import proto
    with pytest.raises(ValueError, match="fuzz"):
        proto.decode_model(data, "fuzz")


@pytest.mark.parametrize("name", ["mil_proto/regress-attribute-without-value.mlmodel", "mil_proto/regress-wrong-wire-type.mlmodel",
                                  "mil_text/regress-literal-unknown-dim.mil"])
def test_fuzzer_findings_stay_fixed(name):
    """Inputs the fuzzers found (kept in their corpora): clear errors, not TypeError."""
    import pathlib
    from aneforge.mil import interp, proto, text
    data = (pathlib.Path(__file__).parent.parent / "fuzz" / "corpus" / name).read_bytes()
    with pytest.raises(ValueError):
        if name.endswith(".mil"):
            prog = text.parse(data.decode("utf-8", "replace"), "fuzz")
        else:
            _, prog, _, _ = proto.decode_model(data, "fuzz")
        interp.Interpreter(prog)
