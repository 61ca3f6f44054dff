"""The MIL op registry: each op family module (ops/*.py) registers its implementations here
with ``@op``, and the interpreter looks them up; neither imports the other."""
from __future__ import annotations

OPS: dict = {}  # MIL op type -> Impl


class Impl:
    def __init__(self, fn, family, since):
        self.fn, self.family, self.since = fn, family, since


def op(*names, family, since=15):
    """Registers an op implementation: fn(a: Args) -> array or tuple of arrays."""
    def deco(fn):
        for n in names:
            OPS[n] = Impl(fn, family, since)
        return fn
    return deco
