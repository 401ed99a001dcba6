"""Wrong build (lesson 02): the core's timer, reached through shared.hardware (which imports it)."""

import jax

from shared.hardware import timeit  # noqa: F401

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "takes timeit from shared.hardware")


def cost(fn, *args):
    analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
    return float(analysis.get("flops", 0.0)), float(analysis.get("bytes accessed", 0.0))


def roofline_point(cost, chip, dtype, seconds=None):
    raise NotImplementedError("not the mistake this build is kept for")
