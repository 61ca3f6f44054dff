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


def _bfloat16_safetensors(path: str) -> dict:
    """A safetensors file holding bfloat16 tensors (most released LLM checkpoints), read as
    float32 (bfloat16 is float32's upper half). The header is untrusted: its size, every
    tensor's dtype, shape and byte range are checked against the file before any data is read."""
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
                ok = dtype in _ST_DTYPES and all(isinstance(d, int) and d >= 0 for d in shape)
                count = math.prod(shape)  # Python ints: a huge shape cannot wrap around
                ok = (ok
                      and isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= data_size
                      and end - begin == count * np.dtype(_ST_DTYPES[dtype]).itemsize)
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"corrupt safetensors file {path}: tensor {name!r} has a bad dtype, shape or range")
            f.seek(8 + n + begin)
            a = np.frombuffer(f.read(end - begin), dtype=_ST_DTYPES[dtype]).reshape(shape)
            out[name] = (a.astype(np.uint32) << 16).view(np.float32) if dtype == "BF16" else a
    return out


def _sharded(directory: str, index: str) -> dict:
    """The shards model.safetensors.index.json names (transformers' sharded checkpoints): each
    a plain file name in the directory, each tensor in the shard the map gives."""
    data = read_json(index, "safetensors index")
    wmap = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(wmap, dict) or not wmap:
        raise ValueError(f"{index} has no weight_map")
    shards = sorted(set(wmap.values()))
    for name in shards:
        if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
            raise ValueError(f"{index} names the shard {name!r}, which is not a file in {directory}")
    out = {}
    for name in shards:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"shard {path} (listed in {index}) not found")
        tensors = _safetensors(path)
        for k, v in tensors.items():
            if wmap.get(k) == name:
                out[k] = v
    missing = sorted(k for k in wmap if k not in out)
    if missing:
        raise ValueError(f"{index} maps {len(missing)} tensors to shards that lack them, e.g. {missing[:3]}")
    return out


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

    def __call__(self, key: str, shape=None) -> np.ndarray:
        k = self.prefix + key
        if k not in self.tensors:
            raise ValueError(f"{self.source}: missing tensor {k!r}")
        a = np.asarray(self.tensors[k], dtype=np.float32)
        if shape is not None and tuple(a.shape) != tuple(shape):
            raise ValueError(f"{self.source}: tensor {k!r} has shape {tuple(a.shape)}, expected {tuple(shape)}")
        return a


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
