"""Regenerates docs/ops.md, docs/targets.md (from the op and target tables), docs/import.md
(from the ATen and ONNX tables; the zoo's measured table is kept) and docs/pytorch.md (from the torch-spelling table the tests run)."""
import pathlib
import sys

from aneforge._docs import import_markdown, measured_block, ops_markdown, targets_markdown

root = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / "tests"))
from pytorch_table import markdown as pytorch_markdown  # noqa: E402

for name, text in (("ops.md", ops_markdown()), ("targets.md", targets_markdown()), ("pytorch.md", pytorch_markdown()),
                   ("import.md", import_markdown(measured_block((root / "docs" / "import.md").read_text())))):
    (root / "docs" / name).write_text(text)
    print(f"wrote {root / 'docs' / name}")
