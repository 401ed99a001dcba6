"""Wrong build (lesson 08): a loop's `while` is counted beside the body ops that ran inside it."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_op_times_nested", "counted twice")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/08_profiling_naive_inference"
                 / "build_profile.py")


def _op_events_containers_too(line):
    for e in line.events:
        stats = dict(e.stats)
        if "hlo_op" in stats:
            yield stats["hlo_op"], str(stats.get("hlo_module", "")), e.end_ns - e.start_ns


_m._op_events = _op_events_containers_too
OpTime, CATEGORIES = _m.OpTime, _m.CATEGORIES
op_times, categorize, breakdown, summarize = _m.op_times, _m.categorize, _m.breakdown, _m.summarize
