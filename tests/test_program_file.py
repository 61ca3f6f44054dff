"""Program files: round trip, and clear errors for truncated, corrupt or newer files."""
import os
import struct

import numpy as np
import pytest

import aneforge as af


@pytest.fixture
def saved(tmp_path, rng):
    W = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    x = af.input((1, 3, 8, 8), name="image")
    h = af.conv(x, W, pad=1).relu()
    v, i = af.topk(h.mean((2, 3)), 3)
    net = af.compile({"feat": h.sigmoid(), "top": v, "idx": i}, target="M2", compress="int8")
    path = tmp_path / "net.afprog"
    net.save(path)
    return net, path, rng.standard_normal((1, 3, 8, 8)).astype(np.float32)


def test_round_trip_gives_identical_results(saved):
    net, path, img = saved
    loaded = af.load_program(path)
    a, b = net(img), loaded(image=img)
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert loaded.target == "h14g" and loaded.num_layers == net.num_layers
    assert loaded.summary(file=open(os.devnull, "w")) == net.summary(file=open(os.devnull, "w"))


def test_save_is_atomic_and_leaves_no_temp_files(saved, tmp_path):
    net, path, _ = saved
    net.save(path)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.afprog"]
    with pytest.raises(OSError, match="cannot write"):
        net.save(tmp_path / "missing-dir" / "x.afprog")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.afprog"]


def test_truncated_files_are_rejected(saved, tmp_path):
    _, path, _ = saved
    data = path.read_bytes()
    for cut in (0, 5, 20, len(data) // 2, len(data) - 1):
        p = tmp_path / f"cut{cut}"
        p.write_bytes(data[:cut])
        with pytest.raises(OSError, match="truncated|not an ANEForge program"):
            af.load_program(p)


def test_corrupt_files_are_rejected(saved, tmp_path, rng):
    _, path, _ = saved
    data = bytearray(path.read_bytes())
    for pos in rng.integers(12, len(data), 20):
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        p = tmp_path / "bad"
        p.write_bytes(bytes(bad))
        with pytest.raises(OSError, match="corrupt|truncated"):
            af.load_program(p)


def test_newer_versions_and_foreign_files_are_rejected(saved, tmp_path):
    _, path, _ = saved
    data = bytearray(path.read_bytes())
    data[8:12] = struct.pack("<I", 99)
    p = tmp_path / "future"
    p.write_bytes(bytes(data))
    with pytest.raises(OSError, match="format version 99, newer than this ANEForge reads"):
        af.load_program(p)
    (tmp_path / "text").write_text("hello world, not a program")
    with pytest.raises(OSError, match="not an ANEForge program file"):
        af.load_program(tmp_path / "text")
    with pytest.raises(OSError, match="cannot open"):
        af.load_program(tmp_path / "nope")


def test_fp16_programs_store_fp16_weights(tmp_path, rng):
    """The file holds what the engine gets: a 512x512 linear's weights in fp16 (0.5 MB, not
    the 1 MB float32 would take); an fp32-precision program keeps every float32 bit."""
    W = rng.standard_normal((512, 512)).astype(np.float32)
    x = af.input((1, 512), name="x")
    xs = rng.standard_normal((1, 512)).astype(np.float32)
    for precision, lo, hi in (("fp16", 512 * 512 * 2, 512 * 512 * 2 + 65536), ("fp32", 512 * 512 * 4, 512 * 512 * 4 + 65536)):
        net = af.compile(af.linear(x, W), precision=precision)
        path = tmp_path / f"{precision}.afprog"
        net.save(path)
        assert lo <= path.stat().st_size <= hi, (precision, path.stat().st_size)
        np.testing.assert_array_equal(af.load_program(path)(xs), net(xs))
