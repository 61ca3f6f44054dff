"""The output gates of weight compression: what a compressed program's outputs are measured on.

With calibration data, the compressed program's outputs against the uncompressed one's on
those inputs. Without it, on synthetic inputs drawn for each data input of the program (float
inputs from N(0, 1), index inputs uniform over their table): a weight-space check alone passed
an int4 MobileNetV2 whose output no longer depended on its input, so the data-free gate
measures the *input-dependent* part of the outputs too (each output less its mean over the
synthetic samples), which a constant offset cannot mask.
"""
from __future__ import annotations

import numpy as np

from .. import _core

DATA_FREE_MIN_COSINE = 0.99  # input-dependent cosine the data-free gate holds by default
SYNTHETIC_SAMPLES = 8        # samples drawn (in as many batches as the program's batch needs)


class CannotSynthesize(Exception):
    """An input the data-free gate cannot draw values for (the reason is the message)."""


def feeds(batch):
    """(args, kwargs) of one calibration batch: an array, a tuple/list of arrays or a dict."""
    if isinstance(batch, dict):
        return (), batch
    if isinstance(batch, (list, tuple)):
        return tuple(batch), {}
    return (batch,), {}


def _per_output(out):
    """Each output as a (samples, values) array (axis 0 is the batch; a vector is one sample)."""
    outs = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else [out]
    arrays = [np.asarray(v, np.float64) for v in outs]
    return [v.reshape(v.shape[0], -1) if v.ndim >= 2 else v.reshape(1, -1) for v in arrays]


def _cos(a, b) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    return float(a.ravel() @ b.ravel() / (na * nb)) if na and nb else 0.0


def synthetic_batches(net, seed=0):
    """Batches of synthetic inputs (dicts by input name) for the inputs a caller must give:
    float inputs N(0, 1), index inputs uniform over their table. CannotSynthesize for an
    integer input that indexes no table, or a program without data inputs."""
    limits = _core.index_limits(net._program)
    defaults = getattr(net, "_defaults", {})
    rng = np.random.default_rng(seed)
    specs = [(name, tuple(shape), dtype, limit) for (name, shape, dtype), limit in zip(net.inputs, limits)
             if name not in defaults]
    if not specs:
        raise CannotSynthesize("the program has no data inputs")
    for name, _, dtype, limit in specs:
        if dtype in ("int32", "bool") and limit <= 0:
            raise CannotSynthesize(f"input '{name}' is {dtype} and indexes no table: its values cannot be guessed")
    batch = min((s[1][0] for s in specs if s[1]), default=1) or 1
    out = []
    for _ in range(max(1, -(-SYNTHETIC_SAMPLES // batch))):
        out.append({name: rng.integers(0, limit, size=shape).astype(np.int32) if limit > 0 else
                    rng.standard_normal(shape).astype(np.float32) for name, shape, dtype, limit in specs})
    return out


class OutputGate:
    """The worst output cosine of a compressed net against the uncompressed ``ref`` on
    ``batches``: per sample, and (``centered``) of the outputs less their mean over all
    samples, the part that depends on the input. The reference outputs are computed once."""

    def __init__(self, ref, batches, centered: bool):
        self.batches, self.centered = list(batches), centered
        self.ref = self._outputs(ref)

    def _outputs(self, net):
        """Each output as (samples, values), the batches stacked."""
        per_batch = [_per_output(net(*feeds(b)[0], **feeds(b)[1])) for b in self.batches]
        return [np.concatenate(parts) for parts in zip(*per_batch)]

    def varies(self) -> bool:
        """Whether the reference outputs depend on the synthetic inputs at all (and are finite)."""
        return all(np.isfinite(r).all() and np.abs(r - r.mean(0)).max() > 0 for r in self.ref)

    def __call__(self, net) -> float:
        worst = 1.0
        for a, b in zip(self._outputs(net), self.ref):
            worst = min([worst] + [_cos(x, y) for x, y in zip(a, b)])
            if self.centered and len(a) > 1:
                worst = min(worst, _cos(a - a.mean(0), b - b.mean(0)))
        return worst
