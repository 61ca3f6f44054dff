"""ResNet-18 from a torchvision-named state dict (here a plain-PyTorch model with random
weights; torchvision's own checkpoint works the same way): one program per batch size, batch
norm folded by the compiler, checked against PyTorch float32.

    python examples/resnet18.py
"""
import pathlib
import sys

import numpy as np
import torch

import aneforge as af

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
import torch_vision_refs  # noqa: E402  (ResNet-18 in plain PyTorch, torchvision's names)


def main() -> None:
    reference = torch_vision_refs.resnet(18)
    model = af.models.resnet18(reference.state_dict())    # arrays or tensors, torchvision names
    images = np.random.default_rng(0).standard_normal((4, 3, 224, 224)).astype(np.float32)
    logits = model(images)
    with torch.no_grad():
        ref = reference(torch.from_numpy(images)).numpy()
    cos = min(af.testing.cosine(a, b) for a, b in zip(logits, ref))
    print(f"logits {logits.shape}, top-1 {logits.argmax(1).tolist()} (PyTorch {ref.argmax(1).tolist()})")
    print(f"min cosine vs PyTorch float32: {cos:.6f}")
    model.net.compile_for(4).summary()
    if cos < 0.9999 or (logits.argmax(1) != ref.argmax(1)).any():
        raise SystemExit("FAIL: ResNet-18 disagrees with PyTorch")


if __name__ == "__main__":
    main()
