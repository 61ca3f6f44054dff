"""Hostile inputs at the public entry points: absurd shapes, NaN/inf, non-contiguous and
read-only arrays, integers that float32/fp16 cannot hold, wrong Python types."""
import numpy as np
import pytest

import aneforge as af


def test_lazy_tensors_are_not_arrays():
    x = af.input((2, 3), name="x")
    for f in (np.asarray, np.array, list):
        with pytest.raises(TypeError, match="compile"):
            f(x)


@pytest.mark.parametrize("shape", [(2**31, 2**31, 4), (2**40,), (65536, 65536, 2), (3, 0), (3, -1)])
def test_absurd_shapes_are_refused_before_allocation(shape):
    with pytest.raises(ValueError, match="input: shape"):
        af.input(shape)


def test_ops_cannot_build_absurd_results():
    x = af.input((4, 4), name="x")
    with pytest.raises(ValueError, match="out of range|2\\^31"):
        af.reshape(x, (2**62, 4))
    with pytest.raises(ValueError):
        af.tile(x, (2**20, 2**20))
    with pytest.raises(ValueError):
        af.upsample_nearest(af.input((1, 1, 4, 4)), 1e300)


def test_non_contiguous_read_only_and_float64_inputs(rng):
    x = af.input((3, 4), name="x")
    net = af.compile(x * 2 + 1)
    base = rng.standard_normal((4, 3)).astype(np.float32)
    t = base.T  # non-contiguous view
    t.flags.writeable = False
    np.testing.assert_array_equal(net(t), af.round_fp16(af.round_fp16(t) * 2 + 1))
    big = np.full((3, 4), 1e300)  # float64 past float32's range: +inf, never undefined behaviour
    assert np.isposinf(net(big)).all()
    specials = np.array([[np.nan, np.inf, -np.inf, 0]] * 3, np.float32)
    out = net(specials)
    assert np.isnan(out[:, 0]).all() and np.isposinf(out[:, 1]).all() and np.isneginf(out[:, 2]).all()


def test_integers_convert_only_when_exact():
    i = af.input((2,), dtype="int32", name="i")
    net = af.compile(i + 1)
    np.testing.assert_array_equal(net(np.array([2047, -5])), [2048, -4])
    for bad in ([2**25 + 1, 0], [2**40, 0]):
        with pytest.raises(ValueError, match="not exactly representable"):
            net(np.array(bad))
    # The engine holds int32 in fp16: a value used as a number must be exact there.
    for backend in ("sim", "mil"):
        with pytest.raises(ValueError, match="2049 at flat position 0 is not exact in fp16"):
            af.compile(i + 1, backend=backend)(np.array([2049, 0]))
    f = af.input((2,), name="f")
    fnet = af.compile(f * 1)
    np.testing.assert_array_equal(fnet(np.array([2048, -3], np.int64)), [2048, -3])
    with pytest.raises(ValueError, match="in fp16"):
        fnet(np.array([2049, 0]))


@pytest.mark.parametrize("bad", ["image", None, 3.5, [[1, "a"]], {"x": 1}])
def test_wrong_python_types(bad):
    x = af.input((1, 2), name="x")
    net = af.compile(x.relu())
    with pytest.raises((TypeError, ValueError)):
        net(bad)


def test_one_net_from_eight_threads_gives_serial_results(rng):
    import threading
    x = af.input((1, 8, 16, 16), name="x")
    net = af.compile(af.conv(x, rng.standard_normal((8, 8, 3, 3)).astype(np.float32), pad=1).relu().mean((2, 3)))
    inputs = [rng.standard_normal((1, 8, 16, 16)).astype(np.float32) for _ in range(8)]
    serial = [net(a) for a in inputs]
    results = [None] * 8

    def worker(i):
        results[i] = [net(inputs[i]) for _ in range(20)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        for r in results[i]:
            np.testing.assert_array_equal(r, serial[i])
