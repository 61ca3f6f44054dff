"""af.optim: defined in aneforge/training/optim.py; importing this module gives that one (the same
object, every name), kept here so `import aneforge.optim` and type checkers find it."""
import sys as _sys

from .training import optim as _impl
from .training.optim import *  # noqa: F401, F403  (for type checkers)

_sys.modules[__name__] = _impl
