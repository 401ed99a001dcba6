"""Wrong build (lesson 08): a fusion that is not pure layout is elementwise, a dot fusion too."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_categorize_names", "a fusion that holds a dot is a matmul")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/08_profiling_naive_inference"
                 / "build_profile.py")
_category = _m._category


def _category_fusion_first(words):
    if "fusion" in words and _category(words) != "copy":
        return "elementwise"
    return _category(words)


_m._category = _category_fusion_first
OpTime, CATEGORIES = _m.OpTime, _m.CATEGORIES
op_times, categorize, breakdown, summarize = _m.op_times, _m.categorize, _m.breakdown, _m.summarize
