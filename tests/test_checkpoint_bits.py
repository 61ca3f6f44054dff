"""Checkpoint tensors read straight into the fp16 bits a program holds (models/_files.py):
each file dtype, in chunks that split a tensor and rows longer than a chunk, plain and
transposed (GPT-2's Conv1D weights), against torch's rounding with fp16 subnormals flushed."""
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from aneforge.models import _files

TINY = 2.0 ** -14  # fp16's smallest normal: below it a program's constants flush to signed zero


def _expected_bits(t: torch.Tensor) -> np.ndarray:
    h = t.float().to(torch.float16)  # one rounding, nearest even (bfloat16 widens exactly)
    h = torch.where(h.abs() < TINY, torch.copysign(torch.zeros_like(h), h), h)
    return h.numpy().view(np.uint16)


def _values(shape, seed, overflow=False):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(shape, generator=g) * torch.logspace(-7, 2, shape[-1]).reshape(1, -1)  # subnormals to 100
    if overflow:
        v[shape[0] // 2, shape[1] // 3] = 1e6  # past fp16's 65504
    return v


@pytest.mark.parametrize("chunk", [1 << 20, 1000, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_bits_equal_torchs_rounding_plain_and_transposed(tmp_path, monkeypatch, dtype, chunk):
    monkeypatch.setattr(_files.SafetensorsTensors, "_CHUNK", chunk)  # 64: rows of 300 exceed a chunk
    tensors = {"wide": _values((37, 300), 0).to(dtype), "tall": _values((300, 40), 1).to(dtype),
               "vec": _values((1, 999), 2).reshape(999).to(dtype)}
    save_file(tensors, tmp_path / "m.safetensors")
    st = _files.SafetensorsTensors.open({str(tmp_path / "m.safetensors"): None})
    for name, t in tensors.items():
        bits, finite = st.fp16_bits(name)
        np.testing.assert_array_equal(bits, _expected_bits(t), err_msg=name)
        assert finite is (True if dtype == torch.bfloat16 else None)
        if t.ndim == 2:
            bits_t, _ = st.fp16_bits(name, transpose=True)
            assert bits_t.flags.c_contiguous and bits_t.shape == t.shape[::-1]
            np.testing.assert_array_equal(bits_t, _expected_bits(t).T, err_msg=name)
    with pytest.raises(ValueError, match="only a matrix is transposed"):
        st.fp16_bits("vec", transpose=True)


def test_a_bfloat16_value_past_65504_is_reported_not_finite(tmp_path):
    t = _values((16, 24), 3, overflow=True).to(torch.bfloat16)
    save_file({"w": t}, tmp_path / "m.safetensors")
    st = _files.SafetensorsTensors.open({str(tmp_path / "m.safetensors"): None})
    for transpose in (False, True):
        bits, finite = st.fp16_bits("w", transpose=transpose)
        assert finite is False
        assert (bits == 0x7C00).sum() == 1  # the one value became +inf


def test_a_weight_marked_finite_still_overflows_in_its_layer(tmp_path):
    """The sim skips its inf/NaN scan for weights the load found finite; a layer whose result
    overflows still raises, naming the layer, as with a scanned weight."""
    import aneforge as af
    from aneforge import _core
    from aneforge.graph import functional as F
    from aneforge.graph.tensor import Tensor
    w = np.full((4, 8), 0x5BFF, np.uint16)  # 255.875: finite, but 8 * 255.875 * 40 overflows fp16
    x = af.input((1, 8), name="x")
    y = F.linear(x, Tensor(_core.constant_fp16_bits(w, all_finite=True)))
    net = af.compile(y, check_finite=True)
    with pytest.raises(FloatingPointError, match="layer 'linear_.*from finite inputs"):
        net(x=np.full((1, 8), 40.0, np.float32))
