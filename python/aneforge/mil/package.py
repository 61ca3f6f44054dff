"""Reader of .mlpackage directories: Manifest.json, the Model protobuf and its weight files.
Everything in the package is untrusted: paths must stay inside it and sizes are bounded."""
from __future__ import annotations

import json
import os

from .blob import BlobFile
from .ir import MilError
from .proto import decode_model

MAX_MODEL_BYTES = 1 << 30
MAX_MANIFEST_BYTES = 1 << 20


def _inside(root, rel, what):
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/"):
        raise MilError(f"{root}: {what} path {rel!r} must be relative and stay inside the package")
    return os.path.join(root, rel)


def _read(path, limit, what):
    try:
        size = os.path.getsize(path)
        if size > limit:
            raise MilError(f"{path}: {what} of {size} bytes is larger than the {limit}-byte limit")
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise OSError(f"{path}: {what} not found") from None


def check_manifest(data: bytes, label: str) -> str:
    """Manifest.json bytes -> the root model's path relative to Data/ (validated)."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise MilError(f"{label}: not valid JSON ({str(e)[:100]})") from None
    if not isinstance(manifest, dict) or manifest.get("fileFormatVersion") != "1.0.0":
        version = manifest.get("fileFormatVersion") if isinstance(manifest, dict) else type(manifest).__name__
        raise MilError(f"{label}: unsupported package format {str(version)[:40]!r} (expected 1.0.0)")
    entries = manifest.get("itemInfoEntries")
    root_id = manifest.get("rootModelIdentifier")
    if not isinstance(entries, dict) or not isinstance(root_id, str) or root_id not in entries:
        raise MilError(f"{label}: rootModelIdentifier {str(root_id)[:60]!r} does not name an item")
    for key, e in entries.items():
        if not isinstance(e, dict) or not all(isinstance(e.get(k), str) for k in ("path", "name", "author", "description")):
            raise MilError(f"{label}: item {key[:60]!r} lacks a path, name, author or description string")
    rel = entries[root_id]["path"]
    _inside("Data", rel, "model")
    return rel


def read_mlpackage(path):
    """-> (spec version, Program, blobs by relative path, description inputs, outputs)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        if os.path.isfile(path) and path.endswith(".mlmodel"):
            return _from_model_file(path, os.path.join(os.path.dirname(path), "weights"))
        raise OSError(f"{path}: not an .mlpackage directory")
    manifest_path = os.path.join(path, "Manifest.json")
    rel = check_manifest(_read(manifest_path, MAX_MANIFEST_BYTES, "Manifest.json"), manifest_path)
    model_path = _inside(os.path.join(path, "Data"), rel, "model")
    return _from_model_file(model_path, os.path.join(os.path.dirname(model_path), "weights"))


def _from_model_file(model_path, weights_dir):
    data = _read(model_path, MAX_MODEL_BYTES, "model file")
    spec, prog, ins, outs = decode_model(data, model_path)
    blobs = _LazyBlobs(weights_dir)
    return spec, prog, blobs, ins, outs


class _LazyBlobs(dict):
    """Weight files under weights/, opened when a constant first refers to them."""

    def __init__(self, weights_dir):
        super().__init__()
        self.weights_dir = weights_dir

    def __contains__(self, key):
        return self._load(key) is not None

    def __getitem__(self, key):
        b = self._load(key)
        if b is None:
            raise KeyError(key)
        return b

    def _load(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if not key.startswith("weights/"):
            return None
        path = _inside(self.weights_dir, key[len("weights/"):], "weight file")
        if not os.path.isfile(path):
            return None
        b = BlobFile(path, label=path)
        dict.__setitem__(self, key, b)
        return b
