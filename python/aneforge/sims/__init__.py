"""Simulations as programs: each ``.run(state, steps)`` advances many time steps inside one
program with its state resident (docs/science.md)."""
from ._base import Simulation
from .diffusion import GrayScott, Heat2D
from .fluids import NavierStokes2D
from .nbody import NBody

__all__ = ["Simulation", "NavierStokes2D", "Heat2D", "GrayScott", "NBody"]
