"""The command line: targets, inspect, export (run as a real subprocess)."""
import subprocess
import sys

import numpy as np
import pytest

import aneforge as af


def run(*args):
    return subprocess.run([sys.executable, "-m", "aneforge", *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture
def program(tmp_path, rng):
    x = af.input((1, 3, 16, 16), name="image")
    net = af.compile(af.conv(x, rng.standard_normal((8, 3, 1, 15)).astype(np.float32)).relu().mean((2, 3)), target="M4")
    path = tmp_path / "net.afprog"
    net.save(path)
    return path


def test_targets_lists_all_28():
    r = run("targets")
    assert r.returncode == 0
    names = [line.split()[0] for line in r.stdout.splitlines()[1:29]]
    assert len(names) == 28 and "h16g" in names and "u3" in names


def test_inspect(program):
    r = run("inspect", program)
    assert r.returncode == 0 and "conv+relu" in r.stdout and "estimate on h16g" in r.stdout


def test_export_formats(program, tmp_path):
    r = run("export", program, tmp_path / "m.mlpackage", "--target", "h16g", "--format", "mlpackage")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m.mlpackage" / "Manifest.json").exists()
    r = run("export", program, tmp_path / "m.mil", "--format", "mil", "--opset", "ios17")
    assert r.returncode == 0 and (tmp_path / "m.mil").read_text().startswith("program(1.0)")
    r = run("export", program, tmp_path / "w.bin", "--format", "blob")
    assert r.returncode == 0 and (tmp_path / "w.bin").read_bytes()[4] == 2


def test_export_checks_the_target_and_reports_errors(program, tmp_path):
    r = run("export", program, tmp_path / "x.mlpackage", "--target", "h13")  # kernel width 15 > 13
    assert r.returncode == 2 and "kernel width 15" in r.stderr and "h13" in r.stderr
    assert not (tmp_path / "x.mlpackage").exists()
    r = run("export", program, tmp_path / "x", "--target", "nope")
    assert r.returncode == 2 and "unknown target 'nope'" in r.stderr
    r = run("inspect", tmp_path / "missing.afprog")
    assert r.returncode == 2 and "cannot open program file" in r.stderr


def test_devices_lists_the_engine_and_why_it_is_unavailable(monkeypatch, capsys):
    from aneforge.cli import main
    for var in ("ANEFORGE_ENGINE_E5RT", "ANEFORGE_ENGINE_OBJC", "ANEFORGE_ENGINE_PATH"):
        monkeypatch.delenv(var, raising=False)
    assert main(["devices"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("sim     available") and out[1].startswith("mil     available")
    assert out[2].startswith("engine  unavailable: no Apple Neural Engine here")
