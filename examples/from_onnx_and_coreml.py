"""Bring your own ONNX file or Core ML package: a small CNN exported by torch.onnx (with a
dynamic batch axis) and converted by coremltools, each imported into af (af.from_onnx,
af.from_mlpackage), compiled for the engine's numerics, and checked against onnxruntime and
PyTorch float32. Needs onnx, onnxscript, onnxruntime and coremltools (the [test] extra).

    python examples/from_onnx_and_coreml.py
"""
import pathlib
import sys
import tempfile
import warnings

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
        return self.head(self.features(image).flatten(1))


def main() -> None:
    try:
        import coremltools as ct
        import onnxruntime
    except ImportError as e:
        sys.exit(f"this example needs onnxruntime and coremltools: {e}")
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    model = SmallNet().eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ref = model(images).numpy()
    work = pathlib.Path(tempfile.mkdtemp())

    # ONNX: any batch size, checked against onnxruntime on the same file
    onnx_path = work / "small.onnx"
    torch.onnx.export(model, (images,), str(onnx_path), dynamo=True, opset_version=18, verbose=False,
                      dynamic_shapes=({0: torch.export.Dim("batch")},))
    net = af.from_onnx(str(onnx_path), dynamic_batch=True)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for batch in (1, 4):
        want = session.run(None, {session.get_inputs()[0].name: images[:batch].numpy()})[0]
        cos = min(af.testing.cosine(a, b) for a, b in zip(net(images[:batch].numpy()), want))
        print(f"ONNX, batch {batch}: min cosine vs onnxruntime {cos:.6f}")
        if cos < 0.9999:
            sys.exit("outside the expected agreement")

    # Core ML: the package coremltools makes, into af (targets, compression, sim, engine)
    package = work / "small.mlpackage"
    ct.convert(torch.jit.trace(model, images), inputs=[ct.TensorType(name="image", shape=images.shape)],
               convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17, skip_model_load=True).save(str(package))
    small = af.from_mlpackage(package, compress="int8")
    got = small(images.numpy())
    cos = min(af.testing.cosine(a, b) for a, b in zip(got, ref))
    rep = small.compression_report()
    print(f"Core ML package, int8: min cosine vs PyTorch float32 {cos:.6f} "
          f"({rep['bytes'] / rep['fp16_bytes']:.2f}x of fp16 weight bytes)")
    if cos < 0.999:
        sys.exit("outside the expected agreement")


if __name__ == "__main__":
    main()
