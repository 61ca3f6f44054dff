"""Writes never destroy what the library did not create, and are atomic (issue: an export
deleted the directory it was given)."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import aneforge as af


@pytest.fixture
def net(rng):
    x = af.input((1, 3, 8, 8), name="x")
    return af.compile(af.conv(x, rng.standard_normal((4, 3, 3, 3)).astype(np.float32), pad=1).relu())


def _tree(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)


def _no_temps(directory):
    return not [n for n in os.listdir(directory) if ".tmp-" in n]


def test_export_into_a_users_directory_is_refused(net, tmp_path):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "notes.txt").write_text("mine")
    (work / "sub" / "a.py").write_text("print(1)")
    with pytest.raises(OSError, match="not a package ANEForge wrote"):
        net.export_mlpackage(work)
    with pytest.raises(OSError, match="not a package ANEForge wrote"):
        net.export_mlpackage(work, overwrite=True)  # overwrite never replaces a directory
    assert _tree(work) == ["notes.txt", "sub/a.py"]
    assert (work / "notes.txt").read_text() == "mine"
    assert _no_temps(tmp_path)


def test_export_to_the_current_directory_is_refused(net, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    for target in (".", "./", "..", ""):
        with pytest.raises(OSError):
            net.export_mlpackage(target)
    assert (tmp_path / "keep.txt").read_text() == "x"
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]


def test_export_over_a_file_needs_overwrite(net, tmp_path):
    f = tmp_path / "b.py"
    f.write_text("source")
    with pytest.raises(OSError, match="overwrite=True"):
        net.export_mlpackage(f)
    assert f.read_text() == "source"
    net.export_mlpackage(f, overwrite=True)
    assert (f / "Manifest.json").exists()


def test_our_package_is_replaced_atomically(net, tmp_path, rng):
    path = tmp_path / "m.mlpackage"
    net.export_mlpackage(path)
    first = (path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").read_bytes()
    x = af.input((1, 3, 8, 8), name="x")
    other = af.compile(af.conv(x, rng.standard_normal((4, 3, 3, 3)).astype(np.float32), pad=1))
    other.export_mlpackage(path)
    second = (path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").read_bytes()
    assert first != second
    assert _tree(path) == ["Data/com.apple.CoreML/model.mlmodel", "Data/com.apple.CoreML/weights/weight.bin", "Manifest.json"]
    assert _no_temps(tmp_path)
    af.load_mlpackage(path)


def test_a_package_with_extra_files_or_from_elsewhere_is_not_replaced(net, tmp_path):
    path = tmp_path / "m.mlpackage"
    net.export_mlpackage(path)
    (path / "README").write_text("user notes")
    with pytest.raises(OSError, match="not a package ANEForge wrote"):
        net.export_mlpackage(path)
    assert (path / "README").read_text() == "user notes"
    foreign = tmp_path / "f.mlpackage"
    foreign.mkdir()
    (foreign / "Manifest.json").write_text("{}")
    with pytest.raises(OSError):
        net.export_mlpackage(foreign)
    assert (foreign / "Manifest.json").read_text() == "{}"


def test_save_replaces_program_files_only(net, tmp_path):
    prog = tmp_path / "n.afprog"
    net.save(prog)
    net.save(prog)  # a program file may be replaced
    src = tmp_path / "train.py"
    src.write_text("code")
    with pytest.raises(OSError, match="not written by ANEForge"):
        net.save(src)
    assert src.read_text() == "code"
    net.save(src, overwrite=True)
    af.load_program(src)
    with pytest.raises(OSError):
        net.save(tmp_path)  # a directory
    assert _no_temps(tmp_path)


def test_concurrent_saves_leave_one_whole_file(net, tmp_path):
    path = tmp_path / "n.afprog"
    errors = []

    def save():
        try:
            for _ in range(5):
                net.save(path)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert af.load_program(path).num_layers == net.num_layers
    assert _no_temps(tmp_path)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "aneforge", *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("fmt", ["mlpackage", "mil", "blob"])
def test_cli_export_refuses_to_replace_a_source_file(net, tmp_path, fmt):
    prog = tmp_path / "p.afprog"
    net.save(prog)
    src = tmp_path / "b.py"
    src.write_text("source")
    r = _cli("export", prog, src, "--format", fmt)
    assert r.returncode == 2 and "overwrite" in r.stderr
    assert src.read_text() == "source"
    r = _cli("export", prog, src, "--format", fmt, "--overwrite")
    assert r.returncode == 0, r.stderr
    r = _cli("export", prog, tmp_path, "--format", fmt, "--overwrite")
    assert r.returncode == 2
    assert sorted(os.listdir(tmp_path)) == ["b.py", "p.afprog"]
