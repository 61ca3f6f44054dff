"""Reading a model directory: config, weights (safetensors or a PyTorch .bin), tokenizer.
Every file is untrusted: a missing or corrupt one is a clear error naming it."""
from __future__ import annotations

import json
import math
import os

import numpy as np


def read_json(path: str, what: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what} {path} is not valid JSON: {e}") from None
    if not isinstance(data, (dict, list)):
        raise ValueError(f"{what} {path} holds a {type(data).__name__}, expected an object")
    return data


def _safetensors(st: str) -> dict:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        raw = load_file(st)
    except TypeError as e:
        if "bfloat16" not in str(e):
            raise ValueError(f"corrupt safetensors file {st}: {e}") from None
        raw = _bfloat16_safetensors(st)  # NumPy has no bfloat16: read the file here
    except (SafetensorError, ValueError, OSError) as e:
        raise ValueError(f"corrupt safetensors file {st}: {e}") from None
    return {k: _float32(v, k, st) for k, v in raw.items()}


_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64,
              "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def _header(path: str) -> tuple:
    """A safetensors file's tensors: {name: (dtype, shape, absolute begin, end)}. The header is
    untrusted: its size, every tensor's dtype, shape and byte range are checked against the
    file before any data is read."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if size < 8 or not 2 <= n <= min(size - 8, 100 << 20):
            raise ValueError(f"corrupt safetensors file {path}: header size {n} in a {size}-byte file")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"corrupt safetensors file {path}: header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"corrupt safetensors file {path}: header is not an object")
    data_size = size - 8 - n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            ok = dtype in _ST_DTYPES and isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)
            count = math.prod(shape)  # Python ints: a huge shape cannot wrap around
            ok = (ok
                  and isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= data_size
                  and end - begin == count * np.dtype(_ST_DTYPES[dtype]).itemsize)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"corrupt safetensors file {path}: tensor {name!r} has a bad dtype, shape or range")
        out[name] = (dtype, tuple(shape), 8 + n + begin, 8 + n + end)
    return out


def _bfloat16_safetensors(path: str) -> dict:
    """A safetensors file holding bfloat16 tensors (most released LLM checkpoints), read as
    float32 (bfloat16 is float32's upper half); the header checked by _header."""
    return {name: SafetensorsTensors._read(path, entry) for name, entry in _header(path).items()}


class SafetensorsTensors:
    """The tensors of safetensors files, read one at a time when asked (a Mapping of float32
    arrays), so a loader holds no copy of the whole checkpoint; ``fp16_bits`` reads a tensor
    straight into fp16 bits a few MiB at a time, never as a whole float32 copy."""

    _CHUNK = 1 << 20  # elements per read while rounding to fp16

    def __init__(self, entries: dict):
        self._entries = entries  # name -> (path, (dtype, shape, begin, end))

    @classmethod
    def open(cls, files: dict):
        """files: {path: names to take from it, or None for all}."""
        entries = {}
        for path, names in files.items():
            for name, e in _header(path).items():
                if names is None or name in names:
                    entries[name] = (path, e)
        return cls(entries)

    def __contains__(self, key):
        return key in self._entries

    def __iter__(self):
        return iter(self._entries)

    def __len__(self):
        return len(self._entries)

    def keys(self):
        return self._entries.keys()

    def shape(self, key):
        return self._entries[key][1][1]

    def __getitem__(self, key):
        path, e = self._entries[key]
        return _float32(self._read(path, e), key, path)

    @staticmethod
    def _read(path, entry):
        """One whole tensor in its file's dtype (bfloat16 widened to float32)."""
        dtype, shape, begin, end = entry
        with open(path, "rb") as f:
            f.seek(begin)
            raw = f.read(end - begin)
        if len(raw) != end - begin:
            raise ValueError(f"corrupt safetensors file {path}: it ends inside a tensor")
        a = np.frombuffer(raw, dtype=_ST_DTYPES[dtype])
        if dtype == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        return a.reshape(shape)

    def fp16_bits(self, key, transpose: bool = False) -> tuple:
        """(bits, all_finite): the tensor as fp16 bits (uint16), rounded as a default program
        rounds its fp16 constants (nearest even, subnormals flushed), and True when the
        conversion saw no inf/NaN (bfloat16 files; None: not looked at). ``transpose`` (a
        matrix): the bits of its transpose, each band of rows put in place as it is read.
        Read a chunk at a time into buffers kept for every tensor, so loading allocates little
        besides the bits it keeps."""
        from .. import _core
        path, (dtype, shape, begin, end) = self._entries[key]
        if dtype not in ("F32", "F16", "BF16"):
            raise ValueError(f"{path}: tensor {key!r} has dtype {dtype}, not float32, float16 or bfloat16")
        if transpose and len(shape) != 2:
            raise ValueError(f"{path}: tensor {key!r} has shape {tuple(shape)}; only a matrix is transposed")
        n = math.prod(shape)
        item = 4 if dtype == "F32" else 2
        # elements per read: whole rows when transposing (at least one)
        step = max(1, self._CHUNK // shape[1]) * shape[1] if transpose and n else self._CHUNK
        if getattr(self, "_band", None) is None or self._band.size < step:
            size = max(step, self._CHUNK)
            self._raw = np.empty(size * 4, np.uint8)     # the file's bytes
            self._f32 = np.empty(size, np.float32)       # widened to float32
            self._band = np.empty(size, np.uint16)       # a band of rows before its transpose
        out = np.empty(tuple(shape)[::-1] if transpose else n, np.uint16)
        finite = dtype == "BF16" or None
        with open(path, "rb") as f:
            f.seek(begin)
            for at in range(0, n, step):
                m = min(step, n - at)
                raw = self._raw[:m * item]
                if f.readinto(memoryview(raw)) != m * item:
                    raise ValueError(f"corrupt safetensors file {path}: it ends inside tensor {key!r}")
                bits = self._band[:m] if transpose else out[at:at + m]
                if dtype == "BF16":  # float32's upper half, widened and rounded in C++
                    finite = _core.bf16_to_fp16_bits(raw.view(np.uint16), bits) and finite
                else:
                    f32 = self._f32[:m]
                    if dtype == "F32":
                        f32 = raw.view(np.float32)
                    else:
                        f32[:] = raw.view(np.float16)            # exact
                    _core.round_to_fp16_bits(f32, bits)
                if transpose:
                    _core.transpose_u16(bits.reshape(-1, shape[1]), out, at // shape[1])
        return (out if transpose else out.reshape(shape)), finite


def _sharded(directory: str, index: str) -> dict:
    """The shards model.safetensors.index.json names (transformers' sharded checkpoints), read
    whole: each tensor from the shard the map gives."""
    files = _shard_files(directory, index)
    out = {}
    for path, names in sorted(files.items()):
        out.update({k: v for k, v in _safetensors(path).items() if k in names})
    missing = sorted(k for names in files.values() for k in names if k not in out)
    if missing:
        raise ValueError(f"{index} maps {len(missing)} tensors to shards that lack them, e.g. {missing[:3]}")
    return out


def _shard_files(directory: str, index: str) -> dict:
    """{shard path: names mapped to it} from model.safetensors.index.json, each shard a plain
    file name in the directory."""
    data = read_json(index, "safetensors index")
    wmap = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(wmap, dict) or not wmap:
        raise ValueError(f"{index} has no weight_map")
    files = {}
    for k, name in wmap.items():
        if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
            raise ValueError(f"{index} names the shard {name!r}, which is not a file in {directory}")
        files.setdefault(os.path.join(directory, name), set()).add(k)
    for path in files:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"shard {path} (listed in {index}) not found")
    return files


def open_weights(directory: str):
    """The weights of a directory as a Mapping read on demand (SafetensorsTensors) when they
    are safetensors, else load_weights' dict."""
    st = os.path.join(directory, "model.safetensors")
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.isfile(st):
        return SafetensorsTensors.open({st: None})
    if os.path.isfile(index):
        files = _shard_files(directory, index)
        tensors = SafetensorsTensors.open(files)
        missing = sorted(k for names in files.values() for k in names if k not in tensors)
        if missing:
            raise ValueError(f"{index} maps {len(missing)} tensors to shards that lack them, e.g. {missing[:3]}")
        return tensors
    return load_weights(directory)


def load_weights(directory: str) -> dict:
    """name -> float32 NumPy array, from model.safetensors (or its shards, with
    model.safetensors.index.json) or pytorch_model.bin."""
    st = os.path.join(directory, "model.safetensors")
    index = os.path.join(directory, "model.safetensors.index.json")
    pt = os.path.join(directory, "pytorch_model.bin")
    if os.path.isfile(st):
        return _safetensors(st)
    if os.path.isfile(index):
        return _sharded(directory, index)
    if os.path.isfile(pt):
        try:
            import torch
        except ImportError:
            raise ImportError(f"{pt} is a PyTorch checkpoint: reading it needs torch (pip install torch), "
                              "or convert it to model.safetensors") from None
        try:
            raw = torch.load(pt, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure is a corrupt file
            raise ValueError(f"cannot read the PyTorch checkpoint {pt}: {e}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{pt} does not hold a state dict")
        return {k: _float32(v.float().numpy() if hasattr(v, "numpy") else v, k, pt) for k, v in raw.items()}
    raise FileNotFoundError(f"no weights in {directory}: expected model.safetensors or pytorch_model.bin")


def _float32(v, key, path):
    a = np.asarray(v)
    if a.dtype.name == "bfloat16" and a.dtype.itemsize == 2:  # NumPy with ml_dtypes loaded (onnx imports it)
        return (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{path}: tensor {key!r} has dtype {a.dtype}")
    return a.astype(np.float32) if a.dtype.kind == "f" else a


class Weights:
    """A state dict with checked access: a missing tensor or one of the wrong shape names the
    key, the file and what was expected."""

    def __init__(self, tensors: dict, source: str, prefix: str = ""):
        self.tensors, self.source, self.prefix = tensors, source, prefix

    def has(self, key: str) -> bool:
        return self.prefix + key in self.tensors

    def shape(self, key: str) -> tuple:
        k = self.prefix + key
        if k not in self.tensors:
            raise ValueError(f"{self.source}: missing tensor {k!r}")
        return tuple(self.tensors.shape(k)) if hasattr(self.tensors, "shape") else np.shape(self.tensors[k])

    def __call__(self, key: str, shape=None) -> np.ndarray:
        k = self.prefix + key
        if k not in self.tensors:
            raise ValueError(f"{self.source}: missing tensor {k!r}")
        a = np.asarray(self.tensors[k], dtype=np.float32)
        if shape is not None and tuple(a.shape) != tuple(shape):
            raise ValueError(f"{self.source}: tensor {k!r} has shape {tuple(a.shape)}, expected {tuple(shape)}")
        return a


    def fp16_bits(self, key: str, shape=None, transpose: bool = False) -> tuple:
        """(bits, all_finite): the tensor (``shape`` as stored) as fp16 bits (uint16), rounded
        as a default program rounds its fp16 constants, read a chunk at a time where the
        weights are safetensors files; all_finite True when the conversion saw no inf/NaN
        (None: not looked at). ``transpose``: the bits of the matrix's transpose."""
        k = self.prefix + key
        if k not in self.tensors:
            raise ValueError(f"{self.source}: missing tensor {k!r}")
        stored = tuple(self.tensors.shape(k)) if hasattr(self.tensors, "shape") else np.shape(self.tensors[k])
        if shape is not None and stored != tuple(shape):
            raise ValueError(f"{self.source}: tensor {k!r} has shape {stored}, expected {tuple(shape)}")
        if hasattr(self.tensors, "fp16_bits"):
            return self.tensors.fp16_bits(k, transpose)
        from .. import _core
        a = np.ascontiguousarray(self.tensors[k], np.float32)
        bits = np.empty(a.shape, np.uint16)
        _core.round_to_fp16_bits(a.reshape(-1), bits.reshape(-1))
        if transpose:
            t = np.empty(bits.shape[::-1], np.uint16)
            _core.transpose_u16(bits, t)
            bits = t
        return bits, None

    def matrix(self, key: str, shape, fp16: bool, transpose: bool = False) -> np.ndarray:
        """A weight a program holds in bulk, made once per key: fp16 bits when ``fp16``, else
        float32; ``transpose`` for a (in, out) checkpoint layout (GPT-2's Conv1D)."""
        memo = self.__dict__.setdefault("_matrices", {})
        mk = (key, fp16, transpose)
        if mk not in memo:
            finite = None
            if fp16:
                a, finite = self.fp16_bits(key, shape, transpose)
            else:
                a = self(key, shape)
                a = np.ascontiguousarray(a.T) if transpose else a
            memo[mk] = a
            if finite:
                self.__dict__.setdefault("_finite_roots", set()).add(id(_root(a)))
        return memo[mk]

    def known_finite(self, a: np.ndarray) -> bool:
        """Whether ``a`` (a matrix() or a view of one) was found free of inf/NaN as it was made,
        so the sim need not scan it again."""
        return id(_root(a)) in self.__dict__.get("_finite_roots", ())


def _root(a):
    """The array that owns a's memory (NumPy points every view's base at it)."""
    return a if a.base is None else a.base


def state_dict_arrays(state_dict) -> dict:
    """Arrays from a dict of NumPy arrays or torch tensors."""
    out = {}
    for k, v in state_dict.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().float().numpy()
        out[k] = np.asarray(v)
    return out


def named(t, name):
    """``t``, its layer named as in the checkpoint (compress dicts and reports use it)."""
    t._t.set_name(name)
    return t
