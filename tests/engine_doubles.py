"""The doubles of the engine's APIs (tests/doubles/*.cpp) for the Python tests: built once per
session with the C++ compiler, loaded by the engine runtime through its documented override
(ANEFORGE_ENGINE_E5RT / ANEFORGE_ENGINE_OBJC), and given a compute function that runs the MIL
program they receive in the mil backend's interpreter. So a result from backend="engine"
has gone through the real dispatch code (ports, buffers, surfaces, binding order) and been
computed from the very MIL and weights the engine would be given."""
from __future__ import annotations

import ctypes
import os
import pathlib
import shutil
import subprocess

import numpy as np

from aneforge import mil as _mil

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = {"e5rt": "e5rt_double.cpp", "inmemory": "objc_double.cpp"}

COMPUTE = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
    ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint64),
    ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint64))

_NP = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32}


def build(path: str, out_dir: pathlib.Path) -> pathlib.Path:
    """The double for ``path`` ("e5rt" or "inmemory") as a shared library."""
    src = ROOT / "tests" / "doubles" / SOURCES[path]
    lib = out_dir / f"lib{path}_double.so"
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        raise RuntimeError("no C++ compiler to build the engine doubles")
    subprocess.run([cxx, "-std=c++20", "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    return lib


class Double:
    """One loaded double: its control API, and the mil interpreter as its engine."""

    def __init__(self, path: str, lib: pathlib.Path, tmp: pathlib.Path):
        self.path, self.lib = path, lib
        self.c = ctypes.CDLL(str(lib))
        for name, res in (("af_double_violations", ctypes.c_char_p), ("af_double_log", ctypes.c_char_p),
                          ("af_double_live", ctypes.c_int), ("af_double_calls", ctypes.c_int)):
            getattr(self.c, name).restype = res
        self.c.af_double_calls.argtypes = [ctypes.c_char_p]
        self.c.af_double_fail.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._compute = COMPUTE(self._run)  # kept alive as long as the double
        self._interps: dict = {}
        self.tmp = tmp
        self.computed = 0

    def reset(self):
        self.c.af_double_reset()
        self.c.af_double_set_compute(self._compute)
        if self.path == "inmemory":
            self.c.af_double_set_tmpdir(str(self.tmp).encode() + b"/")

    def violations(self) -> str:
        return self.c.af_double_violations().decode()

    def log(self) -> list:
        return self.c.af_double_log().decode().split()

    def live(self) -> int:
        return self.c.af_double_live()

    def calls(self, fn: str) -> int:
        return self.c.af_double_calls(fn.encode())

    def shared_input_buffers(self) -> int:
        """Buffers (e5rt buffer objects, IOSurfaces) that input ports of two or more live
        programs read."""
        return self.c.af_double_shared_input_buffers()

    def fail(self, fn: str, code: int, message: str, nth: int = 0):
        self.c.af_double_fail(fn.encode(), code, message.encode(), nth)

    def _run(self, text, weights, weights_len, n_in, in_names, in_ptrs, in_bytes, n_out, out_names, out_ptrs, out_bytes):
        try:
            text = text.decode()
            blob = ctypes.string_at(weights, weights_len) if weights_len else b""
            key = (text, blob)
            if key not in self._interps:
                ir = _mil.parse_text(text, source="engine double")
                self._interps[key] = _mil.Interpreter(ir, _mil.blobs_for_text(blob) if blob else {}, _mil.Storage())
            interp = self._interps[key]
            types = dict(interp.fn.inputs)
            feeds = {}
            for k in range(n_in):
                name = in_names[k].decode()
                t = types[name]
                dt = _NP[str(t.dtype)] if str(t.dtype) in _NP else np.float16
                raw = ctypes.string_at(in_ptrs[k], in_bytes[k])
                feeds[name] = np.frombuffer(raw, dtype=dt).reshape(tuple(t.shape)).astype(np.float32)
            res = interp.run(feeds)
            for k in range(n_out):
                name = out_names[k].decode()
                v = np.asarray(res[name])
                want = out_bytes[k] // max(1, v.size)
                arr = v.astype(np.float16 if want == 2 else (np.int32 if v.dtype.kind in "iub" else np.float32))
                data = np.ascontiguousarray(arr).tobytes()
                ctypes.memmove(out_ptrs[k], data, min(len(data), out_bytes[k]))
            self.computed += 1
            return 0
        except Exception as e:  # noqa: BLE001 - reported to the test through the engine error
            print(f"engine double compute failed: {e!r}")
            return 1
