"""A program file is untrusted input: the checksum catches accidents, not a crafted file.
Files below carry a valid CRC-32 but hostile contents; each must be an OSError naming the
file, never a crash or a large allocation. Random mutations (CRC fixed up) either fail the
same way or load a program that runs."""
import struct
import zlib

import numpy as np
import pytest

import aneforge as af


def _fix_crc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


@pytest.fixture
def saved(tmp_path, rng):
    x = af.input((1, 3, 8, 8), name="x")
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    net = af.compile(af.conv(x, w, pad=1).relu().mean((2, 3)))
    path = tmp_path / "net.afprog"
    net.save(path)
    return path, path.read_bytes()


def _slot_tables(data: bytes):
    """Offsets of the slot_elems and slot_bytes tables at the end of the file."""
    end = len(data) - 4
    for n in range(1, 200):
        b_at = end - 8 * n - 4
        e_at = b_at - 8 * n - 4
        if struct.unpack_from("<I", data, b_at)[0] == n and struct.unpack_from("<I", data, e_at)[0] == n:
            return n, e_at + 4, b_at + 4
    raise AssertionError("slot tables not found")


def _load(tmp_path, data):
    p = tmp_path / "hostile.afprog"
    p.write_bytes(data)
    return af.load_program(p)


def test_buffer_sizes_set_to_one(saved, tmp_path):
    _, data = saved
    n, elems_at, bytes_at = _slot_tables(data)
    d = bytearray(data)
    for i in range(n):
        struct.pack_into("<q", d, elems_at + 8 * i, 1)
        struct.pack_into("<q", d, bytes_at + 8 * i, 1)
    with pytest.raises(OSError, match="hostile.afprog.*too small"):
        _load(tmp_path, _fix_crc(bytes(d)))


def test_fused_relu_renamed_to_a_two_input_op(saved, tmp_path):
    _, data = saved
    assert data.count(b"\x04\x00\x00\x00relu") == 1
    d = data.replace(b"\x04\x00\x00\x00relu", b"\x04\x00\x00\x00less")
    with pytest.raises(OSError, match="hostile.afprog.*fused"):
        _load(tmp_path, _fix_crc(d))


def test_huge_counts_do_not_allocate(saved, tmp_path):
    _, data = saved
    i = data.index(b"\x04\x00\x00\x00conv") + 8
    name_len = struct.unpack_from("<I", data, i)[0]
    at = i + 4 + name_len  # the conv node's attribute count
    for count in (0x7FFFFFFF, 0xFFFFFFFF, 1 << 27):
        d = bytearray(data)
        struct.pack_into("<I", d, at, count)
        with pytest.raises(OSError, match="hostile.afprog.*count"):
            _load(tmp_path, _fix_crc(bytes(d)))


def test_size_field_overflow_and_truncation(saved, tmp_path):
    _, data = saved
    d = bytearray(data)
    struct.pack_into("<q", d, 12, 2**63 - 1)
    with pytest.raises(OSError, match="truncated or corrupt"):
        _load(tmp_path, bytes(d))
    for cut in (9, 20, len(data) // 2, len(data) - 1):
        with pytest.raises(OSError):
            _load(tmp_path, data[:cut])


def test_random_mutations_with_valid_checksums(saved, tmp_path):
    _, data = saved
    rng = np.random.default_rng(99)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    outcomes = {"refused": 0, "loaded": 0}
    for trial in range(400):
        d = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            pos = int(rng.integers(16, len(d) - 4))
            d[pos] = int(rng.integers(0, 256)) if rng.random() < 0.7 else d[pos] ^ 0x80
        try:
            net = _load(tmp_path, _fix_crc(bytes(d)))
        except OSError as e:
            assert "hostile.afprog" in str(e)
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        try:
            net(x)
        except (ValueError, TypeError):
            pass  # a mutated input shape or dtype: the call is refused, nothing crashes
    assert outcomes["refused"] > 100 and outcomes["loaded"] > 10, outcomes


@pytest.mark.parametrize("fmt", ["int8", "int8:9", "int4", "int4:2", "sparse:0.5", "sparse:0.3+int8", "sparse:0.5+int4:2"])
def test_packed_weights_with_valid_checksums(fmt, tmp_path, rng):
    """Compressed weights: every array length and value checked before use."""
    x = af.input((1, 3, 8, 8), name="x")
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    net = af.compile(af.conv(x, w, pad=1).relu().mean((2, 3)), compress=fmt, max_weight_error=1.0)
    path = tmp_path / "packed.afprog"
    net.save(path)
    data = path.read_bytes()
    xs = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(af.load_program(path)(xs), net(xs))
    packed_format = fmt.split(":")[0] if "+" not in fmt else "sparse+" + fmt.split("+")[1].split(":")[0]
    fmt_at = data.rfind(packed_format.encode())  # the packed weight's format string
    assert fmt_at > 0
    # The fields after the format (block, group rows, the first array's length) set hostile.
    for k in range(3):
        for hostile in (-1, 2**62, 10**6):
            d = bytearray(data)
            at = fmt_at + len(packed_format) + 8 * k
            d[at:at + 8] = struct.pack("<q", hostile)
            try:
                _load(tmp_path, _fix_crc(bytes(d)))(xs)
            except OSError as e:
                assert "hostile.afprog" in str(e)
    # Random mutations of the packed bytes: refused or loaded and run, never a crash.
    for _ in range(60):
        d = bytearray(data)
        pos = int(rng.integers(fmt_at, len(d) - 4))
        d[pos] = int(rng.integers(0, 256))
        try:
            _load(tmp_path, _fix_crc(bytes(d)))(xs)
        except OSError as e:
            assert "hostile.afprog" in str(e)
        except (ValueError, TypeError):
            pass


def test_integer_input_rules_survive_a_save_and_are_checked_at_load(tmp_path):
    """The table an id input indexes travels in the file: a loaded program still raises
    IndexError for an id past it; a rule rewritten to nonsense is refused at load."""
    i = af.input((2,), dtype="int32", name="ids")
    path = tmp_path / "emb.afprog"
    af.compile(af.embedding(i, np.ones((3000, 4), np.float32))).save(path)
    net = af.load_program(path)
    np.testing.assert_array_equal(net(np.array([0, 2999], np.int32)), np.ones((2, 4)))
    with pytest.raises(IndexError, match="index 3000 at flat position 1"):
        net(np.array([0, 3000], np.int32))
    data = path.read_bytes()
    at = data.index(b"3000:0")
    with pytest.raises(OSError, match="corrupt.*aneforge.int_inputs"):
        _load(tmp_path, _fix_crc(data[:at] + b"3000:7" + data[at + 6:]))
