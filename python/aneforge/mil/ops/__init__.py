"""MIL op implementations, one module per op family of the MIL reference (coremltools'
op definitions): each op's semantics written from its documented definition."""
from . import (activation, constexpr, control, conv, elementwise, image_resizing, linear,  # noqa: F401
               normalization, pool, reduction, scatter_gather, tensor_operation, tensor_transformation)
