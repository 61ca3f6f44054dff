"""The aneforge command line: targets, inspect, export, run.

    aneforge targets
    aneforge inspect FILE
    aneforge export FILE --target h16g --format mlpackage|mil|blob OUT
    aneforge run MODEL.mlpackage --input name=file.npy ... --output DIR
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import aneforge as af


def _targets(args) -> int:
    rows = af.targets()
    print(f"{'target':8s} {'family':9s} {'MIL':4s} {'chips':28s} {'W/H max':>8s} {'kernel W':>8s} "
          f"{'TF/s':>5s} {'GB/s':>5s} {'dispatch':>9s}")
    for t in rows:
        print(f"{t['name']:8s} {t['family']:9s} {'yes' if t['mil'] else 'no':4s} {', '.join(t['chips'])[:28]:28s} "
              f"{t['spatial_max']:8d} {t['kernel_width_max']:8d} {t['fp16_tflops']:5g} {t['bandwidth_gbs']:5g} "
              f"{t['dispatch_us']:7g}us")
    print("\nsources and details: docs/targets.md or af.targets()")
    return 0


def _devices(args) -> int:
    for d in af.devices():
        state = "available" if d["available"] else "unavailable"
        extra = ""
        if d["name"] == "engine":
            extra = (f": target {d['target']}, path {d['path']} ({d['library']})" if d["available"]
                     else f": {d['reason']}")
        print(f"{d['name']:7s} {state}{extra}")
    return 0


def _inspect(args) -> int:
    net = af.load_program(args.file)
    net.summary()
    est = net.estimate()
    print(f"  estimate on {est['target']}: {est['total_us']:.1f} us over {len(est['layers'])} layers")
    return 0


def _export(args) -> int:
    net = af.load_program(args.file)
    if args.target:
        net.estimate(args.target)  # checks the program against the target first
    if args.format == "mlpackage":
        net.export_mlpackage(args.out, opset=args.opset, overwrite=args.overwrite)
    elif args.format == "mil":
        af._core.write_file(args.out, net.mil_text(args.opset).encode(), args.overwrite)
    else:
        af._core.write_file(args.out, net.weight_blob(args.opset), args.overwrite)
    print(f"wrote {args.out} ({args.format}, {args.opset}, target {args.target or net.target})")
    return 0


def _run(args) -> int:
    import io
    import os
    net = af.load_mlpackage(args.model)
    feeds = {}
    for item in args.input or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--input takes NAME=FILE.npy, got {item!r}")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"--input {name}: cannot read {path} as a .npy array ({e})") from None
    known = [n for n, _, _ in net.inputs]
    missing = [n for n in known if n not in feeds]
    if missing:
        shapes = ", ".join(f"{n} {s}" for n, s, _ in net.inputs)
        raise ValueError(f"missing --input for {', '.join(missing)}; the model's inputs are: {shapes}")
    outs = net(**feeds)
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise ValueError(f"--output {args.output} exists and is not a directory")
    dests = {name: os.path.join(args.output, ("".join(c if c.isalnum() or c in "_-." else "_" for c in name)
                                              .lstrip(".") or "output") + ".npy") for name in outs}
    taken = [d for d in dests.values() if os.path.lexists(d)]
    if taken and not args.overwrite:  # checked before anything is written: no partial set of outputs
        raise ValueError(f"{', '.join(taken)} already exist(s); pass --overwrite to replace")
    os.makedirs(args.output, exist_ok=True)
    for name, arr in outs.items():
        dest = dests[name]
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        af._core.write_file(dest, buf.getvalue(), args.overwrite)  # durable; an existing file only with --overwrite
        print(f"{name}: {arr.shape} {arr.dtype} -> {dest}")
    return 0


def _generate(args) -> int:
    lm = af.load(args.model, precision=args.precision, max_context=args.max_context)
    if not isinstance(lm, af.models.CausalLM):
        raise ValueError(f"{args.model} is not a causal language model (a *ForCausalLM / LMHeadModel directory)")
    if lm.tokenizer is None and args.prompt is not None:
        raise ValueError(f"{args.model} has no tokenizer.json: give --ids")
    if (args.prompt is None) == (args.ids is None):
        raise ValueError("give --prompt TEXT or --ids 1,2,3 (one of them)")
    prompt = args.prompt if args.prompt is not None else [int(t) for t in args.ids.split(",")]
    options = dict(do_sample=args.temperature > 0, seed=args.seed)
    if args.temperature > 0:
        options.update(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    tokens = []
    shown = ""
    for tok in lm.stream(prompt, args.max_new_tokens, **options):
        tokens.append(tok)
        if lm.tokenizer is None:
            print(tok, end=" ", flush=True)
            continue
        text = lm.tokenizer.decode(tokens)  # whole-text decode: multi-token characters come out right
        print(text[len(shown):], end="", flush=True)
        shown = text
    print()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="aneforge", description="ANEForge: compile tensor graphs for the Apple Neural Engine.")
    p.add_argument("--version", action="version", version=f"aneforge {af.__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("targets", help="list the 28 compiler targets").set_defaults(fn=_targets)
    sub.add_parser("devices", help="where programs can run: sim, mil and the Neural Engine").set_defaults(fn=_devices)
    i = sub.add_parser("inspect", help="summarise a program file")
    i.add_argument("file")
    i.set_defaults(fn=_inspect)
    e = sub.add_parser("export", help="export a program file as .mlpackage, MIL text or weight blob")
    e.add_argument("file")
    e.add_argument("out")
    e.add_argument("--target", help="check the program against this target (name or chip) first")
    e.add_argument("--format", choices=["mlpackage", "mil", "blob"], default="mlpackage")
    e.add_argument("--opset", choices=["ios17", "ios18"], default="ios18")
    e.add_argument("--overwrite", action="store_true", help="replace an existing file at OUT (never a directory)")
    e.set_defaults(fn=_export)
    r = sub.add_parser("run", help="run an ML Program (.mlpackage) on the mil backend; outputs as .npy files")
    r.add_argument("model")
    r.add_argument("--input", action="append", metavar="NAME=FILE.npy", help="one per model input")
    r.add_argument("--output", required=True, metavar="DIR", help="directory for OUTPUT_NAME.npy files (created)")
    r.add_argument("--overwrite", action="store_true", help="replace existing OUTPUT_NAME.npy files in DIR")
    r.set_defaults(fn=_run)
    g = sub.add_parser("generate", help="generate text with a causal language model directory (streamed)")
    g.add_argument("model", help="a Hugging Face directory (GPT-2, Llama, Mistral, Qwen2, Qwen3, Phi-3, Gemma)")
    g.add_argument("--prompt", help="the prompt text (needs the directory's tokenizer.json)")
    g.add_argument("--ids", help="or the prompt as token ids, comma-separated")
    g.add_argument("--max-new-tokens", type=int, default=32)
    g.add_argument("--max-context", type=int, default=None, help="KV cache positions (default: the model's, <= 1024)")
    g.add_argument("--temperature", type=float, default=0.0, help="0: greedy (the default); > 0: sample")
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    g.set_defaults(fn=_generate)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, OSError, NotImplementedError) as err:
        print(f"aneforge {args.cmd}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
