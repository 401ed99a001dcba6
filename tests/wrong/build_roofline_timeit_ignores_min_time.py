"""Wrong build (lesson 02): timeit times exactly `runs` runs, however short they are (min_time ignored)."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_timeit_min_time", "stopped after 1 run")

_SOLUTION = Path(__file__).resolve().parents[2] / "solutions/02_single_chip_performance/build_roofline.py"
_m = load_module(_SOLUTION)
cost, roofline_point = _m.cost, _m.roofline_point


def timeit(fn, *args, warmup=1, runs=5, min_time=0.0):
    return _m.timeit(fn, *args, warmup=warmup, runs=runs)
