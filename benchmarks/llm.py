"""Language models on the sim beside transformers on CPU, in one process with the same threads.

    python benchmarks/llm.py [--models gpt2-small,qwen2-0.5b] [--context 256] [--new 32]

Random-weight models of real shapes (GPT-2 small: 124M parameters; a Qwen2-0.5B shape: 494M),
saved by transformers in bfloat16 (as released checkpoints are) and loaded by af.load. Reports prefill tokens/s (a 128-token prompt),
decode tokens/s (greedy, the KV cache at --context positions), the bytes each decode step
reads (the program's weights plus its caches), load + compile seconds (in a new process: the
first load there and a second) and this process's peak RSS.
transformers runs float32 with its own KV cache (generate, do_sample=False).

    python benchmarks/llm.py --scaling [--models gpt2-small]

Decode milliseconds per token with 16 and with 1008 tokens already in the cache
(max_context 1024): how a step's cost grows with the context (attention over the cache only:
the new rows are written in place).

    python benchmarks/llm.py --load-scaling

af.load seconds of the Qwen2-0.5B shape with 6, 12 and 24 layers (bfloat16 checkpoints):
load and compile time should grow linearly with the layers."""
import argparse
import os
import pathlib
import resource
import tempfile
import time
import warnings

import numpy as np
import torch
import transformers

import aneforge as af

def _qwen2(layers=24):
    return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=layers, num_attention_heads=14,
        num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1e6, tie_word_embeddings=True))


SHAPES = {
    "gpt2-small": lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config()),
    "qwen2-0.5b": _qwen2,
}


def _save_bf16(model, directory):
    """The checkpoint as released LLMs ship it (bfloat16); the reference keeps float32."""
    import copy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copy.deepcopy(model).to(torch.bfloat16).save_pretrained(directory)
    os.sync()  # written back now: a load timed while the kernel writes the file back measures the disk


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(name, context, new, prompt_len=128):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SHAPES[name]().eval()
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        _save_bf16(model, tmp)
        first_s, warm_s = _fresh_process_loads(tmp, context)
        lm = af.load(pathlib.Path(tmp), max_context=context)
    prompt = np.random.default_rng(0).integers(0, model.config.vocab_size, prompt_len)
    # prefill: the logits after the prompt
    t = time.perf_counter()
    lm.next_logits(prompt)
    af_prefill = prompt_len / (time.perf_counter() - t)
    ids = torch.from_numpy(prompt[None].astype(np.int64))
    with torch.inference_mode():
        model(ids)  # warm
        t = time.perf_counter()
        model(ids)
        pt_prefill = prompt_len / (time.perf_counter() - t)
    # decode: new tokens after the prompt, minus the prefill's time
    t = time.perf_counter()
    out = lm.generate(prompt, new)
    af_decode = (out.shape[1] - prompt_len) / max(time.perf_counter() - t - prompt_len / af_prefill, 1e-9)
    with torch.inference_mode():
        t = time.perf_counter()
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new,
                             min_new_tokens=new, pad_token_id=0)
        pt_decode = (ref.shape[1] - prompt_len) / max(time.perf_counter() - t - prompt_len / pt_prefill, 1e-9)
    s = lm.spec
    cache_bytes = 2 * s.layers * s.kv_heads * context * s.head_dim * 2  # fp16 K and V
    weight_bytes = lm._nets[1]._program.weight_bytes
    return dict(model=name, params=params, first_s=first_s, warm_s=warm_s, weight_bytes=weight_bytes,
                af_prefill=af_prefill, pt_prefill=pt_prefill,
                af_decode=af_decode, pt_decode=pt_decode, step_bytes=weight_bytes + cache_bytes, peak=peak_mib())


def _fresh_process_loads(directory, context, runs=3):
    """Median seconds of the first af.load in a new Python process (as a user's script loads
    once; the package's lazy imports included) and of a second one there (imports warm), over
    `runs` processes: apart from this process, whose allocator state torch's freed tensors
    shape, after a pause in which torch's OpenMP workers stop spinning. The first process
    after the checkpoint is saved is not timed: its loads ran up to 1.5x slower here (the
    kernel still settling the memory the save churned: this happens after os.sync and with
    the file in the page cache), as a model saved or downloaded earlier does not."""
    import statistics
    import subprocess
    import sys
    time.sleep(0.5)
    code = ("import pathlib, sys, time, aneforge as af\n"
            "for _ in range(2):\n"
            "    t = time.perf_counter(); lm = af.load(pathlib.Path(sys.argv[1]), max_context=int(sys.argv[2]))\n"
            "    print(time.perf_counter() - t); del lm\n")
    times = [[float(v) for v in subprocess.run([sys.executable, "-c", code, str(directory), str(context)],
                                                check=True, capture_output=True, text=True).stdout.split()]
             for _ in range(runs + 1)][1:]  # the first process after the save: untimed
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def _decode_ms(step, steps=16):
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps * 1e3


def scaling(name, contexts=(16, 1008), steps=16):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SHAPES[name]().eval()
    with tempfile.TemporaryDirectory() as tmp:
        _save_bf16(model, tmp)
        lm = af.load(pathlib.Path(tmp), max_context=1024)
    row = {}
    for n in contexts:
        prompt = list(np.random.default_rng(0).integers(0, model.config.vocab_size, n))
        logits, pos = lm._run_tokens(prompt, 0)
        tok = int(np.argmax(logits))

        def af_step():
            nonlocal logits, pos, tok
            logits, pos = lm._run_tokens([tok], pos)
            tok = int(np.argmax(logits))
        af_ms = _decode_ms(af_step, steps)
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # past_key_values' deprecation notice, once per step
            out = model(torch.tensor([prompt]), use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)

            def pt_step():
                nonlocal past, nxt
                o = model(nxt, past_key_values=past, use_cache=True)
                past, nxt = o.past_key_values, o.logits[:, -1:].argmax(-1)
            pt_ms = _decode_ms(pt_step, steps)
        row[n] = (af_ms, pt_ms)
    return row


def load_scaling(layer_counts=(6, 12, 24)):
    rows = []
    for n in layer_counts:
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _qwen2(n)
        with tempfile.TemporaryDirectory() as tmp:
            _save_bf16(model, tmp)
            del model
            af.load(pathlib.Path(tmp), max_context=256)  # warm: imports, page cache
            t = time.perf_counter()
            lm = af.load(pathlib.Path(tmp), max_context=256)
            rows.append((n, time.perf_counter() - t, lm.weight_bytes))
            del lm
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="gpt2-small,qwen2-0.5b")
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--scaling", action="store_true", help="decode ms/token at 16 and 1008 tokens of context")
    ap.add_argument("--load-scaling", action="store_true", help="af.load seconds for 6, 12 and 24 layers")
    args = ap.parse_args()
    torch.set_num_threads(af.num_threads())
    if args.load_scaling:
        print("| layers | af.load s | program weights MiB | GB/s | s per layer |")
        print("|---|---|---|---|---|")
        for n, sec, wb in load_scaling():
            print(f"| {n} | {sec:.2f} | {wb / 2**20:.0f} | {wb / sec / 1e9:.2f} | {sec / n:.3f} |", flush=True)
        return
    if args.scaling:
        print(f"threads {af.num_threads()}, decode ms per token (16 steps), max_context 1024")
        print("| model | af at 16 / 1008 context | torch at 16 / 1008 context | af growth | torch growth |")
        print("|---|---|---|---|---|")
        for name in args.models.split(","):
            r = scaling(name)
            (a0, p0), (a1, p1) = r[16], r[1008]
            print(f"| {name} | {a0:.1f} / {a1:.1f} | {p0:.1f} / {p1:.1f} | {a1 / a0:.2f}x | {p1 / p0:.2f}x |", flush=True)
        return
    print(f"threads {af.num_threads()}, context {args.context}, {args.new} new tokens, 128-token prompt")
    print("| model | parameters | load + compile s, first / second in a new process (GB/s of weights) | "
          "prefill tok/s af / torch | "
          "decode tok/s af / torch | bytes read per decode step | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        r = bench(name, args.context, args.new)
        wb = r["weight_bytes"] / 1e9
        print(f"| {r['model']} | {r['params'] / 1e6:.0f}M | {r['first_s']:.2f} / {r['warm_s']:.2f} "
              f"({wb / r['first_s']:.2f} / {wb / r['warm_s']:.2f}) | "
              f"{r['af_prefill']:.0f} / "
              f"{r['pt_prefill']:.0f} | {r['af_decode']:.1f} / {r['pt_decode']:.1f} | "
              f"{r['step_bytes'] / 2**20:.0f} MiB | {r['peak']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
