"""No integer compute on the engine (docs/engine.md, "Integers and booleans"): every program
we emit, read back by the MIL parser, has no int32 or bool port, no op computing an int32
tensor, and bool only from a comparison into select's cond (the form public code that runs
on the engine uses: sbryngelson/ANEForge docs/capabilities.md). Checked on the MIL text, apart
from the emitter's own check; a hand-made violation shows the check can fail."""
import numpy as np
import pytest

import aneforge as af
from aneforge import mil as _mil

from milgolden import OPSETS, _programs

COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}


def violations(text):
    fn = _mil.parse_text(text, source="test").main
    found = [f"input {n} is {t.dtype}" for n, t in fn.inputs if t.dtype in ("int32", "bool")]
    computed = {}
    for op in fn.block.ops:
        if op.type == "const":
            continue
        for param, args in op.inputs.items():
            for kind, name in args:
                if kind == "var" and computed.get(name) == "bool" and not (op.type == "select" and param == "cond"):
                    found.append(f"bool {name} feeds {op.type}.{param}")
        for name, t in op.outputs:
            if t.dtype == "int32" or (t.dtype == "bool" and op.type not in COMPARISONS):
                found.append(f"{op.type} computes {t.dtype} {name}")
            computed[name] = t.dtype
    found += [f"output {n} is {computed[n]}" for n in fn.block.outputs if computed.get(n) in ("int32", "bool")]
    return found


NAMES = [n for n, _ in _programs()]


@pytest.fixture(scope="module")
def programs():
    progs = dict(_programs())
    yield progs
    progs.clear()  # no graph outlives the module


@pytest.mark.parametrize("name", NAMES)
def test_no_integer_compute_in_any_emitted_program(name, programs):
    net = af.compile(programs[name])
    for opset in OPSETS:
        assert violations(net.mil_text(opset)) == [], f"{name} ({opset})"


def test_the_check_finds_integer_compute():
    text = """program(1.3)
{
    func main<ios18>(tensor<int32, [4]> ids, tensor<fp16, [4]> x) {
        tensor<int32, [4]> y = add(x = ids, y = ids)[name = string("y")];
        tensor<bool, [4]> c = less(x = x, y = x)[name = string("c")];
        tensor<bool, [4]> n = logical_not(x = c)[name = string("n")];
        string d = const()[name = string("d"), val = string("fp16")];
        tensor<fp16, [4]> f = cast(dtype = d, x = c)[name = string("f")];
    } -> (y, n, f);
}"""
    found = violations(text)
    for want in ("input ids is int32", "add computes int32 y", "logical_not computes bool n", "bool c feeds cast.x",
                 "output y is int32", "output n is bool"):
        assert want in found, found


def test_ids_past_2048_reach_each_chunk_exactly():
    """The port of an index input holds one row per 2048-row chunk, the ids offset on the host;
    every backend takes the user's ids and gives torch's rows."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    table = rng.standard_normal((3000, 8)).astype(np.float32)
    ids = np.array([[0, 2047, 2048, 2049], [2999, 1, 4095 - 1096, 2500]], np.int32)
    i = af.input(ids.shape, dtype="int32", name="ids")
    y = af.embedding(i, af.constant(table))
    want = torch.nn.functional.embedding(torch.from_numpy(ids).long(), torch.from_numpy(table).half().float()).numpy()
    for backend in ("sim", "mil"):
        np.testing.assert_array_equal(af.compile(y, backend=backend)(ids), want, err_msg=backend)
    text = af.compile(y).mil_text("ios18")
    assert "tensor<fp16, [2, 2, 4]> ids" in text  # two rows: ids, ids - 2048


@pytest.mark.parametrize("backend", ["sim", "mil"])
def test_an_id_outside_its_table_is_an_index_error_on_every_backend(backend):
    i = af.input((3,), dtype="int32", name="ids")
    net = af.compile(af.embedding(i, af.constant(np.ones((3000, 4), np.float32))), backend=backend)
    for bad in (3000, -1):
        with pytest.raises(IndexError, match=f"input 'ids': index {bad} at flat position 1 is out of range for a table of 3000 rows"):
            net(np.array([0, bad, 2], np.int32))
    net(np.array([0, 2999, 2], np.int32))


def test_int_and_bool_outputs_come_back_as_their_dtype_from_fp16():
    x = af.input((5,), name="x")
    xs = np.array([-2.5, 0.0, 1.5, np.inf, np.nan], np.float32)
    for backend in ("sim", "mil"):
        net = af.compile([af.cast(x, "int32"), x > 0], backend=backend)
        ints, flags = net(xs)
        assert ints.dtype == np.int32 and flags.dtype == np.bool_
        np.testing.assert_array_equal(ints, [-2, 0, 1, 2**31 - 1, 0], err_msg=backend)
        np.testing.assert_array_equal(flags, [False, False, True, True, False], err_msg=backend)


def test_one_graph_gives_one_mil_when_lowering_replaced_its_outputs():
    """Outputs whose producer was lowered (argmax, topk, a split embedding) keep generated
    names, which the MIL gives by position: what the process built before does not matter."""
    def graph():
        table = np.random.default_rng(4).standard_normal((3000, 8)).astype(np.float32)
        i = af.input((2, 4), dtype="int32", name="ids")
        y = af.embedding(i, af.constant(table))
        s = y.sum(dim=-1)
        return [y, s.argmax(dim=-1), s > 0, af.one_hot(i, num_classes=3000), af.topk(s, 2)[1]]
    first = af.compile(graph()).mil_text("ios18")
    af.compile(af.input((3,)).relu())
    assert af.compile(graph()).mil_text("ios18") == first


@pytest.mark.parametrize("backend", ["sim", "mil"])
@pytest.mark.parametrize("op", ["index_select", "gather", "embedding_small"])
def test_index_select_and_gather_raise_where_torch_raises(op, backend):
    torch = pytest.importorskip("torch")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    i = af.input((1, 2) if op == "gather" else (2,), dtype="int32", name="i")
    build = {"index_select": lambda: af.index_select(af.constant(x), 1, i),
             "gather": lambda: af.gather(af.constant(x), 1, i),
             "embedding_small": lambda: af.embedding(i, af.constant(x))}[op]
    ref = {"index_select": lambda t: torch.index_select(torch.from_numpy(x), 1, t),
           "gather": lambda t: torch.gather(torch.from_numpy(x), 1, t),
           "embedding_small": lambda t: torch.nn.functional.embedding(t, torch.from_numpy(x))}[op]
    net = af.compile(build(), backend=backend)
    size = 3 if op == "embedding_small" else 4
    good = np.array([[0, size - 1]] if op == "gather" else [0, size - 1], np.int32)
    np.testing.assert_array_equal(net(good), ref(torch.from_numpy(good).long()).numpy())
    for bad in (size, -1):
        ids = good.copy()
        ids.reshape(-1)[1] = bad
        with pytest.raises((IndexError, RuntimeError)):
            ref(torch.from_numpy(ids).long())  # torch refuses it too
        with pytest.raises(IndexError, match=f"index {bad} at flat position 1 is out of range for a table of {size} rows"):
            net(ids)
