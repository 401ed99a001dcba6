"""Wrong build (lesson 02): roofline_point's fraction is the measured time over the bound."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_roofline_point_fraction", "upside down")

_SOLUTION = Path(__file__).resolve().parents[2] / "solutions/02_single_chip_performance/build_roofline.py"
_m = load_module(_SOLUTION)
cost, timeit = _m.cost, _m.timeit


def roofline_point(cost, chip, dtype, seconds=None):
    p = _m.roofline_point(cost, chip, dtype, seconds)
    return p._replace(fraction=None if seconds is None else seconds / p.bound_s)
