"""Your exercise progress: `python -m shared.check` (all lessons) or `python -m shared.check 01`.

Runs each lesson's exercise tests in its own pytest process (some lessons need 8
simulated devices, set before JAX starts) and prints, per lesson, the exercises
whose tests all pass, and for each failing exercise the first one-line reason.
An exercise is a public function of exercises/NN_slug/<topic>.py; its tests are the
test_<function>* tests in test_<topic>.py beside it.

It also checks your answers to each lesson's Problems (the end of its README), which
you write into exercises/NN_slug/answers.py: a number counts as correct within 2% of the
reference in solutions/NN_slug/answers.py, a word when it is the same word. The report
says "correct", "wrong" or "not answered", never the reference value. `--problems`
checks only those, in a second, without running any test.
"""

from __future__ import annotations

import argparse
import ast
import math
import runpy
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
    problems: ProblemReport | None = None  # the lesson's Problems, where it has them


# ---- the Problems at the end of each lesson ----

RTOL = 0.02  # a numeric answer within 2% of the reference is correct
ANSWERS_FILE = "answers.py"  # exercises/NN_slug/answers.py: yours; solutions/NN_slug/answers.py: the reference
VERDICTS = ("correct", "wrong", "not answered")


@dataclass
class ProblemReport:
    lesson: str
    verdicts: dict[int, str] = field(default_factory=dict)  # problem number -> one of VERDICTS
    error: str = ""  # the answers file could not be read

    @property
    def correct(self) -> int:
        return sum(v == "correct" for v in self.verdicts.values())


def read_answers(path: Path) -> dict[int, object]:
    """The ANSWERS dict of an answers file (it is run: expressions are allowed)."""
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    try:
        namespace = runpy.run_path(str(path))
    except Exception as e:  # the learner's file: any error is reported in one line
        raise Error(f"{name} does not run: {type(e).__name__}: {one_line(str(e))}") from None
    answers = namespace.get("ANSWERS")
    if not isinstance(answers, dict):
        raise Error(f"{name} has no ANSWERS dict")
    return answers


def judge(given: object, reference: object) -> str:
    """"correct", "wrong" or "not answered"; a reference is a number or a lower-case word."""
    if given is None:
        return "not answered"
    if isinstance(reference, str):
        return "correct" if isinstance(given, str) and given.strip().lower() == reference else "wrong"
    if isinstance(given, bool) or not isinstance(given, (int, float)) or not math.isfinite(given):
        return "wrong"
    return "correct" if abs(given - reference) <= RTOL * abs(reference) else "wrong"


def check_problems(exercise_dir: Path, solutions: bool = False) -> ProblemReport | None:
    """Your answers (or, with solutions, the reference's own) against the reference; None
    for a lesson without problems."""
    reference_file = ROOT / "solutions" / exercise_dir.name / ANSWERS_FILE
    if not reference_file.exists():
        return None
    report = ProblemReport(exercise_dir.name)
    try:
        reference = read_answers(reference_file)
        given = reference if solutions else read_answers(exercise_dir / ANSWERS_FILE)
    except Error as e:
        report.error = str(e)
        return report
    report.verdicts = {k: judge(given.get(k), reference[k]) for k in sorted(reference)}
    return report


def problems_line(p: ProblemReport) -> str:
    """"3/5 problems correct; wrong: 2; not answered: 4, 5" (never the reference values)."""
    if p.error:
        return f"problems: {p.error}"
    parts = [f"{p.correct}/{len(p.verdicts)} problems correct"]
    for verdict in VERDICTS[1:]:
        which = [str(k) for k, v in p.verdicts.items() if v == verdict]
        if which:
            parts.append(f"{verdict}: {', '.join(which)}")
    return "; ".join(parts)


def run_lesson(exercise_dir: Path, solutions: bool = False, timeout: float = 900) -> LessonReport:
    report = LessonReport(exercise_dir.name, problems=check_problems(exercise_dir, solutions))
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
        if r.problems:
            print(f"    {problems_line(r.problems)}")
    print(f"{'total':32s} {total_done}/{total} exercises pass" + problems_total(r.problems for r in reports))


def problems_total(problems) -> str:
    problems = [p for p in problems if p]
    if not problems:
        return ""
    return f", {sum(p.correct for p in problems)}/{sum(len(p.verdicts) for p in problems)} problems correct"


def print_problems(problems: list[ProblemReport]) -> None:
    for p in problems:
        print(f"{p.lesson:32s} {problems_line(p)}")
    print(f"{'total':32s}" + problems_total(problems).removeprefix(","))


def problems_done(p: ProblemReport | None) -> bool:
    return p is None or (not p.error and p.correct == len(p.verdicts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lesson", nargs="?", help="lesson number, e.g. 01 (default: all)")
    parser.add_argument("--solutions", action="store_true", help="check the reference answers instead")
    parser.add_argument("--problems", action="store_true",
                        help="check only your answers to the lessons' Problems (exercises/NN_slug/answers.py)")
    args = parser.parse_args(argv)
    try:
        dirs = chosen(args.lesson)
    except Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.problems:
        problems = [p for p in (check_problems(d, args.solutions) for d in dirs) if p]
        print_problems(problems)
        return 0 if all(problems_done(p) for p in problems) else 1
    reports = [run_lesson(d, args.solutions) for d in dirs]
    print_report(reports)
    if not args.solutions:
        print("\n" + "\n".join(mine.report()))
    return 0 if all(not r.error and all(o.tests and o.passed == o.tests for o in r.exercises.values())
                    and problems_done(r.problems) for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
