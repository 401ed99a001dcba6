"""Your exercise progress: `python -m shared.check` (all lessons) or `python -m shared.check 01`.

Runs each lesson's exercise tests in its own pytest process (some lessons need 8
simulated devices, set before JAX starts) and prints, per lesson, the exercises
whose tests all pass, and for each failing exercise the first one-line reason.
An exercise is a public function of exercises/NN_slug/<topic>.py; its tests are the
test_<function>* tests in test_<topic>.py beside it.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import Error
from shared.course import ROOT, mine


def lesson_dirs(which: str | None = None, solutions: bool = False) -> list[Path]:
    base = ROOT / ("solutions" if solutions else "exercises")
    dirs = sorted(p for p in base.glob("[0-9][0-9]_*") if p.is_dir())
    return [p for p in dirs if which is None or p.name.startswith(which)]


def chosen(which: str | None, solutions: bool = False) -> list[Path]:
    """lesson_dirs(which), or an Error naming the lessons there are."""
    dirs = lesson_dirs(which, solutions)
    if not dirs:
        raise Error(f"no exercises for lesson {which!r}; have: {', '.join(p.name for p in lesson_dirs())}")
    return dirs


def exercise_functions(topic_file: Path) -> list[str]:
    """Public function names of a stub or answer file, in file order."""
    tree = ast.parse(topic_file.read_text())
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]


def exercise_of(test_name: str, functions: list[str]) -> str | None:
    """The function a test checks: the longest name f with test_name == test_f or test_f_*."""
    base = test_name.split("[")[0]
    matches = [f for f in functions if base == f"test_{f}" or base.startswith(f"test_{f}_")]
    return max(matches, key=len) if matches else None


@dataclass
class Outcome:
    tests: int = 0
    passed: int = 0
    reason: str = ""  # first failure's one-line reason


@dataclass
class LessonReport:
    lesson: str
    exercises: dict[str, Outcome] = field(default_factory=dict)  # "topic.function" -> outcome
    error: str = ""  # the tests could not run at all


def run_lesson(exercise_dir: Path, solutions: bool = False, timeout: float = 900) -> LessonReport:
    report = LessonReport(exercise_dir.name)
    for topic_file in sorted(exercise_dir.glob("*.py")):
        if topic_file.name.startswith(("test_", "conftest")) or topic_file.name == "__init__.py":
            continue
        for f in exercise_functions(topic_file):
            report.exercises[f"{topic_file.stem}.{f}"] = Outcome()
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "report.xml"
        cmd = [sys.executable, "-m", "pytest", str(exercise_dir), "-q", "-p", "no:cacheprovider",
               f"--junitxml={xml}"] + (["--solutions"] if solutions else [])
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            report.error = f"the tests took longer than {timeout:.0f} s"
            return report
        if not xml.exists():
            report.error = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["pytest failed"]
            report.error = report.error[0]
            return report
        for case in ET.parse(xml).getroot().iter("testcase"):
            topic = case.get("classname", "").rsplit(".", 1)[-1].removeprefix("test_")
            functions = [k.split(".", 1)[1] for k in report.exercises if k.startswith(topic + ".")]
            name = f"{topic}.{exercise_of(case.get('name', ''), functions) or '(other tests)'}"
            outcome = report.exercises.setdefault(name, Outcome())
            outcome.tests += 1
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            if problem is None:
                outcome.passed += case.find("skipped") is None
                continue
            if not outcome.reason:
                outcome.reason = one_line(problem.get("message") or problem.text or "failed")
    return report


def one_line(message: str) -> str:
    lines = [l.strip() for l in message.strip().splitlines() if l.strip()]
    first = lines[0] if lines else "failed"
    return first if len(first) <= 160 else first[:157] + "..."


def print_report(reports: list[LessonReport]) -> None:
    total_done = total = 0
    for r in reports:
        done = sum(o.tests > 0 and o.passed == o.tests for o in r.exercises.values())
        total_done, total = total_done + done, total + len(r.exercises)
        status = r.error or f"{done}/{len(r.exercises)} exercises pass"
        print(f"{r.lesson:32s} {status}")
        for name, o in r.exercises.items():
            if o.tests == 0:
                print(f"    {name}: no tests found")
            elif o.passed < o.tests:
                print(f"    {name}: {o.passed}/{o.tests} tests pass; {o.reason}")
    print(f"{'total':32s} {total_done}/{total} exercises pass")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lesson", nargs="?", help="lesson number, e.g. 01 (default: all)")
    parser.add_argument("--solutions", action="store_true", help="check the reference answers instead")
    args = parser.parse_args(argv)
    try:
        dirs = chosen(args.lesson)
    except Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    reports = [run_lesson(d, args.solutions) for d in dirs]
    print_report(reports)
    if not args.solutions:
        print("\n" + "\n".join(mine.report()))
    return 0 if all(not r.error and all(o.tests and o.passed == o.tests for o in r.exercises.values())
                    for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
