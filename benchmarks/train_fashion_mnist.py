"""Fashion-MNIST trained by the compiled train step on the simulator, beside the same model,
initial weights, batches and schedule in PyTorch CPU float32, in one process.

    apt install dataset-fashion-mnist     # /usr/share/datasets/fashion-mnist/
    . .venv/bin/activate && python benchmarks/train_fashion_mnist.py [--epochs 5] [--json out.json]

ANEForge trains in fp16 (fp32 master weights and Adam moments, dynamic loss scaling), every
step one program: forward, backward and update. Reports both test accuracies, their
difference, the seconds per epoch of each and the time ratio; writes a loss/accuracy PNG.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np
import torch

import aneforge as af

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def af_model():
    af.nn.manual_seed(0)
    return af.nn.Sequential(af.nn.Conv2d(1, 16, 3, padding=1), af.nn.ReLU(), af.nn.MaxPool2d(2),
                            af.nn.Conv2d(16, 32, 3, padding=1), af.nn.ReLU(), af.nn.MaxPool2d(2),
                            af.nn.Flatten(), af.nn.Linear(32 * 7 * 7, 10))


def torch_model():
    n = torch.nn
    return n.Sequential(n.Conv2d(1, 16, 3, padding=1), n.ReLU(), n.MaxPool2d(2), n.Conv2d(16, 32, 3, padding=1), n.ReLU(),
                        n.MaxPool2d(2), n.Flatten(), n.Linear(32 * 7 * 7, 10))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DIR)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--plot", default="fashion_mnist_training.png")
    args = ap.parse_args()
    if not pathlib.Path(args.data).is_dir():
        sys.exit(f"no Fashion-MNIST at {args.data}: apt install dataset-fashion-mnist, or pass --data DIR holding "
                 "train-images-idx3-ubyte(.gz) and the other three IDX files")
    torch.set_num_threads(args.threads)
    af.set_num_threads(args.threads)  # the same threads on both sides
    xtr, ytr = af.data.load_mnist(args.data, "train")
    xte, yte = af.data.load_mnist(args.data, "test")
    steps_per_epoch = len(xtr) // args.batch
    schedule = af.schedules.cosine(args.lr, total=args.epochs * steps_per_epoch)

    model = af_model()
    trainer = af.Trainer(model, af.optim.Adam(lr=args.lr), batch_size=args.batch, schedule=schedule)
    ref = torch_model()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})  # same start

    history = trainer.fit(xtr, ytr, epochs=args.epochs, eval_data=(xte, yte))
    af_seconds = sum(h["seconds"] for h in history)

    opt = torch.optim.Adam(ref.parameters(), lr=args.lr)
    t_hist, t_seconds, i = [], 0.0, 0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        for xb, yb in af.data.batches(xtr, ytr, args.batch, shuffle=True, seed=epoch):  # the Trainer's batches
            for g in opt.param_groups:
                g["lr"] = schedule(i)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(ref(torch.from_numpy(xb)), torch.from_numpy(yb).long()).backward()
            opt.step()
            i += 1
        t_seconds += time.perf_counter() - t0
        with torch.no_grad():
            acc = float((ref(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
        t_hist.append(acc)
        print(f"torch epoch {epoch + 1}: test accuracy {acc:.4f}")

    result = {
        "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "threads": args.threads,
        "aneforge_test_accuracy": history[-1]["eval_accuracy"], "torch_test_accuracy": t_hist[-1],
        "difference_points": 100 * (history[-1]["eval_accuracy"] - t_hist[-1]),
        "aneforge_seconds_per_epoch": af_seconds / args.epochs, "torch_seconds_per_epoch": t_seconds / args.epochs,
        "time_ratio_aneforge_over_torch": af_seconds / t_seconds,
        "skipped_steps": sum(h["skipped_steps"] for h in history),
        "aneforge_history": history, "torch_accuracy_per_epoch": t_hist,
    }
    trainer.plot(args.plot)
    print(json.dumps({k: v for k, v in result.items() if not k.endswith(("history", "per_epoch"))}, indent=1))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
