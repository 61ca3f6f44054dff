"""Under CI=true a missing independent reference fails the run instead of skipping it."""
import os
import pathlib
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def _run(tmp_path, ci):
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_needs_a_reference.py").write_text(
        "import pytest\nref = pytest.importorskip('surely_not_an_installed_module')\n\ndef test_a():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_missing_reference_fails_under_ci(tmp_path):
    r = _run(tmp_path, ci=True)
    assert r.returncode != 0 and "is required by this test and is not installed" in r.stdout


def test_a_missing_reference_skips_elsewhere(tmp_path):
    r = _run(tmp_path, ci=False)
    assert r.returncode in (0, 5) and "1 skipped" in r.stdout  # 5: the module skipped whole
