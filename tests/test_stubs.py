"""The type stubs the build generates from the op table match the functions the package
makes at run time, and mypy accepts the examples (and rejects a misspelt keyword)."""
import ast
import inspect
import pathlib
import subprocess
import sys

import pytest

import aneforge as af
from aneforge.graph.ops import OPS

PKG = pathlib.Path(af.__file__).parent
ROOT = pathlib.Path(__file__).resolve().parent.parent


def _stub():
    return ast.parse((PKG / "__init__.pyi").read_text())


def _params(fn: ast.FunctionDef, method=False):
    a = fn.args
    names = [(p.arg, "pos") for p in a.args]
    if a.vararg:
        names.append((a.vararg.arg, "var"))
    if method:
        names = names[1:]
    n_def = len(a.defaults)
    required = [n for n, _ in names[:len(a.args) - (1 if method else 0) - n_def]]
    return [n for n, _ in names], required


def _runtime(fn, method=False):
    ps = list(inspect.signature(fn).parameters.values())[1 if method else 0:]
    return [p.name for p in ps], [p.name for p in ps if p.default is inspect.Parameter.empty
                                  and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def test_package_is_typed():
    assert (PKG / "py.typed").exists()
    assert (PKG / "__init__.pyi").exists()
    assert not (PKG / "__init__.pyi.in").exists()


def test_every_op_and_alias_has_a_stub_with_the_runtime_signature():
    fns = {n.name: n for n in _stub().body if isinstance(n, ast.FunctionDef)}
    for name, fn in OPS.items():
        assert name in fns, f"no stub for af.{name}"
        assert _params(fns[name]) == _runtime(fn), f"af.{name}: stub and runtime signatures differ"


def test_tensor_methods_in_the_stub_are_the_runtime_ones():
    cls = next(n for n in _stub().body if isinstance(n, ast.ClassDef) and n.name == "Tensor")
    stub = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    public = {n for n in dir(af.Tensor) if not n.startswith("_")}
    assert public <= set(stub), f"Tensor members without stubs: {sorted(public - set(stub))}"
    for name, node in stub.items():
        assert hasattr(af.Tensor, name), f"stub declares Tensor.{name}, which does not exist"
        member = inspect.getattr_static(af.Tensor, name)
        if name in OPS and member is OPS[name]:
            assert _params(node, method=True) == _runtime(member, method=True), f"Tensor.{name}"


def test_public_names_are_declared():
    declared = set()
    for n in _stub().body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            declared.add(n.name)
        elif isinstance(n, ast.AnnAssign):
            declared.add(n.target.id)
        elif isinstance(n, ast.ImportFrom):
            declared.update(a.asname or a.name for a in n.names)
    missing = [n for n in af.__all__ if n not in declared]
    assert not missing, f"names in af.__all__ without stubs: {missing}"


def _mypy(*args):
    pytest.importorskip("mypy")
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", "/dev/null", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_mypy_passes_on_the_examples():
    r = _mypy("examples/")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_catches_a_misspelt_keyword(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import aneforge as af\nx = af.input((1, 3, 8, 8))\ny = af.conv2d(x, x, paddin=1)\n"
                   "n: int = x.relu()\n")
    r = _mypy(str(bad))
    assert r.returncode == 1
    assert 'Unexpected keyword argument "paddin"' in r.stdout and 'did you mean "padding"' in r.stdout
    assert "Incompatible types in assignment" in r.stdout
