"""The MIL program as the interpreter sees it, whichever form it was read from (MIL text,
or the Model protobuf inside an .mlpackage): typed functions of SSA operations."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class MilError(ValueError):
    """A MIL program that cannot be read or run; the message names the op or the place."""


# MIL dtype name -> NumPy storage dtype. Sub-byte integers are held unpacked in 8 bits.
NUMPY_DTYPES = {
    "fp16": np.float16, "fp32": np.float32, "fp64": np.float64,
    "int4": np.int8, "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "uint1": np.uint8, "uint2": np.uint8, "uint3": np.uint8, "uint4": np.uint8, "uint6": np.uint8,
    "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
    "bool": np.bool_,
}
SUBBYTE_BITS = {"int4": 4, "uint1": 1, "uint2": 2, "uint3": 3, "uint4": 4, "uint6": 6}
INT_RANGES = {
    "int4": (-8, 7), "uint1": (0, 1), "uint2": (0, 3), "uint3": (0, 7), "uint4": (0, 15), "uint6": (0, 63),
}
FLOAT_DTYPES = ("fp16", "fp32", "fp64")
MAX_RANK = 16
MAX_ELEMENTS = 1 << 31  # a declared tensor larger than this is refused before anything is allocated


@dataclass(frozen=True)
class TensorType:
    """dtype is a MIL dtype name ("fp16", "int32", "string", ...); shape holds ints, or None
    for a dimension the program leaves unknown; rank 0 is a scalar."""
    dtype: str
    shape: tuple = ()
    kind: str = "tensor"  # tensor | state | list | tuple | dict

    def __str__(self):
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.kind}<{self.dtype}, [{dims}]>" if self.kind != "tensor" else f"tensor<{self.dtype}, [{dims}]>"

    @property
    def is_static(self) -> bool:
        return all(d is not None for d in self.shape)


@dataclass
class Op:
    type: str
    name: str
    # parameter -> list of arguments; an argument is ("var", name) or ("value", python value)
    inputs: dict = field(default_factory=dict)
    outputs: list = field(default_factory=list)   # [(name, TensorType)]
    attributes: dict = field(default_factory=dict)  # name -> value (const's val, iOS16/17 constexpr params)
    blocks: list = field(default_factory=list)     # nested Blocks (control flow)


@dataclass
class Block:
    inputs: list = field(default_factory=list)     # [(name, TensorType)]
    ops: list = field(default_factory=list)
    outputs: list = field(default_factory=list)    # var names


@dataclass
class Function:
    name: str
    opset: str                                     # "ios17", "CoreML7", ...
    inputs: list = field(default_factory=list)     # [(name, TensorType)]
    block: Block = field(default_factory=Block)


@dataclass
class Program:
    version: str
    functions: dict = field(default_factory=dict)  # name -> Function
    source: str = ""                               # what it was read from, for messages
    opset_number: int = 0                          # 15..18, from the main function's opset

    @property
    def main(self) -> Function:
        if "main" not in self.functions:
            raise MilError(f"{self.source}: the program has no 'main' function (has {sorted(self.functions)})")
        return self.functions["main"]


def opset_number(opset: str) -> int:
    """'ios17' -> 17, 'CoreML7' -> 17 (CoreML5 is iOS15 ... CoreML8 is iOS18)."""
    s = opset.lower()
    try:
        if s.startswith("ios"):
            return int(s[3:])
        if s.startswith("coreml"):
            return int(s[6:]) + 10
    except ValueError:
        pass
    raise MilError(f"unknown opset '{opset}' (expected ios15..ios18 or CoreML5..CoreML8)")


def check_shape(shape, where: str) -> tuple:
    """A declared shape: rank and element count bounded before anything is allocated."""
    if len(shape) > MAX_RANK:
        raise MilError(f"{where}: rank {len(shape)} exceeds {MAX_RANK}")
    n = 1
    for d in shape:
        if d is None:
            continue
        if d < 0:
            raise MilError(f"{where}: negative dimension {d}")
        n *= d
        if n > MAX_ELEMENTS:
            raise MilError(f"{where}: shape {tuple(shape)} has more than 2^31 elements")
    return tuple(shape)
