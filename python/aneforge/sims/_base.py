"""What every simulation shares: ``steps`` time steps unrolled into one program whose state
outputs are bound to its state inputs (``Net.make_resident``), so ``run`` moves the state in
once and out once however many programs it calls."""
from __future__ import annotations

import numpy as np

from ..graph import functional as _F
from ..graph.tensor import input as _input

MAX_STEPS_PER_PROGRAM = 256  # unrolled steps per program: compile time and program size stay small


class Simulation:
    """Base of the af.sims classes: ``state_names`` name the state tensors, ``_shapes`` gives
    their shapes and ``_step`` advances them one time step as graph ops.

    Every simulation takes ``steps_per_program`` (steps unrolled per program, 1..256),
    ``backend`` ("sim", "mil" or "engine"), ``precision`` ("fp16", or "fp32" on the sim to
    separate a scheme's error from fp16's) and ``target``, as ``af.compile`` does."""

    state_names: tuple = ()

    def __init__(self, steps_per_program=32, backend="sim", precision="fp16", target=None):
        if not 1 <= int(steps_per_program) <= MAX_STEPS_PER_PROGRAM:
            raise ValueError(f"steps_per_program={steps_per_program} is outside 1..{MAX_STEPS_PER_PROGRAM}")
        self.steps_per_program = int(steps_per_program)
        self.backend, self.precision, self.target = backend, precision, target
        self._programs: dict = {}

    # -- what a subclass gives -------------------------------------------------------------
    def _shapes(self) -> dict:
        raise NotImplementedError

    def _step(self, state: dict) -> dict:
        raise NotImplementedError

    def _enter(self, state: dict) -> dict:
        """The state as the steps carry it (a spectral solver transforms it once per program)."""
        return state

    def _leave(self, state: dict) -> dict:
        return state

    # -- programs --------------------------------------------------------------------------
    def graph(self, steps: int) -> tuple:
        """(inputs, outputs): ``steps`` steps as graph tensors, to put inside a larger graph."""
        inputs = {k: _input(s, name=k) for k, s in self._shapes().items()}
        state = self._enter(dict(inputs))
        for _ in range(int(steps)):
            state = self._step(state)
        return inputs, self._leave(state)

    def program(self, steps: int):
        """The compiled program of ``steps`` steps (cached), its state resident where the
        backend binds outputs to inputs (sim and engine)."""
        steps = int(steps)
        if steps not in self._programs:
            from ..compiler.build import compile as _compile
            _, outputs = self.graph(steps)
            net = _compile(outputs, backend=self.backend, precision=self.precision, target=self.target)
            resident = hasattr(net._exe, "alias")
            if resident:
                for k in self.state_names:
                    net.make_resident(k, k)
            self._programs[steps] = (net, resident)
        return self._programs[steps]

    def run(self, state, steps: int, progress=None):
        """Advance ``state`` (an array, or a tuple of arrays for several fields) by ``steps``
        time steps; returns the new state in the same form. ``progress``: a tqdm bar over the
        steps run (None: shown when stderr is a terminal)."""
        single = len(self.state_names) == 1
        values = (state,) if single else tuple(state)
        if len(values) != len(self.state_names):
            raise ValueError(f"{type(self).__name__}.run: the state is {self.state_names}, got {len(values)} arrays")
        arrays = {}
        for k, v in zip(self.state_names, values):
            a = np.asarray(v, dtype=np.float32)
            want = tuple(self._shapes()[k])
            if a.shape != want:
                raise ValueError(f"{type(self).__name__}.run: {k} must have shape {want}, got {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"{type(self).__name__}.run: {k} holds inf or NaN")
            arrays[k] = a
        if int(steps) != steps or steps < 0:
            raise ValueError(f"{type(self).__name__}.run: steps must be a whole number >= 0, got {steps!r}")
        steps = int(steps)
        full, rest = divmod(steps, self.steps_per_program)
        calls = [self.steps_per_program] * full + ([rest] if rest else [])
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=type(self).__name__, unit="step",
                   disable=None if progress is None else not progress, leave=False)
        out, fed = arrays, None
        try:
            for n in calls:
                net, resident = self.program(n)
                give = {} if (resident and fed is net) else out
                out = net(**give)
                fed = net if resident else None
                bar.update(n)
        finally:
            bar.close()
        result = tuple(np.asarray(out[k]) for k in self.state_names)
        return result[0] if single else result


def wrap_pad(x, width: int = 1):
    """x (..., H, W) padded periodically by ``width`` on both sides of the last two axes."""
    x = _F.concat([x[..., -width:], x, x[..., :width]], dim=-1)
    return _F.concat([x[..., -width:, :], x, x[..., :width, :]], dim=-2)


def compensated_add(hi, lo, increment):
    """(hi, lo) + increment with the rounding error kept in lo (Kahan 1965; Fast2Sum, Dekker
    1971: exact in any binary format rounding to nearest while |hi| >= |increment + lo|).
    fp16 keeps 11 bits: an increment below half of hi's spacing would otherwise be rounded
    away every step (a slow viscous decay never happens); with lo it accumulates until it
    counts."""
    y = increment + lo
    t = hi + y
    return t, y - (t - hi)
