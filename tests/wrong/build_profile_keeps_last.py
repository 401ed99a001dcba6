"""Wrong build (lesson 08): an op run several times keeps its last run instead of the sum of all."""

from pathlib import Path

import jax

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_op_times_repeats", "add up every run")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/08_profiling_naive_inference"
                 / "build_profile.py")
OpTime, CATEGORIES = _m.OpTime, _m.CATEGORIES
categorize, breakdown, summarize = _m.categorize, _m.breakdown, _m.summarize


def op_times(logdir):
    xspace = jax.profiler.ProfileData.from_file(str(_m._newest_trace(logdir)))
    last = {}
    for line in _m._op_lines(xspace):
        for op, module, ns in _m._op_events(line):
            last[op, module] = OpTime(op, module, 1, ns * 1e-9)  # overwrites the runs before
    return sorted(last.values(), key=lambda o: o.seconds, reverse=True)


_m.op_times = op_times
