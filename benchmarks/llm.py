"""Language models on the sim beside transformers on CPU, in one process with the same threads.

    python benchmarks/llm.py [--models gpt2-small,qwen2-0.5b] [--context 256] [--new 32]

Random-weight models of real shapes (GPT-2 small: 124M parameters; a Qwen2-0.5B shape: 494M),
saved by transformers and loaded by af.load. Reports prefill tokens/s (a 128-token prompt),
decode tokens/s (greedy, the KV cache at --context positions), the bytes each decode step
reads (the program's weights plus its caches), compile seconds and the process's peak RSS.
transformers runs float32 with its own KV cache (generate, do_sample=False)."""
import argparse
import pathlib
import resource
import tempfile
import time
import warnings

import numpy as np
import torch
import transformers

import aneforge as af

SHAPES = {
    "gpt2-small": lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config()),
    "qwen2-0.5b": lambda: transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1e6, tie_word_embeddings=True)),
}


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(name, context, new, prompt_len=128):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SHAPES[name]().eval()
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        t = time.perf_counter()
        lm = af.load(pathlib.Path(tmp), max_context=context)
        compile_s = time.perf_counter() - t
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
    return dict(model=name, params=params, compile_s=compile_s, af_prefill=af_prefill, pt_prefill=pt_prefill,
                af_decode=af_decode, pt_decode=pt_decode, step_bytes=weight_bytes + cache_bytes, peak=peak_mib())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="gpt2-small,qwen2-0.5b")
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--new", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(af.num_threads())
    print(f"threads {af.num_threads()}, context {args.context}, {args.new} new tokens, 128-token prompt")
    print("| model | parameters | compile s | prefill tok/s af / torch | decode tok/s af / torch | "
          "bytes read per decode step | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        r = bench(name, args.context, args.new)
        print(f"| {r['model']} | {r['params'] / 1e6:.0f}M | {r['compile_s']:.1f} | {r['af_prefill']:.0f} / "
              f"{r['pt_prefill']:.0f} | {r['af_decode']:.1f} / {r['pt_decode']:.1f} | "
              f"{r['step_bytes'] / 2**20:.0f} MiB | {r['peak']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
