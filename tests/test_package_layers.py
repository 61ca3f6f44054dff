"""The Python package as layers (docs/architecture.md): each module imports only its own layer
or the layers below it, no import cycles anywhere (function-level imports included: that is
where cycles hide), only the top floor imports the package root, and the public API of the
flat package before the split is all still there."""
import ast
import pathlib

import aneforge as af

PKG = pathlib.Path(af.__file__).resolve().parent
HERE = pathlib.Path(__file__).resolve().parent

# Bottom to top. A module's layer is that of the longest prefix listed.
LAYERS = {
    "aneforge._core": 0, "aneforge._loader": 0, "aneforge.testing": 0, "aneforge.data": 0, "aneforge.mil": 0,
    "aneforge.graph": 1,
    "aneforge.compiler": 2,
    "aneforge.training": 3, "aneforge.nn": 3, "aneforge.optim": 3, "aneforge.schedules": 3, "aneforge.losses": 3,
    "aneforge.trainer": 3, "aneforge.importers": 3,
    "aneforge": 4,  # the top floor: the root, models, nets, the CLI, doc generation
}
TOP = 4


def layer(module: str) -> int:
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in LAYERS:
            return LAYERS[".".join(parts[:k])]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)")


def modules(root=PKG) -> dict:
    """module name -> (path, is package) for every .py file of the package."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def imports(name: str, path: pathlib.Path, is_pkg: bool, known: set) -> set:
    """Every aneforge module ``name`` imports (anywhere in the file), with the packages Python
    imports on the way (a parent package's __init__ runs first), bar its own ancestors."""
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []  # what the statement names: modules, or the module a name comes from
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[:len(here) - node.level + 1]) if node.level else ""
            mod = ".".join(p for p in (base, node.module or "") if p)
            for a in node.names:  # ``from pkg import submodule`` names the submodule, not pkg
                sub = f"{mod}.{a.name}"
                targets.append(sub if sub in known or sub == "aneforge._core" else mod)
        for t in targets:
            if not t.startswith("aneforge"):
                continue
            parts = t.split(".")
            for k in range(1, len(parts) + 1):
                m = ".".join(parts[:k])
                if m not in known and m != "aneforge._core" or m == name:
                    continue
                # What the statement names counts always (``import aneforge`` from below is the
                # point); a parent package Python runs on the way does not when it is one of
                # this module's own (it is being imported already).
                if m == t or not name.startswith(m + "."):
                    found.add(m)
    return found


def graph() -> dict:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, is_pkg, known) for name, (path, is_pkg) in mods.items()}


def cycles(g: dict) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_each_layer_imports_only_the_layers_below():
    bad = [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
           for a, deps in sorted(graph().items()) for b in sorted(deps) if layer(b) > layer(a)]
    assert bad == []


def test_only_the_top_floor_imports_the_package_root():
    bad = [a for a, deps in sorted(graph().items()) if "aneforge" in deps and layer(a) != TOP]
    assert bad == []


def test_the_checks_can_fail():
    """The checker sees a cycle, an upward import and a root import when there is one."""
    g = {"aneforge.graph.tensor": {"aneforge.graph.ops"}, "aneforge.graph.ops": {"aneforge.graph.tensor"}}
    assert cycles(g) == [["aneforge.graph.ops", "aneforge.graph.tensor"]]
    src = HERE / "_layer_probe"
    pkg = src / "aneforge" / "graph"
    pkg.mkdir(parents=True, exist_ok=True)
    try:
        (pkg / "probe.py").write_text("def f():\n    import aneforge as af\n    from ..compiler.build import compile\n")
        found = imports("aneforge.graph.probe", pkg / "probe.py", False, {"aneforge", "aneforge.compiler",
                                                                           "aneforge.compiler.build", "aneforge.graph"})
        assert found == {"aneforge", "aneforge.compiler", "aneforge.compiler.build"}
        assert layer("aneforge.compiler.build") > layer("aneforge.graph.probe")
    finally:
        (pkg / "probe.py").unlink()
        for d in (pkg, pkg.parent, src):
            d.rmdir()


def test_the_public_api_of_the_flat_package_is_all_still_there():
    """tests/public_api.txt: every public name (functions, classes and their members, constants)
    of af and its public modules, taken before the package was split into layers."""
    from public_api import public_api
    before = set((HERE / "public_api.txt").read_text().splitlines())
    missing = sorted(before - set(public_api()))
    assert missing == [], f"public names lost: {missing[:20]}"


def test_architecture_md_names_files_that_exist():
    import re
    text = (HERE.parent / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"(?<![\w/])aneforge/[\w/]+\.py", text))
    assert len(named) >= 5
    assert sorted(p for p in named if not (PKG.parent / p).exists()) == []
