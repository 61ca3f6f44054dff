"""af.from_torch on the import zoo: per model, whether it imports, the min cosine against
PyTorch float32, the simulator's latency beside PyTorch CPU in the same process (as a ratio),
and the import + compile time; then a BERT-base-sized model (110M parameters, random weights):
import + compile seconds and the process's peak memory against its fp16 weight bytes.

    python benchmarks/import_zoo.py             # the table
    python benchmarks/import_zoo.py --large     # also the 110M-parameter model
"""
from __future__ import annotations

import argparse
import pathlib
import resource
import sys
import time
import warnings

import numpy as np
import torch

import aneforge as af

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from models_fidelity import median_s  # noqa: E402  (one timing rule for the benchmarks)

warnings.filterwarnings("ignore")


def zoo_rows():
    from test_import_zoo import ZOO
    rows = []
    for name, (make, x) in sorted(ZOO.items()):
        torch.manual_seed(0)
        model = make().eval()
        t = time.perf_counter()
        try:
            net = af.from_torch(model, (x,))
        except Exception as e:  # noqa: BLE001 - reported in the table
            rows.append((name, f"no: {type(e).__name__}", float("nan"), float("nan"), float("nan"), float("nan")))
            continue
        compile_s = time.perf_counter() - t
        got = net(x.numpy())["last_hidden_state"]
        with torch.no_grad():
            ref = model(x)["last_hidden_state"].numpy()
            torch_s = median_s(lambda: model(x), 5)
        sim_s = median_s(lambda: net(x.numpy()), 5)
        cos = min(af.testing.cosine(a, b) for a, b in zip(got, ref))
        rows.append((name, "yes", cos, sim_s * 1e3, torch_s * 1e3, compile_s))
    return rows


def large_row():
    import transformers
    cfg = transformers.BertConfig()  # bert-base: 12 layers, 768 wide, 110M parameters
    torch.manual_seed(0)
    model = transformers.BertModel(cfg).eval()
    params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, cfg.vocab_size, (1, 128))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t = time.perf_counter()
    net = af.from_torch(model, (ids,))
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    fp16 = 2 * params
    out = net(ids.numpy().astype(np.int32))["last_hidden_state"]
    with torch.no_grad():
        ref = model(ids)["last_hidden_state"].numpy()
    return params, seconds, before, peak, fp16, af.testing.cosine(out, ref)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", action="store_true")
    args = ap.parse_args()
    print("| model | imports | min cosine vs torch fp32 | sim ms | torch ms | sim / torch | import + compile s |")
    print("|---|---|---|---|---|---|---|")
    for name, ok, cos, sim, ref, comp in zoo_rows():
        print(f"| {name} | {ok} | {cos:.6f} | {sim:.2f} | {ref:.2f} | {sim / ref:.2f} | {comp:.2f} |", flush=True)
    if args.large:
        params, seconds, before, peak, fp16, cos = large_row()
        print(f"\nBERT-base-sized ({params / 1e6:.0f}M parameters, random weights, 1 x 128 tokens): import + compile "
              f"{seconds:.1f} s; peak RSS {peak / 2**20:.0f} MiB ({before / 2**20:.0f} MiB before, the torch model "
              f"included); fp16 weight bytes {fp16 / 2**20:.0f} MiB; cosine vs torch {cos:.6f}")


if __name__ == "__main__":
    main()
