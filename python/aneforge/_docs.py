"""Generates docs/ops.md from the op table (kept current by tests/test_docs.py)."""
from __future__ import annotations

from .graph.ops import TABLE

HEADER = """# Op table

Generated from the C++ op table by `python scripts/gen_docs.py`; do not edit by hand
(`tests/test_docs.py` fails when this file and the table disagree).

- **kind**: `native` runs as one engine op; `bridge` is lowered by the compiler into native
  ops inside the same program; `composite` is API sugar that builds other ops.
- **targets**: the first engine family that runs the op (`h13+` = every target that
  compiles MIL); per-target limits are checked by the compiler.
- **grad**: `yes`: the op has a gradient (training), checked against PyTorch autograd and
  finite differences (`tests/test_gradients.py`); `none`: integer-valued or constant almost
  everywhere (comparisons, `floor`, `argmax`), so no gradient flows through it, as in PyTorch;
  `built ops`: a composite, differentiated through the ops it builds; `not yet`: no gradient.
- **signature**: the Python function `af.<op>`, with PyTorch's parameter names; the table's
  own names (`axis`, `keepdims`, conv's `pad`; what C++ `af::call` takes) stay accepted.
  **Also** lists other names of the op (PyTorch's, such as `cat` for `concat`).

"""


def _signature(spec) -> str:
    parts = []
    for name, kind, dflt in spec["py_params"]:
        parts.append(name if dflt == "" else f"*{name}" if dflt == "*" else f"{name}={dflt}")
    return f"{spec['name']}({', '.join(parts)})"


def _aliases(spec) -> str:
    names = ", ".join(f"`{a}`" for a in spec["aliases"])
    return f" Also: {names}." if names else ""


def ops_markdown() -> str:
    cats: dict = {}
    for s in TABLE:
        cats.setdefault(s["category"], []).append(s)
    native = sum(1 for s in TABLE if not s["bridge"] and not s["composite"])
    bridge = sum(1 for s in TABLE if s["bridge"])
    comp = sum(1 for s in TABLE if s["composite"])
    out = [HEADER, f"{native} native ops, {bridge} bridge ops, {comp} composite ops.\n"]
    for cat in sorted(cats):
        out.append(f"\n## {cat}\n\n| op | kind | targets | grad | MIL op | signature | description |\n"
                   "|---|---|---|---|---|---|---|\n")
        for s in sorted(cats[cat], key=lambda s: s["name"]):
            kind = "bridge" if s["bridge"] else "composite" if s["composite"] else "native"
            out.append(f"| `{s['name']}` | {kind} | {s['min_family']}+ | {s['gradient']} "
                       f"| `{s['mil_op']}` | `{_signature(s)}` | {s['doc']}{_aliases(s)} |\n")
    return "".join(out)


TARGETS_HEADER = """# Targets

Generated from the target table (`cpp/src/targets/targets.cpp`) by `python scripts/gen_docs.py`.
The 28 compiler `TargetArchitecture` names, grouped into the engine's capability families
(the ANE compiler's per-architecture HAL tables as listed by sbryngelson/ANEForge
`aneforge/_targets.py` and the ane-guide, ane-guide.readthedocs.io s34). `af.compile(y, target=...)` takes a target or a
chip name; the default is `h16g` (M4). The whole program is checked before anything is
emitted: an unknown name lists the valid ones, and an op or shape the target cannot run
raises `af.TargetError` naming the op, the shape, the target and the limit. Ops native only
on newer families are decomposed where a decomposition exists (`sin`/`cos` below h15 become
a range reduction and a polynomial); otherwise the compile fails (`affine` needs h14).

Source tags: [A] Apple or two independent sources, [R] one reverse-engineering source,
[I] inferred, [?] disputed. The suffix letters' meaning is disputed; chips are mapped as the
reference reports them.

"""

COST_HEADER = """
## Cost model

`net.estimate(target)` and `net.summary()`: dispatch overhead + the sum over fused layers of
(layer overhead + max(flops / peak, bytes / bandwidth)), with 3x3 stride-1 convs at 1.45x the
MAC peak (hardware Winograd) and matmul at 0.5x (GEMM roof / conv roof). Bytes are fp16
activations with 64-byte rows plus the weights as stored. Against published measurements
(regenerated with the docs; `tests/test_docs.py` keeps this table current):

"""

COST_FOOTER = """
Reading the errors: ResNet-18 is over-estimated because at batch 1 the model streams all 23 MB
of weights per call at the engine's bandwidth, while back-to-back calls likely keep them in the
system cache [?]; the M1 Max conv stack is under-estimated because its measured 9.6 TFLOP/s
is below 11 TFLOP/s x 1.45. The GEMM rows are under-estimated because the compiler turns
`x @ W` with a constant W into a linear layer emitted as a 1x1 conv (the form maderix measured
~3x faster than matmul on M4), which the model costs at the conv rate, while the published
figures were measured with matmul; only a Mac can tell which is right. ANEForge reports
~12% mean error at best for its own analytic model and 4-5x misses on bandwidth-bound M1 shapes.
"""


def targets_markdown() -> str:
    from . import _core
    from .nets import cost_model_markdown
    out = [TARGETS_HEADER, "| target | family | MIL | chips | W/H max | C max | kernel W | streamed weights | fp16 TF/s | GB/s | dispatch us | fp16 ties |\n",
           "|---|---|---|---|---|---|---|---|---|---|---|---|\n"]
    for t in _core.targets():
        out.append(f"| `{t['name']}` | {t['family']} | {'yes' if t['mil'] else 'no'} | {', '.join(t['chips']) or '-'} "
                   f"| {t['spatial_max']} | {t['channel_max']} | {t['kernel_width_max']} | {', '.join(t['streams']) or '-'} "
                   f"| {t['fp16_tflops']:g} | {t['bandwidth_gbs']:g} | {t['dispatch_us']:g} | {t['rounding']} |\n")
    out.append("\nWhich chip is which target: a mapping is *measured* where someone read the target off "
               "that chip (the compiled bundle's name or its dispatch), *inferred* where it follows from a rule. "
               "Dispatch does not depend on it (the engine compiles for the chip it runs on); the table gates "
               "programs and cross-compiles.\n\n")
    for t in _core.targets():
        if t["chips_evidence"]:
            out.append(f"- `{t['name']}` ({', '.join(t['chips'])}): {t['chips_evidence']}\n")
    out.append("\nSources per row:\n\n")
    for t in _core.targets():
        out.append(f"- `{t['name']}`: {t['sources']}\n")
    out.append(COST_HEADER)
    out.append(cost_model_markdown())
    out.append(COST_FOOTER)
    return "".join(out)


def core_aten_ops() -> list:
    """Every overload of PyTorch's core ATen opset (the ops tagged ``core``: what
    torch.export's run_decompositions leaves), "name.overload", from the dispatcher's full
    list (``dir(torch.ops.aten)`` holds only the ops touched so far)."""
    import torch
    out = set()
    for full in torch._C._dispatch_get_all_op_names():
        if not full.startswith("aten::"):
            continue
        name, _, overload = full[len("aten::"):].partition(".")
        try:
            op = getattr(getattr(torch.ops.aten, name), overload or "default")
        except (AttributeError, RuntimeError):
            continue
        if torch.Tag.core in op.tags:
            out.add(f"{name}.{overload or 'default'}")
    return sorted(out)


MEASURED = ("<!-- measured: benchmarks/import_zoo.py --write-docs -->\n", "<!-- /measured -->\n")


def measured_block(text: str) -> str:
    """The benchmark's table kept in docs/import.md between the MEASURED markers."""
    start, end = MEASURED
    if start not in text or end not in text:
        return ""
    return text[text.index(start) + len(start):text.index(end)]


def replace_measured(text: str, block: str) -> str:
    start, end = MEASURED
    return text[:text.index(start) + len(start)] + block + text[text.index(end):]


def import_markdown(measured: str = "") -> str:
    """docs/import.md: af.from_torch and the ATen table, every core ATen op supported or why not;
    af.from_onnx and the ONNX table; ``measured``, the import zoo benchmark's table."""
    import torch
    from .importers import aten_math  # noqa: F401 - registers its entries
    from .importers.aten import ATEN, note
    core = core_aten_ops()
    extra = sorted(n for n in ATEN if n not in core and n != "getitem")
    rows = [f"| `aten.{n}` | {note(n)} |" for n in core]
    done = sum(n in ATEN for n in core)
    head = IMPORT_HEAD.format(torch=torch.__version__.split("+")[0], done=done, total=len(core))
    zoo = "## The import zoo\n\n" + MEASURED[0] + measured + MEASURED[1] + "\n"
    head = head.replace("## The ATen table\n", zoo + "## The ATen table\n")
    return head + "\n".join(rows) + \
        "\n\nAlso mapped (non-core overloads exports can keep): " + ", ".join(f"`aten.{n}`" for n in extra) + ".\n" + \
        onnx_markdown() + mil_markdown()


def mil_markdown() -> str:
    """docs/import.md's ML Program part: every MIL op the mil reader runs, supported or why not."""
    from .importers.mil_ops import MIL, note
    from .mil.registry import OPS
    ops = sorted(OPS)
    folded = "folded at import when its inputs are constants; not a program op"
    rows = [f"| `{n}` | {folded if n.startswith('constexpr_') or n in _MIL_FOLDED else note(n)} |" for n in ops]
    done = sum(n in MIL for n in ops)
    return MIL_HEAD.format(done=done, total=len(ops)) + "\n".join(rows) + "\n"


_MIL_FOLDED = {"fill", "fill_like", "range_1d", "shape"}

MIL_HEAD = """
# Importing Core ML packages: af.from_mlpackage

```python
net = af.from_mlpackage("Model.mlpackage")                 # a compiled Net (compile options pass through)
net = af.from_mlpackage("Model.mlpackage", compress="int4", target="M4")
traced = af.trace_mlpackage("Model.mlpackage")            # the graph: .inputs, .outputs (dicts by name)
```

`af.from_mlpackage` reads an ML Program (an `.mlpackage` made by af or by coremltools, or a
`model.mlmodel` with its `weights/` beside it) with the mil backend's reader, which checks every
path and size in it, and maps each op of the main function by its entry in the MIL table
(`aneforge/importers/mil_ops.py`), whose semantics are the mil backend's interpreter's. Constants,
compressed ones included (`constexpr_*`), are resolved to their values; ops computed from
constants alone are run by the interpreter at import. Weight layers take their const's name.
Core ML users so get af's targets, compression, sim and engine dispatch for their models;
`af.load_mlpackage` runs a package as it is on the mil backend.

Integer inputs past 2048 enter af's own programs as two fp16 planes (high and low parts); a
package exported from such a graph has those planes as its inputs.

The tests import every op case of the op table exported by af (both constant and runtime
parameters) and compare with the mil backend running the same file (within 2 fp16 ulps;
measured at most 1), and programs made by coremltools' PyTorch converter (MobileNetV2,
EfficientNet-B0, a UNet, an attention block; FLOAT16 and FLOAT32) against PyTorch.

## The MIL table

{done} of the {total} MIL ops the mil backend runs are mapped.

| op | supported |
|---|---|
"""


def onnx_operators() -> list:
    """The operators of ONNX's default domain at opsets 13-21: (name, deprecated)."""
    import onnx
    out = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.domain in ("", "ai.onnx") and schema.since_version <= 21:
            best = out.get(schema.name)
            if best is None or schema.since_version > best.since_version:
                out[schema.name] = schema
    return sorted((n, s.deprecated) for n, s in out.items())


def onnx_markdown() -> str:
    """docs/import.md's ONNX part: every operator of the default domain, supported or why not."""
    import onnx
    from .importers.onnx_ops import ONNX, note
    ops = onnx_operators()
    rows = [f"| `{n}` | {'deprecated before opset 13' if dep and n not in ONNX else note(n)} |" for n, dep in ops]
    done = sum(n in ONNX for n, _ in ops)
    return ONNX_HEAD.format(onnx=onnx.__version__, done=done, total=len(ops)) + "\n".join(rows) + "\n"


ONNX_HEAD = """
# Importing ONNX models: af.from_onnx

```python
net = af.from_onnx("model.onnx")                           # a compiled Net (compile options pass through)
net = af.from_onnx(model_proto, input_shapes={{"ids": (1, 128)}}, compress="int8")
net = af.from_onnx("model.onnx", dynamic_batch=True)       # any batch size, a program per size
traced = af.trace_onnx("model.onnx")                       # the graph: .inputs, .outputs (dicts by name)
```

`af.from_onnx` reads a file (weights kept beside it as external data too), bytes or an
`onnx.ModelProto` with the `onnx` package (`pip install aneforge[onnx]`), which checks it
(`onnx.checker`) before a node is read; local functions are inlined. Opsets 13 to 21 of the
default domain are supported; `onnx.version_converter` converts others. Each node is mapped by
its entry in the ONNX table (`aneforge/importers/onnx_ops.py`, one entry per operator).
Nodes computed from constants alone (initializers, and shapes, which are static here: the
`Shape -> Gather -> Concat -> Reshape` chains of older exporters) are folded at import by the
onnx package's reference evaluator. Weight layers take their initializer's name
(`features.0.0.weight` names the layer `features.0.0`; a weight torch's TorchScript exporter
folded takes its node's module path). One output returns an array; several, a dict by the
model's output names.

A symbolic batch size is 1; `input_shapes={{name: shape}}` sets any symbolic size (the engine
runs static shapes). `dynamic_batch=True` takes any batch size on the inputs whose first size is
symbolic: the graph is built again from the model for each size (importing is fast: the zoo's
table above has MobileNetV2 in 0.04 s), a program per size, the compression gate run once.

A model with operators the table lacks fails once, listing each with the node that uses it and
why it is not mapped.

The tests run every entry on single-node models at the opsets it changed in, against
onnxruntime on the same fp16-representable inputs, on the sim and the mil backend: within 2
fp16 ulps (measured at most 1), except GroupNormalization on the mil backend, whose MIL
decomposition rounds each step to fp16 (up to 0.1 ulp of the largest output more), and whole models exported by both of torch's exporters
(MobileNetV2, a transformer block) against onnxruntime.

## The ONNX table

onnx {onnx}: {done} of the {total} operators of the default domain (opsets up to 21) are mapped.

| operator | supported |
|---|---|
"""


IMPORT_HEAD = """# Importing models: af.from_torch, af.from_onnx, af.from_mlpackage

PyTorch modules (below), ONNX files ([af.from_onnx](#importing-onnx-models-affrom_onnx)) and Core ML
packages ([af.from_mlpackage](#importing-core-ml-packages-affrom_mlpackage)).

```python
net = af.from_torch(module, (example_x,))                  # a compiled Net (compile options pass through)
net = af.from_torch(module, (x,), dynamic_batch=True)      # any batch size, a program per size
net = af.from_torch(module, (x,), compress="int8", target="M4")
traced = af.trace_torch(module, (x,), trainable=True)      # the graph: .inputs, .outputs, .parameters
step = af.compile_train_step(af.cross_entropy(traced.outputs, y), list(traced.parameters.values()), opt)
af.register_aten("erfinv.default", lambda ctx, x: ...)     # map an op the table lacks
```

`af.from_torch` exports the module with `torch.export` (in eval mode: dropout off, batch
norm on its running statistics), lowers it to PyTorch's core ATen opset
(`run_decompositions`) and maps each ATen node by its entry in the ATen table
(`aneforge/importers/aten.py`, one entry per op, as the C++ op table holds one entry per
af op). Parameters and buffers become constants (batch norm is then folded into the
convolution by the compiler), or `af.parameter`s with `trainable=True`. Layers with a
weight take their module's name (`features.0.0`, `encoder.layer.0.attention.self.query`),
so `compress={{...}}` and `net.compression_report()` speak the model's names; outputs keep
the model's structure (a dict by its keys, a tuple, one tensor).

Nodes computed from constants alone (causal masks, position ids, RoPE tables) are run by
torch at import and enter the program as constants, as the compiler folds constant layers;
they need no entry (random ops never fold).

A model with ops the table lacks fails once, listing every such op with the line of the
user's code that called it and why it is not mapped, and naming `af.register_aten`.
Data-dependent control flow (`if x.sum() > 0`) and data-dependent shapes are refused with
torch.export's own account of the construct: engine programs are static.

## The ATen table

torch {torch}: {done} of the {total} core ATen ops are mapped.

| op | supported |
|---|---|
"""
