"""af.losses: defined in aneforge/training/losses.py; importing this module gives that one (the same
object, every name), kept here so `import aneforge.losses` and type checkers find it."""
import sys as _sys

from .training import losses as _impl
from .training.losses import *  # noqa: F401, F403  (for type checkers)

_sys.modules[__name__] = _impl
