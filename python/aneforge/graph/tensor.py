"""Tensor: a handle to one output of a lazy graph node."""
from __future__ import annotations

import contextlib
import contextvars
import numbers

import numpy as np

from .. import _core
from .trace import TRACE_BATCH, FlexInput, make_flexible, record

_FLOATS = ("fp16", "fp32")


class Tensor:
    """A lazy tensor: nothing is computed until the graph is compiled and called.

    Tensors are built by ``af.input``, ``af.constant`` and the ops. Their shape and dtype
    are known (and checked) as soon as they are built.
    """

    __slots__ = ("_t", "_recipe", "_train_entry")  # _train_entry: an af.parameter's (see graph/state.py)
    __array_ufunc__ = None  # numpy defers to our reflected operators

    def __init__(self, handle: _core.Tensor):
        self._t = handle
        self._recipe = None  # how to rebuild it for another batch size (flexible graphs only)

    def __array__(self, *args, **kwargs):
        raise TypeError(f"a lazy af.Tensor {self.shape} has no values yet: compile the graph first "
                        "(net = af.compile(y); net(inputs)) and use the arrays it returns")

    def __iter__(self):
        raise TypeError("a lazy af.Tensor cannot be iterated: index it (x[i]) or compile the graph first")


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

    def size(self, dim: int | None = None):
        """The shape (as torch's ``x.size()``), or the size of dimension ``dim``."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def contiguous(self) -> "Tensor":
        return self  # graph tensors have no memory layout of their own

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d Tensor")
        return self.shape[0]

    def __repr__(self):
        return f"Tensor({self.name!r}, {self.shape}, {self.dtype}, op={self.op})"

    def __bool__(self):
        raise TypeError("a lazy Tensor has no truth value; compile the graph and call it to get values")

    def __hash__(self):  # identity: == builds an elementwise comparison
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
    def __pow__(self, o): return _call("pow", self, o)
    def __rpow__(self, o): return _call("pow", o, self)
    def __neg__(self): return _call("neg", self)
    def __pos__(self): return self
    def __abs__(self): return _call("abs", self)
    def __invert__(self): return _call("logical_not", self)
    def __lt__(self, o): return _call("less", self, o)
    def __le__(self, o): return _call("less_equal", self, o)
    def __gt__(self, o): return _call("greater", self, o)
    def __ge__(self, o): return _call("greater_equal", self, o)
    def __eq__(self, o): return _call("equal", self, o)  # elementwise, as in PyTorch
    def __ne__(self, o): return _call("not_equal", self, o)

    def __getitem__(self, key):
        """NumPy/PyTorch basic indexing: ints, slices with positive steps, None, Ellipsis."""
        return record(_getitem, (self, key), {}, _getitem(self, key))

    def cast(self, dtype):
        return _call("cast", self, dtype)

    def float(self):
        return _call("cast", self, "fp32")

    def half(self):
        return _call("cast", self, "fp16")

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

    @property
    def T(self):
        """The transpose of a 0-, 1- or 2-D tensor (as torch, which deprecates .T above 2-D:
        use .mT or .permute)."""
        if self.ndim > 2:
            raise ValueError(f".T is for tensors of up to 2 dimensions, this one has {self.ndim}: "
                             "use x.mT to swap the last two or x.permute(...)")
        return self.permute(tuple(reversed(range(self.ndim))))

    @property
    def mT(self):
        """The last two dimensions swapped (a batch of matrices transposed)."""
        if self.ndim < 2:
            raise ValueError(f".mT needs at least 2 dimensions, this tensor has {self.ndim}")
        return _call("transpose", self, -2, -1)


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
        return Tensor(_core.constant(np.ascontiguousarray(arr, dtype=np.float32), dt, borrow=_BORROW.get()))
    raise TypeError(f"{what}: expected a Tensor, a number or a NumPy array, got {type(value).__name__}")


_BORROW = contextvars.ContextVar("aneforge_borrow_arrays", default=False)


@contextlib.contextmanager
def borrowing_arrays():
    """Inside: constants made from arrays read them in place instead of copying them. For
    importers whose arrays nobody writes while the graph lives (a model's weights, imported
    and compiled at once); the compiled program holds its own copy."""
    token = _BORROW.set(True)
    try:
        yield
    finally:
        _BORROW.reset(token)


def input(shape, dtype="fp16", name=None) -> Tensor:  # noqa: A001 - the seed's name
    """A graph input of ``shape`` (rank <= 5), fed when the compiled net is called.

    ``None`` as the first dimension makes the batch flexible: ``af.input((None, 3, 224, 224))``.
    The engine runs static shapes, so the compiled net holds one program per batch size
    (see af.compile); while the graph is built, the batch has the placeholder size 13.
    ``name`` lets the net be called with keywords (``net(image=...)``); inputs without
    names are called ``input_<k>`` and are fed in creation order.
    """
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"input: shape must be a tuple of ints (None for a flexible batch), got {shape!r}") from None
    if any(d is None for d in shape[1:]):
        raise ValueError(f"input: only the batch dimension (dim 0) may be None, got {shape}")
    if shape and shape[0] is None:
        t = Tensor(_core.input((TRACE_BATCH,) + shape[1:], str(dtype), name or ""))
        make_flexible(t, FlexInput(shape, str(dtype), t.name, t._t.node_id))
        return t
    return Tensor(_core.input(shape, str(dtype), name or ""))


def constant(value, dtype=None) -> Tensor:
    """A constant tensor from a NumPy array (weights are stored as fp16 by default)."""
    arr = np.asarray(value)
    dt = dtype or _np_dtype_name(arr, None)
    return Tensor(_core.constant(np.ascontiguousarray(arr, dtype=np.float32), dt))


# The op functions by name, filled by ops.py as it generates them from the op table (ops.py
# imports this module, so the operators above reach the ops through this table).
OPS: dict = {}


def _call(op, *args, **kwargs):
    return OPS[op](*args, **kwargs)


def _getitem(x: Tensor, key):
    if not isinstance(key, tuple):
        key = (key,)
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_real > x.ndim:
        raise IndexError(f"too many indices for a tensor of rank {x.ndim}: {key!r}")
    expanded = []
    for k in key:
        if k is Ellipsis:
            expanded.extend([slice(None)] * (x.ndim - n_real))
        else:
            expanded.append(k)
    begin, end, step, drop, new_axes = [], [], [], [], []
    axis = 0
    out_pos = 0
    for k in expanded:
        if k is None:
            new_axes.append(out_pos)
            out_pos += 1
            continue
        size = x.shape[axis]
        if isinstance(k, slice):
            b, e, s = k.indices(size)
            if s <= 0:
                raise IndexError("negative slice steps are not supported")
            if e <= b:
                raise IndexError(f"slice {k} of axis {axis} (size {size}) is empty")
            begin.append(b), end.append(e), step.append(s)
            out_pos += 1
        elif isinstance(k, numbers.Integral) and not isinstance(k, bool):
            i = int(k) + size if k < 0 else int(k)
            if not 0 <= i < size:
                raise IndexError(f"index {int(k)} is out of bounds for axis {axis} with size {size}")
            begin.append(i), end.append(i + 1), step.append(1)
            drop.append(axis)
        else:
            raise TypeError(f"unsupported index {k!r}: use ints, slices, None or ...")
        axis += 1
    y = _call("slice", x, tuple(begin), tuple(end), tuple(step)) if begin else x
    if drop or new_axes:
        shape = [d for i, d in enumerate(y.shape) if i not in drop]
        for p in new_axes:
            shape.insert(p, 1)
        y = _call("reshape", y, shape=tuple(shape))
    return y
