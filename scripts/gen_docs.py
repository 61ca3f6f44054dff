"""Regenerates docs/ops.md and docs/targets.md from the op and target tables."""
import pathlib

from aneforge._docs import ops_markdown, targets_markdown

docs = pathlib.Path(__file__).resolve().parent.parent / "docs"
for name, text in (("ops.md", ops_markdown()), ("targets.md", targets_markdown())):
    (docs / name).write_text(text)
    print(f"wrote {docs / name}")
