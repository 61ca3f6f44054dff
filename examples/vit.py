"""A Vision Transformer from a Hugging Face directory written by transformers (random weights
from a config, offline), loaded with af.load and checked against transformers in float32.

    python examples/vit.py
"""
import tempfile

import numpy as np
import torch
import transformers

import aneforge as af


def main() -> None:
    cfg = transformers.ViTConfig(hidden_size=192, num_hidden_layers=6, num_attention_heads=3, intermediate_size=768,
                                 image_size=224, patch_size=16)
    cfg.num_labels = 10
    torch.manual_seed(0)
    reference = transformers.ViTForImageClassification(cfg).eval()
    with tempfile.TemporaryDirectory() as d:
        reference.save_pretrained(d)     # config.json + model.safetensors
        model = af.load(d)               # one program per batch size
    images = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    logits = model(images)
    with torch.no_grad():
        ref = reference(pixel_values=torch.from_numpy(images)).logits.numpy()
    cos = min(af.testing.cosine(a, b) for a, b in zip(logits, ref))
    print(f"logits {logits.shape}, min cosine vs transformers float32: {cos:.6f}")
    if cos < 0.9999:
        raise SystemExit(f"FAIL: cosine {cos:.6f} < 0.9999")


if __name__ == "__main__":
    main()
