"""Wrong build (lesson 02): timeit times every call, the first one (tracing and compiling) too."""

import statistics
import time
from pathlib import Path

import jax

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_timeit_skips_warmup", "the warm-up must not be timed")

_SOLUTION = Path(__file__).resolve().parents[2] / "solutions/02_single_chip_performance/build_roofline.py"
_m = load_module(_SOLUTION)
cost, roofline_point = _m.cost, _m.roofline_point


def timeit(fn, *args, warmup=1, runs=5, min_time=0.0):
    times = []
    for _ in range(warmup + runs):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return _m.Timing(statistics.median(times), min(times), max(times), len(times))
