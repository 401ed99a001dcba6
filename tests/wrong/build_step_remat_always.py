"""Wrong build (lesson 06): policy "none" still wraps the layer in jax.checkpoint (with jax's
default policy, which keeps nothing), so a run without remat recomputes every layer."""

import jax

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_remat_none", "policy 'none' leaves the layer as it is")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/build_step.py")
make_step = _m.make_step


def remat(layer, policy):
    return jax.checkpoint(layer) if policy == "none" else _m.remat(layer, policy)
