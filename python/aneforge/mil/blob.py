"""Reader of the MILBlob v2 weight file (weights/weight.bin). The file is untrusted: every
offset and size is checked against the file and against the tensor type that refers to it
before any data is read."""
from __future__ import annotations

import os
import struct

import numpy as np

from .ir import NUMPY_DTYPES, SUBBYTE_BITS, MilError

BLOB_DTYPES = {
    1: "fp16", 2: "fp32", 3: "uint8", 4: "int8", 5: "bf16", 6: "int16", 7: "uint16", 8: "int4",
    9: "uint1", 10: "uint2", 11: "uint4", 12: "uint3", 13: "uint6", 14: "int32", 15: "uint32",
    16: "fp8e4m3fn", 17: "fp8e5m2",
}
SENTINEL = 0xDEADBEEF


def unpack_subbyte(raw: bytes, dtype: str, count: int) -> np.ndarray:
    """LSB-first packed n-bit values (element i starts at bit i*n) -> one value per byte."""
    nbits = SUBBYTE_BITS[dtype]
    if len(raw) * 8 < count * nbits:
        raise MilError(f"{dtype} data: {len(raw)} bytes cannot hold {count} values")
    bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[: count * nbits].reshape(count, nbits)
    vals = (bits.astype(np.int16) << np.arange(nbits, dtype=np.int16)).sum(axis=1)
    if dtype == "int4":
        vals = np.where(vals >= 8, vals - 16, vals)
    return vals.astype(NUMPY_DTYPES[dtype])


def decode_values(raw: bytes, dtype: str, shape: tuple, where: str) -> np.ndarray:
    """Raw little-endian bytes of a tensor of ``shape`` -> NumPy array (sizes checked)."""
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if dtype in SUBBYTE_BITS:
        need = (count * SUBBYTE_BITS[dtype] + 7) // 8
        if len(raw) != need:
            raise MilError(f"{where}: {dtype} tensor {shape} needs {need} bytes, the data has {len(raw)}")
        return unpack_subbyte(raw, dtype, count).reshape(shape)
    if dtype not in NUMPY_DTYPES:
        raise MilError(f"{where}: dtype '{dtype}' is not supported by the interpreter")
    np_dtype = np.dtype(NUMPY_DTYPES[dtype]).newbyteorder("<")
    if len(raw) != count * np_dtype.itemsize:
        raise MilError(f"{where}: {dtype} tensor {shape} needs {count * np_dtype.itemsize} bytes, the data has {len(raw)}")
    return np.frombuffer(raw, np_dtype).astype(NUMPY_DTYPES[dtype]).reshape(shape)


class BlobFile:
    """One weight file, read on demand by metadata offset."""

    def __init__(self, path: str | None = None, data: bytes | None = None, label: str | None = None):
        if data is None:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise OSError(f"weight file {path}: {e.strerror or e}") from None
        self.data = data
        self.label = label or os.fspath(path or "weight blob")
        if len(data) < 64:
            raise MilError(f"{self.label}: {len(data)} bytes is too short for a MILBlob header (64)")
        count, version = struct.unpack_from("<II", data, 0)
        if version != 2:
            raise MilError(f"{self.label}: MILBlob version {version}, only version 2 is supported")
        if count > len(data) // 128:
            raise MilError(f"{self.label}: header claims {count} blobs, the file can hold at most {len(data) // 128}")
        self.count = count

    def read(self, offset: int, dtype: str, shape: tuple, where: str) -> np.ndarray:
        """The tensor whose metadata record is at ``offset``, checked against the type the
        program declares for it."""
        data, lab = self.data, f"{where}: {self.label}"
        if offset < 64 or offset % 64 or offset + 64 > len(data):
            raise MilError(f"{lab}: offset {offset} is not a metadata record of a {len(data)}-byte file")
        sentinel, code, size, data_offset, pad_bits = struct.unpack_from("<IIQQQ", data, offset)
        if sentinel != SENTINEL:
            raise MilError(f"{lab}: no blob metadata at offset {offset} (sentinel {sentinel:#x})")
        stored = BLOB_DTYPES.get(code)
        if stored is None:
            raise MilError(f"{lab}: unknown blob dtype code {code} at offset {offset}")
        if stored != dtype:
            raise MilError(f"{lab}: blob at offset {offset} holds {stored}, the program declares {dtype}")
        if data_offset < offset + 64 or data_offset > len(data) or size > len(data) - data_offset:
            raise MilError(f"{lab}: blob at offset {offset} claims {size} bytes at {data_offset}, past the end ({len(data)})")
        if pad_bits >= 8:
            raise MilError(f"{lab}: blob at offset {offset} has {pad_bits} padding bits (must be < 8)")
        return decode_values(bytes(data[data_offset:data_offset + size]), dtype, shape, lab)
