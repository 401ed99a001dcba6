"""Every exercise: the untouched stub fails all its tests, the reference answer passes them; and
the course's pytest plugin runs the whole suite in two processes."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.course import check

LESSONS = check.lesson_dirs()


def stub_bodies_raise(topic_file: Path) -> list[str]:
    """Public functions whose body is not `raise NotImplementedError("Exercise N.k: ...")`."""
    bad = []
    for node in ast.parse(topic_file.read_text()).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            raises = [s for s in node.body if isinstance(s, ast.Raise)]
            text = ast.unparse(raises[0]) if raises else ""
            if not ("NotImplementedError" in text and "Exercise " in text):
                bad.append(node.name)
    return bad


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_solutions_pass(lesson):
    report = check.run_lesson(lesson, solutions=True)
    assert not report.error, report.error
    assert len(report.exercises) >= 5, f"{lesson.name} has {len(report.exercises)} exercises, want >= 5"
    for name, outcome in report.exercises.items():
        assert outcome.tests > 0, f"{lesson.name}: exercise {name} has no test_{name.split('.')[-1]}* tests"
        assert outcome.passed == outcome.tests, f"{lesson.name}: solution {name} fails: {outcome.reason}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_stubs_fail(lesson):
    for topic_file in lesson.glob("*.py"):
        if not topic_file.name.startswith(("test_", "conftest")) and topic_file.name != "__init__.py":
            assert not stub_bodies_raise(topic_file), f"{topic_file}: not stubs: {stub_bodies_raise(topic_file)}"
            assert (check.ROOT / "solutions" / lesson.name / topic_file.name).exists(), \
                f"{topic_file} has no reference answer"
    report = check.run_lesson(lesson, solutions=False)
    assert not report.error, report.error
    for name, outcome in report.exercises.items():
        assert outcome.passed == 0, f"{lesson.name}: {outcome.passed} tests of stub {name} pass"
        assert "Exercise" in outcome.reason, f"{lesson.name}: stub {name} fails without its message: {outcome.reason}"


@pytest.mark.parametrize("args, workers", [([], True), (["test_where.py"], False), (["-s"], False),
                                           (["-n", "0"], False)])
def test_the_whole_suite_runs_in_two_processes_and_a_chosen_file_in_one(tmp_path, args, workers):
    """shared.course.pytest_plugin: `python -m pytest` alone runs on pytest-xdist's workers; given
    a path (as an exercise check is), -s or -n it runs as asked."""
    (tmp_path / "test_where.py").write_text(
        "import os, pathlib\n\ndef test_where():\n"
        "    pathlib.Path('where').write_text(os.environ.get('PYTEST_XDIST_WORKER', 'main'))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    where = (tmp_path / "where").read_text()
    assert where.startswith("gw") == workers, f"python -m pytest {' '.join(args)} ran in {where}"
