"""Wrong build (lesson 02): roofline_point takes the bfloat16 peak as the compute ceiling, whatever
the dtype."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_roofline_point_dtype", "comes from the bfloat16 peak")

_SOLUTION = Path(__file__).resolve().parents[2] / "solutions/02_single_chip_performance/build_roofline.py"
_m = load_module(_SOLUTION)
cost, timeit = _m.cost, _m.timeit


def roofline_point(cost, chip, dtype, seconds=None):
    return _m.roofline_point(cost, chip, "bfloat16", seconds)  # the headline figure of every datasheet
