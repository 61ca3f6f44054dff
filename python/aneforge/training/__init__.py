"""Training: the fused train step (train.py), losses, optimizers, learning-rate schedules, the
nn modules and the Trainer loop. Imports the compiler and the graph front end; the public
modules are re-exported at the root (af.nn, af.optim, af.schedules, af.losses, af.trainer)."""
