"""The graph-building functions as one namespace: every op of the op table (``linear``,
``conv2d``, ``where``, ... with their aliases) and the graph's leaves (``input``,
``constant``, ``as_tensor``). The package root re-exports them as ``af.<name>``; modules
below the root use this one (``from ..graph import functional as F``)."""
from .ops import OPS as _OPS
from .tensor import as_tensor, constant, input  # noqa: F401, A004

globals().update({_name: _fn for _name, _fn in _OPS.items() if _name not in globals()})
