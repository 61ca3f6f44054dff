"""af.from_onnx / af.trace_onnx: every entry of the ONNX table against onnxruntime on
single-node models (opsets 13-21), whole models exported by torch.onnx (both exporters)
against onnxruntime, and the errors a model the table cannot map gets."""
import io

import numpy as np
import pytest

import aneforge as af
from aneforge.importers.onnx_ops import ONNX

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import helper  # noqa: E402
from onnx_cases import CASES, rand  # noqa: E402
from onnx_run import run_ort, single_node_model  # noqa: E402

PARAMS = [pytest.param(case, opset, id=f"{case[0]}-{opset}") for case in CASES for opset in case[5]]


# The mil backend runs GroupNormalization as its MIL decomposition (layer_norm, then * scale,
# then + bias, each rounded to fp16): an output near zero after + bias measured 7.1 ulps of
# itself, 0.086 ulps of the largest output. Every other operator is within 2 ulps there too.
MIL_FLOOR_ULPS = {"GroupNormalization": 0.1}


def _as_list(out):
    return list(out.values()) if isinstance(out, dict) else [out]


@pytest.mark.parametrize("case,opset", PARAMS)
@pytest.mark.parametrize("backend", ["sim", "mil"])
def test_onnx_op_matches_onnxruntime(case, opset, backend):
    _, op, inputs, attrs, out_types, _ = case
    model, feed = single_node_model(op, inputs, attrs, out_types, opset)
    ref = run_ort(model, feed)
    got = _as_list(af.from_onnx(model, backend=backend)(*feed.values()))
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        if r.dtype.kind == "f":
            # Inputs are fp16 values; one fp16 rounding of onnxruntime's float32 result is 0.5 ulp:
            # measured at most 1.0 ulp (Sum rounds after each addition).
            floor = MIL_FLOOR_ULPS.get(op, 0.0) if backend == "mil" else 0.0
            af.testing.assert_fp16_close(g, r, ulps=2.0, floor_ulps=floor, what=f"{op} ({backend})")
        else:
            np.testing.assert_array_equal(g.astype(r.dtype), r, err_msg=f"{op} ({backend})")


def test_every_entry_of_the_table_has_a_case():
    tested = {case[1] for case in CASES}
    assert set(ONNX) - tested == set(), "add a case to tests/onnx_cases.py"


def test_constant_subgraphs_fold_and_shapes_are_static():
    """A legacy-exporter pattern: Shape -> Gather -> Unsqueeze -> Concat -> Reshape, folded at import."""
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 12])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["zero"], value=onnx.numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Constant", [], ["axes"], value=onnx.numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Unsqueeze", ["b", "axes"], ["b1"]),
        helper.make_node("Constant", [], ["rest"], value=onnx.numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Concat", ["b1", "rest"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Relu", ["r"], ["y"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    xv = rand(5, 3, 4)
    net = af.from_onnx(model, input_shapes={"x": (5, 3, 4)})
    np.testing.assert_array_equal(net(xv), run_ort(model, {"x": xv})[0])
    assert "reshape" in net.text() and "gather" not in net.text()  # the shape arithmetic left no op
    assert af.from_onnx(model)(xv[:1]).shape == (1, 12)  # a symbolic batch is 1 by default


torch = pytest.importorskip("torch")


def _export(module, args, exporter, opset):
    if exporter == "dynamo":
        return torch.onnx.export(module, args, None, dynamo=True, opset_version=opset, verbose=False).model_proto
    f = io.BytesIO()
    torch.onnx.export(module, args, f, dynamo=False, opset_version=opset)
    return onnx.load_from_string(f.getvalue())


def _ort(model, *xs):
    """onnxruntime's outputs for a model (or a path: external weights are read beside it)."""
    sess = ort.InferenceSession(model if isinstance(model, str) else model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})


def _min_cos(a, b):
    return min(af.testing.cosine(x, y) for x, y in zip(np.asarray(a), np.asarray(b)))


@pytest.fixture(scope="module")
def mnv2():
    from torch_vision_refs import mobilenet_v2
    m = mobilenet_v2(seed=1, image_size=32, batches=1).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)).numpy()
    return m, x


@pytest.mark.parametrize("exporter,opset", [("dynamo", 18), ("dynamo", 21), ("legacy", 13), ("legacy", 17)])
def test_mobilenet_v2_through_onnx_matches_onnxruntime(mnv2, exporter, opset):
    m, x = mnv2
    model = _export(m, (torch.from_numpy(x),), exporter, opset)
    ref = _ort(model, x)[0]
    fp32 = af.from_onnx(model, precision="fp32")(x)
    assert _min_cos(fp32, ref) >= 0.999999  # the mapping is exact: measured 1 - 1e-10 in float32
    net = af.from_onnx(model)
    got = net(x)
    assert got.shape == ref.shape
    assert _min_cos(got, ref) >= 0.998  # measured 0.9987: 53 layers of fp16 storage (as from_torch's test)
    names = [r["layer"] for r in net.compression_report()["layers"]]
    assert len(names) == 53  # batch norm folded (by the exporter): a weight layer per conv and the classifier
    assert names[:3] == ["features.0.0", "features.1.conv.0.0", "features.1.conv.1"] and names[-1] == "classifier.1"
    mil = af.from_onnx(model, backend="mil")(x)
    assert _min_cos(mil, got) >= 0.9998  # two fp16 computations through 53 layers: measured 0.99998


@pytest.mark.parametrize("exporter,opset", [("dynamo", 18), ("legacy", 14)])
def test_transformer_block_through_onnx(exporter, opset):
    from test_import_torch import Block
    torch.manual_seed(0)
    m = Block().eval()
    x = torch.randn(2, 8, 32)
    model = _export(m, (x,), exporter, opset)
    ref = _ort(model, x.numpy())
    got = af.from_onnx(model)(x.numpy())
    assert list(got) == [o.name for o in model.graph.output]  # several outputs: a dict by the model's names
    mil = af.from_onnx(model, backend="mil")(x.numpy())
    for g, r, m_ in zip(got.values(), ref, mil.values()):
        g2, r2, m2 = (v.reshape(len(v), -1) for v in (g, r, m_))
        assert _min_cos(g2, r2) >= 0.99999  # measured 0.9999999 (fp16 storage of one block)
        assert _min_cos(m2, g2) >= 0.99999  # measured 1 - 4e-10


def _model(nodes, inputs, outputs, opset=17, inits=(), domains=()):
    m = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits)),
                          opset_imports=[helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains])
    m.ir_version = 10
    return m


def _vi(name, shape, elem=onnx.TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_unsupported_operators_are_listed_in_one_error():
    nodes = [helper.make_node("NonZero", ["x"], ["nz"], name="find"),
             helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Loop", ["", ""], ["l"], name="loop1",
                              body=helper.make_graph([], "b", [], [])),
             helper.make_node("FancyOp", ["r"], ["y"], domain="com.example", name="fancy")]
    model = _model(nodes, [_vi("x", [2, 3])], [_vi("y", [2, 3]), _vi("nz", [2, None], onnx.TensorProto.INT64)],
                   domains=["com.example"])
    with pytest.raises(NotImplementedError) as e:
        af.trace_onnx(model.SerializeToString())  # bytes are accepted too
    msg = str(e.value)
    for expect in ("NonZero: data-dependent output shape", "at node 'find'", "Loop: control flow",
                   "com.example.FancyOp: not mapped yet", "at node 'fancy'", "docs/import.md"):
        assert expect in msg, msg


def test_refusals_name_the_problem(tmp_path):
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    with pytest.raises(ValueError, match="opset 11 .* opsets 13-21 are supported"):
        af.from_onnx(_model(relu, [_vi("x", [1, 3])], [_vi("y", [1, 3])], opset=11))
    with pytest.raises(ValueError, match="symbolic size 'seq' at dimension 1.*input_shapes"):
        af.from_onnx(_model(relu, [_vi("x", [1, "seq"])], [_vi("y", [1, "seq"])]))
    with pytest.raises(ValueError, match=r"input_shapes names \['z'\]"):
        af.from_onnx(_model(relu, [_vi("x", [1, 3])], [_vi("y", [1, 3])]), input_shapes={"z": (1, 3)})
    net = af.from_onnx(_model(relu, [_vi("x", [1, "seq"])], [_vi("y", [1, "seq"])]), input_shapes={"x": (2, 5)})
    assert net(-np.ones((2, 5), np.float32)).shape == (2, 5)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf \xff\xff")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        af.from_onnx(bad)
    with pytest.raises(FileNotFoundError):
        af.from_onnx(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="expected a path, bytes or onnx.ModelProto"):
        af.from_onnx(42)
    dangling = _model([helper.make_node("Relu", ["nowhere"], ["y"])], [_vi("x", [1, 3])], [_vi("y", [1, 3])])
    with pytest.raises(ValueError, match="onnx.checker"):
        af.from_onnx(dangling)
    two = _model([helper.make_node("Dropout", ["x"], ["y", "mask"])], [_vi("x", [1, 3])],
                 [_vi("y", [1, 3]), _vi("mask", [1, 3], onnx.TensorProto.BOOL)])
    with pytest.raises(NotImplementedError, match="output 1 .'mask'. is used"):
        af.from_onnx(two)
    short = onnx.numpy_helper.from_array(rand(4, 3), "w")
    short.raw_data = short.raw_data[:20]  # declares 4 x 3 floats, holds 5
    lying = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [_vi("x", [1, 4])], [_vi("y", [1, 3])], inits=[short])
    with pytest.raises(ValueError, match="raw_data size .20 bytes. is too small"):  # onnx.checker's words
        af.from_onnx(lying)
    huge = _model([helper.make_node("ConstantOfShape", ["shape"], ["big"]), helper.make_node("Add", ["x", "big"], ["y"])],
                  [_vi("x", [1, 3])], [_vi("y", [1, 3])],
                  inits=[onnx.numpy_helper.from_array(np.array([1 << 20, 1 << 20], np.int64), "shape")])
    with pytest.raises(ValueError, match="ConstantOfShape .* would make a constant of 1.1e\\+12 elements"):
        af.from_onnx(huge)


def test_a_saved_file_with_external_weights_loads(tmp_path):
    """Models past 2 GB keep their weights beside the .onnx; onnx.load reads them from there."""
    w = onnx.numpy_helper.from_array(rand(16, 8), "fc.weight")
    model = _model([helper.make_node("Gemm", ["x", "fc.weight"], ["y"], transB=1)], [_vi("x", [2, 8])],
                   [_vi("y", [2, 16])], inits=[w])
    path = tmp_path / "m.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="m.data",
                    size_threshold=0)
    assert (tmp_path / "m.data").stat().st_size == 16 * 8 * 4
    x = rand(2, 8)
    net = af.from_onnx(str(path))
    af.testing.assert_fp16_close(net(x), _ort(str(path), x)[0], ulps=2.0)
    assert [r["layer"] for r in net.compression_report()["layers"]] == ["fc"]


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_a_symbolic_batch_runs_any_batch_size(mnv2, exporter):
    """dynamic_batch=True: the model's symbolic batch follows the inputs, a program per size
    (the graph rebuilt from the model for each), the compression gate run once."""
    m, x = mnv2
    t = torch.from_numpy(x)
    if exporter == "dynamo":
        model = torch.onnx.export(m, (t,), None, dynamo=True, opset_version=18, verbose=False,
                                  dynamic_shapes=({0: torch.export.Dim("batch")},)).model_proto
    else:
        f = io.BytesIO()
        torch.onnx.export(m, (t,), f, dynamo=False, opset_version=17, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
        model = onnx.load_from_string(f.getvalue())
    net = af.from_onnx(model, dynamic_batch=True, max_programs=2)
    assert net.flexible and net.inputs[0][1] == (None, 3, 32, 32)
    for b in (1, 3, 2):
        xb = np.concatenate([x, x])[:b]
        ref = _ort(model, xb)[0]
        assert _min_cos(net(xb), ref) >= 0.998  # as the fixed-batch import (measured 0.9987)
    assert net.compiled_batches == [3, 2]  # at most max_programs kept
    with pytest.raises(ValueError, match="no input has a symbolic first size"):
        af.from_onnx(_export(m, (t,), "dynamo", 18), dynamic_batch=True)
    small = af.from_onnx(model, dynamic_batch=True, compress="int8", min_cosine=0.0)
    assert small.compile_for(4).weight_bytes == small.compile_for(1).weight_bytes < net.weight_bytes
