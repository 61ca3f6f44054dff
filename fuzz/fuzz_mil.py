#!/usr/bin/env python3
"""libFuzzer targets (atheris) for the mil backend's readers of untrusted files:

    python fuzz/fuzz_mil.py text|proto|blob|manifest CORPUS_DIR [libFuzzer flags]

text: MIL text -> parse -> load (constants checked) -> run on zeros when small;
proto: Model protobuf bytes -> decode -> load -> run; blob: a MILBlob v2 file, read at each
metadata offset it names with the dtype and size it declares; manifest: Manifest.json.
A clear error (ValueError / OSError family) is the expected outcome; any other exception,
a hang or a crash is a finding. scripts/fuzz.sh runs them.
"""
import struct
import sys

import atheris

with atheris.instrument_imports():
    import numpy as np

    from aneforge.mil import blob as milblob
    from aneforge.mil import interp, ir, package, proto, storage, text
    from aneforge.mil import ops  # noqa: F401

RUN_LIMIT = 1 << 16  # elements: larger programs are loaded but not run


def _run(prog, blobs):
    it = interp.Interpreter(prog, blobs, storage.Storage())
    feeds = {}
    total = 0
    for name, t in it.fn.inputs:
        if t.kind != "tensor" or not t.is_static or t.dtype not in ir.NUMPY_DTYPES:
            return
        n = int(np.prod(t.shape)) if t.shape else 1
        total += n
        feeds[name] = np.full(t.shape, 0.5, ir.NUMPY_DTYPES[t.dtype])
    for o in it.fn.block.ops:
        for _, t in o.outputs:
            if not t.is_static:
                return
            total += int(np.prod(t.shape)) if t.shape else 1
    if total <= RUN_LIMIT:
        it.run(feeds)


def fuzz_text(data):
    try:
        prog = text.parse(data.decode("utf-8", "replace"), "fuzz")
        _run(prog, {})
    except (ValueError, OSError):
        pass


def fuzz_proto(data):
    try:
        _, prog, _, _ = proto.decode_model(data, "fuzz")
        _run(prog, {})
    except (ValueError, OSError):
        pass


def fuzz_blob(data):
    try:
        b = milblob.BlobFile(data=data, label="fuzz")
    except (ValueError, OSError):
        return
    for off in range(64, min(len(data), 64 * 16), 64):
        if len(data) < off + 16:
            break
        code, size = struct.unpack_from("<IQ", data, off + 4)
        dtype = milblob.BLOB_DTYPES.get(code, "fp16")
        width = ir.SUBBYTE_BITS.get(dtype, 8 * np.dtype(ir.NUMPY_DTYPES.get(dtype, np.uint8)).itemsize)
        n = min(int(size) * 8 // max(width, 1), 1 << 20)
        try:
            b.read(off, dtype, (n,), "fuzz")
        except (ValueError, OSError):
            pass


def fuzz_manifest(data):
    try:
        package.check_manifest(data, "fuzz")
    except (ValueError, OSError):
        pass


TARGETS = {"text": fuzz_text, "proto": fuzz_proto, "blob": fuzz_blob, "manifest": fuzz_manifest}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} CORPUS [libFuzzer flags]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
