"""Models: ``af.load(path)`` for Hugging Face model directories, and vision builders from
torchvision-named state dicts."""
from __future__ import annotations

import os

from ._files import load_weights, read_json
from .causal_lm import CausalLM, is_causal_lm
from .text import TextEncoder
from .dual import DualEncoder
from .vision import ImageModel, mobilenet_v2, resnet18, resnet34, resnet50, vit_b_16

SUPPORTED = ("bert", "resnet", "vit")


def load(path, *, target=None, compress=None, precision="fp16", backend="sim", max_programs=8, calibration=None,
         min_cosine=None, max_weight_error=None, weight_rounding=None, max_context=None):
    """A compiled model from a Hugging Face model directory (config.json; model.safetensors or
    pytorch_model.bin; tokenizer.json; for sentence-transformers modules.json and the pooling
    config). BERT, ResNet and ViT are built by hand; any other architecture whose forward
    torch.export captures goes through transformers and af.from_torch. Nothing is downloaded. Compile options pass through to af.compile; for a text
    encoder, ``calibration`` is a list of sentences (the accuracy gate and data-aware
    rounding run once on them, docs/compression.md). A causal language model (a directory
    saved from GPT-2, Llama, Mistral, Qwen2, Qwen3, Phi-3 or Gemma's *ForCausalLM / LMHeadModel class)
    loads as a CausalLM with a KV cache of ``max_context`` positions (default: the model's,
    at most 1024) for ``generate`` and ``stream``; its ``calibration`` is text (a string or a
    list of them) or token id lists, on which the compressed prefill program's logits and
    keys/values must keep ``min_cosine`` against the fp16 one."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"af.load: {path} is not a model directory")
    cfg = read_json(os.path.join(path, "config.json"), "model config.json")
    kind = cfg.get("model_type")
    if is_causal_lm(cfg):
        gate = dict(calibration=calibration, min_cosine=min_cosine, max_weight_error=max_weight_error,
                    weight_rounding=weight_rounding)
        return CausalLM(path, cfg, max_context=max_context, target=target, compress=compress, precision=precision,
                        backend=backend, **{k: v for k, v in gate.items() if v is not None})
    if max_context is not None:
        raise ValueError(f"af.load: max_context= applies to causal language models; {path} holds "
                         f"{(cfg.get('architectures') or [kind])[0]}")
    if kind not in SUPPORTED:
        return _load_exported(path, cfg, kind, target, compress, precision, backend, max_programs, calibration,
                              min_cosine, max_weight_error, weight_rounding)
    options = dict(target=target, compress=compress, precision=precision, backend=backend)
    gate = dict(calibration=calibration, min_cosine=min_cosine, max_weight_error=max_weight_error,
                weight_rounding=weight_rounding)
    options.update({k: v for k, v in gate.items() if v is not None})
    if calibration is not None and kind in ("resnet", "vit"):
        raise ValueError("af.load: calibration= is supported for text encoders; for an image model, build it "
                         "(af.models.resnet18(...)) and pass calibration images to af.compile of its graph")
    tensors = load_weights(path)
    if kind == "resnet":
        from .vision import load_hf_resnet
        return load_hf_resnet(path, tensors, cfg, dict(options, max_programs=max_programs))
    if kind == "vit":
        from .vision import load_hf_vit
        return load_hf_vit(path, tensors, cfg, dict(options, max_programs=max_programs))
    return TextEncoder(path, tensors, cfg, options, max_programs)


def _load_exported(path, cfg, kind, target, compress, precision, backend, max_programs, calibration, min_cosine,
                   max_weight_error, weight_rounding):
    """Any other architecture: built by transformers from the directory, mapped by
    af.from_torch (text models get TextEncoder's buckets, pooling and encode())."""
    from .dual import dual_encoder
    from .exported import encoder_of, image_model, torch_model
    model = torch_model(path)
    options = dict(target=target, compress=compress, precision=precision, backend=backend)
    gate = dict(calibration=calibration, min_cosine=min_cosine, max_weight_error=max_weight_error,
                weight_rounding=weight_rounding)
    options.update({k: v for k, v in gate.items() if v is not None})
    main = getattr(model, "main_input_name", "input_ids")
    dual = hasattr(model, "text_model") and hasattr(model, "vision_model")
    if calibration is not None and (dual or main != "input_ids"):
        raise ValueError("af.load: calibration= is supported for text encoders; for other models, trace them "
                         "(af.trace_torch) and pass calibration inputs to af.compile")
    if dual:  # CLIP-style: a text tower and an image tower
        return dual_encoder(path, model, cfg, options, max_programs)
    if main == "input_features" and hasattr(model, "get_encoder"):  # Whisper-style: the encoder
        return encoder_of(model, cfg, options, max_programs)
    if main == "input_ids":
        return TextEncoder(path, None, cfg, options, max_programs, torch_model=model)
    if main == "pixel_values":
        return image_model(model, cfg, options, max_programs)
    raise ValueError(f"af.load: {path}: model_type {kind!r} takes {main!r}; af.load runs models of token ids or "
                     "images (use af.from_torch with example inputs for others)")


__all__ = ["load", "CausalLM", "TextEncoder", "ImageModel", "DualEncoder", "mobilenet_v2", "resnet18", "resnet34", "resnet50", "vit_b_16"]
