"""Wrong build (lesson 08): every event on a line counts as an op, the host's own calls too."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_op_times_host_events", "a host event")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/08_profiling_naive_inference"
                 / "build_profile.py")


def _every_event(line):
    for e in line.events:
        stats = dict(e.stats)
        yield stats.get("hlo_op", e.name), str(stats.get("hlo_module", "")), e.end_ns - e.start_ns


_m._op_events = _every_event
OpTime, CATEGORIES = _m.OpTime, _m.CATEGORIES
op_times, categorize, breakdown, summarize = _m.op_times, _m.categorize, _m.breakdown, _m.summarize
