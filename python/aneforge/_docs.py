"""Generates docs/ops.md from the op table (kept current by tests/test_docs.py)."""
from __future__ import annotations

from ._ops import TABLE

HEADER = """# Op table

Generated from the C++ op table by `python scripts/gen_docs.py`; do not edit by hand
(`tests/test_docs.py` fails when this file and the table disagree).

- **kind**: `native` runs as one engine op; `bridge` is lowered by the compiler into native
  ops inside the same program; `composite` is API sugar that builds other ops.
- **targets**: the first engine family that runs the op (`h13+` = every target that
  compiles MIL); per-target limits are checked by the compiler.
- **grad**: whether the op has a gradient (training).

"""


def _signature(spec) -> str:
    parts = []
    for name, kind, dflt in spec["params"]:
        parts.append(name if dflt == "" else f"*{name}" if dflt == "*" else f"{name}={dflt}")
    return f"{spec['name']}({', '.join(parts)})"


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
            out.append(f"| `{s['name']}` | {kind} | {s['min_family']}+ | {'yes' if s['differentiable'] else 'no'} "
                       f"| `{s['mil_op']}` | `{_signature(s)}` | {s['doc']} |\n")
    return "".join(out)
