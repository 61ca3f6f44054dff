"""TextEncoder: a BERT-family model loaded from a directory, compiled once per (batch,
sequence-length bucket) and cached; tokenization with the model's tokenizer.json."""
from __future__ import annotations

import collections
import os

import numpy as np

from ..compiler.build import compile as _compile
from . import bert
from ._files import Weights, read_json

BUCKETS = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512)  # steps of at most 1.5x: padding wastes < 1/3


class TextEncoder:
    """``enc(input_ids, attention_mask=None, token_type_ids=None)`` runs token ids (NumPy
    int arrays (batch, length)); ``enc.encode(sentences)`` tokenizes, runs and pools.

    A sentence-transformers model (modules.json) returns its sentence embedding, pooled and
    normalized as its configuration says; a plain encoder returns the last hidden state.
    Shapes are static on the engine: each call is padded (and masked) to the next length
    bucket, and each (batch, bucket) is compiled once and cached."""

    def __init__(self, path, tensors, cfg, compile_options=None, max_programs=8, torch_model=None):
        """``tensors`` (a BERT checkpoint, built by bert.py), or ``torch_model`` (any
        architecture, through af.from_torch's ATen table)."""
        self.path = path
        self._torch = torch_model
        if torch_model is None:
            self.config = cfg
            bert.check_config(cfg, os.path.join(path, "config.json"))
            prefix = "bert." if any(k.startswith("bert.") for k in tensors) else ""
            self._w = Weights(tensors, path, prefix)
        else:
            from .exported import text_config
            self.config = text_config(torch_model, cfg)
        self._options = dict(compile_options or {})
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self.max_programs = max_programs
        self.pooling, self.normalize, self.max_seq_length = None, False, self.config["max_position_embeddings"]
        self._read_sentence_transformers_config()
        self.buckets = tuple(b for b in BUCKETS if b < self.max_seq_length) + (self.max_seq_length,)
        self.tokenizer = self._tokenizer()
        # Every tensor present with its shape: the graph is built once now (not compiled), so a
        # broken checkpoint fails at af.load, naming the tensor.
        if torch_model is None:
            bert.build(self._w, cfg, 1, min(8, cfg["max_position_embeddings"]), self.pooling, self.normalize)
        if self._options.get("calibration") is not None:
            self._calibrate()
        elif self._options.get("compress") is not None:
            self._gate_on_random_tokens()

    def _calibrate(self):
        """compress= with calibration= sentences: the gate and data-aware rounding run once, on
        one program holding every calibration sentence; every (batch, bucket) program then
        holds exactly the weights they chose (compress=net.packed_weights())."""
        sentences = self._options.pop("calibration")
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences) or not sentences:
            raise ValueError("calibration: a TextEncoder calibrates on a list of sentences (strings)")
        if self.tokenizer is None:
            raise FileNotFoundError(f"{self.path} has no tokenizer.json: calibration needs one")
        enc = self.tokenizer.encode_batch(list(sentences))
        n = self._bucket(min(self.max_seq_length, max(len(e.ids) for e in enc)))
        ids, mask, types = (np.zeros((len(enc), n), t) for t in (np.int32, np.float32, np.int32))
        for r, e in enumerate(enc):
            k = min(len(e.ids), n)
            ids[r, :k], mask[r, :k], types[r, :k] = e.ids[:k], e.attention_mask[:k], e.type_ids[:k]
        ins, outs = self._build(len(enc), n)
        if "sentence_embedding" in outs:  # what encode() returns is what the gate measures
            outs = {"sentence_embedding": outs["sentence_embedding"]}
        self._hold(_compile(outs, **self._options, calibration=[_feeds(ins, ids, mask, types)]))

    def _gate_on_random_tokens(self, batch=8, length=32):
        """compress= without calibration: the data-free gate runs once, on random token ids
        (uniform over the vocabulary, every position attended), and every (batch, bucket)
        program holds the weights it chose. Real sentences (calibration=) measure better."""
        from ..compiler.build import compile_defaults, compile_graph
        n = self._bucket(min(length, self.max_seq_length))
        rng = np.random.default_rng(0)
        ids = rng.integers(0, self.config["vocab_size"], (batch, n)).astype(np.int32)
        mask, types = np.ones((batch, n), np.float32), np.zeros((batch, n), np.int32)
        ins, outs = self._build(batch, n)
        if "sentence_embedding" in outs:
            outs = {"sentence_embedding": outs["sentence_embedding"]}
        options = {k: v for k, v in self._options.items() if k != "calibration"}
        self._hold(compile_graph(outs, **compile_defaults(**options), synthetic=[_feeds(ins, ids, mask, types)]))

    def _hold(self, net):
        """Every (batch, bucket) program holds the weights the gate chose on ``net``."""
        self.calibration_report = net.compression_report()
        self._options["compress"] = net.packed_weights()
        for k in ("min_cosine", "max_weight_error", "weight_rounding"):
            self._options.pop(k, None)

    def _read_sentence_transformers_config(self):
        modules = os.path.join(self.path, "modules.json")
        if not os.path.isfile(modules):
            return
        for m in read_json(modules, "sentence-transformers modules.json"):
            kind = str(m.get("type", "")).rsplit(".", 1)[-1] if isinstance(m, dict) else ""
            if kind == "Pooling":
                pc = read_json(os.path.join(self.path, m.get("path", ""), "config.json"), "pooling config")
                self.pooling = _pooling_mode(pc, self.path)
            elif kind == "Normalize":
                self.normalize = True
            elif kind not in ("Transformer", ""):
                raise ValueError(f"{self.path}: sentence-transformers module {m.get('type')!r} is not supported")
        sb = os.path.join(self.path, "sentence_bert_config.json")
        if os.path.isfile(sb):
            n = read_json(sb, "sentence_bert_config.json").get("max_seq_length")
            if isinstance(n, int) and 1 <= n <= self.max_seq_length:
                self.max_seq_length = n

    def _tokenizer(self):
        tj = os.path.join(self.path, "tokenizer.json")
        if not os.path.isfile(tj):
            return None
        from tokenizers import Tokenizer
        try:
            tok = Tokenizer.from_file(tj)
        except Exception as e:  # noqa: BLE001 - the library's own parse errors
            raise ValueError(f"cannot read the tokenizer {tj}: {e}") from None
        tok.enable_truncation(max_length=self.max_seq_length)
        tok.no_padding()
        return tok

    # -- programs --
    def compile_for(self, batch: int, length: int):
        """The program for a (batch, bucket) (compiled now if needed)."""
        bucket = self._bucket(length)
        key = (int(batch), bucket)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        ins, outs = self._build(key[0], bucket)
        net = _compile(outs, inputs=list(ins), **self._options)
        self._cache[key] = net
        while len(self._cache) > self.max_programs:
            self._cache.popitem(last=False)
        return net

    def _build(self, batch: int, length: int):
        """(inputs, outputs) of the program for (batch, length): input_ids, attention_mask
        (token_type_ids when the model takes them); last_hidden_state (sentence_embedding)."""
        if self._torch is None:
            return bert.build(self._w, self.config, batch, length, pooling=self.pooling, normalize=self.normalize)
        from .exported import build_text
        return build_text(self._torch, batch, length, self.pooling, self.normalize)

    def _batches(self, lengths, order, batch_size):
        """Sentences sorted by length, cut into batches of at most batch_size that also end
        where the length bucket grows, once a batch holds a quarter of batch_size: short
        sentences are not padded to the longest one's bucket (what sentence-transformers pads
        to the longest of a batch, this pads to buckets of one length range each)."""
        batch, first = [], None
        for i, n in zip(order, lengths):
            b = self._bucket(min(n, self.max_seq_length))
            if batch and (len(batch) == batch_size or (b != first and len(batch) >= max(1, batch_size // 4))):
                yield batch
                batch = []
            if not batch:
                first = b
            batch.append(i)
        if batch:
            yield batch

    def _bucket(self, length: int) -> int:
        if length < 1 or length > self.max_seq_length:
            raise ValueError(f"sequence length {length} is outside 1..{self.max_seq_length} (max_seq_length)")
        return next(b for b in self.buckets if b >= length)

    def run(self, input_ids, attention_mask=None, token_type_ids=None) -> dict:
        """All outputs (last_hidden_state, and sentence_embedding when pooled), trimmed back
        to the given length."""
        ids = np.asarray(input_ids)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"input_ids must be integer token ids of shape (batch, length), got {ids.dtype} {ids.shape}")
        V = self.config["vocab_size"]
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ValueError(f"input_ids must be in 0..{V - 1}, got values {ids.min()}..{ids.max()}")
        b, n = ids.shape
        mask = np.ones((b, n), np.float32) if attention_mask is None else np.asarray(attention_mask, np.float32).reshape(b, n)
        types = np.zeros((b, n), np.int32) if token_type_ids is None else np.asarray(token_type_ids).reshape(b, n)
        bucket = self._bucket(n)
        pad = bucket - n
        pid = self.config.get("pad_token_id", 0) or 0
        ids_p = np.pad(ids.astype(np.int32), ((0, 0), (0, pad)), constant_values=pid)
        net = self.compile_for(b, n)
        out = net(**_feeds(net, ids_p, np.pad(mask, ((0, 0), (0, pad))), np.pad(types.astype(np.int32), ((0, 0), (0, pad)))))
        out["last_hidden_state"] = out["last_hidden_state"][:, :n]
        return out

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None) -> np.ndarray:
        out = self.run(input_ids, attention_mask, token_type_ids)
        return out.get("sentence_embedding", out["last_hidden_state"])

    def encode(self, sentences, batch_size: int = 32, normalize: bool | None = None) -> np.ndarray:
        """Sentence embeddings (len(sentences), hidden): tokenized, run in batches of similar
        length, pooled as the model's configuration says (mean pooling without one);
        ``normalize`` overrides the configuration's Normalize."""
        if isinstance(sentences, str):
            sentences = [sentences]
        if self.tokenizer is None:
            raise FileNotFoundError(f"{self.path} has no tokenizer.json: call the encoder with token ids instead")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if normalize is False and self.normalize:
            raise ValueError("normalize=False: this model's configuration normalizes inside the program")
        dim = self.config["hidden_size"]
        if not sentences:
            return np.zeros((0, dim), np.float32)
        enc = self.tokenizer.encode_batch(list(sentences))
        order = sorted(range(len(enc)), key=lambda i: len(enc[i].ids))
        out = np.zeros((len(enc), dim), np.float32)
        pooled_in_program = False
        for idx in self._batches([len(enc[i].ids) for i in order], order, batch_size):
            n = max(len(enc[i].ids) for i in idx)
            b = 1 << (len(idx) - 1).bit_length()  # batch sizes in powers of two: fewer programs
            ids = np.zeros((b, n), np.int32)
            mask = np.zeros((b, n), np.float32)
            types = np.zeros((b, n), np.int32)
            for r, i in enumerate(idx):
                e = enc[i]
                ids[r, :len(e.ids)], mask[r, :len(e.ids)], types[r, :len(e.ids)] = e.ids, e.attention_mask, e.type_ids
            mask[len(idx):, 0] = 1  # filler rows: one token, never read
            res = self.run(ids, mask, types)
            if "sentence_embedding" in res:
                vec = res["sentence_embedding"]
                pooled_in_program = True
            else:  # no pooling configured: mean over the tokens
                m = mask[:, :, None]
                vec = (res["last_hidden_state"] * m).sum(1) / np.maximum(m.sum(1), 1)
            out[idx] = vec[:len(idx)]
        want = self.normalize if normalize is None else normalize
        if want and not (self.normalize and pooled_in_program):  # not already normalized in the program
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def summary(self, file=None) -> str:
        lines = [f"TextEncoder {os.path.basename(self.path.rstrip('/'))}: {self.config['num_hidden_layers']} layers, "
                 f"hidden {self.config['hidden_size']}, pooling {self.pooling or 'none'}"
                 f"{', normalized' if self.normalize else ''}, max_seq_length {self.max_seq_length}",
                 f"  length buckets: {', '.join(map(str, self.buckets))}",
                 f"  compiled (batch, bucket): {', '.join(map(str, self._cache)) or 'none yet'}"]
        text = "\n".join(lines) + "\n"
        print(text, end="", file=file)
        return text


def _pooling_mode(pc: dict, path: str) -> str:
    """"mean" or "cls" from a sentence-transformers pooling config: the boolean keys of the
    versions before 6 (``pooling_mode_mean_tokens``) or 6.x's ``pooling_mode`` ("mean", or a
    list of modes)."""
    if "pooling_mode" in pc:
        mode = pc["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else list(mode) if isinstance(mode, (list, tuple)) else [mode]
        if len(modes) == 1 and modes[0] in ("mean", "cls"):
            if pc.get("include_prompt", True) is False:
                raise ValueError(f"{path}: pooling with include_prompt=false is not supported")
            return modes[0]
        raise ValueError(f"{path}: pooling_mode {mode!r} is not supported (mean, cls)")
    if pc.get("pooling_mode_mean_tokens"):
        return "mean"
    if pc.get("pooling_mode_cls_token"):
        return "cls"
    modes = [k for k, v in pc.items() if k.startswith("pooling_mode") and v]
    raise ValueError(f"{path}: pooling {modes} is not supported (mean tokens, cls token)")


def _feeds(inputs, ids, mask, types) -> dict:
    """The feeds by input name: the program's inputs (Tensors of a graph, or a Net's
    (name, shape, dtype)) decide which of the three it takes and the mask's dtype."""
    specs = [(t.name, t.dtype) for t in inputs] if not hasattr(inputs, "inputs") else \
        [(n, d) for n, _, d in inputs.inputs]
    given = {"input_ids": ids.astype(np.int32), "attention_mask": mask, "token_type_ids": types.astype(np.int32)}
    return {n: given[n].astype(np.int32) if d == "int32" else given[n].astype(np.float32) for n, d in specs}
