"""scripts/verify_mac.py, run against the engine doubles: it runs every check through the
engine backend and writes a complete report (what the engine itself gives is measured on a
Mac; here the script is tested)."""
import importlib.util
import json
import pathlib

import pytest

from test_engine import double_libs, engine  # noqa: F401  (fixtures)

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("verify_mac", ROOT / "scripts" / "verify_mac.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_report_covers_every_check(engine, tmp_path):  # noqa: F811
    out = tmp_path / "report.json"
    assert _script().main(["--quick", "--allow-double", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["double"] is True and r["engine"]["available"] and r["engine"]["path"] == engine.path
    checks = r["checks"]
    assert set(checks) == {"quickstart", "resnet18", "minilm", "train_step", "decode", "dispatch_facts",
                           "dispatch_floor"}
    assert r["not_verified"] == [] and all(c["verified"] for c in checks.values())
    facts = checks["dispatch_facts"]
    assert facts["passed"] and facts["two_weight_sets_kept_apart"] and facts["port_report"]
    assert facts["index_program"]["loaded"] and facts["index_program"]["max_abs_diff_vs_sim"] == 0
    assert checks["quickstart"]["passed"] and checks["quickstart"]["cosine_vs_float32"] > 0.999
    assert checks["resnet18"]["passed"] and checks["resnet18"]["top1_matches_float32"]
    assert checks["dispatch_floor"]["per_call_us"] > 0
    assert checks["minilm"]["passed"] and checks["minilm"]["min_cosine_vs_float32"] > 0.9999
    assert checks["train_step"]["passed"] and checks["train_step"]["last_loss"] < checks["train_step"]["first_loss"]
    assert checks["decode"]["passed"] and checks["decode"]["tokens_equal_to_sim"]
    assert engine.violations() == ""


def test_without_an_engine_it_says_why(tmp_path, monkeypatch):
    for var in ("ANEFORGE_ENGINE_E5RT", "ANEFORGE_ENGINE_OBJC", "ANEFORGE_ENGINE_PATH"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "report.json"
    assert _script().main(["--out", str(out)]) == 2
    r = json.loads(out.read_text())
    assert not r["engine"]["available"] and "Apple Silicon" in r["error"]
    assert r["checks"] == {}


def test_a_double_is_never_reported_as_the_engine_by_accident(engine, tmp_path):  # noqa: F811
    out = tmp_path / "report.json"
    assert _script().main(["--out", str(out)]) == 2
    assert "double" in json.loads(out.read_text())["error"]


def test_a_skipped_check_is_reported_as_not_verified(engine, tmp_path, monkeypatch, capsys):  # noqa: F811
    script = _script()
    monkeypatch.setattr(script, "_minilm_path", lambda: None)
    monkeypatch.setattr(script, "CHECKS", [c for c in script.CHECKS if c[0] in ("minilm", "dispatch_floor")])
    out = tmp_path / "report.json"
    assert script.main(["--quick", "--allow-double", "--out", str(out)]) == 3
    r = json.loads(out.read_text())
    assert r["not_verified"] == ["minilm"] and not r["checks"]["minilm"]["verified"]
    assert "NOT VERIFIED: minilm" in capsys.readouterr().out
