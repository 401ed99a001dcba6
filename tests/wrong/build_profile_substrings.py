"""Wrong build (lesson 08): categories from substrings of the name, "reduce" first, so an
all-reduce is elementwise."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_categorize_names", "it is no reduction on one")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/08_profiling_naive_inference"
                 / "build_profile.py")
OpTime, CATEGORIES = _m.OpTime, _m.CATEGORIES
op_times, summarize = _m.op_times, _m.summarize

RULES = [("reduce", "elementwise"), ("all-", "collective"), ("conv", "matmul"), ("dot", "matmul"),
         ("gemm", "matmul"), ("attention", "attention"), ("copy", "copy"), ("transpose", "copy"),
         ("bitcast", "copy"), ("while", "other")]


def categorize(name, hlo=""):
    return next((category for word, category in RULES if word in name), "elementwise")


_m.categorize = categorize
breakdown = _m.breakdown
