"""The build exercises reject the classic mistakes: every kept wrong build in tests/wrong/
fails the exercise check about its mistake, with a one-line reason that names it, while the
reference answer passes that same check.

A build exercise is exercises/NN_slug/<build>.py with its checks in test_<build>.py beside it
and its answer in solutions/NN_slug/<build>.py; its wrong builds are tests/wrong/<build>_*.py,
each naming in REJECTED_BY the check that must reject it and words its reason must say.
"""

import functools
from pathlib import Path

import pytest

from shared.course.pytest_plugin import load_module

ROOT = Path(__file__).resolve().parents[1]
WRONG_DIR = ROOT / "tests" / "wrong"
# build name -> its checks (exercises/NN_slug/test_<build>.py)
CHECKS = {p.stem.removeprefix("test_"): p for p in sorted(ROOT.glob("exercises/*/test_build_*.py"))}
WRONG = sorted(p.stem for p in WRONG_DIR.glob("build_*.py"))


def _build_of(name: str) -> str:
    """The build exercise a wrong build answers: the longest build name it starts with."""
    builds = [b for b in CHECKS if name.startswith(b + "_")]
    assert builds, f"tests/wrong/{name}.py answers no build exercise (none of {sorted(CHECKS)})"
    return max(builds, key=len)


@functools.cache
def _loaded(build: str):
    """(the exercise's check module, its reference answer), loaded once."""
    checks = CHECKS[build]
    return load_module(checks), load_module(ROOT / "solutions" / checks.parent.name / f"{build}.py")


def test_every_build_keeps_wrong_builds():
    missing = [b for b in CHECKS if not any(_build_of(n) == b for n in WRONG)]
    assert not missing, f"build exercises with no kept wrong build in tests/wrong/: {missing}"


@pytest.mark.parametrize("name", WRONG)
def test_wrong_build_is_rejected(name):
    wrong = load_module(WRONG_DIR / f"{name}.py")
    check_name, words = getattr(wrong, "REJECTED_BY", (None, None))
    assert check_name, f"tests/wrong/{name}.py does not say REJECTED_BY = (check, words)"
    checks, solution = _loaded(_build_of(name))
    check = getattr(checks, check_name)
    check(solution)  # the reference answer passes: the rejection below is the mistake's
    with pytest.raises(AssertionError) as caught:
        check(wrong)
    reason = str(caught.value)
    assert reason.strip() and "\n" not in reason.strip(), \
        f"{name}: {check_name}'s reason is not one line: {reason!r}"
    assert words in reason, \
        f"{name}: rejected by {check_name}, but the reason does not say {words!r}: {reason}"
