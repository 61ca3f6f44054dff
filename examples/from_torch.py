"""Bring your own PyTorch model: a small CNN written in plain PyTorch, imported with
af.from_torch (torch.export, then one ATen-table entry per op), compiled for the engine's
numerics, compressed to int8, and checked against PyTorch float32.

    python examples/from_torch.py
"""
import sys

import numpy as np
import torch
from torch import nn

import aneforge as af


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(32, 10)

    def forward(self, image):
        return {"logits": self.head(self.features(image).flatten(1))}


def main() -> None:
    torch.manual_seed(0)
    model = SmallNet().eval()
    images = torch.randn(4, 3, 32, 32)
    net = af.from_torch(model, (images,), dynamic_batch=True)          # any batch size
    small = af.from_torch(model, (images,), compress="int8")           # weights as int8
    with torch.no_grad():
        ref = model(images)["logits"].numpy()
    got = net(images.numpy())["logits"]
    got8 = small(images.numpy())["logits"]
    cos = min(af.testing.cosine(a, b) for a, b in zip(got, ref))
    cos8 = min(af.testing.cosine(a, b) for a, b in zip(got8, ref))
    rep = small.compression_report()
    print(f"layers: {[r['layer'] for r in rep['layers']]}")
    print(f"fp16 min cosine vs PyTorch float32: {cos:.6f}")
    print(f"int8 min cosine vs PyTorch float32: {cos8:.6f} ({rep['bytes'] / rep['fp16_bytes']:.2f}x of fp16 weight bytes)")
    if cos < 0.9999 or cos8 < 0.999:
        sys.exit("outside the expected agreement")


if __name__ == "__main__":
    main()
