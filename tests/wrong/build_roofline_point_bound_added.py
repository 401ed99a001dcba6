"""Wrong build (lesson 02): roofline_point adds the compute time and the memory time as the bound."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_roofline_point_bound_s", "not added")

_SOLUTION = Path(__file__).resolve().parents[2] / "solutions/02_single_chip_performance/build_roofline.py"
_m = load_module(_SOLUTION)
cost, timeit = _m.cost, _m.timeit


def roofline_point(cost, chip, dtype, seconds=None):
    p = _m.roofline_point(cost, chip, dtype, seconds)
    bound_s = cost.flops / chip.flops(dtype) + cost.bytes / chip.memory_bw
    return p._replace(bound_s=bound_s, fraction=None if seconds is None else bound_s / seconds)
