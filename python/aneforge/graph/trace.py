"""Recording af calls on flexible-batch graphs (``af.input((None, ...))``): the recipe a
graph is rebuilt from for each batch size (flex.py replays it). See flex.py for the why."""

from __future__ import annotations

# The placeholder batch while a flexible graph is built: a prime no layer size is likely to
# share, so a size computed from x.shape (and fixed in the graph) fails to rebuild for other
# batches instead of passing unnoticed.
TRACE_BATCH = 13


class FlexInput:
    """The recipe of a flexible graph input."""

    def __init__(self, shape, dtype, name, node_id):
        self.shape = tuple(shape)  # None marks the batch dimension (dim 0)
        self.dtype = dtype
        self.name = name
        self.node_id = node_id  # of the input built at the placeholder batch

    def at(self, batch: int) -> tuple:
        return tuple(batch if d is None else d for d in self.shape)


class Call:
    """One recorded af call: replayed for each batch size."""

    __slots__ = ("fn", "args", "kwargs")

    def __init__(self, fn, args, kwargs):
        self.fn, self.args, self.kwargs = fn, args, kwargs


def tensors_in(value):
    """The Tensors in a value (nested lists, tuples and dicts); a Tensor is what carries a
    ``_recipe`` slot (this module sits below tensor.py, which imports it)."""
    if hasattr(type(value), "_recipe"):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from tensors_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors_in(v)


# Set by the first flexible input: until then no call can carry a recipe, and record() (on
# every op call's path) returns at once.
_any_flexible = False


def make_flexible(t, recipe: FlexInput):
    """Marks t as a flexible input rebuilt from ``recipe``."""
    global _any_flexible
    _any_flexible = True
    t._recipe = recipe


def record(fn, args, kwargs, result):
    """Attach the call to its results when any argument comes from a flexible input."""
    if not _any_flexible:
        return result
    if not any(t._recipe is not None for t in tensors_in((args, kwargs))):
        return result
    call = Call(fn, args, kwargs)
    outs = result if isinstance(result, tuple) else (result,)
    for i, t in enumerate(outs):
        if all(t is not a for a in tensors_in((args, kwargs))):  # x[...] returns x itself
            t._recipe = (call, i if isinstance(result, tuple) else None)
    return result


def is_flexible(tensors) -> bool:
    return any(t._recipe is not None for t in tensors)


