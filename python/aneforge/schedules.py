"""af.schedules: defined in aneforge/training/schedules.py; importing this module gives that one (the same
object, every name), kept here so `import aneforge.schedules` and type checkers find it."""
import sys as _sys

from .training import schedules as _impl
from .training.schedules import *  # noqa: F401, F403  (for type checkers)

_sys.modules[__name__] = _impl
