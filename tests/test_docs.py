import pathlib

from aneforge._docs import ops_markdown

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_ops_md_matches_the_op_table():
    text = (ROOT / "docs" / "ops.md").read_text()
    assert text == ops_markdown(), "docs/ops.md is stale: run python scripts/gen_docs.py"


def test_import_md_matches_the_aten_table():
    from aneforge._docs import import_markdown, measured_block
    text = (ROOT / "docs" / "import.md").read_text()
    assert measured_block(text).count("| ONNX |") >= 3, "the import zoo's measured table is missing"
    assert text == import_markdown(measured_block(text)), "docs/import.md is stale: run python scripts/gen_docs.py"


def test_readme_opens_with_the_two_commands():
    lines = [l for l in (ROOT / "README.md").read_text().splitlines() if l.startswith("bash scripts/")]
    assert lines[:2] == ["bash scripts/quickstart.sh", "bash scripts/test-all.sh"]


def test_targets_md_matches_the_target_table_and_cost_model():
    from aneforge._docs import targets_markdown
    text = (ROOT / "docs" / "targets.md").read_text()
    assert text == targets_markdown(), "docs/targets.md is stale: run python scripts/gen_docs.py"


def test_readme_states_the_bridge_count_of_the_op_table():
    import aneforge as af
    bridges = sum(1 for o in af.ops() if o.kind == "bridge")
    assert f"the {bridges} bridge ops" in (ROOT / "README.md").read_text()
