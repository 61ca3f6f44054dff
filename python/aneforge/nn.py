"""af.nn: defined in aneforge/training/nn.py; importing this module gives that one (the same
object, every name), kept here so `import aneforge.nn` and type checkers find it."""
import sys as _sys

from .training import nn as _impl
from .training.nn import *  # noqa: F401, F403  (for type checkers)

_sys.modules[__name__] = _impl
