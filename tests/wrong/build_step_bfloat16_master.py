"""Wrong build (lesson 06): the parameters are cast to bfloat16 before the step differentiates
and updates them, so the state keeps bfloat16 weights: the float32 master weights are lost."""

import jax

from shared import model
from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_make_step_mixed_precision", "master weights")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/build_step.py")
remat = _m.remat


def make_step(mc, tc, net=model):
    inner = _m.make_step(mc, tc, net)

    def step(state, batch):
        return inner(dict(state, params=model.cast(state["params"], jax.numpy.dtype(mc.dtype))), batch)

    return jax.jit(step, donate_argnums=0)
