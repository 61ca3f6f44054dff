"""The public names of aneforge and its public modules: what a user can reach."""
import importlib
import sys
import inspect

PUBLIC_MODULES = ["aneforge", "aneforge.nn", "aneforge.optim", "aneforge.schedules", "aneforge.losses",
                  "aneforge.trainer", "aneforge.data", "aneforge.testing", "aneforge.models", "aneforge.nets",
                  "aneforge.mil", "aneforge.cli"]


def public_api() -> list:
    """'module.name kind' for every public name: functions, classes (with their public
    methods and properties), constants; modules and names imported from outside aneforge
    (numpy, math) left out."""
    rows = []
    for modname in PUBLIC_MODULES:
        mod = importlib.import_module(modname)
        for name in sorted(dir(mod)):
            if name.startswith("_"):
                continue
            obj = getattr(mod, name)
            if inspect.ismodule(obj):
                if sys.modules.get(f"{modname}.{name}") is obj:  # a submodule (not ``af`` inside nets)
                    rows.append(f"{modname}.{name} module")
                continue
            owner = getattr(obj, "__module__", None)
            if (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)) and owner \
                    and not str(owner).startswith("aneforge"):
                continue
            if inspect.isclass(obj):
                rows.append(f"{modname}.{name} class")
                rows.extend(f"{modname}.{name}.{m} member" for m in sorted(vars(obj)) if not m.startswith("_"))
            elif callable(obj):
                rows.append(f"{modname}.{name} function")
            else:
                rows.append(f"{modname}.{name} {type(obj).__name__}")
    return rows


if __name__ == "__main__":
    print("\n".join(public_api()))
