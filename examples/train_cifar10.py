"""Train the seed's CIFAR-10 recipe on the compiled train step: a 3-conv CNN with GroupNorm,
Adam 3e-3, batch 64, 10 epochs (the seed reports 71% test accuracy for it).

    python examples/train_cifar10.py --data ~/datasets/cifar10 [--epochs 10] [--limit N]

--data is a directory holding the CIFAR-10 batches (data_batch_1 ... data_batch_5 and
test_batch), as the binary (.bin) or Python-pickle distribution, directly or under
cifar-10-batches-bin/ or cifar-10-batches-py/ (https://www.cs.toronto.edu/~kriz/cifar.html).
Nothing is downloaded. Writes cifar10_training.png (loss and accuracy) and a resumable
checkpoint, cifar10.ckpt (run again with --resume to continue).
"""
import argparse
import os
import sys

import numpy as np

import aneforge as af


def model():
    af.nn.manual_seed(0)
    block = lambda cin, cout: [af.nn.Conv2d(cin, cout, 3, padding=1), af.nn.GroupNorm(8, cout), af.nn.ReLU(),  # noqa: E731
                               af.nn.MaxPool2d(2)]
    return af.nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), af.nn.Flatten(),
                            af.nn.Linear(128 * 4 * 4, 10))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.expanduser("~/datasets/cifar10"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training and test images")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    try:
        xtr, ytr = af.data.load_cifar10(args.data, "train")
        xte, yte = af.data.load_cifar10(args.data, "test")
    except FileNotFoundError as e:
        sys.exit(f"{e}\nPut the CIFAR-10 batches there (binary or Python version from "
                 "https://www.cs.toronto.edu/~kriz/cifar.html, unpacked), or pass --data DIR.")
    if args.limit:
        xtr, ytr, xte, yte = xtr[:args.limit], ytr[:args.limit], xte[:args.limit], yte[:args.limit]
    mean = xtr.mean(axis=(0, 2, 3), keepdims=True)
    std = xtr.std(axis=(0, 2, 3), keepdims=True)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    trainer = af.Trainer(model(), af.optim.Adam(lr=3e-3), batch_size=64,
                         checkpoint=os.path.join(args.out, "cifar10.ckpt"))
    history = trainer.fit(xtr, ytr.astype(np.int32), epochs=args.epochs, eval_data=(xte, yte), resume=args.resume)
    trainer.plot(os.path.join(args.out, "cifar10_training.png"))
    print(f"test accuracy after {history[-1]['epoch']} epochs: {100 * history[-1]['eval_accuracy']:.2f}% "
          f"(the seed's figure for this recipe: 71%)")


if __name__ == "__main__":
    main()
