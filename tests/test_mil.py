"""MIL emission: every op compiles into an .mlpackage that coremltools loads and
type-checks on Linux (the MIL protobuf loader rebuilds the program op by op), whole graphs
too; the weight blob byte for byte."""
import struct
import warnings

import numpy as np
import pytest

import aneforge as af

warnings.filterwarnings("ignore")
ct = pytest.importorskip("coremltools")
from coremltools.converters.mil.frontend.milproto.load import load as milproto_load  # noqa: E402

from optable import make_input  # noqa: E402
from test_ops import ALL  # noqa: E402

def load_with_coremltools(net, tmp_path, opset):
    """Export, then load: MLModel parses the package; milproto.load rebuilds every op with
    coremltools' own type inference and checks our declared types against it."""
    path = tmp_path / f"m{opset}.mlpackage"
    net.export_mlpackage(path, opset=opset)
    model = ct.models.MLModel(str(path), skip_model_load=True)
    spec = model.get_spec()
    assert spec.specificationVersion == (8 if opset == "ios17" else 9)
    prog = milproto_load(spec, spec.specificationVersion, str(path / "Data" / "com.apple.CoreML" / "weights"))
    return spec, prog


def _graph(case, rng, runtime_params=False):
    """The case's graph; by default only its first input is a graph input, the others
    (weights, statistics) are constants, as in a model."""
    arrays = [make_input(s, k, rng) for s, k in case.inputs]
    dts = ["bool" if a.dtype == np.bool_ else "int32" if a.dtype == np.int32 else "fp16" for a in arrays]
    xs = [af.input(a.shape, dtype=d, name=f"in{i}") if i == 0 or runtime_params else af.constant(a, d)
          for i, (a, d) in enumerate(zip(arrays, dts))]
    y = case.build(*xs)
    return list(y) if isinstance(y, (list, tuple)) else y


@pytest.mark.parametrize("opset", ["ios17", "ios18"])
@pytest.mark.parametrize("case", ALL, ids=repr)
def test_every_op_loads_in_coremltools(case, opset, rng, tmp_path):
    net = af.compile(_graph(case, rng), target="h16g")
    try:
        spec, prog = load_with_coremltools(net, tmp_path, opset)
    except Exception as e:  # name the op in the failure
        raise AssertionError(f"op case '{case.name}' ({opset}): coremltools rejected the program: {e}\n"
                             f"{net.mil_text(opset)}") from None
    fn = prog.functions["main"]
    assert len(fn.outputs) == len(net.outputs)


@pytest.mark.parametrize("opset", ["ios17", "ios18"])
def test_bridge_ops_lower_into_loadable_programs(opset, rng, tmp_path):
    x = af.input((2, 16), name="x")
    q = af.input((1, 2, 8, 4), name="q")
    v, i = af.topk(x, 3)
    outs = [v, i, af.argmax(x, 1), af.sort(x)[0], af.sdpa(q, q, q, is_causal=True),
            af.cross_product(x[:, :3], x[:, 3:6]), af.minmax_norm(x), af.dynamic_slice(x, af.constant(np.array([2], np.int32)), 4, 1)]
    load_with_coremltools(af.compile(outs), tmp_path, opset)


def _i32(v):
    return af.constant(np.array(v, np.int32))


BRIDGE_GRAPHS = {
    "sdpa": lambda x4, x2, p: af.sdpa(x4, x4, x4, attn_mask=(x4 @ x4.transpose(2, 3))[0, 0] > 0),
    "argmax": lambda x4, x2, p: af.argmax(x2, 1),
    "argmin": lambda x4, x2, p: af.argmin(x2, None, keepdims=True),
    "sort": lambda x4, x2, p: list(af.sort(x2, descending=True)),
    "topk": lambda x4, x2, p: list(af.topk(x2, 3, largest=False)),
    "cross_product": lambda x4, x2, p: af.cross_product(x2[:, :3], x2[:, 3:6]),
    "cross_correlation": lambda x4, x2, p: af.cross_correlation(x4, x4 * 2, 1),
    "cost_volume": lambda x4, x2, p: af.cost_volume(x4, x4 * 2, 3),
    "farthest_point_sampling": lambda x4, x2, p: af.farthest_point_sampling(p, 3),
    "radius_search": lambda x4, x2, p: af.radius_search(p, p[:, :2], 0.5, 3),
    "minmax_norm": lambda x4, x2, p: af.minmax_norm(x4, (2, 3)),
    "lrn": lambda x4, x2, p: af.lrn(x4, 3),
    "space_to_channel": lambda x4, x2, p: af.space_to_channel(x4, 2, 2),
    "channel_to_space": lambda x4, x2, p: af.channel_to_space(af.space_to_channel(x4, 2, 2), 2, 2),
    "space_to_batch": lambda x4, x2, p: af.space_to_batch(x4, 2, (0, 0, 0, 0)),
    "batch_to_space": lambda x4, x2, p: af.batch_to_space(af.space_to_batch(x4, 2), 2, (0, 1, 0, 1)),
    "flatten_channels": lambda x4, x2, p: af.flatten_channels(x4),
    "input_view": lambda x4, x2, p: af.input_view(x2, (4, 4), offset=3),
    "dynamic_slice": lambda x4, x2, p: af.dynamic_slice(x2, _i32([2]), 4, 1),
    "dynamic_update_slice": lambda x4, x2, p: af.dynamic_update_slice(x2, x2[:, :4] * 2, _i32([3]), 1),
    "scaled_elementwise": lambda x4, x2, p: af.scaled_elementwise(x2, x2, "maximum", 0.5, 2.0, 1.0),
    "index_select": lambda x4, x2, p: af.index_select(x2, 1, _i32([3, 0, 3])),
    "gather": lambda x4, x2, p: af.gather(x2, 1, _i32([[0, 5], [15, 1]])),
    "cumsum": lambda x4, x2, p: af.cumsum(x4, 3),
    "one_hot": lambda x4, x2, p: af.one_hot(af.argmax(x2, 1), 16),
}


@pytest.mark.parametrize("opset", ["ios17", "ios18"])
@pytest.mark.parametrize("bridge", sorted(BRIDGE_GRAPHS))
def test_every_bridge_op_loads_in_coremltools(bridge, opset, tmp_path):
    x4 = af.input((1, 4, 4, 6), name="x4")
    x2 = af.input((2, 16), name="x2")
    pts = af.input((2, 10, 3), name="pts")
    out = BRIDGE_GRAPHS[bridge](x4, x2, pts)
    net = af.compile(out)
    try:
        load_with_coremltools(net, tmp_path, opset)
    except Exception as e:
        raise AssertionError(f"bridge '{bridge}' ({opset}): coremltools rejected the program: {e}") from None


def test_bridge_table_is_covered():
    assert sorted(BRIDGE_GRAPHS) == sorted(o.name for o in af.ops() if o.bridge)


def _transformer_block(rng, S=16, D=32, H=4):
    x = af.input((1, S, D), name="tokens")
    def w(*s):
        return (rng.standard_normal(s) / np.sqrt(s[-1])).astype(np.float32)
    h = af.layer_norm(x, (D,), np.ones(D, np.float32), np.zeros(D, np.float32))
    q, k, v = (af.linear(h, w(D, D)).reshape(1, S, H, D // H).permute(0, 2, 1, 3) for _ in range(3))
    a = af.sdpa(q, k, v, is_causal=True).permute(0, 2, 1, 3).reshape(1, S, D)
    x = x + af.linear(a, w(D, D))
    h = af.layer_norm(x, (D,))
    return x + af.linear(af.gelu(af.linear(h, w(4 * D, D), np.zeros(4 * D, np.float32))), w(D, 4 * D))


@pytest.mark.parametrize("opset", ["ios17", "ios18"])
def test_whole_graphs_load(opset, rng, tmp_path):
    from aneforge.nets import resnet18
    W = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    x = af.input((1, 3, 32, 32), name="image")
    quick = af.conv(x, W, pad=1).relu().mean((2, 3))
    _, res = resnet18(size=64, classes=10)
    for graph in (quick, res, _transformer_block(rng)):
        spec, prog = load_with_coremltools(af.compile(graph), tmp_path, opset)
        assert len(list(prog.functions["main"].operations)) > 2


@pytest.mark.parametrize("name", ["batch_norm", "layer_norm", "add(2, 3, 4)(4,)", "where", "matmul"])
def test_runtime_parameters_load(name, rng, tmp_path):
    case = next(c for c in ALL if c.name == name or (name == "matmul" and c.name == "bmm"))
    load_with_coremltools(af.compile(_graph(case, rng, runtime_params=True)), tmp_path, "ios18")


def test_description_mirrors_main(rng, tmp_path):
    a = af.input((2, 3), name="alpha")
    b = af.input((3,), dtype="int32", name="beta")
    net = af.compile({"sum": a.relu(), "flag": a > 0, "ints": b + 1})
    spec, prog = load_with_coremltools(net, tmp_path, "ios18")
    assert [i.name for i in spec.description.input] == ["alpha", "beta"]
    assert [o.name for o in spec.description.output] == ["sum", "flag", "ints"]
    types = {o.name: o.type.multiArrayType.dataType for o in spec.description.output}
    assert types["flag"] == types["ints"]  # bool leaves as int32
    assert list(spec.description.input[0].type.multiArrayType.shape) == [2, 3]


def _golden_net():
    rng = np.random.default_rng(7)
    x = af.input((1, 3, 8, 8), name="img")
    w = np.round(rng.standard_normal((4, 3, 3, 3)) * 8) / 8
    y = af.conv(x, w.astype(np.float32), np.arange(4, dtype=np.float32), pad=1).relu().mean((2, 3), keepdims=True)
    return af.compile({"pooled": y})


def test_weight_blob_layout_byte_for_byte():
    net = _golden_net()
    blob = net.weight_blob()
    count, version = struct.unpack_from("<II", blob, 0)
    assert version == 2 and count == 1 and blob[8:64] == bytes(56)
    # One record: the conv weight (108 fp16 values); the 4-element bias is immediate (< 10).
    sentinel, dtype, size, offset, pad_bits = struct.unpack_from("<IIQQQ", blob, 64)
    assert (sentinel, dtype, size, offset, pad_bits) == (0xDEADBEEF, 1, 216, 128, 0)
    assert blob[64 + 40:128] == bytes(24)
    assert len(blob) == 128 + 216  # no padding after the last record
    text = net.mil_text("ios18")
    assert "offset = uint64(64)" in text  # the MIL points at the metadata record
    rng = np.random.default_rng(7)
    w = (np.round(rng.standard_normal((4, 3, 3, 3)) * 8) / 8).astype(np.float16)
    assert blob[128:] == w.tobytes()


def test_second_blob_record_is_64_aligned():
    x = af.input((1, 10), name="x")
    net = af.compile(af.linear(af.linear(x, np.ones((3, 10), np.float32)), np.ones((5, 3), np.float32)))
    blob = net.weight_blob()
    assert struct.unpack_from("<I", blob, 0)[0] == 2
    # first record at 64: 30 fp16 values = 60 bytes of data at 128..188; next metadata at 192
    assert struct.unpack_from("<IIQQ", blob, 64) == (0xDEADBEEF, 1, 60, 128)
    assert struct.unpack_from("<IIQQ", blob, 192) == (0xDEADBEEF, 1, 30, 256)
    assert blob[188:192] == bytes(4)


def test_uint8_constants_are_stored_as_uint8():
    """Values 128..255 went through an int8 cast (undefined behaviour) before."""
    x = af.input((12,), dtype="uint8", name="x")
    c = af.constant(np.arange(200, 212).astype(np.float32), "uint8")
    net = af.compile(x + c)
    blob = net.weight_blob()
    assert struct.unpack_from("<II", blob, 64)[1] == 3  # MILBlob dtype code: UInt8
    assert list(blob[128:140]) == list(range(200, 212))
    np.testing.assert_array_equal(af.compile(x + c, backend="mil")(np.arange(12)), net(np.arange(12)))


def _small_net(scale=1.0):
    x = af.input((1, 3, 8, 8))  # unnamed: its generated name carries a process-wide id
    W = (scale * np.arange(4 * 3 * 3 * 3).reshape(4, 3, 3, 3) / 100).astype(np.float32)
    return af.compile(af.conv(x, W, pad=1).relu().mean((2, 3)))


@pytest.mark.parametrize("opset", ["ios17", "ios18"])
def test_one_graph_gives_the_same_mil_whatever_was_built_before(opset):
    first = _small_net().mil_text(opset)
    for _ in range(3):  # other graphs advance the generated ids
        af.compile(af.input((2, 2)).relu())
    assert _small_net().mil_text(opset) == first
    assert "input_0" in first  # generated names are positional in the MIL


@pytest.mark.parametrize("opset", ["ios17", "ios18"])
def test_build_info_carries_coremlc_keys_and_a_content_key(opset):
    a, b = _small_net(1.0).mil_text(opset), _small_net(2.0).mil_text(opset)
    header = a.splitlines()[1]
    for key in ('"coremlc-component-MIL"', '"coremlc-version"', '"aneforge-version"', '"aneforge-program"'):
        assert key in header
    # The same text apart from the weights' values: only the content key tells them apart.
    assert a.splitlines()[2:] == b.splitlines()[2:]
    assert a.splitlines()[1] != b.splitlines()[1]
