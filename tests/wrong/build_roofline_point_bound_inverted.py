"""Wrong build (lesson 02): roofline_point compares the intensity with the ridge the wrong way round."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_roofline_point_bound", "-bound, not")

_SOLUTION = Path(__file__).resolve().parents[2] / "solutions/02_single_chip_performance/build_roofline.py"
_m = load_module(_SOLUTION)
cost, timeit = _m.cost, _m.timeit


def roofline_point(cost, chip, dtype, seconds=None):
    p = _m.roofline_point(cost, chip, dtype, seconds)
    return p._replace(bound="memory" if p.intensity >= p.ridge else "compute")
