"""ANEForge: compile a tensor graph into one Apple Neural Engine program and run it.

    import aneforge as af
    x = af.input((1, 3, 32, 32), name="image")
    y = af.conv(x, W, pad=1).relu().mean((2, 3))
    net = af.compile(y)
    out = net(image)

Every op of the op table is ``af.<name>`` (see ``af.ops()`` and docs/ops.md). The default
backend, ``sim``, runs the program on the CPU with the engine's fp16 numerics.
"""
from . import _loader  # noqa: F401  (loads OpenBLAS before the extension)
from . import _core
from ._core import EngineError, PackedWeights, TargetError
from .graph.tensor import Tensor, as_tensor, constant, input  # noqa: A004
from .graph.ops import OPS as _OPS, OpInfo, ops
from .graph.composites import (adaptive_avg_pool2d, arange, chunk, full, full_like, interpolate, masked_fill, ones,
                               ones_like, tril, triu, zeros, zeros_like)
from .graph.autodiff import grad
from .graph.state import buffer, noise, parameter
from .compiler.build import compile  # noqa: A004
from .compiler.net import Net, devices, load_program
from .compiler.milnet import PackageNet, load_mlpackage
from .training.train import LossScale, TrainStep, compile_train_step
from .losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from . import optim
from . import nn
from . import schedules
from .trainer import Trainer
from . import data, testing
from .importers.mil_import import TracedMil, from_mlpackage, trace_mlpackage
from .importers.onnx_import import TracedOnnx, from_onnx, trace_onnx
from .importers.torch_export import TracedTorch, from_torch, register_aten, trace_torch

def _version() -> str:
    from importlib import metadata
    try:
        return metadata.version("aneforge")
    except metadata.PackageNotFoundError:  # imported from a source tree that is not installed
        return "0+unknown"


__version__ = _version()

globals().update({_name: _fn for _name, _fn in _OPS.items() if _name not in globals()})


def targets() -> list:
    """The 28 compiler targets: family, MIL support, chips, limits, streamed weight formats,
    performance parameters and their sources."""
    return _core.targets()


def target_info(name: str) -> dict:
    """One target by name ("h16g") or chip ("M4")."""
    return _core.find_target(str(name))


def set_num_threads(n: int) -> None:
    """Threads the simulator uses (its own pool and BLAS)."""
    _core.set_num_threads(int(n))


def num_threads() -> int:
    return _core.num_threads()


def set_sim_weight_cache(max_bytes: int) -> None:
    """Bytes of float32 copies of fp16-stored weights the simulator may keep, in the whole
    process (default 256 MiB; 0 keeps none). A conv with a kernel wider than 1x1, or a linear
    layer over more than 4 rows, widens its fp16 weight to float32 on every run unless its
    program keeps the copy; a program keeps its copies until it is destroyed. Results are the same bits either way; a lower limit applies to copies made
    after it is set."""
    _core.set_sim_weight_cache(int(max_bytes))


def sim_weight_cache() -> dict:
    """The simulator's weight cache: its limit and the bytes its programs hold now."""
    return {"limit": _core.sim_weight_cache(), "bytes": _core.sim_weight_cache_bytes()}


def round_fp16(values, ties_away=False, flush_subnormals=True):
    """NumPy float32 array rounded to fp16 values exactly as the simulator stores them."""
    import numpy as np
    a = np.array(values, dtype=np.float32, copy=True, order="C")
    _core.round_fp16(a, ties_away, flush_subnormals)
    return a


from . import nets  # noqa: E402  (builds graphs with the ops installed above)
from . import fft  # noqa: E402
from . import dsp  # noqa: E402
from . import linalg  # noqa: E402
from . import sims  # noqa: E402
from . import models  # noqa: E402
from .models import load  # noqa: E402

__all__ = ["Tensor", "Net", "PackedWeights", "data", "cross_entropy", "mse_loss", "parameter", "compile_train_step", "TrainStep", "optim", "nn", "schedules", "Trainer", "buffer", "noise", "LossScale", "binary_cross_entropy_with_logits", "OpInfo", "nets", "fft", "dsp", "linalg", "sims", "models", "load", "grad", "EngineError", "devices", "PackageNet", "TargetError", "targets", "target_info", "load_program", "load_mlpackage", "input", "constant", "as_tensor", "compile", "ops",
           "set_num_threads", "num_threads", "set_sim_weight_cache", "sim_weight_cache", "round_fp16", "from_torch", "trace_torch", "register_aten", "TracedTorch",
           "from_onnx", "trace_onnx", "TracedOnnx", "from_mlpackage", "trace_mlpackage", "TracedMil",
           "adaptive_avg_pool2d", "arange", "chunk", "full", "full_like", "interpolate", "masked_fill", "ones",
           "ones_like", "tril", "triu", "zeros", "zeros_like", *sorted(_OPS)]
