"""Wrong build (lesson 06): the step is jitted without donating the old state, so both states
are alive at the end of every step."""

import jax

from shared import model
from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_make_step_donates", "not donated")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/build_step.py")
remat = _m.remat


def make_step(mc, tc, net=model):
    donated = _m.make_step(mc, tc, net)
    return jax.jit(lambda state, batch: donated(state, batch))  # the outer jit donates nothing
