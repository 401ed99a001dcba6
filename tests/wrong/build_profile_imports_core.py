"""Wrong build (lesson 08): the core's profile reader, imported instead of written."""

from shared.profiling import OpTime, op_times, summarize  # noqa: F401

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.profiling: it holds the course's profile reader")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/08_profiling_naive_inference"
                 / "build_profile.py")
CATEGORIES, categorize, breakdown = _m.CATEGORIES, _m.categorize, _m.breakdown
