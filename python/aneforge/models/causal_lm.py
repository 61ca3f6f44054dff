"""Decoder-only language models with a KV cache: af.load of a Hugging Face directory whose
architecture is a causal LM (GPT-2, Llama, Mistral, Qwen2, Qwen3, Phi-3, Gemma). Programs
from one builder: prefill buckets (8 and 32 prompt tokens) and decode (one token). Each
layer's K and V caches are held inputs of every program; a step outputs its tokens' keys and values, which
the host writes into the caches in place, and attends over the cached keys before it and its
own. Grouped-query attention groups the query heads per KV head (no expanded K/V). Weights
are read from the checkpoint one tensor at a time straight into fp16 bits, which all the
programs read in place. Sampling runs on the host from the last token's logits."""
from __future__ import annotations

import math
import os

import numpy as np

from .. import _core
from ..graph import functional as _F
from ..graph.tensor import Tensor, borrowing_arrays
from ._files import Weights, named, open_weights

FAMILIES = ("gpt2", "llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3_text")
_GEMMAS = ("gemma", "gemma2", "gemma3_text")
_NEG = -1e30  # masked scores: exp() of it is 0 in fp32 (in fp16 it rounds to -inf, also 0)


def is_causal_lm(cfg: dict) -> bool:
    """A directory saved from a *ForCausalLM / *LMHeadModel class of a family built here, or
    a Gemma 3 image-text checkpoint (whose language model is loaded)."""
    archs = cfg.get("architectures") or []
    if _gemma3_text_config(cfg) is not None:
        return True
    return cfg.get("model_type") in FAMILIES and any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)


def _gemma3_text_config(cfg: dict):
    """The language model's config of a Gemma 3 image-text checkpoint
    (Gemma3ForConditionalGeneration: its weights under language_model.), else None."""
    archs = cfg.get("architectures") or []
    if cfg.get("model_type") != "gemma3" or "Gemma3ForConditionalGeneration" not in archs:
        return None
    text = dict(cfg.get("text_config") or {})
    text["model_type"] = "gemma3_text"
    text.setdefault("tie_word_embeddings", cfg.get("tie_word_embeddings", True))
    for k in ("eos_token_id", "bos_token_id", "pad_token_id"):
        if k in cfg:
            text.setdefault(k, cfg[k])
    return text


class _Spec:
    """The sizes and options a family's config gives, under one set of names."""

    gemma = post_norms = qk_norm = False
    attn_softcap = final_softcap = window = None

    def __init__(self, cfg: dict, path: str):
        self.family = cfg["model_type"]
        g = cfg.get
        if self.family == "gpt2":
            self.hidden, self.layers, self.heads = g("n_embd"), g("n_layer"), g("n_head")
            self.kv_heads, self.positions = self.heads, g("n_positions")
            self.eps, self.tied = g("layer_norm_epsilon", 1e-5), True
            self.layer_types = [False] * (self.layers if isinstance(self.layers, int) else 0)
        else:
            self.hidden, self.layers, self.heads = g("hidden_size"), g("num_hidden_layers"), g("num_attention_heads")
            self.kv_heads = g("num_key_value_heads") or self.heads
            self.positions = g("max_position_embeddings")
            self.eps, self.tied = g("rms_norm_eps", 1e-6), bool(g("tie_word_embeddings", False))
            self.gemma = self.family in _GEMMAS
            # Gemma 2 and 3: norms after attention and the MLP too, scores scaled by
            # query_pre_attn_scalar, tanh soft-capping (Gemma 2); Gemma 3 and Qwen3 norm q and k.
            self.post_norms = self.family in ("gemma2", "gemma3_text")
            self.qk_norm = self.family in ("qwen3", "gemma3_text")
            self.attn_softcap = g("attn_logit_softcapping") if self.post_norms else None
            self.final_softcap = g("final_logit_softcapping") if self.post_norms else None
            self.layer_types = self._layer_types(g, path)
            # transformers 5 writes rope_parameters (per layer type for Gemma 3); older configs
            # rope_theta and rope_scaling (and Gemma 3 rope_local_base_freq)
            rp = g("rope_parameters") or {}
            if any(t in rp for t in ("full_attention", "sliding_attention")):
                self.ropes = {t: self._rope(rp.get(t) or {}, g, path) for t in ("full_attention", "sliding_attention")}
            else:
                full = self._rope(rp or dict(g("rope_scaling") or {}, rope_theta=g("rope_theta", 10000.0)), g, path)
                local = full
                if self.family == "gemma3_text":
                    full = self._rope(dict(rp or g("rope_scaling") or {}, rope_theta=rp.get("rope_theta", g(
                        "rope_theta", 1e6))), g, path)
                    local = self._rope({"rope_theta": g("rope_local_base_freq", 10000.0)}, g, path)
                self.ropes = {"full_attention": full, "sliding_attention": local}
            self.partial_rotary = float(rp.get("partial_rotary_factor", g("partial_rotary_factor", 1.0)))
            act = g("hidden_activation") or g("hidden_act", "silu")
            self.act = {"silu": "silu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh"}.get(act)
            if self.act is None or (self.gemma and self.act != "gelu_tanh"):
                raise NotImplementedError(f"af.load: {path}: hidden_act {act!r} is not supported (silu, and "
                                          "gelu_pytorch_tanh for Gemma)")
        self.vocab = g("vocab_size")
        sizes = (self.hidden, self.layers, self.heads, self.kv_heads, self.vocab)
        if not all(isinstance(v, int) and v > 0 for v in sizes):
            raise ValueError(f"af.load: {path}: config.json lacks valid sizes (hidden, layers, heads, kv heads, vocab)")
        self.head_dim = g("head_dim") or self.hidden // self.heads
        self.scale = float(g("query_pre_attn_scalar") if self.post_norms else self.head_dim) ** -0.5
        if self.heads % self.kv_heads:
            raise ValueError(f"af.load: {path}: {self.heads} heads do not group over {self.kv_heads} KV heads")
        eos = g("eos_token_id")
        self.eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])

    def _layer_types(self, g, path):
        """Per layer: True where it attends over a sliding window of self.window positions."""
        window = g("sliding_window") if g("use_sliding_window", True) else None
        n = self.layers if isinstance(self.layers, int) and self.layers > 0 else 0
        types = list(g("layer_types") or [])
        if not types and self.family == "gemma2":  # configs from before layer_types: every other layer
            types = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]
        if not types and self.family == "gemma3_text":
            pattern = int(g("sliding_window_pattern", 6))
            types = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]
        if not types and self.family == "mistral" and window:
            types = ["sliding_attention"] * n
        types = types or ["full_attention"] * n
        other = sorted(set(types) - {"full_attention", "sliding_attention"})
        if other:
            raise NotImplementedError(f"af.load: {path}: layer types {other} are not supported (full and sliding "
                                      "attention are)")
        if len(types) != n:
            raise ValueError(f"af.load: {path}: layer_types has {len(types)} entries for {n} layers")
        if "sliding_attention" in types and not (isinstance(window, int) and window > 0):
            raise ValueError(f"af.load: {path}: sliding attention layers without a sliding_window")
        self.window = window if "sliding_attention" in types else None
        return [t == "sliding_attention" for t in types]

    @staticmethod
    def _rope(params, g, path):
        """(theta, type, params) of one RoPE configuration."""
        kind = params.get("rope_type", params.get("type", "default"))
        if kind not in ("default", "linear", "llama3"):
            raise NotImplementedError(f"af.load: {path}: RoPE type {kind!r} is not supported "
                                      "(default, linear and llama3 are)")
        return float(params.get("rope_theta", g("rope_theta", 10000.0))), kind, dict(params)


class CausalLM:
    """``lm.generate(ids, max_new_tokens)`` returns the prompt and the new tokens, as
    transformers' generate does; ``lm.stream(...)`` yields each new token as it comes."""

    def __init__(self, path, cfg, *, max_context=None, prefill_sizes=(8, 32), compress=None, calibration=None,
                 **compile_options):
        self.path, self.config = path, cfg
        text = _gemma3_text_config(cfg)  # an image-text checkpoint: its language model, text only
        self.spec = s = _Spec(text or cfg, path)
        limit = s.positions or 2048
        self.max_context = int(max_context or min(limit, 1024))
        if not 1 <= self.max_context <= limit:
            raise ValueError(f"max_context={max_context} must be in 1..{limit} (the model's positions)")
        # Prefill buckets: a prompt runs through the largest bucket it fills, its tail through the
        # smallest one (padded); single tokens through decode.
        self.prefill_sizes = sorted({max(1, min(int(n), self.max_context)) for n in prefill_sizes} - {1})
        w = Weights(open_weights(path), path, prefix="language_model." if text else "")
        # fp16 programs hold bulk weights as fp16 bits rounded on load (as a default program
        # rounds); fp32 programs and other rounding modes take float32 arrays.
        w.fp16 = (compile_options.get("precision", "fp16") == "fp16"
                  and compile_options.get("rounding", "nearest_even") == "nearest_even"
                  and compile_options.get("flush_subnormals", True))
        if s.family != "gpt2" and not w.has("model.embed_tokens.weight"):
            raise ValueError(f"af.load: {path}: missing tensor 'model.embed_tokens.weight'")
        gate = {k: compile_options.pop(k) for k in ("min_cosine", "max_weight_error", "weight_rounding")
                if k in compile_options}
        if gate and compress is None:
            raise ValueError(f"{', '.join(gate)}= apply to compressed weights: give compress=")
        self._options = compile_options
        self._nets = {}
        self.tokenizer = _tokenizer(path)
        w.layer_names = []
        # The checkpoint's arrays are ours: the graphs read them in place. The graphs live
        # until all are compiled, so the programs share one fp16 copy of each weight.
        with borrowing_arrays():
            sizes = sorted({1, *self.prefill_sizes}, reverse=True)
            graphs = {n: _build(s, w, n, self.max_context) for n in sizes}
            packed = None
            for n in sizes:  # the widest first: it runs the compression gate; the others take its weights
                outs, inputs = graphs[n]
                if compress is None:
                    self._nets[n] = self._compile(outs, inputs)
                elif packed is None:
                    spec = _compress_spec(compress, sorted(set(w.layer_names)))
                    feeds = None if calibration is None else self._calibration_feeds(calibration, n)
                    self._nets[n] = self._compile(outs, inputs, compress=spec, calibration=feeds, **gate)
                    packed = self._nets[n].packed_weights()
                else:  # the same packed weights, shared with the first program
                    self._nets[n] = self._compile(outs, inputs, compress=packed or None)
        del graphs, w

    # ---- the programs --------------------------------------------------------------------
    def compression_report(self) -> dict:
        """The compression gate's report of the widest program (whose packed weights the
        others share): per layer its format, bytes and errors, and the outputs' cosine."""
        return self._nets[max(self._nets)].compression_report()

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights the programs hold (shared between them)."""
        return self._nets[1].weight_bytes

    def _calibration_feeds(self, calibration, S):
        """The widest program's inputs for each calibration text (or token id list): its first
        S tokens at position 0, the caches empty."""
        items = [calibration] if isinstance(calibration, str) else list(calibration)
        if not items:
            raise ValueError("calibration= is empty: give text or token id lists")
        s = self.spec
        feeds = []
        for item in items:
            ids = self._prompt(item)[:S]
            feed = self._feed(ids, 0, S)
            for i in range(s.layers):
                feed[f"k{i}"] = np.zeros((1, s.kv_heads, 1, self.max_context, s.head_dim), np.float32)
                feed[f"v{i}"] = np.zeros((1, s.kv_heads, 1, s.head_dim, self.max_context), np.float32)
            feeds.append(feed if S > 1 else {k: v for k, v in feed.items() if k != "last"})
        return feeds

    def _compile(self, outs, inputs, **extra):
        from ..compiler.build import compile as _compile
        net = _compile(outs, inputs=inputs, **self._options, **extra)
        # The caches stay with the programs, one buffer per cache that every program reads (the
        # first program holds it, the others share it); a step writes only its new rows.
        owner = next(iter(self._nets.values()), None)
        for i in range(self.spec.layers):
            for name in (f"k{i}", f"v{i}"):
                if owner is None:
                    net.hold_input(name)
                else:
                    net.share_input(name, owner)
        return net

    def _step(self, net, tokens, pos):
        """Run ``tokens`` (at most the net's chunk) at positions pos.. ; write their keys and
        values into the caches (which every program shares); the logits of the last token."""
        S = net.inputs[0][1][1]
        n = len(tokens)
        feed = self._feed(tokens, pos, S)
        out = net(**{k: v for k, v in feed.items() if k in {m for m, _, _ in net.inputs}})
        for name in out:
            if name != "logits":  # this step's keys (..., S, head_dim) and values (..., head_dim, S): the valid ones
                dim = 3 if name[0] == "k" else 4
                rows = out[name][..., :n, :] if dim == 3 else out[name][..., :n]
                net.write_input(name, rows, pos, dim=dim)
        return out

    def _feed(self, tokens, pos, S):
        """A program's inputs for tokens at positions pos.. (padded to S)."""
        ids = np.zeros((1, S), np.int32)
        ids[0, :len(tokens)] = tokens
        positions = np.minimum(np.arange(pos, pos + S, dtype=np.int32), self.max_context - 1)[None]
        cached = np.arange(self.max_context)[:, None]
        past = np.where(cached < pos, 0.0, _NEG).astype(np.float32).reshape(1, 1, 1, -1, 1)
        feed = {"input_ids": ids, "positions": positions, "past_mask": past,
                "last": np.array([len(tokens) - 1], np.int32)}
        if self.spec.window:  # cached key j to the query at position pos + t: j < pos and j > pos + t - window
            near = (cached < pos) & (cached > pos + np.arange(S)[None, :] - self.spec.window)
            feed["window_mask"] = np.where(near, 0.0, _NEG).astype(np.float32).reshape(1, 1, 1, self.max_context, S)
        return feed

    def _run_tokens(self, tokens, pos):
        """Feed tokens from position pos: the largest prefill bucket they fill, a padded smaller
        one for a tail, single tokens through decode. Keys at pos and after are masked, so a new
        prompt needs no cleared cache."""
        logits = None
        i = 0
        while i < len(tokens):
            left = len(tokens) - i
            fits = [n for n in self.prefill_sizes if pos + n <= self.max_context]
            filled = [n for n in fits if n <= left]
            use = 1 if left == 1 or not fits else max(filled) if filled else min(fits)
            part = tokens[i:i + use]
            out = self._step(self._nets[use], part, pos)
            logits = _logits(out["logits"], self.spec.vocab)
            pos += len(part)
            i += len(part)
        return logits, pos

    # ---- generation ----------------------------------------------------------------------
    def stream(self, input_ids, max_new_tokens=32, *, do_sample=False, temperature=1.0, top_k=None, top_p=None,
               seed=None, stop=None):
        """Yield each new token id (an int) as it is generated; stops after max_new_tokens, at
        an end-of-sequence token of the config (yielded), or at a token in ``stop``."""
        prompt = self._prompt(input_ids)
        if not prompt:
            raise ValueError("the prompt is empty: give at least one token")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if len(prompt) + max_new_tokens > self.max_context:
            raise ValueError(f"the prompt ({len(prompt)} tokens) and max_new_tokens={max_new_tokens} exceed "
                             f"max_context={self.max_context}; af.load(..., max_context=...) sets it")
        rng = np.random.default_rng(seed)
        stops = set(self.spec.eos) | set(stop or ())
        logits, pos = self._run_tokens(list(prompt), 0)
        for _ in range(max_new_tokens):
            tok = _pick(logits, do_sample, temperature, top_k, top_p, rng)
            yield tok
            if tok in stops:
                return
            logits, pos = self._run_tokens([tok], pos)

    def generate(self, input_ids, max_new_tokens=32, **kwargs) -> np.ndarray:
        """The prompt followed by the generated tokens, (1, n) int64, as transformers returns it
        (greedy by default: ``do_sample=False``; sampling with temperature, top_k, top_p, seed)."""
        prompt = self._prompt(input_ids)
        new = list(self.stream(prompt, max_new_tokens, **kwargs))
        return np.asarray([list(prompt) + new], np.int64)

    def next_logits(self, input_ids) -> np.ndarray:
        """The logits of the token after ``input_ids``, (vocab,) float32."""
        prompt = self._prompt(input_ids)
        if not prompt or len(prompt) > self.max_context:
            raise ValueError(f"the prompt must hold 1..{self.max_context} tokens, got {len(prompt)}")
        return np.asarray(self._run_tokens(prompt, 0)[0], np.float32)

    def chat(self, messages, max_new_tokens=128, **kwargs) -> str:
        """The assistant's reply to ``messages`` ([{"role": ..., "content": ...}, ...]), the
        prompt made by the model's chat template (tokenizer_config.json) as transformers'
        apply_chat_template makes it; generation options as for generate."""
        ids = self.chat_ids(messages)
        new = [t for t in self.stream(ids, max_new_tokens, **kwargs)]
        return self.tokenizer.decode(new, skip_special_tokens=True)

    def chat_ids(self, messages) -> list:
        """The token ids of ``messages`` rendered by the chat template, with the generation prompt."""
        if self.tokenizer is None:
            raise FileNotFoundError(f"{self.path} has no tokenizer.json: chat needs one")
        text = _render_chat(self.path, messages)
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _prompt(self, input_ids):
        if isinstance(input_ids, str):
            if self.tokenizer is None:
                raise FileNotFoundError(f"{self.path} has no tokenizer.json: give token ids")
            return list(self.tokenizer.encode(input_ids).ids)
        a = np.asarray(input_ids)
        if a.size == 0:
            raise ValueError("the prompt is empty: give at least one token")
        if a.ndim == 2 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise ValueError(f"input_ids must be one sequence of token ids ((n,) or (1, n) integers), got "
                             f"{a.dtype} {a.shape}")
        if a.size and (a.min() < 0 or a.max() >= self.spec.vocab):
            raise IndexError(f"input_ids hold ids outside 0..{self.spec.vocab - 1}")
        return [int(t) for t in a]

    @property
    def cache_bytes(self) -> int:
        """Bytes of the K and V caches in fp16 (the engine's form; the sim holds float32, twice
        this), one buffer each that all the programs share: 2 x layers x kv_heads x
        max_context x head_dim x 2."""
        s = self.spec
        return 2 * s.layers * s.kv_heads * self.max_context * s.head_dim * 2

    def __repr__(self):
        s = self.spec
        return (f"CausalLM({s.family}, {s.layers} layers, {s.hidden} wide, {s.heads} heads / {s.kv_heads} KV, "
                f"max_context={self.max_context}, programs for {sorted(self._nets)} tokens, KV caches "
                f"{self.cache_bytes / 2**20:.2f} MiB fp16, shared by the programs)")


def _pick(logits, do_sample, temperature, top_k, top_p, rng) -> int:
    """The next token from one position's logits: argmax, or a sample after temperature,
    top-k and top-p filtering (transformers' order)."""
    logits = np.asarray(logits, np.float64)
    if not do_sample:
        return int(np.argmax(logits))
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = logits / temperature
    if top_k:
        kth = np.sort(z)[-min(int(top_k), z.size)]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        keep = np.cumsum(p[order]) - p[order] < top_p  # the smallest set reaching top_p
        mask = np.zeros_like(p, bool)
        mask[order[keep]] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    return int(rng.choice(p.size, p=p))


def _render_chat(path, messages) -> str:
    """tokenizer_config.json's chat_template rendered as transformers renders it: a sandboxed
    jinja2 environment with trim_blocks and lstrip_blocks, raise_exception and tojson."""
    import json

    cfg_path = os.path.join(path, "tokenizer_config.json")
    cfg = {}
    if os.path.isfile(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    template = cfg.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    if not isinstance(template, str) or not template:
        raise ValueError(f"{path} has no chat template (tokenizer_config.json chat_template): use generate")
    if not isinstance(messages, (list, tuple)) or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise TypeError("messages must be a list of {'role': ..., 'content': ...} dicts")
    try:
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise ImportError("chat templates are rendered with jinja2 (pip install 'aneforge[chat]')") from None

    def raise_exception(message):
        raise ValueError(f"the chat template refused the messages: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    env.filters["tojson"] = lambda x, indent=None, **kw: json.dumps(x, ensure_ascii=False, indent=indent)
    special = {k: (v.get("content") if isinstance(v, dict) else v) for k, v in cfg.items()
               if k.endswith("_token") and isinstance(v, (str, dict))}
    return env.from_string(template).render(messages=list(messages), add_generation_prompt=True, **special)


def _tokenizer(path):
    tj = os.path.join(path, "tokenizer.json")
    if not os.path.isfile(tj):
        return None
    from tokenizers import Tokenizer
    try:
        return Tokenizer.from_file(tj)
    except Exception as e:  # noqa: BLE001 - any parse failure is a corrupt file
        raise ValueError(f"cannot read the tokenizer {tj}: {e}") from None


# ---- the graph ---------------------------------------------------------------------------
# Activations are (1, channels, 1, tokens), the layout the engine prefers for transformers
# (Apple's "Deploying Transformers on the Apple Neural Engine", apple/ml-ane-transformers):
# every projection is a 1x1 conv, the norms run over axis 1, and attention is computed
# transposed (keys along rows) so that nothing between the embedding and the logits moves a
# tensor to another layout but the step's own new keys.
def _build(spec, w, S, C):
    """The step program for S tokens at positions start..start+S-1. Inputs: input_ids and
    positions (1, S), past_mask, last (1,) and per layer the caches of the positions before
    start, keys (1, kv_heads, 1, C, head_dim) and values transposed (1, kv_heads, 1,
    head_dim, C), so attention reads them as they lie. Outputs: the last token's logits and
    the S tokens' keys and values in the caches' layouts (k0, v0, ...), which the host writes
    into the caches. Nothing in the program copies a cache."""
    Hkv, hd, D = spec.kv_heads, spec.head_dim, spec.hidden
    ids = _F.input((1, S), "int32", name="input_ids")
    positions = _F.input((1, S), "int32", name="positions")
    last = _F.input((1,), "int32", name="last") if S > 1 else None
    caches = [(_F.input((1, Hkv, 1, C, hd), name=f"k{i}"), _F.input((1, Hkv, 1, hd, C), name=f"v{i}"))
              for i in range(spec.layers)]
    # Additive masks over (key, query): cached key j is visible when j < start (past_mask, 0 or
    # -inf, made on the host: fp16 compares positions exactly only to 2048); a new key s to new
    # token t when s <= t.
    past_mask = _F.input((1, 1, 1, C, 1), name="past_mask")
    key, query = np.arange(S)[:, None], np.arange(S)[None, :]
    causal = np.where(key <= query, 0.0, _NEG).astype(np.float32).reshape(1, 1, 1, S, S)
    masks = {False: (past_mask, _F.constant(causal))}
    window_mask = None
    if spec.window:  # sliding layers: key j visible to the query at position t when t - window < j <= t
        window_mask = _F.input((1, 1, 1, C, S), name="window_mask")
        near = np.where((key <= query) & (key > query - spec.window), 0.0, _NEG).astype(np.float32)
        masks[True] = (window_mask, _F.constant(near.reshape(1, 1, 1, S, S)))
    if spec.family == "gpt2":
        h = _named(w, _F.embedding(ids, _big(w, "transformer.wte.weight", (spec.vocab, D))), "transformer.wte")
        h = h + _named(w, _F.embedding(positions, _big(w, "transformer.wpe.weight", (spec.positions, D))),
                       "transformer.wpe")
        rope = None
    else:
        h = _named(w, _F.embedding(ids, _big(w, "model.embed_tokens.weight", (spec.vocab, D))), "model.embed_tokens")
        rope, tables = {}, {}  # per layer kind (Gemma 3's sliding layers have their own base): (cos, sin) (1, 1, rd, S)
        for sliding in sorted(set(spec.layer_types)):
            params = spec.ropes["sliding_attention" if sliding else "full_attention"]
            if repr(params) not in tables:
                cos, sin = _rope_tables(spec, C, params)
                tables[repr(params)] = tuple(_F.embedding(positions, t).transpose(1, 2).reshape(1, 1, cos.shape[1], S)
                                             for t in (cos, sin))
            rope[sliding] = tables[repr(params)]
        if spec.gemma:  # embeddings scaled by sqrt(hidden), rounded to the weights' dtype as there
            h = h * float(np.float32(math.sqrt(D)))
    h = h.transpose(1, 2).reshape(1, D, 1, S)  # (1, S, D) rows of the table -> (1, D, 1, S)
    outs = {}
    for i in range(spec.layers):
        sliding = spec.layer_types[i]
        h = _layer(spec, w, i, h, caches[i], masks[sliding], rope and rope[sliding], S, C, outs)
    h = _final_norm(spec, w, h)
    if last is not None:
        h = _F.dynamic_slice(h, last, 1, dim=3)  # (1, D, 1, 1)
    head = w.matrix("transformer.wte.weight" if spec.family == "gpt2" else
             "model.embed_tokens.weight" if spec.tied or not w.has("lm_head.weight") else "lm_head.weight",
             (spec.vocab, D), w.fp16)
    inputs = [ids, positions, past_mask] + ([window_mask] if window_mask is not None else []) + (
        [last] if last is not None else []) + [t for kv in caches for t in kv]
    logits = _head(w, h, head, spec.vocab)
    if spec.final_softcap:  # Gemma 2: cap * tanh(logits / cap)
        logits = _F.tanh(logits * (1.0 / spec.final_softcap)) * float(spec.final_softcap)
    return {"logits": logits, **outs}, inputs


_HEAD_MAX = 65536  # the widest axis a target holds (channel_max of every target)


def _head(w, h, head, V):
    """The vocabulary's logits, a 1x1 conv of the last position: (1, V, 1, 1). Past the
    targets' channel limit (Qwen's 151936 tokens) the head runs in k equal pieces, the last
    padded with zeros, stacked along the height as (1, width, k, 1) (h13's height and width
    hold only 16384): the host reads piece by piece (_logits)."""
    if V <= _HEAD_MAX:
        return _named(w, _F.conv2d(h, _const(_as_conv(head), w)), "lm_head")
    k = -(-V // _HEAD_MAX)
    width = -(-V // k)
    parts = [_named(w, _F.conv2d(h, _const(_as_conv(head[i * width:(i + 1) * width]), w)), f"lm_head.{i}")  # views
             for i in range(k)]
    short = width - parts[-1].shape[1]
    if short:
        parts[-1] = _F.concat([parts[-1], _F.constant(np.zeros((1, short, 1, 1), np.float32))], dim=1)
    return _F.concat(parts, dim=2)


def _logits(out, V):
    """The V logits of a step's (1, width, pieces, 1) output, piece after piece."""
    return np.asarray(out)[0, :, :, 0].T.reshape(-1)[:V]


def _inv_freq(rope, rd):
    """RoPE's inverse frequencies for a rotated width rd, with the configuration's scaling (as
    transformers' rope utilities compute them, in float64 here). rope: (theta, type, params)."""
    theta, kind, r = rope
    inv = 1.0 / (theta ** (np.arange(0, rd, 2, dtype=np.float64) / rd))
    if kind == "linear":
        return inv / float(r["factor"])
    if kind == "llama3":
        factor, low, high = float(r["factor"]), float(r["low_freq_factor"]), float(r["high_freq_factor"])
        old = float(r["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > old / low, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        medium = ~(wavelen < old / high) & ~(wavelen > old / low)
        return np.where(medium, (1 - smooth) * scaled / factor + smooth * scaled, scaled)
    return inv


def _rope_tables(spec, C, rope):
    """cos and sin of each position's angles, (C, rotated width), halves repeated (rotate_half form)."""
    rd = int(spec.head_dim * spec.partial_rotary)
    ang = np.arange(C, dtype=np.float64)[:, None] * _inv_freq(rope, rd)[None]
    ang = np.concatenate([ang, ang], axis=1)
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def _rotate(x, cos, sin, hd):
    """RoPE of x (..., head_dim, S) along its head_dim axis (rotate_half form)."""
    rd = cos.shape[-2]  # the rotated width (partial_rotary_factor < 1 leaves the rest as is)
    xr = x[..., :rd, :] if rd < hd else x
    half = rd // 2
    out = xr * cos + _F.concat([-xr[..., half:, :], xr[..., :half, :]], dim=-2) * sin
    return _F.concat([out, x[..., rd:, :]], dim=-2) if rd < hd else out


def _norm(spec, w, name, x):
    """The checkpoint's norm over axis 1 of x (1, C, 1, S) (or (heads, head_dim, 1, S))."""
    if spec.family == "gpt2":
        return _F.channel_layer_norm(x, w(name + ".weight"), w(name + ".bias"), eps=spec.eps)
    weight = w(name + ".weight")
    if spec.gemma:  # Gemma's RMSNorm scales by (1 + weight)
        weight = weight + np.float32(1.0)
    return _F.channel_rms_norm(x, weight, eps=spec.eps)


def _final_norm(spec, w, h):
    return _norm(spec, w, "transformer.ln_f" if spec.family == "gpt2" else "model.norm", h)


def _const(a, w):
    """A weight array as a linear's or embedding's operand: fp16 bits become an fp16 constant
    read in place (marked finite when the load saw no inf/NaN in it, so the sim does not scan
    it again); float32 arrays are borrowed by the graph as they are."""
    return Tensor(_core.constant_fp16_bits(a, all_finite=w.known_finite(a))) if a.dtype == np.uint16 else a


def _named(w, t, name):
    """Layer t named after its checkpoint weight (compress dicts and reports use the name)."""
    w.layer_names.append(name)
    return named(t, name)


def _compress_spec(compress, layers):
    """compress= for the checkpoint's weight layers only (not the RoPE tables): a format for
    all of them, a dict by checkpoint name, or a callable name -> format."""
    if isinstance(compress, str):
        return {n: compress for n in layers}
    if callable(compress):
        return {n: compress(n) for n in layers}
    if isinstance(compress, dict):
        unknown = sorted(set(compress) - set(layers))
        if unknown:
            raise ValueError(f"compress= names {unknown[:3]}, which are not weight layers of this model; they are "
                             f"named after the checkpoint, e.g. {layers[:3]}")
        return dict(compress)
    raise TypeError(f"compress= must be a format, a dict or a callable, got {type(compress).__name__}")


def _big(w, name, shape, transpose=False):
    """A bulk weight, in the form the program holds (fp16 bits unless precision is fp32),
    made once for all the programs."""
    return _const(w.matrix(name, shape, w.fp16, transpose), w)


def _as_conv(m):
    """A (out, in) weight as a 1x1 conv's (out, in, 1, 1): a view of the same memory."""
    return m.reshape(*m.shape, 1, 1)


def _linear(w, name, x, out, inp, bias, transpose=False):
    """The checkpoint's linear layer `name` (weight (out, in); GPT-2's Conv1D (in, out) with
    transpose) as a 1x1 conv of x (1, in, 1, S)."""
    b = w(name + ".bias", (out,)) if bias and w.has(name + ".bias") else None
    shape = (inp, out) if transpose else (out, inp)
    weight = _const(_as_conv(w.matrix(name + ".weight", shape, w.fp16, transpose)), w)
    return _named(w, _F.conv2d(x, weight, b), name)


def _layer(spec, w, i, h, cache, mask, rope, S, C, outs):
    H, Hkv, hd, D = spec.heads, spec.kv_heads, spec.head_dim, spec.hidden
    G = H // Hkv
    if spec.family == "gpt2":
        p = f"transformer.h.{i}."
        x = _norm(spec, w, p + "ln_1", h)
        qkv = _linear(w, p + "attn.c_attn", x, 3 * D, D, True, transpose=True)
        q, k, v = qkv[:, :D], qkv[:, D:2 * D], qkv[:, 2 * D:]
    else:
        p = f"model.layers.{i}."
        x = _norm(spec, w, p + "input_layernorm", h)
        if spec.family == "phi3":  # one fused q, k, v projection
            qkv = _linear(w, p + "self_attn.qkv_proj", x, (H + 2 * Hkv) * hd, D, True)
            q, k, v = qkv[:, :H * hd], qkv[:, H * hd:(H + Hkv) * hd], qkv[:, (H + Hkv) * hd:]
        else:
            q = _linear(w, p + "self_attn.q_proj", x, H * hd, D, True)
            k = _linear(w, p + "self_attn.k_proj", x, Hkv * hd, D, True)
            v = _linear(w, p + "self_attn.v_proj", x, Hkv * hd, D, True)
    q = q.reshape(H, hd, 1, S)      # per head: (head_dim, S), head_dim on axis 1
    k = k.reshape(Hkv, hd, 1, S)
    if spec.qk_norm:  # per-head RMSNorm of q and k before the rotation (Qwen3, Gemma 3)
        q = _norm(spec, w, p + "self_attn.q_norm", q)
        k = _norm(spec, w, p + "self_attn.k_norm", k)
    q, k = q.reshape(1, H, hd, S), k.reshape(1, Hkv, hd, S)
    if rope is not None:
        q, k = _rotate(q, *rope, hd), _rotate(k, *rope, hd)
    # Attention transposed, (key, query): scores from the cached keys (before start) and the
    # new ones, one softmax over both along the keys; grouped-query: each KV head's group of
    # query heads, no expanded K/V.
    q5 = q.reshape(1, Hkv, G, hd, S)
    kc, vc = cache
    kn, vn = k.reshape(1, Hkv, 1, hd, S).transpose(-1, -2), v.reshape(1, Hkv, 1, hd, S)
    outs[f"k{i}"], outs[f"v{i}"] = kn, vn

    def scored(keys, m):
        x = _F.matmul(keys, q5) * spec.scale
        if spec.attn_softcap:  # Gemma 2: cap * tanh(scores / cap), before the mask
            x = _F.tanh(x * (1.0 / spec.attn_softcap)) * float(spec.attn_softcap)
        return x + m

    scores = _F.concat([scored(kc, mask[0]), scored(kn, mask[1])], dim=-2)
    probs = _F.softmax(scores, dim=-2)                    # (1, Hkv, G, C + S, S)
    attn = _F.matmul(vc, probs[..., :C, :]) + _F.matmul(vn, probs[..., C:, :])  # (1, Hkv, G, hd, S)
    attn = attn.reshape(1, H * hd, 1, S)
    if spec.family == "gpt2":
        h = h + _linear(w, p + "attn.c_proj", attn, D, D, True, transpose=True)
        x = _norm(spec, w, p + "ln_2", h)
        inner = w.shape(p + "mlp.c_fc.weight")[1]
        x = _F.gelu(_linear(w, p + "mlp.c_fc", x, inner, D, True, transpose=True), approximate="tanh")
        return h + _linear(w, p + "mlp.c_proj", x, D, inner, True, transpose=True)
    o = _linear(w, p + "self_attn.o_proj", attn, D, H * hd, False)
    if spec.post_norms:  # Gemma 2 and 3 norm the attention's and the MLP's outputs too
        h = h + _norm(spec, w, p + "post_attention_layernorm", o)
        x = _norm(spec, w, p + "pre_feedforward_layernorm", h)
    else:
        h = h + o
        x = _norm(spec, w, p + "post_attention_layernorm", h)
    if spec.family == "phi3":  # one fused gate and up projection
        inner = w.shape(p + "mlp.gate_up_proj.weight")[0] // 2
        gate_up = _linear(w, p + "mlp.gate_up_proj", x, 2 * inner, D, False)
        gate, up = gate_up[:, :inner], gate_up[:, inner:]
    else:
        inner = w.shape(p + "mlp.gate_proj.weight")[0]
        gate = _linear(w, p + "mlp.gate_proj", x, inner, D, False)
        up = _linear(w, p + "mlp.up_proj", x, inner, D, False)
    act = _F.silu(gate) if spec.act == "silu" else _F.gelu(gate, approximate="tanh")
    mlp = _linear(w, p + "mlp.down_proj", act * up, D, inner, False)
    return h + (_norm(spec, w, p + "post_feedforward_layernorm", mlp) if spec.post_norms else mlp)


__all__ = ["CausalLM", "is_causal_lm"]
