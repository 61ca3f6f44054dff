"""BERT-family encoders (BERT, MiniLM, BGE/E5-style) as one program: embeddings (the token
lookup is an in-program one-hot matmul), N post-norm layers, and optional sentence pooling."""
from __future__ import annotations

from ..graph import functional as _F
from ._files import Weights, named as _named

_ACTIVATIONS = {"gelu": lambda x: _F.gelu(x), "gelu_new": lambda x: _F.gelu(x, approximate="tanh"),
                "gelu_pytorch_tanh": lambda x: _F.gelu(x, approximate="tanh"), "relu": lambda x: _F.relu(x)}
MASK_FILL = -30000.0  # added to masked scores: below any fp16 score, above fp16's limit


def check_config(cfg: dict, source: str):
    for k in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size",
              "max_position_embeddings"):
        if not isinstance(cfg.get(k), int) or cfg[k] < 1:
            raise ValueError(f"{source}: config needs a positive integer {k!r}, got {cfg.get(k)!r}")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise ValueError(f"{source}: hidden_size {cfg['hidden_size']} is not a multiple of num_attention_heads")
    act = cfg.get("hidden_act", "gelu")
    if act not in _ACTIVATIONS:
        raise ValueError(f"{source}: hidden_act {act!r} is not supported (supported: {', '.join(_ACTIVATIONS)})")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{source}: position_embedding_type {cfg['position_embedding_type']!r} is not supported "
                         "(absolute is)")


def build(w: Weights, cfg: dict, batch: int, seq: int, pooling: str | None = None, normalize: bool = False):
    """(inputs, outputs): inputs input_ids, attention_mask (1 = token, 0 = padding) and
    token_type_ids; outputs last_hidden_state and, with pooling ("mean" or "cls"), the
    sentence embedding."""
    H, nh, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    I, V, P = cfg["intermediate_size"], cfg["vocab_size"], cfg["max_position_embeddings"]
    hd, eps = H // nh, float(cfg.get("layer_norm_eps", 1e-12))
    act = _ACTIVATIONS[cfg.get("hidden_act", "gelu")]
    if seq > P:
        raise ValueError(f"sequence length {seq} exceeds max_position_embeddings {P}")
    ids = _F.input((batch, seq), dtype="int32", name="input_ids")
    mask = _F.input((batch, seq), name="attention_mask")
    types = _F.input((batch, seq), dtype="int32", name="token_type_ids")
    e = "embeddings."
    h = _named(_F.embedding(ids, w(e + "word_embeddings.weight", (V, H))), e + "word_embeddings")
    h = h + w(e + "position_embeddings.weight", (P, H))[:seq]
    tv = cfg.get("type_vocab_size", 2)
    h = h + _named(_F.embedding(types, w(e + "token_type_embeddings.weight", (tv, H))), e + "token_type_embeddings")
    h = _F.layer_norm(h, (H,), w(e + "LayerNorm.weight", (H,)), w(e + "LayerNorm.bias", (H,)), eps)
    bias = ((1.0 - mask) * MASK_FILL).reshape(batch, 1, 1, seq)
    for i in range(L):
        p = f"encoder.layer.{i}."

        def lin(name, n_out, n_in, x):
            return _named(_F.linear(x, w(p + name + ".weight", (n_out, n_in)), w(p + name + ".bias", (n_out,))), p + name)

        def heads(x):
            return x.reshape(batch, seq, nh, hd).transpose(1, 2)

        q, k, v = (heads(lin(f"attention.self.{n}", H, H, h)) for n in ("query", "key", "value"))
        a = _F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(batch, seq, H)
        h = _F.layer_norm(lin("attention.output.dense", H, H, a) + h, (H,),
                          w(p + "attention.output.LayerNorm.weight", (H,)), w(p + "attention.output.LayerNorm.bias", (H,)), eps)
        m = act(lin("intermediate.dense", I, H, h))
        h = _F.layer_norm(lin("output.dense", H, I, m) + h, (H,), w(p + "output.LayerNorm.weight", (H,)),
                          w(p + "output.LayerNorm.bias", (H,)), eps)
    outputs = {"last_hidden_state": h}
    if pooling == "mean":
        m3 = mask.reshape(batch, seq, 1)
        s = _F.sum(h * m3, dim=1)
        count = _F.maximum(_F.sum(m3, dim=1), 1.0)
        outputs["sentence_embedding"] = s / count
    elif pooling == "cls":
        outputs["sentence_embedding"] = h[:, 0]
    elif pooling is not None:
        raise ValueError(f"pooling {pooling!r} is not supported (mean, cls)")
    if normalize and "sentence_embedding" in outputs:
        outputs["sentence_embedding"] = _F.l2_norm(outputs["sentence_embedding"], dim=-1)
    return (ids, mask, types), outputs
