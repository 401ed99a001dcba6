"""Wrong build (lesson 08): every line of every plane is read, so a GPU's kernels repeat its ops' time."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_op_times_device_planes", "'XLA Ops' line")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/08_profiling_naive_inference"
                 / "build_profile.py")
_m._op_lines = lambda xspace: (line for plane in xspace.planes for line in plane.lines)
OpTime, CATEGORIES = _m.OpTime, _m.CATEGORIES
op_times, categorize, breakdown, summarize = _m.op_times, _m.categorize, _m.breakdown, _m.summarize
