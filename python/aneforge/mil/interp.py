"""The MIL interpreter: runs a Program's main function op by op with NumPy, each result
stored in its declared MIL dtype (fp16 rounding as the engine stores it). It is a reference,
independent of the simulator: it never calls the simulator's kernels."""
from __future__ import annotations

import numpy as np

from .blob import BlobFile
from .ir import FLOAT_DTYPES, NUMPY_DTYPES, MilError, Op, Program
from .storage import Storage, widened
from .text import BlobRef
from .registry import OPS
from . import ops as _families  # noqa: F401, E402  (registers every op family in OPS)

_MISSING = object()
_STATES = "\0states"  # env key of the state values an update writes


class Args:
    """An op's resolved inputs (and iOS16/17 constexpr attributes), with typed accessors
    whose errors name the op."""

    def __init__(self, op_: Op, values: dict, opset: int, types: dict, states=None):
        self.op, self.values, self.opset, self.types = op_, values, opset, types
        self.states = states if states is not None else {}

    def fail(self, msg):
        raise MilError(f"op '{self.op.name}' ({self.op.type}): {msg}")

    def has(self, name) -> bool:
        return name in self.values

    def raw(self, name, default=_MISSING):
        if name not in self.values:
            if default is _MISSING:
                self.fail(f"missing required input '{name}'")
            return default
        v = self.values[name]
        return v[0] if isinstance(v, list) and len(v) == 1 else v

    def tensor(self, name, default=_MISSING):
        v = self.raw(name, default)
        if v is default and default is not _MISSING:
            return v
        if isinstance(v, list):  # a tuple of scalars (e.g. reshape_like's begins)
            if not all(np.ndim(x) == 0 for x in v):
                self.fail(f"input '{name}' must be a tensor, got a tuple of tensors")
            return np.array([np.asarray(x).item() for x in v])
        if isinstance(v, str):
            self.fail(f"input '{name}' must be a tensor")
        return np.asarray(v)

    def f(self, name, default=_MISSING):
        """A float input computed in fp32 (fp64 stays fp64)."""
        v = self.tensor(name, default)
        if v is None:
            return None
        v = np.asarray(v)
        return v if v.dtype == np.float64 else widened(v)

    def int(self, name, default=_MISSING):
        v = self.tensor(name, default)
        if v is None or isinstance(v, int):
            return v
        if np.asarray(v).size != 1:
            self.fail(f"input '{name}' must be a scalar, got shape {np.shape(v)}")
        return int(np.asarray(v).reshape(()))

    def float(self, name, default=_MISSING):
        v = self.tensor(name, default)
        if v is None or isinstance(v, float):
            return v
        return float(np.asarray(v).reshape(()))

    def bool(self, name, default=_MISSING):
        v = self.tensor(name, default)
        if isinstance(v, bool):
            return v
        return bool(np.asarray(v).reshape(()))

    def ints(self, name, default=_MISSING):
        v = self.tensor(name, default)
        if v is None or isinstance(v, (list, tuple)):
            return v
        return [int(i) for i in np.asarray(v).reshape(-1)]

    def str(self, name, default=_MISSING):
        v = self.raw(name, default)
        if isinstance(v, np.ndarray) and v.dtype == object and v.size == 1:
            v = v.reshape(-1)[0]
        if not isinstance(v, str):
            self.fail(f"input '{name}' must be a string")
        return v

    def tuple(self, name):
        v = self.values.get(name)
        if v is None:
            self.fail(f"missing required input '{name}'")
        return [np.asarray(x) for x in (v if isinstance(v, list) else [v])]

    def out_dtype(self, i=0) -> str:
        return self.op.outputs[i][1].dtype

    def out_shape(self, i=0):
        return self.op.outputs[i][1].shape

    def dtype_of(self, name) -> str:
        return self.types.get(name, "")

    def axis(self, name, rank, default=_MISSING):
        a = self.int(name, default)
        if a is None:
            return None
        if not -rank <= a < max(rank, 1):
            self.fail(f"{name}={a} is out of range for rank {rank}")
        return a % rank if rank else 0


class Interpreter:
    """A loaded program: constants resolved and checked once, then run() per call."""

    def __init__(self, program: Program, blobs: dict | None = None, storage: Storage | None = None,
                 function: str = "main"):
        self.program = program
        self.fn = program.functions.get(function) or program.main
        self.opset = program.opset_number
        self.storage = storage or Storage()
        self.blobs = blobs if blobs is not None else {}
        self.consts = {}
        self.types = {}
        for name, t in self.fn.inputs:
            self.types[name] = t.dtype
        try:
            self._check_ops()
            self._resolve_constants()
        except MilError:
            raise
        except (TypeError, KeyError, IndexError, AttributeError, OverflowError, MemoryError) as e:
            # a program that parsed but is malformed in a way no check above names
            raise MilError(f"{program.source}: malformed program ({type(e).__name__}: {str(e)[:120]})") from None

    # -- loading -----------------------------------------------------------------------
    def _check_ops(self):
        for o in self.fn.block.ops:
            impl = OPS.get(o.type)
            if o.type in ("const",):
                continue
            if impl is None:
                raise MilError(f"op '{o.name}': the MIL op '{o.type}' is not supported by the mil backend")
            if impl.since > self.opset:
                raise MilError(f"op '{o.name}': '{o.type}' needs iOS{impl.since}, the program is iOS{self.opset}")
            for n, t in o.outputs:
                self.types[n] = t.dtype

    def _literal(self, o: Op, typed):
        t, v = typed
        if isinstance(v, BlobRef):
            blob = self._blob(v.path, o)
            return blob.read(v.offset, t.dtype, t.shape, f"op '{o.name}'")
        if t.dtype == "string" or isinstance(v, str):
            return v
        return np.asarray(v, dtype=NUMPY_DTYPES.get(t.dtype, None)).reshape(t.shape)

    def _blob(self, path, o):
        key = path.replace("@model_path/", "")
        for k in (path, key):
            if k in self.blobs:
                return self.blobs[k]
        raise MilError(f"op '{o.name}': weight file '{path}' was not given with the program")

    def _resolve_constants(self):
        """const ops and ops whose inputs are all constants (constexpr_*) run once here."""
        for o in self.fn.block.ops:
            if o.type == "const":
                if o.attributes.get("val") is None:
                    raise MilError(f"const '{o.name}' has no value")
                if len(o.outputs) != 1:
                    raise MilError(f"const '{o.name}' must have one output")
                name, t = o.outputs[0]
                v = self._literal(o, o.attributes["val"])
                self._check_type(o, 0, v)
                self.consts[name] = v
            elif o.type.startswith("constexpr_"):
                self._run_op(o, self.consts, constant=True)
        for v in self.consts.values():  # constants are read only: widened once, never changed by an op
            if isinstance(v, np.ndarray):
                v.flags.writeable = False

    # -- running -----------------------------------------------------------------------
    def _arg(self, o, env, kind, v):
        if kind == "var":
            if v not in env:
                raise MilError(f"op '{o.name}' ({o.type}): input '{v}' is not defined before it")
            return env[v]
        return self._literal(o, v)

    def _check_type(self, o, i, v):
        name, t = o.outputs[i]
        if t.dtype == "string" or t.kind != "tensor":
            return
        shape = np.shape(v)
        if len(shape) != len(t.shape) or any(d is not None and d != s for d, s in zip(t.shape, shape)):
            raise MilError(f"op '{o.name}' ({o.type}): output '{name}' has shape {tuple(shape)}, "
                           f"the program declares {t}")

    def _run_op(self, o: Op, env: dict, constant=False):
        values = {}
        for k, args in o.inputs.items():
            vals = [self._arg(o, env, kind, v) for kind, v in args]
            values[k] = vals if len(vals) != 1 else vals
        for k, typed in o.attributes.items():  # iOS16/17 constexpr parameters
            if k not in values and typed is not None:
                values[k] = [self._literal(o, typed)]
        a = Args(o, values, self.opset, self.types, env.get(_STATES))
        try:
            with np.errstate(all="ignore"):
                result = OPS[o.type].fn(a)
        except MilError:
            raise
        except (ValueError, IndexError, TypeError, ZeroDivisionError, KeyError, AttributeError, OverflowError,
                MemoryError) as e:  # an op given inputs its definition does not allow
            raise MilError(f"op '{o.name}' ({o.type}): {type(e).__name__}: {str(e)[:200]}") from None
        results = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(results) != len(o.outputs):
            raise MilError(f"op '{o.name}' ({o.type}): computed {len(results)} outputs, the program declares {len(o.outputs)}")
        for i, (r, (name, t)) in enumerate(zip(results, o.outputs)):
            self._check_type(o, i, r)
            env[name] = self.storage.store(r, t.dtype, f"op '{o.name}'") if t.kind == "tensor" else r

    def run(self, inputs: dict, trace=None) -> dict:
        """inputs: name -> array (stored into the declared input dtype). Returns name -> array
        of the function's outputs. ``trace``, a dict, receives every intermediate value."""
        env = dict(self.consts)
        for name, t in self.fn.inputs:
            if name not in inputs:
                raise MilError(f"missing input '{name}' ({t})")
            v = np.asarray(inputs[name])
            self._check_input(name, t, v)
            env[name] = self.storage.store(v, t.dtype, f"input '{name}'")
        for o in self.fn.block.ops:
            if o.type == "const" or o.type.startswith("constexpr_"):
                continue
            self._run_op(o, env)
        if trace is not None:
            trace.update(env)
        missing = [n for n in self.fn.block.outputs if n not in env]
        if missing:
            raise MilError(f"function output(s) {missing} are never computed")
        return {n: env[n] for n in self.fn.block.outputs}

    @staticmethod
    def _check_input(name, t, v):
        if len(v.shape) != len(t.shape) or any(d is not None and d != s for d, s in zip(t.shape, v.shape)):
            raise ValueError(f"input '{name}': expected shape {tuple(t.shape)}, got {tuple(v.shape)}")
        if t.dtype in FLOAT_DTYPES and v.dtype.kind not in "fiub":
            raise TypeError(f"input '{name}': expected a numeric array, got dtype {v.dtype}")


def blobs_for_text(blob_bytes: bytes | None) -> dict:
    """The weight file our MIL text refers to, given as bytes."""
    if not blob_bytes:
        return {}
    return {"weights/weight.bin": BlobFile(data=blob_bytes, label="weights/weight.bin")}
