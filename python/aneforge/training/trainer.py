"""Trainer: minibatch training of an af.nn model by the compiled train step, with a progress
bar (tqdm), a metrics history, evaluation, checkpoints written atomically and resumed
exactly, and a PNG plot of loss and accuracy.

    trainer = af.Trainer(model, af.optim.Adam(lr=1e-3), batch_size=64, checkpoint="run.ckpt")
    history = trainer.fit(x_train, y_train, epochs=5, eval_data=(x_test, y_test))
    trainer.plot("run.png")
"""
from __future__ import annotations

import io
import json
import os
import time
import zipfile

import numpy as np

from .. import _core
from .. import data as _data
from ..compiler.build import compile as _compile
from ..graph import functional as _F
from .losses import cross_entropy as _cross_entropy
from .train import compile_train_step as _compile_train_step

__all__ = ["Trainer"]

_CKPT_VERSION = 1


def _write(path, data: bytes, overwrite=True):
    """Whole file or nothing: written beside the target, synced, then renamed over it."""
    _core.write_file(os.fspath(path), data, overwrite)


class Trainer:
    """Trains ``model`` (an af.nn.Module whose call maps a batch of inputs to logits) with
    cross-entropy on integer class labels, unless ``loss`` (logits, labels -> scalar Tensor)
    is given. ``schedule``: a function of the step index giving the learning rate
    (af.schedules). ``checkpoint``: a file path saved after every epoch (atomically) and
    resumed from by ``fit(..., resume=True)``."""

    def __init__(self, model, optimizer, batch_size=64, loss=None, schedule=None, precision="fp16", backend="sim",
                 checkpoint=None, progress=True, seed=0):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Trainer: batch_size must be an int >= 1, got {batch_size!r}")
        self.model, self.optimizer, self.batch_size = model, optimizer, batch_size
        self.loss_fn = loss or _cross_entropy
        self.schedule, self.precision, self.backend = schedule, precision, backend
        self.checkpoint, self.progress, self.seed = checkpoint, progress, seed
        self.history: list[dict] = []
        self.step = None
        self._eval = {}
        self.epoch = 0

    # -- building -------------------------------------------------------------------------
    def _build(self, x, y):
        self.model.train()
        xi = _F.input((self.batch_size,) + tuple(x.shape[1:]), name="x")
        yi = _F.input((self.batch_size,) + tuple(y.shape[1:]), dtype="int32" if y.dtype.kind in "iu" else "fp16",
                      name="y")
        loss = self.loss_fn(self.model(xi), yi)
        self.step = _compile_train_step(loss, self.model.parameters(), self.optimizer, inputs=[xi, yi],
                                          precision=self.precision, backend=self.backend)

    def _eval_net(self, shape):
        if shape not in self._eval:
            self.model.eval()
            try:
                xi = _F.input(shape, name="x")
                self._eval[shape] = _compile(self.model(xi), precision=self.precision, backend=self.backend)
            finally:
                self.model.train()
        return self._eval[shape]

    # -- training -------------------------------------------------------------------------
    def fit(self, x, y, epochs, eval_data=None, resume=False):
        """Trains for ``epochs`` epochs in all (a resumed run continues to that count); shuffles
        with a seed per epoch, drops the last partial batch. Returns the history: one dict per
        epoch (epoch, loss, seconds, skipped_steps, and eval_loss, eval_accuracy with eval_data)."""
        x, y = np.asarray(x, np.float32), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"fit: {len(x)} inputs but {len(y)} labels")
        if len(x) < self.batch_size:
            raise ValueError(f"fit: {len(x)} examples are fewer than one batch of {self.batch_size}")
        if self.step is None:
            self._build(x, y)
        if resume and self.checkpoint and os.path.exists(self.checkpoint):
            self.load_checkpoint(self.checkpoint)
        per_epoch = len(x) // self.batch_size
        from tqdm.auto import tqdm
        while self.epoch < epochs:
            t0, losses, correct, seen, skipped0 = time.perf_counter(), [], 0, 0, self.step.skipped
            bar = tqdm(total=per_epoch, desc=f"epoch {self.epoch + 1}/{epochs}", disable=not self.progress,
                       leave=False, mininterval=0.5)
            for xb, yb in _data.batches(x, y, self.batch_size, shuffle=True, seed=self.seed + self.epoch):
                i = self.step.steps
                lr = self.schedule(i) if self.schedule else None
                losses.append(self.step(xb, yb, lr=lr))
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            bar.close()
            self.epoch += 1
            row = {"epoch": self.epoch, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0,
                   "skipped_steps": self.step.skipped - skipped0}
            if eval_data is not None:
                ev = self.evaluate(*eval_data)
                row.update(eval_loss=ev["loss"], eval_accuracy=ev["accuracy"])
            self.history.append(row)
            if self.progress:
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            if self.checkpoint:
                self.save_checkpoint(self.checkpoint)
        self.model.update_from(self.step)
        return self.history

    def evaluate(self, x, y, batch_size=None):
        """Mean cross-entropy and accuracy of the current weights on (x, y): classification,
        the model's outputs taken as logits and y as class indices (whatever ``loss`` trains)."""
        self.model.update_from(self.step)
        feeds = self.model.feeds()
        bs = batch_size or max(self.batch_size, 250)
        x, y = np.asarray(x, np.float32), np.asarray(y)
        total_loss, correct = 0.0, 0
        for start in range(0, len(x), bs):
            xb, yb = x[start:start + bs], y[start:start + bs]
            net = self._eval_net(tuple(xb.shape))
            logits = np.asarray(net(x=xb, **{k: v for k, v in feeds.items() if k in _names(net)}), np.float64)
            z = logits - logits.max(1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(1, keepdims=True))
            total_loss += float(-logp[np.arange(len(yb)), yb.astype(np.int64)].sum())
            correct += int((logits.argmax(1) == yb).sum())
        return {"loss": total_loss / len(x), "accuracy": correct / len(x)}

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, path):
        """Everything to continue exactly: weights, optimizer moments, buffers, step count,
        loss scale, the noise generator and the history (one .npz, replaced atomically). An
        existing file is replaced only if it is an ANEForge checkpoint."""
        if os.path.exists(path) and not _is_checkpoint(path):
            raise FileExistsError(f"{path} exists and is not an ANEForge checkpoint; not replacing it")
        s = self.step
        arrays = {f"state_{i}": np.asarray(v) for i, v in enumerate(s._values())}
        meta = {"version": _CKPT_VERSION, "epoch": self.epoch, "steps": s.steps, "skipped": s.skipped,
                "rng": s._rng.bit_generator.state, "history": self.history, "n_state": len(arrays)}
        buf = io.BytesIO()
        np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        _write(path, buf.getvalue())

    def load_checkpoint(self, path):
        """Restores what save_checkpoint wrote. The file is untrusted: every field, count, shape
        and dtype is checked before anything is applied, so a bad file changes nothing."""
        s = self.step
        if s is None:
            raise ValueError("load_checkpoint: the train step is built by fit(); use fit(..., resume=True)")
        try:
            with np.load(path, allow_pickle=False) as z:
                if "__meta__" not in z.files:
                    raise ValueError("no __meta__ record")
                meta = json.loads(bytes(z["__meta__"]).decode())
                if not isinstance(meta, dict):
                    raise ValueError("__meta__ is not a record")
                if meta.get("version") != _CKPT_VERSION:
                    raise ValueError(f"checkpoint version {meta.get('version')!r}, this library reads {_CKPT_VERSION}")
                n = meta.get("n_state")
                if n != len(s._state):
                    raise ValueError(f"holds {n!r} state tensors, this model's train step has {len(s._state)}")
                state = []
                for i, want in enumerate(s._state):
                    key = f"state_{i}"
                    if key not in z.files:
                        raise ValueError(f"{key} is missing")
                    a = z[key]
                    if a.shape != np.shape(want) or a.dtype.kind != "f":
                        raise ValueError(f"{key} is {a.dtype} {a.shape}, the train step expects float "
                                         f"{np.shape(want)}")
                    state.append(np.array(a, np.float32))
            fields = {k: meta.get(k) for k in ("epoch", "steps", "skipped")}
            if not all(isinstance(v, int) and v >= 0 for v in fields.values()):
                raise ValueError(f"bad counters {fields}")
            if not isinstance(meta.get("history"), list) or not isinstance(meta.get("rng"), dict):
                raise ValueError("bad history or generator state")
            rng = np.random.default_rng()
            rng.bit_generator.state = meta["rng"]  # validated by NumPy before we keep it
        except (ValueError, KeyError, TypeError, OSError, UnicodeDecodeError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: not a checkpoint of this train step ({e})") from None
        s._state, s._last, s._started = state, None, False
        s.steps, s.skipped, s._rng = fields["steps"], fields["skipped"], rng
        self.epoch, self.history = fields["epoch"], list(meta["history"])

    # -- plot -----------------------------------------------------------------------------
    def plot(self, path):
        """Loss and accuracy per epoch as a PNG (matplotlib, installed with aneforge[plot])."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("Trainer.plot needs matplotlib: pip install 'aneforge[plot]'") from e
        if not self.history:
            raise ValueError("plot: nothing trained yet")
        ep = [h["epoch"] for h in self.history]
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
        a.plot(ep, [h["loss"] for h in self.history], "o-", label="train")
        if "eval_loss" in self.history[0]:
            a.plot(ep, [h["eval_loss"] for h in self.history], "o-", label="eval")
            b.plot(ep, [100 * h["eval_accuracy"] for h in self.history], "o-", color="C1", label="eval")
        a.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
        b.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
        for ax in (a, b):
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        _write(path, buf.getvalue())


def _is_checkpoint(path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return "__meta__" in z.files
    except (ValueError, OSError, zipfile.BadZipFile):
        return False


def _names(net):
    return {i[0] for i in net.inputs}
