"""Wrong build (lesson 08): the whole instruction line is read, so an op in the "attention"
named scope is filed as attention."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_categorize_hlo", "says where it came from, not what it is")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/08_profiling_naive_inference"
                 / "build_profile.py")
_words_in_hlo = _m._words_in_hlo


def _words_and_line(name, hlo):
    words = _words_in_hlo(name, hlo)
    if words is None:
        return None
    return words | {_m._parse(hlo)[1][name][2]}  # the line with its metadata: op_name's named scopes


_m._words_in_hlo = _words_and_line
OpTime, CATEGORIES = _m.OpTime, _m.CATEGORIES
op_times, categorize, breakdown, summarize = _m.op_times, _m.categorize, _m.breakdown, _m.summarize
