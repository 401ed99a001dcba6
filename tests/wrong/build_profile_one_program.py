"""Wrong build (lesson 08): ops are looked up in all the programs' text at once, so
same-named ops of two programs collide."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_breakdown_modules", "its own program's text")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/08_profiling_naive_inference"
                 / "build_profile.py")
OpTime, CATEGORIES = _m.OpTime, _m.CATEGORIES
op_times, categorize, summarize = _m.op_times, _m.categorize, _m.summarize


def breakdown(ops, steps=1, hlo=""):
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    for op in ops:
        seconds[categorize(op.name, hlo)] += op.seconds
    return {category: total / steps for category, total in seconds.items()}
