"""Every row of tests/pytorch_table.py: the torch call and its af spelling give the same result
(af in precision="fp32" on the simulator, so the comparison is about meaning, not fp16)."""
import numpy as np
import pytest

import aneforge as af
from aneforge.testing import assert_fp32_close

torch = pytest.importorskip("torch")
F = torch.nn.functional

from pytorch_table import POOL, ROWS, af_call, make_arrays, markdown, names_in  # noqa: E402


def _flat(result):
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in _flat(r)]
    return [result]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_torch_call_and_af_call_agree(row):
    torch_call, _, _ = row
    call = af_call(row)
    arrays = make_arrays(np.random.default_rng(7))
    used = sorted(set(names_in(torch_call)) | set(names_in(call)))
    t_env = {"torch": torch, "F": F, **{n: torch.from_numpy(arrays[n]) for n in used}}
    for n in used:
        if POOL[n][1] == "index":
            t_env[n] = t_env[n].long()  # torch indexes with int64
    expected = _flat(eval(torch_call, t_env))  # noqa: S307 - the table is ours
    a_env = {"af": af}
    feeds = {}
    for n in used:
        shape, kind, _ = POOL[n]
        if kind in ("input", "index"):
            a_env[n] = af.input(shape, name=n, dtype="int32" if kind == "index" else "fp16")
            feeds[n] = arrays[n]
        else:
            a_env[n] = arrays[n]
    got_t = _flat(eval(call, a_env))  # noqa: S307
    assert len(got_t) == len(expected), f"{call} gives {len(got_t)} outputs, torch {len(expected)}"
    outs = af.compile(list(got_t), precision="fp32")(**feeds)
    for i, (a, e) in enumerate(zip(outs, expected)):
        e = e.detach().numpy()
        assert a.shape == e.shape, f"{call} output {i}: shape {a.shape}, torch {e.shape}"
        if e.dtype == np.bool_ or np.issubdtype(e.dtype, np.integer):
            np.testing.assert_array_equal(a.astype(np.int64), e.astype(np.int64), err_msg=call)
        else:
            assert_fp32_close(a, e, rtol=2e-4, atol=2e-5, what=f"{call} output {i}")


def test_table_is_large_and_docs_are_current():
    import pathlib
    assert len(ROWS) >= 60
    assert len({r[0] for r in ROWS}) == len(ROWS)
    doc = pathlib.Path(__file__).resolve().parent.parent / "docs" / "pytorch.md"
    assert doc.read_text() == markdown(), "docs/pytorch.md is stale: run python scripts/gen_docs.py"


def test_most_calls_are_the_torch_call_with_af_for_torch():
    same = sum(1 for r in ROWS if r[1] is None)
    assert same >= 0.9 * len(ROWS)


def test_the_readme_states_the_table_size():
    import pathlib
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"lists {len(ROWS)} such calls" in readme and f"({len(ROWS)} calls checked against torch)" in readme
