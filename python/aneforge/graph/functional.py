"""The graph-building functions as one namespace: every op of the op table (``linear``,
``conv2d``, ``where``, ... with their aliases), the graph's leaves (``input``,
``constant``, ``as_tensor``) and the compositions of composites.py (``zeros``, ``tril``, ...). The package root re-exports them as ``af.<name>``; modules
below the root use this one (``from ..graph import functional as F``)."""
from .composites import (adaptive_avg_pool2d, arange, chunk, full, full_like, interpolate,  # noqa: F401
                         masked_fill, ones, ones_like, tril, triu, zeros, zeros_like)
from .ops import OPS as _OPS
from .tensor import as_tensor, constant, input  # noqa: F401, A004

globals().update({_name: _fn for _name, _fn in _OPS.items() if _name not in globals()})
