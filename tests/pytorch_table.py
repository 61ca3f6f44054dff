"""Common torch / torch.nn.functional calls written with torch's arguments, and the same call
in af spelling. tests/test_pytorch_table.py runs both and compares; docs/pytorch.md is
generated from this table (python scripts/gen_docs.py).

A row is (torch call, af call or None, note). None means the af call is the torch call with
``torch.nn.functional.``, ``F.`` and ``torch.`` replaced by ``af.``: the common case, where a
PyTorch user's guess is right. Names refer to POOL: graph inputs (fed at call time) and
weights (NumPy arrays on the af side, torch tensors on the torch side).
"""
from __future__ import annotations

import re

import numpy as np

# name -> (shape, kind, how to fill): kind "input" becomes af.input, "weight" a NumPy constant.
POOL = {
    "x": ((2, 3, 8, 8), "input", "normal"),
    "y": ((2, 3, 8, 8), "input", "normal"),
    "m": ((4, 16), "input", "normal"),
    "s": ((2, 5, 6), "input", "normal"),
    "x1": ((2, 3, 10), "input", "normal"),
    "p": ((1, 8, 4, 4), "input", "normal"),
    "q": ((1, 2, 6, 8), "input", "normal"),
    "k": ((1, 2, 6, 8), "input", "normal"),
    "v": ((1, 2, 6, 8), "input", "normal"),
    "w": ((4, 3, 3, 3), "weight", "normal"),
    "wd": ((3, 1, 3, 3), "weight", "normal"),
    "w1": ((4, 3, 3), "weight", "normal"),
    "wt": ((3, 4, 3, 3), "weight", "normal"),
    "b": ((4,), "weight", "normal"),
    "W": ((10, 16), "weight", "normal"),
    "B": ((10,), "weight", "normal"),
    "g": ((16,), "weight", "positive"),
    "h": ((16,), "weight", "normal"),
    "c": ((3,), "weight", "positive"),
    "d": ((3,), "weight", "normal"),
    "rv": ((3,), "weight", "positive"),
    "ids": ((2, 6), "index", 20),
    "E": ((20, 8), "weight", "normal"),
    "idx": ((4,), "index", 3),
    "gidx": ((2, 3, 5, 8), "index", 8),
}

ROWS = [
    # activations
    ("F.relu(x)", None, ""),
    ("F.relu6(x * 4)", None, ""),
    ("F.leaky_relu(x, negative_slope=0.2)", None, ""),
    ("F.elu(x, alpha=0.5)", None, ""),
    ("F.gelu(x)", None, ""),
    ("F.gelu(x, approximate='tanh')", None, ""),
    ("F.silu(x)", None, ""),
    ("torch.sigmoid(x)", None, ""),
    ("torch.tanh(x)", None, ""),
    ("F.hardsigmoid(x * 4)", None, ""),
    ("F.hardswish(x * 4)", None, ""),
    ("F.softplus(x, beta=2.0, threshold=1.0)", None, ""),
    ("F.softsign(x)", None, ""),
    ("F.threshold(x, 0.1, 20.0)", None, ""),
    ("F.prelu(x, c)", None, ""),
    ("torch.clamp(x, min=-0.5, max=0.5)", None, ""),
    ("x.clamp(min=0.0)", None, ""),
    ("F.softmax(x, dim=1)", None, ""),
    ("F.log_softmax(x, dim=-1)", None, ""),
    ("x.softmax(dim=-1)", None, ""),
    # elementwise math
    ("torch.exp(x)", None, ""),
    ("torch.log(torch.abs(x) + 1)", None, ""),
    ("torch.sqrt(torch.abs(x))", None, ""),
    ("torch.rsqrt(x.abs() + 1)", None, ""),
    ("torch.sin(x)", None, ""),
    ("torch.cos(x)", None, ""),
    ("torch.atan(x)", None, ""),
    ("torch.erf(x)", None, ""),
    ("torch.floor(x * 4)", None, ""),
    ("torch.ceil(x * 4)", None, ""),
    ("torch.round(x * 4)", None, "ties to even, as torch"),
    ("torch.sign(x)", None, ""),
    ("torch.neg(x)", None, ""),
    ("torch.reciprocal(x.abs() + 1)", None, ""),
    ("torch.square(x)", None, ""),
    ("torch.exp2(x)", None, ""),
    # binary, comparisons, operators
    ("torch.add(x, y)", None, ""),
    ("torch.sub(x, y)", None, ""),
    ("torch.mul(x, y)", None, ""),
    ("torch.div(x, y.abs() + 1)", None, ""),
    ("torch.maximum(x, y)", None, ""),
    ("torch.minimum(x, y)", None, ""),
    ("torch.pow(x.abs() + 0.5, 1.5)", None, ""),
    ("x ** 2 - 3 * y / 2", None, ""),
    ("m @ W.T", None, "W is a NumPy array on the af side"),
    ("torch.matmul(s, s.transpose(1, 2))", None, ""),
    ("s @ s.mT", None, ""),
    ("torch.gt(x, y)", None, ""),
    ("torch.le(x, 0.0)", None, ""),
    ("torch.eq(torch.round(x), torch.round(y))", None, ""),
    ("(x > y) != (x < 0.5)", None, ""),
    ("torch.where(x > 0, x, y)", None, ""),
    ("torch.where(x > 0, x, 0.0)", None, "Python scalars take the tensor's dtype"),
    ("torch.where(x > 0, 1.0, -1.0) * y", None, ""),
    ("x.masked_fill(x > 0.5, -1.0)", None, ""),
    ("torch.masked_fill(x, y < 0, 2.0)", None, ""),
    ("torch.logical_not(x > 0)", None, ""),
    # reductions
    ("torch.sum(x, dim=(2, 3))", None, ""),
    ("x.mean(dim=1, keepdim=True)", None, ""),
    ("torch.amax(x, dim=-1)", None, ""),
    ("torch.amin(x, dim=(1, 2), keepdim=True)", None, ""),
    ("torch.logsumexp(x, dim=1)", None, ""),
    ("torch.argmax(x, dim=1)", None, "indices are int32"),
    ("torch.argmin(x, dim=-1, keepdim=True)", None, "indices are int32"),
    ("x.sum()", None, ""),
    ("torch.mean(x)", None, ""),
    ("torch.max(x, dim=1).values", "af.max(x, dim=1)", "af.max(x, dim) is torch.amax: values only"),
    # ranking
    ("torch.topk(m, 3, dim=-1)", None, "values and indices"),
    ("torch.topk(m, 2, largest=False)", None, ""),
    ("torch.sort(m, dim=1, descending=True)", None, "values and indices"),
    # shape
    ("torch.cat([x, y], dim=1)", None, ""),
    ("torch.stack([m, m * 2], dim=0)", None, ""),
    ("torch.split(m, 4, dim=1)", None, ""),
    ("torch.split(m, [6, 10], dim=1)", None, ""),
    ("x.reshape(2, -1)", None, ""),
    ("x.view(2, 3, 64)", None, ""),
    ("x.permute(0, 2, 3, 1)", None, ""),
    ("torch.permute(x, (1, 0, 2, 3))", None, ""),
    ("torch.transpose(x, 1, 3)", None, ""),
    ("x.flatten(1)", None, ""),
    ("torch.flatten(x, start_dim=1, end_dim=2)", None, ""),
    ("x.unsqueeze(0)", None, ""),
    ("torch.squeeze(x[:, :1], dim=1)", None, ""),
    ("x[:, 1:, ::2, -1]", None, ""),
    ("x[..., None, 2]", None, ""),
    ("torch.tile(m, (2, 1))", None, ""),
    ("x[:, :1].expand(2, 3, 8, 8)", None, "the values are copied (the engine has no strides)"),
    ("m[None].expand(3, -1, -1)", None, ""),
    ("torch.chunk(m, 3, dim=1)", None, "pieces of ceil(16 / 3): 6, 6, 4"),
    ("m.chunk(2)", None, ""),
    ("torch.tril(m)", None, ""),
    ("torch.triu(s, diagonal=1)", None, ""),
    ("x + torch.ones_like(x)", None, ""),
    ("x * torch.full((8,), 0.5)", None, ""),
    ("m + torch.zeros(4, 16)", None, ""),
    ("m * torch.arange(16.0)", None, ""),
    ("x.to(torch.float32) * 2", "x.to('fp32') * 2", "af dtypes are strings; torch's and NumPy's are accepted too"),
    ("m.T", None, ""),
    ("F.pad(x, (1, 2, 0, 1))", None, ""),
    ("F.pad(x, (1, 1, 1, 1), mode='reflect')", None, ""),
    ("F.pad(x, (2, 2, 1, 0), mode='replicate')", None, ""),
    ("F.pad(x, (1, 1), value=0.5)", None, ""),
    ("F.pixel_shuffle(p, 2)", None, ""),
    ("F.pixel_unshuffle(x, 2)", None, ""),
    # linear algebra
    ("F.conv2d(x, w, b, stride=1, padding=1)", None, "OIHW weights"),
    ("F.conv2d(x, w, stride=2, padding=(1, 0))", None, ""),
    ("F.conv2d(x, wd, groups=3, padding=2, dilation=2)", None, ""),
    ("F.conv1d(x1, w1, padding=1)", None, ""),
    ("F.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1)", None, ""),
    ("F.linear(m, W, B)", None, ""),
    ("torch.einsum('bij,bkj->bik', s, s)", None, ""),
    # indexing (int32 indices: the engine has no 64-bit integers)
    ("F.embedding(ids, E)", None, "a one-hot matmul inside the program"),
    ("torch.index_select(x, 1, idx)", None, ""),
    ("torch.gather(x, 2, gidx)", None, ""),
    ("torch.cumsum(x, dim=-1)", None, ""),
    ("F.one_hot(ids, num_classes=20)", None, "num_classes is required (static shapes)"),
    # pooling
    ("F.max_pool2d(x, 2)", None, ""),
    ("F.max_pool2d(x, 3, stride=2, padding=1)", None, ""),
    ("F.avg_pool2d(x, 2, stride=2)", None, ""),
    ("F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)", None, ""),
    ("F.adaptive_avg_pool2d(x, 1)", None, ""),
    ("F.adaptive_avg_pool2d(x, (3, 5))", None, "windows as PyTorch's (overlapping where sizes do not divide)"),
    # normalization
    ("F.layer_norm(m, (16,), g, h)", None, ""),
    ("F.layer_norm(m, (16,), eps=1e-3)", None, ""),
    ("F.group_norm(x, 3, c, d)", None, ""),
    ("F.batch_norm(x, d, rv, c, d)", None, "inference (training=False)"),
    ("F.instance_norm(x, weight=c, bias=d)", None, "pass weight and bias by keyword"),
    ("F.rms_norm(m, (16,), g)", None, ""),
    ("F.normalize(m, dim=1)", "af.l2_norm(m, dim=1)", "l2_norm's dim defaults to -1"),
    ("F.local_response_norm(x, 2)", None, ""),
    # attention
    ("F.scaled_dot_product_attention(q, k, v)", None, ""),
    ("F.scaled_dot_product_attention(q, k, v, is_causal=True)", None, ""),
    ("F.scaled_dot_product_attention(q, k, v, scale=0.5)", None, ""),
    # resizing
    ("F.interpolate(x, scale_factor=2, mode='nearest')", None, ""),
    ("F.interpolate(x, size=(4, 6), mode='bilinear')", None, ""),
    ("F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=True)", None, ""),
    ("F.interpolate(x, size=(16, 12), mode='nearest')", None, ""),
]


def af_call(row) -> str:
    torch_call, af, _ = row
    if af is not None:
        return af
    return re.sub(r"\b(torch\.nn\.functional|F|torch)\.", "af.", torch_call)


def names_in(expr: str) -> list:
    return [n for n in POOL if re.search(rf"(?<![\w.']){n}\b", expr)]


def make_arrays(rng) -> dict:
    out = {}
    for name, (shape, kind, fill) in POOL.items():
        if kind == "index":  # int32 indices below `fill`, fed as graph inputs
            out[name] = rng.integers(0, fill, shape).astype(np.int32)
            continue
        a = rng.standard_normal(shape).astype(np.float32)
        out[name] = np.abs(a) + 0.5 if fill == "positive" else a
    return out


def markdown() -> str:
    head = ("# From PyTorch\n\n"
            "Generated from `tests/pytorch_table.py` by `python scripts/gen_docs.py`; every row is run by\n"
            "`tests/test_pytorch_table.py`, which compares ANEForge's result (the `sim` backend,\n"
            "`precision=\"fp32\"`) with PyTorch's on the same inputs.\n\n"
            "Write the call as in PyTorch with `torch.`, `F.` (`torch.nn.functional`) replaced by\n"
            "`af.`: ops take PyTorch's names and argument names (`dim`, `keepdim`, `padding`), conv\n"
            "weights are OIHW, and a PyTorch name for an op stored under another (`cat`, `clamp`,\n"
            "`conv2d`, `amax`, `scaled_dot_product_attention`) is an alias of it. The seed's\n"
            "spellings (`pad=`, `axis=`, `keepdims=`) stay accepted. Graph inputs are `af.input`\n"
            "tensors; weights can be NumPy arrays. Rows whose af call differs are marked.\n\n"
            f"{len(ROWS)} calls.\n\n| PyTorch | ANEForge | note |\n|---|---|---|\n")
    lines = []
    for row in ROWS:
        torch_call, af, note = row
        mark = "**" if af is not None else ""
        lines.append(f"| `{torch_call}` | {mark}`{af_call(row)}`{mark} | {note} |\n")
    tail = """
## What stays different, and why

- `af.max(x, dim)` / `af.min(x, dim)` return the values only (they are `torch.amax` /
  `torch.amin`): the engine's reductions return values; use `af.argmax` for the indices.
- Indices (`argmax`, `topk`, `sort`) are int32, not int64: the engine has no 64-bit integers.
- `af.interpolate` takes modes "nearest" and "bilinear" with a size or a whole scale factor;
  it is one engine op each (`af.upsample_nearest`, `af.upsample_bilinear`, `af.resize_nearest`,
  `af.resize_bilinear`, which can be called directly).
- `F.normalize` is `af.l2_norm`, whose `dim` defaults to -1 (torch's to 1).
- `Tensor.expand` copies (the engine has no strides); creation functions (`zeros`, `ones`,
  `full`, `arange`, `*_like`) make constants of the program.
- `F.instance_norm` and `F.batch_norm` take no `training`/`momentum`: the programs are for
  inference (running statistics are constants); give `weight`/`bias` by keyword to
  `instance_norm`, whose positional order differs from torch's.
- `.T` is refused above 2 dimensions (torch deprecates it there); use `.mT` or `.permute`.
- Shapes are static: each batch size is its own program (`af.input((None, ...))` compiles one
  per batch size on first use; see docs/api.md).
- Tensors are lazy graph nodes: nothing is computed until `af.compile(y)(inputs)`; a Tensor
  has no values, no truth value and no `.numpy()`.
"""
    return head + "".join(lines) + tail
