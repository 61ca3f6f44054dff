"""af.from_torch and af.from_onnx on the import zoo: per model and route, whether it imports,
the min cosine against the float32 reference (PyTorch; onnxruntime for the ONNX route), the
simulator's latency beside PyTorch CPU in the same process (as a ratio), and the import +
compile time; then a BERT-base-sized model (110M parameters, random weights): import +
compile seconds and the process's peak memory against its fp16 weight bytes.

    python benchmarks/import_zoo.py                  # the table
    python benchmarks/import_zoo.py --large          # also the 110M-parameter model
    python benchmarks/import_zoo.py --write-docs     # the table into docs/import.md
"""
from __future__ import annotations

import argparse
import pathlib
import platform
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


def _row(name, route, make_net, run_ref, x, first=lambda out: out):
    t = time.perf_counter()
    try:
        net = make_net()
    except Exception as e:  # noqa: BLE001 - reported in the table
        return (name, route, f"no: {type(e).__name__}", float("nan"), float("nan"), float("nan"), float("nan"))
    compile_s = time.perf_counter() - t
    got, ref = first(net(x)), run_ref()
    # Blocked runs: alternating the two frameworks call by call measured each slower by the
    # other's idle threads still spinning (OpenMP, onnxruntime) on this 2-core machine.
    with torch.no_grad():
        torch_s = median_s(run_ref.torch, 9)
    sim_s = median_s(lambda: net(x), 9)
    cos = min(af.testing.cosine(a, b) for a, b in zip(got, ref))
    return (name, route, "yes", cos, sim_s * 1e3, torch_s * 1e3, compile_s)



def zoo_rows():
    from test_import_zoo import ZOO, _cnns
    rows = []
    for name, (make, x) in sorted(ZOO.items()):
        torch.manual_seed(0)
        model = make().eval()

        def ref(model=model, x=x):
            with torch.no_grad():
                return model(x)["last_hidden_state"].numpy()
        ref.torch = lambda model=model, x=x: model(x)
        rows.append(_row(name, "torch.export", lambda model=model, x=x: af.from_torch(model, (x,)), ref,
                         x.numpy(), lambda out: out["last_hidden_state"]))
    from torch_vision_refs import mobilenet_v2
    cnns = dict(_cnns(), mobilenet_v2=lambda: mobilenet_v2(seed=1, image_size=64, batches=2))
    for name, make in sorted(cnns.items()):
        model = make()
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))

        def ref(model=model, x=x):
            with torch.no_grad():
                return model(x).numpy()
        ref.torch = lambda model=model, x=x: model(x)
        rows.append(_row(name, "torch.export", lambda model=model, x=x: af.from_torch(model, (x,)), ref, x.numpy()))
        try:
            import onnxruntime
        except ImportError:
            continue
        proto = torch.onnx.export(model, (x,), None, dynamo=True, opset_version=18, verbose=False).model_proto
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = af.num_threads()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads would steal the sim's cores
        sess = onnxruntime.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])

        def ort_ref(sess=sess, x=x):
            return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        ort_ref.torch = ref.torch
        rows.append(_row(name, "ONNX", lambda proto=proto: af.from_onnx(proto), ort_ref, x.numpy()))
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


def table(rows) -> str:
    lines = ["| model | route | imports | min cosine vs fp32 reference | sim ms | torch ms | sim / torch | "
             "import + compile s |", "|---|---|---|---|---|---|---|---|"]
    for name, route, ok, cos, sim, ref, comp in rows:
        lines.append(f"| {name} | {route} | {ok} | {cos:.6f} | {sim:.2f} | {ref:.2f} | {sim / ref:.2f} | {comp:.2f} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", action="store_true")
    ap.add_argument("--write-docs", action="store_true", help="put the table into docs/import.md")
    args = ap.parse_args()
    torch.set_num_threads(af.num_threads())  # the same threads on both sides
    text = table(zoo_rows())
    print(text, flush=True)
    if args.large:
        params, seconds, before, peak, fp16, cos = large_row()
        line = (f"BERT-base-sized ({params / 1e6:.0f}M parameters, random weights, 1 x 128 tokens): import + compile "
                f"{seconds:.1f} s; peak RSS {peak / 2**20:.0f} MiB ({before / 2**20:.0f} MiB before, the torch model "
                f"included); fp16 weight bytes {fp16 / 2**20:.0f} MiB; cosine vs torch {cos:.6f}")
        print(line)
    if args.write_docs:
        from aneforge._docs import replace_measured
        path = pathlib.Path(__file__).resolve().parent.parent / "docs" / "import.md"
        note = (f"Measured by `python benchmarks/import_zoo.py --write-docs` on {platform.machine()} with "
                f"{af.num_threads()} threads (torch with the same); random weights; 2 samples per model.\n\n")
        path.write_text(replace_measured(path.read_text(), note + text))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
