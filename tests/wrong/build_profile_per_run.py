"""Wrong build (lesson 08): breakdown divides each op's time by its runs, not the trace's by its steps."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_breakdown_per_step", "not by an op's runs")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/08_profiling_naive_inference"
                 / "build_profile.py")
OpTime, CATEGORIES = _m.OpTime, _m.CATEGORIES
op_times, categorize, summarize = _m.op_times, _m.categorize, _m.summarize


def breakdown(ops, steps=1, hlo=""):
    per_run = [OpTime(o.name, o.module, o.count, o.seconds / o.count) for o in ops]
    return _m.breakdown(per_run, 1, hlo)
