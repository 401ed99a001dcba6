"""The answer is not one import away: what a build exercise's file may import.

Each build exercise's tests name what its file may use and which of the course's modules
would hand it the answer, then call `check` on the module under test:

    ALLOWED = ("jax", "numpy", "stdlib", "shared.config")
    NOT_ALLOWED = {"shared.model": "this exercise writes the model, so ..."}
    check(answers, ALLOWED, NOT_ALLOWED)

The check reads the file, not the running module, so it also sees `import shared.model`
inside a function and `importlib.import_module("shared.model")`.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator


def imported(tree: ast.AST) -> Iterator[str]:
    """Every module a file names in an import, reaches as `shared.<name>`, or names in a
    string ("shared.model", "shared.model:forward")."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            yield from (f"{base}.{a.name}" if base == "shared" else base for a in node.names)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "shared":
            yield f"shared.{node.attr}"  # `import shared.config` also reaches shared.model
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith("shared.") and " " not in node.value:
            yield node.value.split(":")[0]


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def why_not(name: str, allowed: tuple[str, ...], not_allowed: dict[str, str]) -> str | None:
    """Why the exercise may not import `name`; None when it may. "stdlib" in `allowed`
    allows the whole standard library."""
    if name == "__future__":
        return None
    for module, why in not_allowed.items():
        if _within(name, module):
            return why
    top = name.split(".")[0]
    if any(_within(name, a) for a in allowed) or (
            "stdlib" in allowed and top in sys.stdlib_module_names):
        return None
    words = ", ".join(a if a != "stdlib" else "the standard library" for a in allowed)
    if top == "shared":
        return f"the course's own code is what this exercise writes; it is written with {words} only"
    return f"this exercise is written with {words} only"


def check(m: ModuleType, allowed: tuple[str, ...], not_allowed: dict[str, str]) -> ModuleType:
    """Fail (AssertionError, one line) on the first module m's file imports that it may not;
    returns m, so a test can write check_forward(check(answers, ...))."""
    path = Path(m.__file__)
    for name in imported(ast.parse(path.read_text())):
        why = why_not(name, allowed, not_allowed)
        if why is not None:  # raised, not asserted: pytest would add its own lines to an assert
            raise AssertionError(f"{path.name} imports {name}: {why}")
    return m
