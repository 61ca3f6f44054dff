"""Sparse weights and their combinations, compress="auto", data-aware rounding (GPTQ) and
packed weights reused across programs: what the user sees (bytes, results against NumPy,
files), the MIL (mil backend, coremltools) and the targets that stream each format."""
import os

import numpy as np
import pytest

import aneforge as af


def _half_zero(rng, shape=(64, 96), zeros=0.5):
    W = rng.standard_normal(shape).astype(np.float32)
    W[rng.random(shape) < zeros] = 0.0
    return W


def _linear(W, batch=8):
    x = af.input((batch, W.shape[1]), name="x")
    return x, af.linear(x, af.constant(W), None)


def _unpack_mask(pk):
    n = int(np.prod(pk.shape))
    return np.unpackbits(pk.mask, bitorder="little")[:n].astype(bool).reshape(pk.shape)


def _packed(net):
    (name, pk), = net.packed_weights().items()
    return pk


def test_exact_zeros_are_stored_sparse_and_lossless(rng, tmp_path):
    W = _half_zero(rng)
    _, y = _linear(W)
    dense, sparse = af.compile(y), af.compile(y, compress="sparse")
    xs = rng.standard_normal((8, 96)).astype(np.float32)
    np.testing.assert_array_equal(sparse(xs), dense(xs))  # the same fp16 weights, so the same results
    pk = _packed(sparse)
    nnz = int((W != 0).sum())
    assert pk.stored_count == nnz and pk.format == "sparse"
    np.testing.assert_array_equal(_unpack_mask(pk), W != 0)
    nz = W[W != 0].astype(np.float16)
    nz[np.abs(nz) < 2.0 ** -14] = 0  # fp16 subnormals flush to zero, as in every fp16 constant (docs/numerics.md)
    np.testing.assert_array_equal(pk.nz16.view(np.float16), nz)
    assert sparse.weight_bytes == W.size // 8 + 2 * nnz  # the mask, and fp16 non-zeros
    dense.save(tmp_path / "d.afp")
    sparse.save(tmp_path / "s.afp")
    assert os.path.getsize(tmp_path / "s.afp") < 0.62 * os.path.getsize(tmp_path / "d.afp")
    np.testing.assert_array_equal(af.load_program(tmp_path / "s.afp")(xs), sparse(xs))
    for opset in ("ios17", "ios18"):
        np.testing.assert_array_equal(af.compile(y, compress="sparse", backend="mil", opset=opset)(xs), dense(xs))
        assert len(sparse.weight_blob(opset)) < 0.6 * len(dense.weight_blob(opset))
        assert "constexpr_sparse_to_dense" in sparse.mil_text(opset)


def test_magnitude_pruning_keeps_the_largest(rng):
    W = rng.standard_normal((64, 96)).astype(np.float32)
    _, y = _linear(W)
    net = af.compile(y, compress="sparse:0.75", max_weight_error=0.02)
    pk = _packed(net)
    kept = np.abs(W) > np.sort(np.abs(W).ravel())[int(0.75 * W.size) - 1]
    np.testing.assert_array_equal(_unpack_mask(pk), kept)
    pruned = np.where(kept, W, 0)
    np.testing.assert_array_equal(pk.dequantize().reshape(W.shape), pruned.astype(np.float16).astype(np.float32))
    row = net.compression_report()["layers"][0]
    assert row["pruned_error"] == pytest.approx(np.linalg.norm(W - pruned) / np.linalg.norm(W), rel=1e-5)
    assert row["weight_error"] < 1e-3  # rounding the kept weights to fp16 is all the rest costs
    xs = rng.standard_normal((8, 96)).astype(np.float32)
    np.testing.assert_allclose(net(xs), xs @ pruned.T, rtol=2e-2, atol=5e-2)


@pytest.mark.parametrize("fmt", ["sparse+int8", "sparse:0.5+int8:32", "sparse+int4", "sparse+int4:8"])
def test_sparse_combinations_end_to_end(fmt, rng, tmp_path):
    W = _half_zero(rng)
    _, y = _linear(W)
    net = af.compile(y, compress=fmt, max_weight_error=1.0)
    pk = _packed(net)
    assert net.compress == {pk_name: fmt for pk_name in net.compress}
    keep = _unpack_mask(pk)
    # The dequantized weight, rebuilt here from the stored arrays.
    vals = np.zeros(W.shape, np.float32)
    if "int8" in fmt:
        per = pk.block or W.shape[1]
        scales = np.repeat(pk.scales.view(np.float16).astype(np.float32).reshape(W.shape[0], -1), per, axis=1)
        vals[keep] = pk.q8.astype(np.float32) * scales[keep]
        assert np.abs(pk.q8).max() == 127
    else:
        idx = np.stack([pk.q4 & 0xF, pk.q4 >> 4], 1).ravel()[:keep.sum()]
        luts = pk.lut.view(np.float16).astype(np.float32).reshape(-1, 16)
        row_lut = luts[np.arange(W.shape[0]) // (pk.group_rows or W.shape[0])]
        vals[keep] = np.take_along_axis(np.repeat(row_lut[:, None], W.shape[1], 1)[keep], idx[:, None].astype(int), 1)[:, 0]
    np.testing.assert_array_equal(pk.dequantize().reshape(W.shape), vals)
    assert not keep[W == 0].any()  # exact zeros are never stored
    xs = rng.standard_normal((8, 96)).astype(np.float32)
    got = net(xs)
    np.testing.assert_allclose(got, xs @ vals.T, rtol=1e-2, atol=5e-2)
    small = pk.stored_bytes / (2 * W.size)
    assert small < (0.36 if "int8" in fmt else 0.24)
    af.testing.assert_equivalent(af.compile(y, compress=fmt, max_weight_error=1.0, backend="mil")(xs), got,
                                 ulps=2, floor_ulps=2)
    with pytest.raises(NotImplementedError, match="need the ios18 opset"):
        net.mil_text("ios17")
    net.save(tmp_path / "p.afp")
    np.testing.assert_array_equal(af.load_program(tmp_path / "p.afp")(xs), got)


@pytest.mark.parametrize("fmt,opset", [("sparse", "ios17"), ("sparse", "ios18"), ("sparse+int8", "ios18"),
                                       ("sparse+int4", "ios18")])
def test_coremltools_accepts_sparse_weights(fmt, opset, tmp_path, rng):
    pytest.importorskip("coremltools")
    from test_mil import load_with_coremltools
    x = af.input((1, 32, 8, 8), name="x")
    y = af.conv2d(x, _half_zero(rng, (64, 32, 3, 3)), padding=1).relu()
    _, prog = load_with_coremltools(af.compile(y, compress=fmt, max_weight_error=1.0), tmp_path, opset)
    ops = [op.op_type for op in prog.functions["main"].operations]
    assert "constexpr_sparse_to_dense" in ops, ops


def test_targets_gate_sparse_formats(rng):
    _, y = _linear(_half_zero(rng))
    assert af.compile(y, compress="sparse+int4", target="M1").compress  # h13 streams sparse and int4 LUTs
    with pytest.raises(af.TargetError, match=r"sparse\+int8 needs the target to stream int8.*h13"):
        af.compile(y, compress="sparse+int8", target="M1")
    for bad in ("sparse:1.5", "sparse:0", "sparse+", "sparse+int2", "sparsely", "sparse:0.5+int8:x"):
        with pytest.raises(ValueError, match="is not supported"):
            af.compile(y, compress=bad)


def test_auto_takes_the_smallest_format_that_passes(rng):
    sparse_w = _half_zero(rng, (64, 96), zeros=0.6)
    x = af.input((8, 96), name="x")
    y = af.linear(af.linear(x, af.constant(sparse_w), None).relu(), rng.standard_normal((32, 64)).astype(np.float32))
    net = af.compile(y, compress="auto", min_cosine=0.0)  # the ladder's order; the output gate off
    first, second = net.compression_report()["layers"]
    assert first["format"].startswith("sparse+int4")  # 60% exact zeros: the mask pays for itself
    assert second["format"].startswith("int4")
    # On h13 (M1): only what it streams; with a strict gate, int8 is never an option there.
    strict = af.compile(y, compress="auto", target="M1", max_weight_error=0.05).compression_report()
    assert all(r["format"] in ("fp16", "sparse") for r in strict["layers"])
    # With calibration: the gate holds on the data and the result is smaller than int8.
    cal = [rng.standard_normal((8, 96)).astype(np.float32) for _ in range(4)]
    gated = af.compile(y, compress="auto", calibration=cal, min_cosine=0.9995)
    rep = gated.compression_report()
    assert rep["min_cosine"] >= 0.9995 and rep["bytes"] < af.compile(y, compress="int8").weight_bytes
    for c in cal:
        assert af.testing.cosine(gated(c), af.compile(y)(c)) >= 0.9995


def _correlated(rng, n, k=96, mix=None):
    """Batches with correlated features (mixed by ``mix``; one shared mix is one distribution)."""
    mix = rng.standard_normal((k, k)).astype(np.float32) if mix is None else mix
    return [(rng.standard_normal((32, k)) @ mix).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("fmt", ["int4:1", "int8", "sparse+int4:1"])
def test_gptq_rounding_beats_nearest_on_held_out_data(fmt, rng):
    W = _half_zero(rng, (64, 96), zeros=0.5 if fmt.startswith("sparse") else 0.0)
    x = af.input((32, 96), name="x")
    y = af.linear(x, af.constant(W), None)
    mix = rng.standard_normal((96, 96)).astype(np.float32)
    cal, held_out = _correlated(rng, 8, mix=mix), _correlated(rng, 4, mix=mix)  # held out, same distribution

    def error(net):
        return np.mean([np.linalg.norm(net(c) - c @ W.T) / np.linalg.norm(c @ W.T) for c in held_out])
    near = af.compile(y, compress=fmt, calibration=cal, min_cosine=0.0, weight_rounding="nearest")
    data = af.compile(y, compress=fmt, calibration=cal, min_cosine=0.0)  # GPTQ is the default with calibration
    assert data.compression_report()["weight_rounding"] == "gptq"
    # Half the weights are exact zeros the mask keeps out: less for the compensation to move.
    assert error(data) < (0.99 if fmt.startswith("sparse") else 0.93) * error(near)
    pn, pd = _packed(near), _packed(data)
    np.testing.assert_array_equal(pd.mask, pn.mask)  # the same mask; only the rounding moved
    assert pd.stored_bytes == pn.stored_bytes
    if "int8" in fmt:
        np.testing.assert_array_equal(pd.scales, pn.scales)
    with pytest.raises(ValueError, match="needs calibration"):
        af.compile(y, compress=fmt, weight_rounding="gptq")
    # Too few calibration rows for the layer's 96 inputs: rounding stays nearest.
    few = af.compile(y, compress=fmt, calibration=cal[:2], min_cosine=0.0)
    np.testing.assert_array_equal(_packed(few).dequantize(), pn.dequantize())


def test_conv_inputs_are_unfolded_as_torch_does(rng):
    torch = pytest.importorskip("torch")
    from aneforge.compiler import gptq as _gptq
    x = af.input((4, 3, 9, 9), name="x")
    y = af.conv2d(x, rng.standard_normal((8, 3, 3, 3)).astype(np.float32), stride=2, padding=(1, 2), dilation=(1, 2))
    xs = rng.standard_normal((4, 3, 9, 9)).astype(np.float32)  # 80 rows for 27 inputs
    gram = _gptq.layer_inputs([y._t], [x._t], {y.name}, [xs], lambda b: ((b,), {}))[y.name]
    cols = torch.nn.functional.unfold(torch.from_numpy(xs).double(), (3, 3), dilation=(1, 2), padding=(1, 2), stride=2)
    rows = cols.transpose(1, 2).reshape(-1, 27).numpy()
    np.testing.assert_allclose(gram, rows.T @ rows, rtol=1e-6, atol=1e-6)


def test_packed_weights_carry_a_gated_result_to_other_shapes(rng):
    W = rng.standard_normal((64, 96)).astype(np.float32)

    def graph(batch):
        x = af.input((batch, 96), name="x")
        return af.linear(x, af.constant(W), None)
    y = graph(32)
    y._t.set_name("proj")
    net = af.compile(y, compress="int4:1", calibration=_correlated(rng, 4), min_cosine=0.9)
    plan = net.packed_weights()
    assert list(plan) == ["proj"] and isinstance(plan["proj"], af.PackedWeights)
    y1 = graph(1)
    y1._t.set_name("proj")
    other = af.compile(y1, compress=plan)
    assert other.compress == {"proj": "int4:1"}
    np.testing.assert_array_equal(_packed(other).q4, plan["proj"].q4)
    xs = rng.standard_normal((32, 96)).astype(np.float32)
    af.testing.assert_equivalent(other(xs[:1]), net(xs)[:1], ulps=2, floor_ulps=2)
    bad = af.PackedWeights("int4", (64, 48), 0, 0, np.zeros(0, np.int8), np.zeros(0, np.uint16),
                           np.zeros(64 * 24, np.uint8), np.zeros(16, np.uint16), np.zeros(0, np.uint8), np.zeros(0, np.uint16))
    with pytest.raises(ValueError, match=r"does not fit: shape \(64, 48\)"):
        af.compile(y1, compress={"proj": bad})
    with pytest.raises(ValueError, match="LUT size"):
        af.PackedWeights("int4", (64, 96), 0, 0, np.zeros(0, np.int8), np.zeros(0, np.uint16),
                         np.zeros(64 * 48, np.uint8), np.zeros(15, np.uint16), np.zeros(0, np.uint8), np.zeros(0, np.uint16))



def _q(x, s):
    """int8 fake quantization as MIL's quantize/dequantize define it (round half to even)."""
    return np.clip(np.rint(x / s), -128, 127) * s


def test_w8a8_quantizes_activations_with_calibrated_scales(rng, tmp_path):
    W1 = rng.standard_normal((128, 96)).astype(np.float32)
    W2 = (rng.standard_normal((32, 128)) / 8).astype(np.float32)
    x = af.input((16, 96), name="x")
    y = af.linear(af.linear(x, W1).relu(), W2)
    cal = [rng.standard_normal((16, 96)).astype(np.float32) for _ in range(8)]
    net = af.compile(y, compress="w8a8", calibration=cal, min_cosine=0.999, weight_rounding="nearest")
    rep = net.compression_report()
    assert [r["format"] for r in rep["layers"]] == ["w8a8", "w8a8"] and rep["bytes"] <= 0.52 * rep["fp16_bytes"]
    # The first layer's scale: the largest calibration input magnitude / 127, in fp16.
    s1 = float(rep["layers"][0]["activations"].split("scale ")[1])
    assert s1 == pytest.approx(float(np.float16(max(np.abs(c).max() for c in cal) / 127)), rel=1e-4)
    s2 = float(rep["layers"][1]["activations"].split("scale ")[1])
    w1, w2 = (pk.dequantize().reshape(pk.shape) for pk in net.packed_weights().values())
    t = rng.standard_normal((16, 96)).astype(np.float32)
    f16 = lambda a: a.astype(np.float16).astype(np.float32)  # noqa: E731 - fp16 storage between layers
    fake = f16(f16(_q(f16(np.maximum(f16(f16(_q(f16(t), s1)) @ w1.T), 0)), s2)) @ w2.T)  # int8 activations, NumPy
    weights_only = np.maximum(t @ w1.T, 0) @ w2.T
    got = net(t)
    assert np.abs(got - fake).max() < 0.25 * np.abs(got - weights_only).max()
    np.testing.assert_allclose(got, fake, rtol=0.02, atol=0.05)
    np.testing.assert_array_equal(af.compile(y, compress="w8a8", calibration=cal, min_cosine=0.999,
                                             weight_rounding="nearest", backend="mil")(t), got)
    text = net.mil_text("ios17")
    assert text.count(" = quantize(") == 2 and text.count(" = dequantize(") == 2
    net.save(tmp_path / "w8a8.afp")
    np.testing.assert_array_equal(af.load_program(tmp_path / "w8a8.afp")(t), got)
    with pytest.raises(af.TargetError, match=r"h16 \(M4\) and later; h15g is h15"):
        af.compile(y, compress="w8a8", calibration=cal, min_cosine=0.99, target="M3")
    with pytest.raises(ValueError, match="w8a8 needs calibration"):
        af.compile(y, compress="w8a8")


@pytest.mark.parametrize("opset", ["ios17", "ios18"])
def test_coremltools_accepts_int8_activations(opset, rng, tmp_path):
    pytest.importorskip("coremltools")
    from test_mil import load_with_coremltools
    x = af.input((1, 32, 8, 8), name="x")
    y = af.conv2d(x, rng.standard_normal((64, 32, 3, 3)).astype(np.float32), padding=1).relu()
    cal = [rng.standard_normal((1, 32, 8, 8)).astype(np.float32) for _ in range(2)]
    net = af.compile(y, compress="w8a8", calibration=cal, min_cosine=0.99)
    _, prog = load_with_coremltools(net, tmp_path, opset)
    ops = [op.op_type for op in prog.functions["main"].operations]
    assert "quantize" in ops and "dequantize" in ops, ops


def test_calibration_with_a_flexible_batch_says_what_to_do(rng):
    x = af.input((None, 96), name="x")
    y = af.linear(x, rng.standard_normal((64, 96)).astype(np.float32))
    with pytest.raises(ValueError, match="calibration= needs fixed shapes.*packed_weights"):
        af.compile(y, compress="int8", calibration=[rng.standard_normal((16, 96)).astype(np.float32)], min_cosine=0.99)
