"""af.trainer: defined in aneforge/training/trainer.py; importing this module gives that one (the same
object, every name), kept here so `import aneforge.trainer` and type checkers find it."""
import sys as _sys

from .training import trainer as _impl
from .training.trainer import *  # noqa: F401, F403  (for type checkers)

_sys.modules[__name__] = _impl
