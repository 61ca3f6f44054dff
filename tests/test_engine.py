"""backend="engine" through the real dispatch code, against doubles of Apple's APIs
(tests/engine_doubles.py): results computed from the emitted MIL by the mil interpreter
inside the double, the protocol checked by the double, failures injected."""
import gc
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aneforge as af
from aneforge.testing import assert_fp16_close

import engine_doubles

PATHS = ["e5rt", "inmemory"]


@pytest.fixture(scope="session")
def double_libs(tmp_path_factory):
    out = tmp_path_factory.mktemp("doubles")
    return {p: engine_doubles.build(p, out) for p in PATHS}


@pytest.fixture(params=PATHS)
def engine(request, double_libs, tmp_path, monkeypatch):
    path = request.param
    monkeypatch.setenv("ANEFORGE_ENGINE_E5RT" if path == "e5rt" else "ANEFORGE_ENGINE_OBJC", str(double_libs[path]))
    monkeypatch.setenv("ANEFORGE_ENGINE_PATH", path)
    monkeypatch.setenv("ANEFORGE_TARGET", "h16g")
    monkeypatch.setenv("ANEFORGE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "tmp").mkdir()
    d = engine_doubles.Double(path, double_libs[path], tmp_path / "tmp")
    d.reset()
    yield d
    gc.collect()  # programs released, so teardown violations are recorded too
    assert d.violations() == "", f"the {path} double recorded protocol violations:\n{d.violations()}"


def _cnn(rng):
    W = (rng.standard_normal((8, 3, 3, 3)) / 5).astype(np.float32)
    L = (rng.standard_normal((5, 8 * 4 * 4)) / 10).astype(np.float32)
    x = af.input((2, 3, 8, 8), name="x_image")  # names out of alphabetical order: binding is by name
    a = af.input((2, 5), name="a_bias")
    h = af.max_pool2d(af.conv2d(x, W, padding=1).relu(), 2)
    logits = af.linear(h.flatten(1), L) + a
    return (logits.softmax(dim=-1), h.mean(dim=(2, 3))), (W, L)


def test_without_an_engine_the_error_says_why(monkeypatch):
    for var in ("ANEFORGE_ENGINE_E5RT", "ANEFORGE_ENGINE_OBJC", "ANEFORGE_ENGINE_PATH"):
        monkeypatch.delenv(var, raising=False)
    eng = [d for d in af.devices() if d["name"] == "engine"][0]
    assert [d["name"] for d in af.devices()] == ["sim", "mil", "engine"]
    assert not eng["available"] and "Apple Silicon" in eng["reason"]
    x = af.input((1, 4))
    with pytest.raises(af.EngineError, match="unavailable.*Apple Silicon"):
        af.compile(x.relu(), backend="engine")
    assert af.compile(x.relu(), backend="auto").backend == "sim"
    assert issubclass(af.EngineError, RuntimeError)


def test_devices_and_auto_pick_the_engine(engine):
    eng = [d for d in af.devices() if d["name"] == "engine"][0]
    assert eng["available"] and eng["path"] == engine.path and eng["target"] == "h16g"
    assert eng["library"] == str(engine.lib)
    x = af.input((1, 64), name="x")
    assert af.compile(x.relu(), backend="auto").backend == "engine"


def test_results_pass_end_to_end_through_the_dispatch_code(engine, rng):
    outs, (W, L) = _cnn(rng)
    net = af.compile(outs, backend="engine")
    mil = af.compile(outs, backend="mil")
    xs = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    bs = rng.standard_normal((2, 5)).astype(np.float32)
    got = net(xs, bs)
    assert engine.computed == 1 and isinstance(got, tuple)
    for g, m in zip(got, mil(xs, bs)):
        np.testing.assert_array_equal(g, m)  # the same MIL, the same interpreter: bit for bit
    t = F.max_pool2d(F.conv2d(torch.from_numpy(xs), torch.from_numpy(W), padding=1).relu(), 2)
    ref = (t.flatten(1) @ torch.from_numpy(L).T + torch.from_numpy(bs)).softmax(-1)
    assert_fp16_close(got[0], ref.numpy(), ulps=2, floor_ulps=8)
    assert_fp16_close(got[1], t.mean(dim=(2, 3)).numpy(), ulps=2, floor_ulps=8)
    assert engine.violations() == ""


def test_two_weight_sets_never_share_a_compiled_model(engine, rng):
    """The engine's compile cache is keyed on the MIL text; the content key in buildInfo keeps
    two programs that differ only in their weights apart (the double computes with the
    weights compiled first, as a cache hit would)."""
    x = af.input((1, 3, 8, 8), name="x")
    xs = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    for scale in (1.0, -2.0):
        W = (scale * np.arange(4 * 3 * 3 * 3).reshape(4, 3, 3, 3) / 100).astype(np.float32)
        y = af.conv2d(x, W, padding=1).relu()
        got = af.compile(y, backend="engine")(xs)
        np.testing.assert_array_equal(got, af.compile(y, backend="mil")(xs))


def test_every_object_is_released_once(engine, rng):
    outs, _ = _cnn(rng)
    net = af.compile(outs, backend="engine")
    net(np.zeros((2, 3, 8, 8), np.float32), np.zeros((2, 5), np.float32))
    assert engine.live() > 0
    del net
    gc.collect()
    assert engine.live() == 0
    assert engine.violations() == ""


def test_a_compile_failure_keeps_the_program_for_a_bug_report(engine):
    if engine.path == "e5rt":
        engine.fail("e5rt_e5_compiler_compile", 5, "")
    else:
        engine.fail("compileWithQoS:options:error:", 4, "<nil>")
    x = af.input((1, 64), name="x")
    with pytest.raises(af.EngineError) as e:
        af.compile(x.relu(), backend="engine")
    msg = str(e.value)
    assert "h16g" in msg and ("no message" in msg or "no NSError" in msg)
    path = msg.split("model.mil")[0].split()[-1] + "model.mil"
    assert os.path.exists(path.strip("[")), msg
    assert engine.live() == 0


def test_the_load_cap_unloads_with_a_warning_and_reloads(engine, rng, monkeypatch):
    monkeypatch.setenv("ANEFORGE_ENGINE_MAX_LOADED", "1")
    x = af.input((1, 64), name="x")
    a = af.compile(x * 2, backend="engine")
    with pytest.warns(RuntimeWarning, match="least recently used"):
        b = af.compile(x + 1, backend="engine")
    xs = rng.standard_normal((1, 64)).astype(np.float32)
    with pytest.warns(RuntimeWarning):
        np.testing.assert_array_equal(a(xs), af.compile(x * 2)(xs))
    assert af.devices()[2]["loaded_programs"] == 1
    with pytest.warns(RuntimeWarning):
        np.testing.assert_array_equal(b(xs), af.compile(x + 1)(xs))


@pytest.mark.parametrize("backend", ["sim", "engine"])
def test_resident_state_stays_on_the_backend(engine, backend):
    w = af.input((1, 64), name="w")
    g = af.input((1, 64), name="grad")
    net = af.compile({"w_next": w - 0.5 * g}, backend=backend)
    net.make_resident("w_next", "w")
    out = net(np.ones((1, 64), np.float32), np.ones((1, 64), np.float32))["w_next"]
    for _ in range(3):
        out = net(grad=np.ones((1, 64), np.float32))["w_next"]  # w stays where it is
    np.testing.assert_array_equal(out, np.full((1, 64), 1 - 4 * 0.5, np.float32))
    with pytest.raises(ValueError, match="no input named"):
        net.make_resident("w_next", "nope")
    if backend == "engine":
        assert engine.violations() == ""


@pytest.mark.parametrize("backend", ["sim", "mil", "engine"])
def test_held_inputs_change_only_the_rows_written(engine, backend, rng, monkeypatch):
    """A held input (a KV cache) starts at zeros, keeps its value between calls, takes row
    writes in place along any dim, is replaced by a value given to a call, and survives the
    engine unloading its program. The program doubles it, so each output shows the state."""
    c = af.input((2, 5, 3), name="cache")
    x = af.input((1, 3), name="x")
    net = af.compile({"seen": c * 2.0, "dot": (c * x).sum(dim=-1)}, backend=backend)
    net.hold_input("cache")
    held = np.zeros((2, 5, 3), np.float32)
    xs = rng.standard_normal((1, 3)).astype(np.float32)

    def check():
        out = net(x=xs)
        np.testing.assert_array_equal(out["seen"], 2 * held)
        assert_fp16_close(out["dot"], (held * xs).sum(-1), ulps=2, floor_ulps=2)

    check()
    rows = rng.standard_normal((2, 2, 3)).astype(np.float32)
    net.write_input("cache", rows, 1, dim=1)
    held[:, 1:3] = rows.astype(np.float16)
    check()
    col = rng.standard_normal((2, 5, 1)).astype(np.float32)
    net.write_input("cache", col, 2, dim=-1)
    held[..., 2:3] = col.astype(np.float16)
    check()
    new = rng.standard_normal((2, 5, 3)).astype(np.float32)
    held = new.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(net(x=xs, cache=new)["seen"], 2 * held)  # a given value replaces it
    plane = rng.standard_normal((1, 5, 3)).astype(np.float32)
    net.write_input("cache", plane, 1, dim=0)
    held[1:] = plane.astype(np.float16)
    check()
    if backend == "engine":  # another program takes the only slot; the held value comes back
        monkeypatch.setenv("ANEFORGE_ENGINE_MAX_LOADED", "1")
        with pytest.warns(RuntimeWarning, match="least recently used"):
            other = af.compile(x * 3, backend="engine")
        other(xs)
        with pytest.warns(RuntimeWarning, match="least recently used"):
            check()
        assert engine.violations() == ""
    with pytest.raises(ValueError, match="outside dim 1"):
        net.write_input("cache", rows, 4, dim=1)
    with pytest.raises(ValueError, match="match it on every dim but"):
        net.write_input("cache", rows[:, :, :2], 0, dim=1)
    with pytest.raises(ValueError, match="not held"):
        net.write_input("x", xs, 0)
    with pytest.raises(ValueError, match="no input named"):
        net.hold_input("nope")


@pytest.mark.parametrize("backend", ["sim", "mil", "engine"])
@pytest.mark.parametrize("big_output", [False, True])
def test_a_shared_input_is_one_buffer_for_two_programs(engine, backend, big_output, rng, monkeypatch):
    """Two programs reading one KV cache: rows written through either are seen by both, a
    value given to a call replaces it for both, and the buffer survives the engine unloading
    the programs and the owner going away. On the engine it is one buffer bound to both
    (e5rt always; in-memory where the programs' surfaces have one size, else a copy per
    program kept equal by every write: big_output makes the second program's surfaces larger)."""
    c = af.input((2, 5, 3), name="cache")
    x = af.input((1, 3), name="x")
    a = af.compile({"seen": c * 2.0}, backend=backend)
    outs_b = {"seen": c * 3.0, "dot": (c * x).sum(dim=-1)}
    if big_output:
        outs_b["big"] = x.reshape(1, 3, 1).expand(1, 3, 20000)  # 120 KB of fp16: larger surfaces
    b = af.compile(outs_b, backend=backend)
    b.share_input("cache", a)
    held = np.zeros((2, 5, 3), np.float32)
    xs = rng.standard_normal((1, 3)).astype(np.float32)

    def check():
        np.testing.assert_array_equal(a()["seen"], 2 * held)
        out = b(x=xs)
        np.testing.assert_array_equal(out["seen"], (3 * held).astype(np.float16).astype(np.float32))
        assert_fp16_close(out["dot"], (held * xs).sum(-1), ulps=2, floor_ulps=2)

    check()
    rows = rng.standard_normal((2, 2, 3)).astype(np.float32)
    a.write_input("cache", rows, 1, dim=1)
    held[:, 1:3] = rows.astype(np.float16)
    check()
    rows = rng.standard_normal((2, 1, 3)).astype(np.float32)
    b.write_input("cache", rows, 4, dim=1)
    held[:, 4:5] = rows.astype(np.float16)
    check()
    new = rng.standard_normal((2, 5, 3)).astype(np.float32)
    b(x=xs, cache=new)  # a given value replaces it for both
    held = new.astype(np.float16).astype(np.float32)
    check()
    if backend == "engine":
        shared = 0 if big_output and engine.path == "inmemory" else 1
        assert engine.shared_input_buffers() == shared
        monkeypatch.setenv("ANEFORGE_ENGINE_MAX_LOADED", "2")
        with pytest.warns(RuntimeWarning, match="least recently used"):
            other = af.compile(x * 3, backend="engine")  # unloads the owner, and so its reader
        other(xs)
        with pytest.warns(RuntimeWarning, match="least recently used"):
            check()  # both loaded again (over no other program of theirs), the value kept
        assert engine.shared_input_buffers() == shared
        assert engine.violations() == ""
    del a  # the owner goes: the reader keeps the value
    gc.collect()
    out = b(x=xs)
    np.testing.assert_array_equal(out["seen"], (3 * held).astype(np.float16).astype(np.float32))
    rows = rng.standard_normal((2, 1, 3)).astype(np.float32)
    b.write_input("cache", rows, 0, dim=1)
    held[:, :1] = rows.astype(np.float16)
    np.testing.assert_array_equal(b(x=xs)["seen"], (3 * held).astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError, match="same backend|one backend"):
        b.share_input("cache", af.compile({"s": c * 1.0}, backend="sim" if backend != "sim" else "mil"))
    with pytest.raises(ValueError, match="one shape and dtype"):
        b.share_input("x", af.compile({"s": af.input((1, 4), name="x") * 1.0}, backend=backend))
    with pytest.raises(ValueError, match="no input named"):
        b.share_input("nope", b)


SHARED_RSS = r"""
import sys, numpy as np, aneforge as af
def rss():
    return int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmRSS:"))) * 1024
c = af.input((2048, 4096), name="cache")  # 32 MiB as the sim holds it (float32)
y = c.sum(dim=0, keepdim=True)
af.compile({"y": y})  # the compiler's own first-use memory, apart
before = rss()  # the programs' memory counts: an input's slot it never touches must cost none
nets = [af.compile({"y": y * float(k)}) for k in (1, 2, 3)]
nets[0].hold_input("cache")
for net in nets[1:]:
    if sys.argv[1] == "shared":
        net.share_input("cache", nets[0])
    else:
        net.hold_input("cache")
for k, net in enumerate(nets):
    net.write_input("cache", np.ones((2048, 4096), np.float32), 0)  # touch every page
print((rss() - before) / 2**20)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc/self/status (Linux)")
def test_a_shared_input_is_held_once_in_memory():
    """Three programs reading one 32 MiB input, from before they are compiled: shared, the
    process grows by one copy (measured 32.0 MiB); held by each, by three (96.0 MiB). The
    slot each program plans for the input, unused once it is held, takes no memory."""
    import subprocess
    import sys
    grew = {how: float(subprocess.run([sys.executable, "-c", SHARED_RSS, how], capture_output=True, text=True,
                                      check=True).stdout) for how in ("shared", "each")}
    assert 31 < grew["shared"] < 40, grew
    assert grew["each"] > 90, grew


def test_held_inputs_are_float_and_not_also_resident():
    i = af.input((1, 4), "int32", name="ids")
    s = af.input((1, 4), name="s")
    net = af.compile({"s_next": s + i.cast("fp16")})
    with pytest.raises(ValueError, match="held inputs are float"):
        net.hold_input("ids")
    net.make_resident("s_next", "s")
    with pytest.raises(ValueError, match="already resident"):
        net.hold_input("s")


def test_a_flexible_batch_runs_one_engine_program_per_batch(engine, rng):
    x = af.input((None, 16), name="x")
    W = rng.standard_normal((4, 16)).astype(np.float32)
    net = af.compile(af.linear(x, W).relu(), backend="engine")
    for b in (1, 3):
        xs = rng.standard_normal((b, 16)).astype(np.float32)
        np.testing.assert_array_equal(net(xs), af.compile(af.linear(af.input((b, 16)), W).relu(), backend="mil")(xs))
    assert engine.violations() == ""


def test_no_use_after_fork(engine):
    x = af.input((1, 64), name="x")
    net = af.compile(x.relu(), backend="engine")
    pid = os.fork()
    if pid == 0:
        try:
            net(np.zeros((1, 64), np.float32))
            os._exit(1)
        except af.EngineError as e:
            os._exit(0 if "posix_spawn" in str(e) else 2)
        except BaseException:  # noqa: BLE001
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_compiled_programs_are_cached_by_content(engine, tmp_path, rng):
    x = af.input((1, 64), name="x")
    W1, W2 = (rng.standard_normal((64, 64)).astype(np.float32) for _ in range(2))
    programs = tmp_path / "cache" / "programs"
    y = af.linear(x, W1)
    a = af.compile(y, backend="engine")
    first = sorted(programs.iterdir())
    stamp = (first[0] / "model.mil").stat().st_mtime_ns
    b = af.compile(y, backend="engine")   # same program (as in the next run of a script): same entry
    assert sorted(programs.iterdir()) == first and (first[0] / "model.mil").stat().st_mtime_ns == stamp
    assert (first[0] / "weights" / "weight.bin").stat().st_size > 64 * 64 * 2
    af.compile(af.linear(x, W2), backend="engine")        # other weights: another entry
    assert len(list(programs.iterdir())) == 2
    if engine.path == "inmemory":  # the framework's own cache: compiled once, loaded twice
        assert engine.calls("compileWithQoS:options:error:") == 2 and engine.calls("loadWithQoS:options:error:") == 3
    xs = rng.standard_normal((1, 64)).astype(np.float32)
    np.testing.assert_array_equal(a(xs), b(xs))


def test_integers_and_booleans_cross_the_engine_as_fp16(engine):
    """No int32 or bool port (docs/engine.md): ids into a 3000-row table enter as fp16, one row
    per 2048-row chunk offset on the host; int32 and bool results leave as fp16 and come back
    as their dtype; an id outside the table is an IndexError before the engine runs."""
    table = np.random.default_rng(4).standard_normal((3000, 8)).astype(np.float32)
    ids = np.array([[0, 2047, 2048, 2999], [1, 2049, 2500, 7]], np.int32)
    i = af.input(ids.shape, dtype="int32", name="ids")
    y = af.embedding(i, af.constant(table))
    s = y.sum(dim=-1)
    outs = [y, s.argmax(dim=-1), s > 0]
    net = af.compile(outs, backend="engine")
    got, want = net(ids), af.compile(outs)(ids)
    assert [g.dtype for g in got] == [np.float32, np.int32, np.bool_]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert engine.computed == 1
    ports = af._core.engine_port_report()
    ids_port = [p for p in ports if p.startswith(("input port 'ids'", "input ids:"))]
    assert ids_port and ("[2, 2, 4]" in ids_port[0] or "1x2x1x2x4" in ids_port[0]), ports  # a row per chunk
    assert all("element 2 bytes" in p for p in ports) or engine.path == "inmemory", ports
    with pytest.raises(IndexError, match="index 3000 at flat position 0 is out of range"):
        net(np.full(ids.shape, 3000, np.int32))
    assert engine.computed == 1
