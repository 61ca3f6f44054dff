"""What the importers' tables share: an argument is an af Tensor (computed in the program) or a
NumPy constant (a weight, a folded subgraph), and a constant becomes a constant node where a
tensor is needed."""
from __future__ import annotations

import numpy as np

from ..graph import functional as _F
from ..graph.tensor import Tensor


def is_const(x) -> bool:
    return isinstance(x, np.ndarray)


def tensor_of(x) -> Tensor:
    """An af Tensor of an argument: constants as constant nodes, integers as int32, floats as
    the program's float type, bools as bool."""
    if isinstance(x, Tensor):
        return x
    a = np.asarray(x)
    if a.dtype.kind in "iu":
        return _F.constant(a.astype(np.int32), "int32")
    return _F.as_tensor(a if a.dtype == bool else a.astype(np.float32))
