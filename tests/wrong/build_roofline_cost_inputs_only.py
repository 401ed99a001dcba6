"""Wrong build (lesson 02): cost takes the bytes a program moves to be the size of its inputs."""

import math
from pathlib import Path

import jax
import jax.numpy as jnp

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_cost_bytes", "the size of the inputs alone")

_SOLUTION = Path(__file__).resolve().parents[2] / "solutions/02_single_chip_performance/build_roofline.py"
_m = load_module(_SOLUTION)
timeit, roofline_point = _m.timeit, _m.roofline_point


def cost(fn, *args):
    nbytes = sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(args))
    return _m.Cost(_m.cost(fn, *args).flops, float(nbytes))
