"""Decoder of the Core ML Model protobuf (Model.proto / MIL.proto field numbers) into the
interpreter's Program. A model file is untrusted: every length is checked against the bytes
left, nesting is bounded, and unknown fields are skipped as the wire format allows."""
from __future__ import annotations

import struct

import numpy as np

from .blob import decode_values
from .ir import NUMPY_DTYPES, Block, Function, MilError, Op, Program, TensorType, check_shape, opset_number
from .text import BlobRef

DATA_TYPES = {
    1: "bool", 2: "string", 10: "fp16", 11: "fp32", 12: "fp64", 13: "bf16", 21: "int8", 22: "int16",
    23: "int32", 24: "int64", 25: "int4", 31: "uint8", 32: "uint16", 33: "uint32", 34: "uint64",
    35: "uint4", 36: "uint2", 37: "uint1", 38: "uint6", 39: "uint3", 40: "fp8e4m3fn", 41: "fp8e5m2",
}
ARRAY_TYPES = {65568: "fp32", 65600: "fp64", 131104: "int32", 65552: "fp16", 131080: "int8"}
MAX_DEPTH = 64


class WireError(MilError):
    pass


def _varint(buf, pos, end):
    result = shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def fields(buf):
    """(field number, wire type, value) for each field of one message; a length-delimited
    value is a memoryview of exactly its bytes."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):  # a message field with a scalar wire type
        raise WireError(f"a field that should hold a message holds a {type(buf).__name__}")
    buf = memoryview(buf)
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise WireError("field number 0")
        if wt == 0:
            v, pos = _varint(buf, pos, end)
        elif wt == 1:
            if pos + 8 > end:
                raise WireError("truncated 64-bit field")
            v, pos = bytes(buf[pos:pos + 8]), pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos, end)
            if n > end - pos:
                raise WireError(f"field {num} claims {n} bytes, {end - pos} left")
            v, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            if pos + 4 > end:
                raise WireError("truncated 32-bit field")
            v, pos = bytes(buf[pos:pos + 4]), pos + 4
        else:
            raise WireError(f"unsupported wire type {wt} (field {num})")
        yield num, wt, v


def _int(v) -> int:
    if not isinstance(v, int):
        raise WireError("a field that should hold an integer holds bytes")
    return v


def _string(v) -> str:
    if isinstance(v, int):
        raise WireError("a field that should hold a string holds an integer")
    try:
        return bytes(v).decode("utf-8")
    except (UnicodeDecodeError, TypeError):
        raise WireError("a string field is not valid UTF-8") from None


def _packed_varints(wt, v):
    if wt == 0:
        return [v]
    out, pos, end = [], 0, len(v)
    while pos < end:
        x, pos = _varint(v, pos, end)
        out.append(x)
    return out


def _signed(x, bits=64):
    return x - (1 << bits) if x >= 1 << (bits - 1) else x


def _repeated(msg, fmt):
    """values=1 of a Repeated* message, packed or not."""
    vals = []
    for num, wt, v in fields(msg):
        if num != 1:
            continue
        if fmt == "varint":
            vals.extend(_packed_varints(wt, v))
        elif fmt in ("f", "d"):
            size = 4 if fmt == "f" else 8
            raw = bytes(v)
            if len(raw) % size:
                raise WireError("packed floats of a size not a multiple of their width")
            vals.extend(struct.unpack(f"<{len(raw) // size}{fmt}", raw))
        elif fmt == "bytes":
            vals.append(bytes(v))
        else:
            vals.append(_string(v))
    return vals


class _Decoder:
    def __init__(self, source):
        self.source = source

    def value_type(self, buf, depth=0) -> TensorType:
        if depth > MAX_DEPTH:
            raise WireError("value types nested too deeply")
        for num, wt, v in fields(buf):
            if num == 1:
                return self.tensor_type(v)
            if num == 5:  # stateType { wrappedType = 1 }
                for n2, _, v2 in fields(v):
                    if n2 == 1:
                        inner = self.value_type(v2, depth + 1)
                        return TensorType(inner.dtype, inner.shape, "state")
            if num in (2, 3, 4):
                return TensorType("", (), {2: "list", 3: "tuple", 4: "dict"}[num])
        raise WireError("empty value type")

    def tensor_type(self, buf) -> TensorType:
        dtype, rank, dims = None, 0, []
        for num, wt, v in fields(buf):
            if num == 1:
                dtype = DATA_TYPES.get(_int(v))
                if dtype is None:
                    raise WireError(f"unknown data type {v}")
            elif num == 2:
                rank = _signed(_int(v))
            elif num == 3:
                size = None
                for n2, _, v2 in fields(v):
                    if n2 == 1:
                        for n3, _, v3 in fields(v2):
                            if n3 == 1:
                                size = _int(v3)
                dims.append(size)
        if dtype is None:
            raise WireError("tensor type without a data type")
        if rank >= 0 and dims and len(dims) != rank:
            raise WireError(f"tensor type of rank {rank} lists {len(dims)} dimensions")
        return TensorType(dtype, check_shape(dims, self.source))

    def value(self, buf):
        """A Value -> (TensorType, python value | BlobRef)."""
        t, imm, blob = None, None, None
        for num, wt, v in fields(buf):
            if num == 2:
                t = self.value_type(v)
            elif num == 3:
                imm = v
            elif num == 5:
                name, off = "", 0
                for n2, _, v2 in fields(v):
                    if n2 == 1:
                        name = _string(v2)
                    elif n2 == 2:
                        off = _int(v2)
                blob = BlobRef(name, off)
        if t is None:
            raise WireError("value without a type")
        if blob is not None:
            return t, blob
        if imm is None:
            raise WireError("value without data")
        for num, wt, v in fields(imm):
            if num == 1:
                return t, self.tensor_value(t, v)
        raise WireError(f"immediate value of type {t} is not a tensor (tuple/list/dict values are not supported)")

    def tensor_value(self, t: TensorType, buf):
        where = f"{self.source}: constant {t}"
        for num, wt, v in fields(buf):
            if num == 1:
                vals = _repeated(v, "f")
            elif num == 2:
                vals = [_signed(x, 64) for x in _repeated(v, "varint")]
            elif num == 3:
                vals = [bool(x) for x in _repeated(v, "varint")]
            elif num == 4:
                vals = _repeated(v, "str")
                if t.dtype != "string":
                    raise WireError(f"{where}: strings given for a {t.dtype} tensor")
                if not t.shape:
                    if len(vals) != 1:
                        raise WireError(f"{where}: scalar string with {len(vals)} values")
                    return vals[0]
                return np.array(vals, dtype=object).reshape(t.shape)
            elif num == 5:
                vals = [_signed(x, 64) for x in _repeated(v, "varint")]
            elif num == 6:
                vals = _repeated(v, "d")
            elif num == 7:
                raw = b"".join(_repeated(v, "bytes"))
                return decode_values(raw, t.dtype, t.shape, where)
            else:
                continue
            if t.dtype not in NUMPY_DTYPES:
                raise WireError(f"{where}: dtype {t.dtype} is not supported")
            n = int(np.prod(t.shape)) if t.shape else 1
            if len(vals) != n:
                raise WireError(f"{where}: {len(vals)} values for {n} elements")
            with np.errstate(over="ignore"):
                return np.array(vals, dtype=np.float64 if t.dtype.startswith("fp") else None).astype(
                    NUMPY_DTYPES[t.dtype]).reshape(t.shape)
        raise WireError(f"{where}: empty tensor value")

    def named_value_type(self, buf):
        name, t = "", None
        for num, wt, v in fields(buf):
            if num == 1:
                name = _string(v)
            elif num == 2:
                t = self.value_type(v)
        if t is None:
            raise WireError(f"'{name}' has no type")
        return name, t

    def operation(self, buf, depth) -> Op:
        op = Op("", "")
        for num, wt, v in fields(buf):
            if num == 1:
                op.type = _string(v)
            elif num == 2:
                key, args = "", []
                for n2, _, v2 in fields(v):
                    if n2 == 1:
                        key = _string(v2)
                    elif n2 == 2:
                        for n3, _, v3 in fields(v2):
                            if n3 == 1:
                                for n4, _, v4 in fields(v3):
                                    if n4 == 1:
                                        args.append(("var", _string(v4)))
                                    elif n4 == 2:
                                        args.append(("value", self.value(v4)))
                if key in op.inputs:
                    raise WireError(f"op {op.type}: input '{key}' given twice")
                op.inputs[key] = args
            elif num == 3:
                op.outputs.append(self.named_value_type(v))
            elif num == 4:
                op.blocks.append(self.block(v, depth + 1))
            elif num == 5:
                key, val = "", None
                for n2, _, v2 in fields(v):
                    if n2 == 1:
                        key = _string(v2)
                    elif n2 == 2:
                        val = self.value(v2)
                if val is None:
                    raise WireError(f"op {op.type}: attribute '{key}' has no value")
                op.attributes[key] = val
        name = op.attributes.pop("name", None)
        op.name = name[1] if name else (op.outputs[0][0] if op.outputs else op.type)
        return op

    def block(self, buf, depth=0) -> Block:
        if depth > MAX_DEPTH:
            raise WireError("blocks nested too deeply")
        b = Block()
        for num, wt, v in fields(buf):
            if num == 1:
                b.inputs.append(self.named_value_type(v))
            elif num == 2:
                b.outputs.append(_string(v))
            elif num == 3:
                b.ops.append(self.operation(v, depth))
        return b

    def function(self, name, buf) -> Function:
        f = Function(name, "")
        blocks = {}
        for num, wt, v in fields(buf):
            if num == 1:
                f.inputs.append(self.named_value_type(v))
            elif num == 2:
                f.opset = _string(v)
            elif num == 3:
                key, blk = "", None
                for n2, _, v2 in fields(v):
                    if n2 == 1:
                        key = _string(v2)
                    elif n2 == 2:
                        blk = v2
                blocks[key] = blk
        if f.opset not in blocks:
            raise WireError(f"function '{name}': no block for its opset '{f.opset}' (has {sorted(blocks)})")
        opset_number(f.opset)
        f.block = self.block(blocks[f.opset])
        return f

    def program(self, buf) -> Program:
        prog = Program("", source=self.source)
        for num, wt, v in fields(buf):
            if num == 1:
                if _int(v) != 1:
                    raise WireError(f"ML Program version {v}, only version 1 exists")
                prog.version = "1"
            elif num == 2:
                name, fbuf = "", None
                for n2, _, v2 in fields(v):
                    if n2 == 1:
                        name = _string(v2)
                    elif n2 == 2:
                        fbuf = v2
                if fbuf is None:
                    raise WireError(f"function '{name}' is empty")
                prog.functions[name] = self.function(name, fbuf)
        prog.opset_number = opset_number(prog.main.opset)
        return prog


def _feature(buf):
    name, shape, dtype = "", (), None
    for num, wt, v in fields(buf):
        if num == 1:
            name = _string(v)
        elif num == 3:
            for n2, _, v2 in fields(v):
                if n2 == 5:
                    dims = []
                    for n3, wt3, v3 in fields(v2):
                        if n3 == 1:
                            dims.extend(_signed(x) for x in _packed_varints(wt3, v3))
                        elif n3 == 2:
                            dtype = ARRAY_TYPES.get(_int(v3), str(v3))
                    shape = tuple(dims)
    return name, shape, dtype


def decode_model(data: bytes, source: str = "model"):
    """Serialized Model -> (specification version, Program, inputs, outputs), where inputs
    and outputs are the description's (name, shape, dtype) lists."""
    spec, prog, ins, outs = 0, None, [], []
    try:
        for num, wt, v in fields(data):
            if num == 1:
                spec = _int(v)
            elif num == 2:
                for n2, _, v2 in fields(v):
                    if n2 == 1:
                        ins.append(_feature(v2))
                    elif n2 == 10:
                        outs.append(_feature(v2))
            elif num == 502:
                prog = _Decoder(source).program(v)
    except WireError as e:
        raise MilError(f"{source}: malformed model protobuf: {e}") from None
    except (TypeError, KeyError, IndexError, OverflowError, RecursionError, struct.error) as e:  # a field of an unexpected kind
        raise MilError(f"{source}: malformed model protobuf ({type(e).__name__}: {str(e)[:100]})") from None
    if prog is None:
        raise MilError(f"{source}: not an ML Program (no mlProgram field); only ML Programs can run on the mil backend")
    return spec, prog, ins, outs
