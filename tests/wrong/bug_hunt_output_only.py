"""Wrong answer (lesson 06, exercise 6.10): looks for NaN in the output only. A NaN that a later
jnp.where discards, or an id that the gather clamps, leaves the output finite, and even when the
output is NaN it cannot say where the NaN was made."""

from pathlib import Path

import jax
import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_first_nan_hidden", "look at every op, not the output")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/bug_hunt.py")
recompiles = _m.recompiles


def first_nan(fn, *args):
    out = jax.jit(fn)(*args)
    if all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(out)):
        return None
    return "", "nan in the output"
