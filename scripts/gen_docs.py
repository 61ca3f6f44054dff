"""Regenerates docs/ops.md from the op table."""
import pathlib

from aneforge._docs import ops_markdown

path = pathlib.Path(__file__).resolve().parent.parent / "docs" / "ops.md"
path.write_text(ops_markdown())
print(f"wrote {path}")
