"""The fp16 conversion digests that cpp/tests/test_fp16.cpp records (computed on x86-64 and
required bit for bit of every other CPU build, arm64 under qemu included) are what NumPy's
float16 conversions give, with the NaN rule the hardware follows (NaNs come out quiet, payload
kept). So the recorded values are checked against an independent reference, not only against
the code that produced them."""
import pathlib
import re

import numpy as np

CPP_TEST = pathlib.Path(__file__).resolve().parents[1] / "cpp" / "tests" / "test_fp16.cpp"
P = np.uint64(0x9E3779B97F4A7C15)


def recorded(name):
    match = re.search(rf"constexpr uint64_t {name} = (0x[0-9a-f]+)ull;", CPP_TEST.read_text())
    assert match, f"{name} not found in {CPP_TEST}"
    return int(match.group(1), 16)


def digest(words):
    """Sum of w[i] * P^(i+1) mod 2^64, as the C++ test computes it."""
    powers = np.cumprod(np.full(words.size, P, dtype=np.uint64), dtype=np.uint64)
    return int(np.sum(words.astype(np.uint64) * powers, dtype=np.uint64))


def boundary_sweep_bits():
    top = np.arange(1 << 19, dtype=np.uint32)
    low = np.array([0x0, 0x1, 0xFFF, 0x1000, 0x1001, 0x1FFF], dtype=np.uint32)
    return ((top[:, None] << 13) | low[None, :]).ravel()


def test_every_half_decodes_as_numpy():
    halves = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    bits = halves.astype(np.float32).view(np.uint32)
    bits = np.where(np.isnan(halves), bits | 0x400000, bits)  # quiet NaNs
    assert digest(bits) == recorded("kEveryHalfAsFloat")


def test_boundary_sweep_encodes_as_numpy():
    bits = boundary_sweep_bits()
    floats = bits.view(np.float32)
    with np.errstate(all="ignore"):
        halves = floats.astype(np.float16).view(np.uint16).astype(np.uint32)
    quiet_nan = ((bits >> 16) & 0x8000) | 0x7E00 | ((bits >> 13) & 0x1FF)
    halves = np.where(np.isnan(floats), quiet_nan, halves)
    assert digest(halves) == recorded("kSweepToHalf")
    flushed = np.where((halves & 0x7C00) == 0, halves & 0x8000, halves)
    assert digest(flushed) == recorded("kSweepToHalfFlushed")


def test_a_changed_conversion_changes_the_digest():
    bits = boundary_sweep_bits()
    with np.errstate(all="ignore"):
        halves = bits.view(np.float32).astype(np.float16).view(np.uint16).astype(np.uint32)
    one_off = halves.copy()
    one_off[123457] ^= 1  # one rounding decision the other way
    assert digest(one_off) != digest(halves)


def test_this_build_reproduces_the_recorded_conversions():
    """The installed package on this CPU (x86-64 F16C, arm64 NEON in a wheel's test run)."""
    import aneforge as af

    floats = boundary_sweep_bits().view(np.float32)
    for flush, name in ((False, "kSweepToHalf"), (True, "kSweepToHalfFlushed")):
        rounded = af.round_fp16(floats, flush_subnormals=flush)
        with np.errstate(all="ignore"):
            halves = rounded.astype(np.float16).view(np.uint16).astype(np.uint32)
        assert digest(halves) == recorded(name), name
