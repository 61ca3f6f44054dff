"""The MIL reference backend: reads MIL (text, or the protobuf of an .mlpackage) and runs it
op by op with NumPy, independently of the simulator. See docs/mil.md."""
from .interp import OPS, Interpreter, blobs_for_text  # noqa: F401
from .ir import MilError, Program, TensorType  # noqa: F401
from .package import read_mlpackage  # noqa: F401
from .storage import Storage, to_fp16  # noqa: F401
from .text import parse as parse_text  # noqa: F401


def op_families() -> dict:
    """MIL op type -> family, for every op the interpreter runs."""
    return {name: impl.family for name, impl in sorted(OPS.items())}
