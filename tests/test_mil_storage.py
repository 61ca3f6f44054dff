"""The mil backend's fp16 store (aneforge.mil.to_fp16) against NumPy's own rounding, with
subnormals flushed as docs/numerics.md says: every fp16 value and floats around the
subnormal range, both signs, NaN and infinities."""
import warnings

import numpy as np
import pytest

from aneforge.mil import to_fp16


def _reference(x, flush):
    h = np.asarray(x, np.float32).astype(np.float16)
    if flush:
        v = h.astype(np.float64)
        h = np.where((v != 0) & (np.abs(v) < 2.0 ** -14), np.copysign(0.0, v), v).astype(np.float16)
    return h


def _inputs():
    every_fp16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    rng = np.random.default_rng(0)
    near_subnormals = rng.standard_normal(1 << 18).astype(np.float32) * np.float32(2.0 ** -13)
    # the float32 neighbours of the largest subnormal's rounding boundary (2^-14 - 2^-25)
    edge = np.float32(2.0 ** -14 - 2.0 ** -25)
    around = np.array([np.nextafter(edge, 0, dtype=np.float32), edge, np.nextafter(edge, 1, dtype=np.float32)])
    return np.concatenate([every_fp16, near_subnormals, around, -around, [np.inf, -np.inf, np.nan, 0.0, -0.0]]).astype(np.float32)


@pytest.mark.parametrize("flush", [True, False])
def test_fp16_store_matches_numpy_rounding_with_subnormals_flushed(flush):
    x = _inputs()
    got = to_fp16(x, flush_subnormals=flush)
    assert got.dtype == np.float16 and got.shape == x.shape
    np.testing.assert_array_equal(got.view(np.uint16), _reference(x, flush).view(np.uint16))
    if flush:
        bits = got.view(np.uint16) & 0x7FFF
        assert not ((bits > 0) & (bits < 0x400)).any()  # no subnormal left
        tiny_negative = (x < 0) & (x > -2.0 ** -15)
        assert tiny_negative.sum() > 1000 and (got.view(np.uint16)[tiny_negative] == 0x8000).all()  # -0


def test_fp16_store_does_not_write_into_its_input():
    x = np.array([1e-6, -1e-6, 1.0], np.float32)
    kept = x.copy()
    to_fp16(x)
    np.testing.assert_array_equal(x, kept)
    assert to_fp16(np.float32(1e-6)).shape == ()


def test_large_stores_split_across_threads_give_numpys_cast_without_warnings():
    # above the split size the cast runs in pieces on a thread pool; each piece must ignore
    # fp16 overflow the way the caller does (inf is the rule), and the bits are one cast's
    from aneforge.mil import storage
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(3 * storage._SPLIT_MIN + 7) * 1e5).astype(np.float32)  # half overflow
    x[::1001] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = to_fp16(x, flush_subnormals=False)
        widened = storage.widened(got)
    with np.errstate(over="ignore", invalid="ignore"):
        want = x.astype(np.float16)
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
    assert np.isinf(got).sum() > x.size // 4
    np.testing.assert_array_equal(widened.view(np.uint32), want.astype(np.float32).view(np.uint32))


def _store_in_child(queue):
    x = np.arange(2 * (1 << 18), dtype=np.float32) % 1000
    queue.put(int(to_fp16(x).astype(np.float64).sum()))


def test_a_forked_child_stores_large_arrays():
    # the parent's pool threads do not exist in a forked child: it must make its own, not hang
    import multiprocessing
    to_fp16(np.ones(1 << 19, np.float32))  # the parent's pool is running
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_store_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0, "the child hung or failed"
    want = int((np.arange(2 * (1 << 18), dtype=np.float32) % 1000).astype(np.float16).astype(np.float64).sum())
    assert queue.get(timeout=5) == want
