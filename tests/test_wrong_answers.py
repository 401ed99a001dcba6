"""The exercises reject the classic mistakes: every kept wrong answer in tests/wrong/ fails the
exercise check about its mistake, with a one-line reason that names it, while the reference
answer passes that same check.

An exercise topic is exercises/NN_slug/<topic>.py with its checks in test_<topic>.py beside it
and its answer in solutions/NN_slug/<topic>.py; its wrong answers are tests/wrong/<topic>_*.py
(the longest topic name a file starts with is the one it answers), each naming in REJECTED_BY
the check_* function of test_<topic>.py that must reject it and words its reason must say.
Every build exercise (<topic> = build_*) keeps at least one wrong build.
"""

import functools
from pathlib import Path

import pytest

from shared.course.pytest_plugin import load_module

ROOT = Path(__file__).resolve().parents[1]
WRONG_DIR = ROOT / "tests" / "wrong"
# topic -> its checks (exercises/NN_slug/test_<topic>.py)
_TEST_FILES = sorted(ROOT.glob("exercises/*/test_*.py"))
CHECKS = {p.stem.removeprefix("test_"): p for p in _TEST_FILES}
WRONG = sorted(p.stem for p in WRONG_DIR.glob("*.py") if p.stem != "__init__")


def _topic_of(name: str) -> str:
    """The exercise topic a wrong answer answers: the longest topic name it starts with."""
    topics = [t for t in CHECKS if name.startswith(t + "_")]
    assert topics, f"tests/wrong/{name}.py answers no exercise topic (none of {sorted(CHECKS)})"
    return max(topics, key=len)


@functools.cache
def _loaded(topic: str):
    """(the exercise's check module, its reference answer), loaded once."""
    checks = CHECKS[topic]
    return load_module(checks), load_module(ROOT / "solutions" / checks.parent.name / f"{topic}.py")


def test_topics_are_unique():
    names = [p.stem for p in _TEST_FILES]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"exercise test files with the same name in two lessons: {twice}"


def test_every_build_keeps_wrong_builds():
    builds = [t for t in CHECKS if t.startswith("build_")]
    missing = [b for b in builds if not any(_topic_of(n) == b for n in WRONG)]
    assert not missing, f"build exercises with no kept wrong build in tests/wrong/: {missing}"


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answer_is_rejected(name):
    wrong = load_module(WRONG_DIR / f"{name}.py")
    check_name, words = getattr(wrong, "REJECTED_BY", (None, None))
    assert check_name, f"tests/wrong/{name}.py does not say REJECTED_BY = (check, words)"
    checks, solution = _loaded(_topic_of(name))
    check = getattr(checks, check_name)
    check(solution)  # the reference answer passes: the rejection below is the mistake's
    with pytest.raises(AssertionError) as caught:
        check(wrong)
    reason = str(caught.value)
    assert reason.strip() and "\n" not in reason.strip(), \
        f"{name}: {check_name}'s reason is not one line: {reason!r}"
    assert words in reason, \
        f"{name}: rejected by {check_name}, but the reason does not say {words!r}: {reason}"
