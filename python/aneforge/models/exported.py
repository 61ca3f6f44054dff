"""Any Hugging Face architecture whose forward torch.export captures, for af.load: the
directory's model built by transformers (offline, from the local files) and mapped by
af.from_torch's ATen table; the hand-written builders (bert.py, vision.py) stay the fast
paths for the architectures they cover."""
from __future__ import annotations

from ..graph import functional as _F
from ..importers.torch_export import trace_torch


def torch_model(path: str):
    """The model in ``path`` as transformers builds it (AutoModel: the bare encoder or
    decoder, no task head), in eval mode, without a network connection."""
    try:
        import transformers
    except ImportError:
        raise ImportError(f"af.load: {path}: this architecture loads through transformers "
                          "(pip install transformers torch)") from None
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' notes on configs; missing weights are checked below
        try:
            config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        except (ValueError, KeyError, OSError) as e:
            raise ValueError(f"af.load: {path}: model_type is not supported: neither af nor transformers builds "
                             f"it ({str(e).splitlines()[0][:200]})") from None
        if hasattr(config, "use_cache"):
            config.use_cache = False  # no KV cache in an encoder program (generation: a later issue)
        try:
            model, info = transformers.AutoModel.from_pretrained(path, config=config, local_files_only=True,
                                                                 attn_implementation="eager", output_loading_info=True)
        except (ValueError, OSError, RuntimeError) as e:
            raise ValueError(f"af.load: {path}: transformers cannot build {config.model_type!r} from it: "
                             f"{str(e).splitlines()[0][:300]}") from None
    # transformers fills weights the files lack with random values (and says so in a log line):
    # here that is an error, not a model that computes something else.
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "mismatched_keys") and v}
    if bad:
        names = sorted(str(n) for v in bad.values() for n in v)
        raise ValueError(f"af.load: {path}: the weights do not match model_type {config.model_type!r}: "
                         f"{len(names)} missing or misshapen, e.g. {names[:5]}")
    return model.eval()


def build_text(model, batch: int, seq: int, pooling: str | None, normalize: bool):
    """(inputs, outputs) as bert.build gives them: input_ids and attention_mask (and
    token_type_ids when the model takes them), the model's outputs by name, and the
    sentence-transformers pooling on last_hidden_state when configured."""
    import inspect

    import torch
    example = {"input_ids": torch.zeros((batch, seq), dtype=torch.long),
               "attention_mask": torch.ones((batch, seq), dtype=torch.long)}
    if "token_type_ids" in inspect.signature(model.forward).parameters and getattr(model.config, "type_vocab_size", 0):
        example["token_type_ids"] = torch.zeros((batch, seq), dtype=torch.long)
    traced = trace_torch(model, (), example_kwargs=example)
    outs = dict(traced.outputs) if isinstance(traced.outputs, dict) else {"last_hidden_state": traced.outputs}
    h = outs["last_hidden_state"]
    mask = traced.inputs["attention_mask"].cast("fp16")
    if pooling == "mean":
        m3 = mask.reshape(batch, seq, 1)
        outs["sentence_embedding"] = _F.sum(h * m3, dim=1) / _F.maximum(_F.sum(m3, dim=1), 1.0)
    elif pooling == "cls":
        outs["sentence_embedding"] = h[:, 0]
    if normalize and "sentence_embedding" in outs:
        outs["sentence_embedding"] = _F.l2_norm(outs["sentence_embedding"], dim=-1)
    return tuple(traced.inputs[k] for k in example), outs


def text_config(model, cfg: dict) -> dict:
    """What TextEncoder reads of a config, from the model (the names differ by architecture:
    GPT-2's n_positions and n_embd, ...)."""
    c = model.config
    width = model.get_input_embeddings().weight.shape[1]
    positions = getattr(c, "max_position_embeddings", None) or getattr(c, "n_positions", None) or 512
    layers = getattr(c, "num_hidden_layers", None) or getattr(c, "n_layer", None) or getattr(c, "n_layers", 0)
    return {**cfg, "max_position_embeddings": int(positions), "vocab_size": int(c.vocab_size),
            "hidden_size": int(getattr(c, "hidden_size", None) or width), "num_hidden_layers": int(layers),
            "pad_token_id": getattr(c, "pad_token_id", 0) or 0}


def image_model(model, cfg: dict, options: dict, max_programs: int):
    """A vision model (main input pixel_values) through from_torch, any batch size."""
    import torch

    from ..importers.torch_export import from_torch
    from .vision import ImageModel
    size = int(cfg.get("image_size", 224))
    channels = int(cfg.get("num_channels", 3))
    net = from_torch(model, (torch.zeros(1, channels, size, size),), dynamic_batch=True, max_programs=max_programs,
                     **options)
    return ImageModel(net, cfg.get("model_type", "model"), size)


def encoder_of(model, cfg: dict, options: dict, max_programs: int):
    """The encoder of a speech encoder-decoder (Whisper): a Net of input_features, any batch
    size, returning last_hidden_state (the decoder generates, which is the LLM issue's work)."""
    import torch

    from ..importers.torch_export import from_torch
    encoder = model.get_encoder()
    c = model.config
    frames = 2 * int(getattr(c, "max_source_positions", 1500))  # the encoder's two-stride conv halves them
    features = torch.zeros(1, int(getattr(c, "num_mel_bins", 80)), frames)
    return from_torch(encoder, (features,), dynamic_batch=True, max_programs=max_programs, **options)
