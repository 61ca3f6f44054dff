"""Tensor: a handle to one output of a lazy graph node."""
from __future__ import annotations

import numbers

import numpy as np

from . import _core

_FLOATS = ("fp16", "fp32")


class Tensor:
    """A lazy tensor: nothing is computed until the graph is compiled and called.

    Tensors are built by ``af.input``, ``af.constant`` and the ops. Their shape and dtype
    are known (and checked) as soon as they are built.
    """

    __slots__ = ("_t",)
    __array_ufunc__ = None  # numpy defers to our reflected operators

    def __init__(self, handle: _core.Tensor):
        self._t = handle

    @property
    def shape(self) -> tuple:
        return self._t.shape

    @property
    def dtype(self) -> str:
        return self._t.dtype

    @property
    def name(self) -> str:
        return self._t.name

    @property
    def op(self) -> str:
        return self._t.op

    @property
    def ndim(self) -> int:
        return len(self._t.shape)

    @property
    def inputs(self) -> list:
        return [Tensor(t) for t in self._t.inputs]

    @property
    def attrs(self) -> dict:
        return self._t.attrs

    def size(self, dim=None):
        return int(np.prod(self.shape)) if dim is None else self.shape[dim]

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d Tensor")
        return self.shape[0]

    def __repr__(self):
        return f"Tensor({self.name!r}, {self.shape}, {self.dtype}, op={self.op})"

    def __bool__(self):
        raise TypeError("a lazy Tensor has no truth value; compile the graph and call it to get values")

    def __hash__(self):
        return hash((self._t.node_id, self.name))

    # Arithmetic operators map onto ops of the table.
    def __add__(self, o): return _call("add", self, o)
    def __radd__(self, o): return _call("add", o, self)
    def __sub__(self, o): return _call("sub", self, o)
    def __rsub__(self, o): return _call("sub", o, self)
    def __mul__(self, o): return _call("mul", self, o)
    def __rmul__(self, o): return _call("mul", o, self)
    def __truediv__(self, o): return _call("div", self, o)
    def __rtruediv__(self, o): return _call("div", o, self)
    def __matmul__(self, o): return _call("matmul", self, o)
    def __rmatmul__(self, o): return _call("matmul", o, self)
    def __neg__(self): return _call("mul", self, -1.0)
    def __pos__(self): return self

    def reshape(self, *shape):
        """``x.reshape(1, -1)`` or ``x.reshape((1, -1))``."""
        if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
            shape = tuple(shape[0])
        return _call("reshape", self, shape=tuple(shape))

    view = reshape

    def permute(self, *dims):
        """``x.permute(0, 2, 1)`` or ``x.permute((0, 2, 1))``."""
        if len(dims) == 1 and not isinstance(dims[0], numbers.Integral):
            dims = tuple(dims[0])
        return _call("permute", self, dims=tuple(dims))

    def flatten(self, start_dim=0, end_dim=-1):
        s = self.shape
        if not s:
            return self.reshape(1)
        a, b = start_dim % len(s), end_dim % len(s)
        return self.reshape(s[:a] + (int(np.prod(s[a:b + 1])),) + s[b + 1:])

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))


def _np_dtype_name(a: np.ndarray, ref_dtype):
    if a.dtype == np.bool_:
        return "bool"
    if np.issubdtype(a.dtype, np.integer):
        return ref_dtype if ref_dtype and ref_dtype not in _FLOATS else "int32"
    if np.issubdtype(a.dtype, np.floating):
        return ref_dtype if ref_dtype in _FLOATS else "fp16"
    raise TypeError(f"cannot make a constant from a NumPy array of dtype {a.dtype}")


def as_tensor(value, ref_dtype=None, what="value") -> Tensor:
    """A Tensor for ``value``: Tensors pass through, numbers and arrays become constants.

    Python scalars take the dtype of the other operand (``ref_dtype``) like PyTorch's.
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, np.bool_)):
        arr = np.asarray(value, dtype=np.float32)
        return Tensor(_core.constant(arr, "bool" if ref_dtype in (None, "bool") else ref_dtype))
    if isinstance(value, numbers.Number):
        if isinstance(value, complex):
            raise TypeError(f"{what}: complex numbers are not supported")
        is_int = isinstance(value, numbers.Integral)
        dt = ref_dtype or "fp16"
        if not is_int and dt not in _FLOATS:
            raise TypeError(f"{what}: cannot combine a {dt} tensor with the float {value!r}; "
                            "cast the tensor to fp16 first")
        return Tensor(_core.constant(np.asarray(value, dtype=np.float32), dt))
    if hasattr(value, "__array__") or isinstance(value, (list, tuple)):
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"{what}: cannot make a constant from {type(value).__name__}")
        dt = _np_dtype_name(arr, ref_dtype)
        return Tensor(_core.constant(np.ascontiguousarray(arr, dtype=np.float32), dt))
    raise TypeError(f"{what}: expected a Tensor, a number or a NumPy array, got {type(value).__name__}")


def input(shape, dtype="fp16", name=None) -> Tensor:  # noqa: A001 - the seed's name
    """A graph input of fixed ``shape`` (rank <= 5), fed when the compiled net is called.

    ``name`` lets the net be called with keywords (``net(image=...)``); inputs without
    names are called ``input_<k>`` and are fed in creation order.
    """
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    return Tensor(_core.input(tuple(shape), str(dtype), name or ""))


def constant(value, dtype=None) -> Tensor:
    """A constant tensor from a NumPy array (weights are stored as fp16 by default)."""
    arr = np.asarray(value)
    dt = dtype or _np_dtype_name(arr, None)
    return Tensor(_core.constant(np.ascontiguousarray(arr, dtype=np.float32), dt))


def _call(op, *args, **kwargs):
    from ._ops import OPS
    return OPS[op](*args, **kwargs)
