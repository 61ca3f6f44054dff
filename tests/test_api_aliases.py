"""PyTorch's argument names reach the same parameters as the seed's (padding/pad, dim/axis,
keepdim/keepdims), results compared with torch; an unknown keyword suggests the close one."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aneforge as af


def _run(y, *arrays):
    return af.compile(y, precision="fp32")(*arrays)


def test_torch_names_give_torch_results(rng):
    a = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x = af.input(a.shape, name="x")
    t = torch.from_numpy(a)
    cases = [
        (af.conv(x, w, padding=1), F.conv2d(t, torch.from_numpy(w), padding=1)),
        (af.max_pool(x, 3, 2, padding=1), F.max_pool2d(t, 3, 2, padding=1)),
        (af.softmax(x, dim=1), torch.softmax(t, dim=1)),
        (af.sum(x, dim=(2, 3), keepdim=True), t.sum(dim=(2, 3), keepdim=True)),
        (x.mean(dim=-1, keepdim=True), t.mean(dim=-1, keepdim=True)),
    ]
    for got, want in cases:
        np.testing.assert_allclose(_run(got, a), want.numpy(), rtol=1e-5, atol=1e-5)


def test_seed_names_still_work_and_both_at_once_is_an_error(rng):
    x = af.input((1, 3, 8, 8), name="x")
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    assert af.conv(x, w, pad=1).shape == af.conv(x, w, padding=1).shape == (1, 4, 8, 8)
    assert af.mean(x, axis=1, keepdims=True).shape == (1, 1, 8, 8)
    with pytest.raises(TypeError, match="twice"):
        af.conv(x, w, pad=1, padding=1)


def test_unknown_keyword_suggests_the_close_one():
    x = af.input((1, 3, 8, 8), name="x")
    with pytest.raises(TypeError, match="did you mean 'padding'"):
        af.conv(x, np.ones((4, 3, 3, 3), np.float32), paddin=1)
    with pytest.raises(TypeError, match="did you mean 'dim'"):
        af.softmax(x, dimm=1)
