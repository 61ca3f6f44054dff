"""Weight compression: what the user sees (program, file, blob and package sizes, process
memory, results), the MIL it emits (run on the mil backend, type-checked by coremltools),
target gating, per-layer formats and the accuracy gate."""
import os
import subprocess
import sys

import numpy as np
import pytest

import aneforge as af


def _mlp(rng, outlier=False):
    W1 = rng.standard_normal((256, 128)).astype(np.float32)
    W2 = rng.standard_normal((32, 256)).astype(np.float32) / 16
    if outlier:  # one huge weight per row (on an input that stays 0): int8 rounds the rest to 0
        W1[:, 0] = 2000.0
    x = af.input((8, 128), name="x")
    return x, af.linear(af.linear(x, W1).relu(), W2)


def _conv(rng):
    x = af.input((1, 32, 8, 8), name="x")
    W = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    return x, af.conv2d(x, W, padding=1).relu()


def test_int8_is_smaller_everywhere_the_user_looks(rng, tmp_path):
    _, y = _mlp(rng)
    dense, small = af.compile(y), af.compile(y, compress="int8")
    assert small.weight_bytes <= 0.51 * dense.weight_bytes
    dense.save(tmp_path / "dense.afp")
    small.save(tmp_path / "small.afp")
    # the dense file holds fp16 weights (2 bytes each), the int8 one 1 byte plus scales
    assert os.path.getsize(tmp_path / "small.afp") <= 0.52 * os.path.getsize(tmp_path / "dense.afp")
    for opset in ("ios17", "ios18"):
        assert len(small.weight_blob(opset)) <= 0.52 * len(dense.weight_blob(opset))
        dense.export_mlpackage(tmp_path / f"d{opset}.mlpackage", opset=opset)
        small.export_mlpackage(tmp_path / f"s{opset}.mlpackage", opset=opset)
        blob = "Data/com.apple.CoreML/weights/weight.bin"
        assert os.path.getsize(tmp_path / f"s{opset}.mlpackage" / blob) <= 0.52 * os.path.getsize(tmp_path / f"d{opset}.mlpackage" / blob)
    xs = rng.standard_normal((8, 128)).astype(np.float32)
    assert af.testing.cosine(small(xs), dense(xs)) >= 0.9995
    back = af.load_program(tmp_path / "small.afp")
    np.testing.assert_array_equal(back(xs), small(xs))  # the file holds the int8 weights as they are


MEMORY = r"""
import gc, sys, numpy as np, aneforge as af
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
if sys.argv[1] != "base":
    x = af.input((1, 4096), name="x")
    y = af.linear(x, np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32))
    net = af.compile(y, compress=sys.argv[1] if sys.argv[1] != "none" else None)
    net(np.zeros((1, 4096), np.float32))
    del x, y
gc.collect()
print(rss())
"""


def test_the_process_holds_fewer_bytes(tmp_path):
    """RSS of a process holding a compiled 4096x4096 linear once its graph is gone: 16M
    weights are 32 MiB in fp16 (64 MiB as float32) and 16 MiB in int8."""
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc")
    script = tmp_path / "mem.py"
    script.write_text(MEMORY)
    rss = {m: int(subprocess.run([sys.executable, str(script), m], capture_output=True, text=True, check=True).stdout)
           for m in ("base", "none", "int8")}
    mib = {m: (rss[m] - rss["base"]) / 2**20 for m in ("none", "int8")}
    assert 30 <= mib["none"] <= 40, mib  # fp16 storage: not the float32 copy
    assert 14 <= mib["int8"] <= 24, mib


@pytest.mark.parametrize("fmt", ["int8", "int8:32"])
@pytest.mark.parametrize("opset", ["ios17", "ios18"])
def test_compressed_programs_are_equivalent_on_the_mil_backend(fmt, opset, rng):
    if fmt == "int8:32" and opset == "ios17":
        _, y = _mlp(rng)
        with pytest.raises(NotImplementedError, match="blockwise int8 weights need the ios18 opset"):
            af.compile(y, compress=fmt).mil_text(opset)
        return
    for build, shape, block in ((_mlp, (8, 128), "int8:32"), (_conv, (1, 32, 8, 8), "int8:72")):
        _, y = build(rng)
        f = fmt if fmt == "int8" else block  # a conv block spans whole 3x3 kernels
        xs = rng.standard_normal(shape).astype(np.float32)
        sim = af.compile(y, compress=f)(xs)
        mil = af.compile(y, compress=f, backend="mil", opset=opset)(xs)
        af.testing.assert_equivalent(mil, sim, ulps=2, floor_ulps=2)
        text = af.compile(y, compress=f).mil_text(opset)
        assert ("constexpr_affine_dequantize" if opset == "ios17" else "constexpr_blockwise_shift_scale") in text


@pytest.mark.parametrize("opset", ["ios17", "ios18"])
def test_coremltools_accepts_the_compressed_package(opset, rng, tmp_path):
    ct = pytest.importorskip("coremltools")  # noqa: F841
    from test_mil import load_with_coremltools
    _, y = _conv(rng)
    _, prog = load_with_coremltools(af.compile(y, compress="int8" if opset == "ios17" else "int8:288"), tmp_path, opset)
    ops = [op.op_type for op in prog.functions["main"].operations]
    assert any(o.startswith("constexpr_") for o in ops), ops


def test_targets_gate_formats(rng):
    _, y = _mlp(rng)
    with pytest.raises(af.TargetError, match=r"layer 'linear_\d+'.*int8.*h13 streams int4-lut, sparse"):
        af.compile(y, compress="int8", target="M1")
    with pytest.raises(af.TargetError, match="blockwise"):
        af.compile(y, compress="int8:32", target="M2")  # h14 streams int8 per channel, not blockwise
    assert af.compile(y, compress="int8", target="M2").compress
    # a block that does not fit a layer: that layer goes per channel, and the report says why
    rows = af.compile(y, compress="int8:48").compression_report()["layers"]
    assert all(r["format"] == "int8" and "block 48 does not divide" in r["fits"] for r in rows)
    _, c = _conv(rng)
    (row,) = af.compile(c, compress="int8:32").compression_report()["layers"]
    assert row["format"] == "int8" and "multiple of its 9-element kernel" in row["fits"]


def test_per_layer_formats_by_dict_or_callable(rng):
    _, y = _mlp(rng)
    layers = [r["layer"] for r in af.compile(y).compression_report()["layers"]]
    assert len(layers) == 2
    net = af.compile(y, compress={layers[1]: "int8"})
    assert net.compress == {layers[1]: "int8"}
    net = af.compile(y, compress=lambda name: "int8:64" if name == layers[0] else None)
    assert net.compress == {layers[0]: "int8:64"}
    with pytest.raises(ValueError, match="does not have"):
        af.compile(y, compress={"conv_999": "int8"})


def test_the_gate_falls_back_the_layer_that_breaks_it(rng):
    x, y = _mlp(rng, outlier=True)
    cal = [rng.standard_normal((8, 128)).astype(np.float32) for _ in range(3)]
    for c in cal:
        c[:, 0] = 0.0
    plain = af.compile(y, compress="int8")
    with np.errstate(invalid="ignore"):  # int8 everywhere breaks it (here: the output is all zeros)
        assert not af.testing.cosine(plain(cal[0]), af.compile(y)(cal[0])) >= 0.99
    # h14 streams per-channel int8 but not blockwise: the layer's ladder is int8 -> fp16.
    gated = af.compile(y, target="h14", compress="int8", calibration=cal, min_cosine=0.999)
    rep = gated.compression_report()
    first, second = rep["layers"]
    assert first["format"] == "fp16" and "fallback" in first and first["cosine_alone"] < 0.99
    assert first["tried"] == ["int8", "fp16"]
    assert second["format"] == "int8" and second["cosine_alone"] > 0.999
    assert rep["min_cosine"] >= 0.999 and rep["bytes"] < rep["fp16_bytes"]
    # h16 streams a scale per 32 inputs, which isolates the outlier: the layer stops there.
    rep = af.compile(y, compress="int8", calibration=cal, min_cosine=0.999).compression_report()
    first, second = rep["layers"]
    assert first["tried"][:2] == ["int8", "int8:32"] and second["format"] in ("int8", "int8:32")
    assert rep["min_cosine"] >= 0.999
    with pytest.raises(ValueError, match="needs min_cosine"):
        af.compile(y, compress="int8", calibration=cal)


def test_without_calibration_the_weight_error_gates(rng):
    _, y = _mlp(rng)
    rep = af.compile(y, compress="int8").compression_report()  # int8 of Gaussian weights: ~0.7% error
    assert [r["format"] for r in rep["layers"]] == ["int8", "int8"]
    assert all(0.003 < r["weight_error"] < 0.01 for r in rep["layers"])
    strict = af.compile(y, compress="int8", max_weight_error=0.003).compression_report()
    assert [r["format"] for r in strict["layers"]] == ["fp16", "fp16"]
    assert all("weight error" in r["fallback"] and r["tried"] == ["int8", "int8:32", "fp16"] for r in strict["layers"])


def test_summary_shows_the_format_and_bytes_per_layer(rng):
    _, y = _mlp(rng)
    text = af.compile(y, compress="int8").summary(file=open(os.devnull, "w"))
    assert "weight=int8 32.5 KiB" in text and "weight=int8 8.1 KiB" in text and "2 compressed as marked" in text


@pytest.mark.parametrize("rows", [300, 3000])
def test_compress_means_the_whole_model_embedding_tables_included(rows, rng, tmp_path):
    """A format string compresses every weight that can hold it, embedding tables too (one
    layer however many 2048-row chunks it is read in), by name or not."""
    E = rng.standard_normal((rows, 16)).astype(np.float32)
    W = rng.standard_normal((8, 16)).astype(np.float32)
    ids = af.input((2, 5), dtype="int32", name="ids")
    y = af.linear(af.embedding(ids, E), W)
    dense, net = af.compile(y), af.compile(y, compress="int8")
    rep = {r["op"]: r for r in net.compression_report()["layers"]}
    assert rep["embedding"]["format"] == "int8" and rep["linear"]["format"] == "int8"
    assert net.weight_bytes == rows * (16 + 2) + 8 * (16 + 2)  # int8 rows and an fp16 scale per row
    dense.save(tmp_path / "d.afp")
    net.save(tmp_path / "s.afp")
    saved = os.path.getsize(tmp_path / "d.afp") - os.path.getsize(tmp_path / "s.afp")
    # the file shrinks by what the weights do, less a packed record's format and array lengths (~100 B a layer)
    assert saved >= dense.weight_bytes - net.weight_bytes - 100 * 2
    xs = rng.integers(0, rows, (2, 5)).astype(np.int32)
    xs[0, :3] = [0, rows - 1, min(2048, rows - 1)]
    got = net(xs)
    assert af.testing.cosine(got, E[xs] @ W.T) >= 0.999
    name = rep["embedding"]["layer"]
    np.testing.assert_array_equal(af.compile(y, compress={name: "int8", rep["linear"]["layer"]: "int8"})(xs), got)
    for opset in ("ios17", "ios18"):  # the one-hot matmul over the dequantized table, in MIL
        np.testing.assert_array_equal(af.compile(y, compress="int8", backend="mil", opset=opset)(xs), got)


@pytest.mark.parametrize("fmt", ["int4", "int4:16"])
def test_int4_lut_end_to_end(fmt, rng, tmp_path):
    _, y = _mlp(rng)
    # The format itself: min_cosine=0 turns the data-free output gate off (on this random MLP
    # int4 keeps an input-dependent cosine below its default 0.99, so the gate would step down).
    dense, small = af.compile(y), af.compile(y, compress=fmt, min_cosine=0.0)
    assert small.weight_bytes <= 0.26 * dense.weight_bytes  # 4-bit indices + 16 fp16 entries per LUT
    xs = rng.standard_normal((8, 128)).astype(np.float32)
    assert af.testing.cosine(small(xs), dense(xs)) >= 0.98
    rep = small.compression_report()
    assert all(0.05 < r["weight_error"] < 0.12 for r in rep["layers"])  # k-means on Gaussian weights
    small.save(tmp_path / "p.afp")
    dense.save(tmp_path / "d.afp")
    assert os.path.getsize(tmp_path / "p.afp") <= 0.27 * os.path.getsize(tmp_path / "d.afp")  # 4 bits of 16, LUTs
    np.testing.assert_array_equal(af.load_program(tmp_path / "p.afp")(xs), small(xs))
    opsets = ["ios18"] if ":" in fmt else ["ios17", "ios18"]
    for opset in opsets:
        mil = af.compile(y, compress=fmt, min_cosine=0.0, backend="mil", opset=opset)(xs)
        af.testing.assert_equivalent(mil, small(xs), ulps=2, floor_ulps=2)
        assert len(small.weight_blob(opset)) <= 0.27 * len(dense.weight_blob(opset))
    if ":" in fmt:
        with pytest.raises(NotImplementedError, match="grouped LUTs need the ios18 opset"):
            small.mil_text("ios17")


@pytest.mark.parametrize("opset", ["ios17", "ios18"])
def test_coremltools_accepts_int4_luts(opset, rng, tmp_path):
    pytest.importorskip("coremltools")
    from test_mil import load_with_coremltools
    _, y = _conv(rng)
    _, prog = load_with_coremltools(af.compile(y, compress="int4"), tmp_path, opset)
    assert "constexpr_lut_to_dense" in [op.op_type for op in prog.functions["main"].operations]


def test_m1_streams_int4_luts(rng):
    _, y = _mlp(rng)
    net = af.compile(y, compress="int4", target="M1", min_cosine=0.0)  # the format, not the gate
    assert set(net.compress.values()) == {"int4"}
    rows = af.compile(y, compress="int4:100", target="M1", max_weight_error=1.0,
                      min_cosine=0.0).compression_report()["layers"]
    assert all(r["format"] == "int4" and "100 rows per LUT do not divide" in r["fits"] for r in rows)


def test_the_report_says_why_a_layer_stayed_fp16(rng):
    _, y = _mlp(rng)
    dense = af.compile(y).compression_report()["layers"]
    assert {r["why"] for r in dense} == {"compress= not given"}
    first = dense[0]["layer"]
    rows = af.compile(y, compress={first: "int8"}).compression_report()["layers"]
    assert [r.get("why") for r in rows] == [None, "not named in compress="]
    strict = af.compile(y, compress="int4", max_weight_error=1e-4).compression_report()["layers"]
    assert all(r["why"].startswith("fell back: weight error") for r in strict if r["format"] == "fp16")
    assert any(r["format"] == "fp16" for r in strict)


@pytest.mark.parametrize("fmt,took", [("int8:32", "int8"), ("int4:5", "int4"), ("sparse+int8:32", "sparse+int8")])
def test_a_grouping_that_does_not_fit_a_layer_falls_back_and_says_so(fmt, took, rng):
    """int8:32 on a 3x3 conv with 3 input channels (27 inputs a channel): that layer goes per
    channel and the report says why; the other layers keep the format; nothing aborts."""
    x = af.input((1, 3, 8, 8), name="x")
    W1 = rng.standard_normal((64, 3, 3, 3)).astype(np.float32)
    W1[:, :, 0, :] = 0  # exact zeros, for the sparse formats
    W2 = rng.standard_normal((40, 64, 1, 1)).astype(np.float32)
    y = af.conv2d(af.conv2d(x, W1, padding=1).relu(), W2)
    net = af.compile(y, compress=fmt, max_weight_error=1.0, min_cosine=0.0)  # the fallback, not the gates
    first, second = net.compression_report()["layers"]
    assert first["format"] == took and "does not fit" in first["fits"], first
    assert second["format"] == fmt and "fits" not in second
    xs = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    assert af.testing.cosine(net(xs), af.compile(y)(xs)) >= 0.98
