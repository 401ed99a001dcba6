"""Wrong build (lesson 02): cost reads the cost analysis of the lowered program, before XLA compiles it."""

from pathlib import Path

import jax

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_cost_compiled", "as written")

_SOLUTION = Path(__file__).resolve().parents[2] / "solutions/02_single_chip_performance/build_roofline.py"
_m = load_module(_SOLUTION)
timeit, roofline_point = _m.timeit, _m.roofline_point


def cost(fn, *args):
    analysis = jax.jit(fn).lower(*args).cost_analysis()  # no fusion, no merged work yet
    return _m.Cost(float(analysis.get("flops", 0.0)), float(analysis.get("bytes accessed", 0.0)))
