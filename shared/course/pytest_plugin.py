"""Pytest plugin (registered in pyproject.toml) behind the exercise checks.

`python -m pytest exercises/NN_slug` checks your answers in exercises/; add
`--solutions` to check the reference answers in solutions/ with the same tests.
A test file exercises/NN_slug/test_<topic>.py receives the module under test
through the `answers` fixture: exercises/NN_slug/<topic>.py, or
solutions/NN_slug/<topic>.py with --solutions.

`python -m pytest` with no paths, the repository's whole suite, runs in two processes
(pytest-xdist, `pytest_load_initial_conftests`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--solutions", action="store_true",
                     help="check the reference answers in solutions/ instead of exercises/")


def pytest_load_initial_conftests(early_config, parser, args):
    """The whole suite in two processes: on a 2-core machine most of its time is one core
    compiling, so two take it from 23 to 18 minutes. A run given paths (an exercise check,
    one test file), a debugger, -s or its own -n runs as asked, its prints in order."""
    ns = early_config.known_args_namespace
    if (early_config.pluginmanager.has_plugin("xdist") and ns.numprocesses is None
            and not ns.file_or_dir and not ns.usepdb and ns.capture != "no"):
        args[:0] = ["-n", "2"]


def answer_path(test_file: Path, solutions: bool) -> Path:
    lesson = test_file.parent
    if solutions:
        lesson = lesson.parent.parent / "solutions" / lesson.name
    return lesson / f"{test_file.stem.removeprefix('test_')}.py"


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(
        f"answers_{path.parent.parent.name}_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def answers(request):
    """The module whose functions the tests check (your exercise, or the solution)."""
    return load_module(answer_path(Path(request.path), request.config.getoption("solutions")))
