"""Copy kernels (permute, slice) against NumPy on the layouts their fast paths take: rows of
2 or 4 values (a max-pool gradient's windows), blocks of three trailing dims, strided slices
of short rows. Values are copied, so results must be equal, not close."""
import itertools

import numpy as np
import pytest

import aneforge as af


def run_fp32(build, x):
    xi = af.input(x.shape, name="x")
    return np.asarray(af.compile(build(xi * 1.0), precision="fp32")(x=x))


# (64, 14, 2, 14, 2): 2x2 windows; (5, 3, 7, 2, 3): rows of 3 from a stride; (3, 40, 3, 4):
# rows of 4; (2, 9, 2, 20, 2): blocks of 40 values; (300, 70), (3, 33, 18, 2) and
# (2, 4, 37, 20): transposes in 16 x 16 tiles, with partial tiles and planes.
@pytest.mark.parametrize("shape", [(64, 14, 2, 14, 2), (5, 3, 7, 2, 3), (3, 40, 3, 4), (2, 9, 2, 20, 2),
                                   (300, 70), (3, 33, 18, 2), (2, 4, 37, 20)])
def test_every_permutation_equals_numpy(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    for dims in itertools.permutations(range(len(shape))):
        got = run_fp32(lambda t: af.permute(t, list(dims)), x)
        np.testing.assert_array_equal(got, x.transpose(dims), err_msg=str(dims))


@pytest.mark.parametrize("shape", [(16, 64, 16, 16), (1, 64, 30, 30), (3, 5, 7), (4, 1, 9, 2), (2, 3, 4, 5, 6)])
def test_strided_slices_equal_numpy(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    for _ in range(30):
        sl = []
        for d in shape:
            b = int(rng.integers(0, d))
            sl.append(slice(b, int(rng.integers(b + 1, d + 1)), int(rng.integers(1, 4))))
        got = run_fp32(lambda t: t[tuple(sl)], x)
        np.testing.assert_array_equal(got, x[tuple(sl)], err_msg=str(sl))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
@pytest.mark.parametrize("shape, pads", [((16, 64, 14, 14), (1, 1, 1, 1)), ((2, 3, 5, 7), (0, 2, 3, 0)),
                                         ((2, 3, 5, 7), (4, 1, 0, 2)), ((4, 9), (3, 2)), ((4, 60000), (5, 6))])
def test_pad_equals_torch(shape, pads, mode, rng):
    import torch
    x = rng.standard_normal(shape).astype(np.float32)
    want = torch.nn.functional.pad(torch.from_numpy(x), pads, mode=mode, value=2.5 if mode == "constant" else None)
    got = run_fp32(lambda t: af.pad(t, pads, mode=mode, value=2.5) if mode == "constant" else af.pad(t, pads, mode=mode), x)
    np.testing.assert_array_equal(got, want.numpy().reshape(got.shape))


@pytest.mark.parametrize("shapes, axis", [([(1, 16, 12544)] * 9, 1), ([(1, 64, 128, 128), (1, 32, 128, 128)], 1),
                                          ([(3, 4, 30000), (3, 1, 30000)], 1), ([(2, 3), (5, 3)], 0)])
def test_concat_of_long_rows_equals_numpy(shapes, axis, rng):
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ins = [af.input(s, name=f"x{i}") for i, s in enumerate(shapes)]
    got = np.asarray(af.compile(af.concat([t * 1.0 for t in ins], axis), precision="fp32")(*xs))
    np.testing.assert_array_equal(got, np.concatenate(xs, axis))


@pytest.mark.parametrize("cs, xs, ys", [((2, 12, 5, 1), (2, 12, 5, 7), (2, 12, 5, 7)), ((1,), (128, 512), (128, 512)),
                                        ((4, 1), (1,), (4, 6)), ((2, 3, 1), (1, 3, 9), ()), ((3, 4), (3, 4), (3, 4)),
                                        ((2, 1, 5), (2, 4, 5), (1, 4, 1))])
def test_where_selects_as_numpy(cs, xs, ys, rng):
    c = rng.random(cs) < 0.5
    x = rng.standard_normal(xs).astype(np.float32)
    y = rng.standard_normal(ys).astype(np.float32)
    x.reshape(-1)[0] = np.nan
    ci, xi, yi = af.input(cs, dtype="bool", name="c"), af.input(xs, name="x"), af.input(ys, name="y")
    got = np.asarray(af.compile(af.where(ci, xi * 1.0, yi * 1.0), precision="fp32")(c, x, y))
    np.testing.assert_array_equal(got, np.where(c, x, y))
