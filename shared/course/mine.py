"""Your model: the pieces of the LLM you wrote in the build exercises, and the real jobs on them.

Each lesson's build exercise writes a piece the core uses through the same interface, so
the real jobs can run on it:

    python -m shared.train --mine         # train on your pieces, where you wrote them
    python -m shared.train --solutions    # the same with the reference answers

A piece is yours once its file no longer holds the stubs (every function listed below has
a body other than `raise NotImplementedError`); check that it is right with its tests
first, e.g. `python -m pytest exercises/01_llm_from_scratch`.
"""

from __future__ import annotations

import ast
import contextlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterator

from shared import attention, model
from shared.config import Error, ModelConfig
from shared.course import ROOT
from shared.course.pytest_plugin import load_module


@dataclass(frozen=True)
class Build:
    piece: str  # what the core calls it, e.g. "model"
    lesson: str  # the exercises/ folder
    topic: str  # the file, without .py
    functions: tuple[str, ...]  # what the core calls on it
    what: str  # for the learner
    runs: str  # the command that runs a real job on it

    def path(self, solutions: bool = False) -> Path:
        return ROOT / ("solutions" if solutions else "exercises") / self.lesson / f"{self.topic}.py"


BUILDS = (
    Build("model", "01_llm_from_scratch", "build_model", ("init", "forward", "loss_sums"),
          "the model and its loss, from einsums", "python -m shared.train --mine"),
    Build("attention", "05_attention", "build_flash", ("flash_attention",),
          "flash attention, forward and backward", "python -m shared.train --mine"),
)


def is_stub(function: ast.FunctionDef) -> bool:
    body = [s for s in function.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return len(body) == 1 and isinstance(body[0], ast.Raise) and "NotImplementedError" in ast.unparse(body[0])


def written(build: Build, solutions: bool = False) -> bool:
    """True when every function the core calls exists in the file and is not a stub."""
    path = build.path(solutions)
    if not path.exists():
        return False
    try:
        tree = ast.parse(path.read_text())
    except SyntaxError as e:
        raise Error(f"{path.relative_to(ROOT)} line {e.lineno}: {e.msg}; fix it, or run "
                    f"without --mine") from None
    found = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    return all(name in found and not is_stub(found[name]) for name in build.functions)


def load(build: Build, solutions: bool = False) -> ModuleType:
    """The build exercise's module; a file that fails to import is a one-line Error."""
    try:
        return load_module(build.path(solutions))
    except Exception as e:
        raise Error(f"{build.path(solutions).relative_to(ROOT)} cannot be imported: "
                    f"{type(e).__name__}: {e}") from None


def pieces(solutions: bool = False) -> dict[str, ModuleType]:
    """The written build exercises, loaded: piece name -> module (yours, or the answers)."""
    return {b.piece: load(b, solutions) for b in BUILDS if written(b, solutions)}


@contextlib.contextmanager
def plugged_in(loaded: dict[str, ModuleType], config: ModelConfig) -> Iterator[ModuleType]:
    """Put the loaded pieces where the core calls them while the block runs: your attention
    wherever config.attention is asked for (shared.attention.plug). Yields the model's
    functions for the train library's `net`: yours, or shared.model."""
    if "attention" in loaded:
        attention.plug(config.attention, loaded["attention"].flash_attention)
    try:
        yield loaded.get("model", model)
    finally:
        if "attention" in loaded:
            attention.plug(config.attention, None)


def describe(loaded: dict[str, ModuleType], solutions: bool = False) -> str:
    """One line saying whose each piece is, for the start of a job."""
    whose = "the reference answers'" if solutions else "yours"
    parts = [f"{b.piece}: {whose} ({b.path(solutions).relative_to(ROOT)})" if b.piece in loaded
             else f"{b.piece}: the core's (exercises/{b.lesson}/{b.topic}.py is not written yet)"
             for b in BUILDS]
    if {"model", "attention"} <= loaded.keys():
        parts.append("the attention piece is not used: the model piece computes its own attention")
    return "; ".join(parts)


def report() -> list[str]:
    """'Your model' for python -m shared.check: each piece, whose it is, and what runs it."""
    lines = ["your model:"]
    for b in BUILDS:
        state = "yours" if written(b) else "not written yet"
        lines.append(f"    {b.piece:10s} {state:16s} exercises/{b.lesson}/{b.topic}.py ({b.what})")
    lines.append("    run the real jobs on your pieces (the core's stand in for the rest): "
                 + ", ".join(sorted({b.runs for b in BUILDS})))
    return lines
