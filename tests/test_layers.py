"""The core's floors (shared/__init__.py): imports point down, never up, never in a circle;
every module names the lesson that introduces it, and no lesson's notebook imports a module
a later lesson introduces."""

import ast
import json
import re
from pathlib import Path

import pytest

import shared

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "shared"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SHARED).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> set[str]:
    """Modules of `shared` that a piece of code imports, as dotted names below shared."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "shared":
            below = node.module.partition(".")[2]
            out.update([below] if below else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            out.update(a.name.partition(".")[2] for a in node.names if a.name.startswith("shared."))
    return out


MODULES = {module_name(p): imported(ast.parse(p.read_text())) for p in sorted(SHARED.rglob("*.py"))}
MODULES.pop("")  # shared/__init__.py itself


def floor(module: str) -> int:
    """The floor of a module: its own entry in shared.FLOORS, or its package's."""
    for name in (module, module.split(".")[0]):
        for level, names in shared.FLOORS.items():
            if name in names:
                return level
    raise AssertionError(f"shared.{module} is on no floor: add it to shared.FLOORS")


def test_every_module_is_on_a_floor():
    for module in MODULES:
        floor(module)


def test_imports_never_point_up_a_floor():
    for module, deps in MODULES.items():
        for dep in deps:
            assert floor(dep) <= floor(module), \
                f"shared.{module} (floor {floor(module)}) imports shared.{dep} (floor {floor(dep)})"


def test_no_import_cycles():
    def visit(module, path):
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        for dep in MODULES.get(module, ()):
            visit(dep, path + [module])

    for module in MODULES:
        visit(module, [])


def lesson_of(module: str) -> int:
    """The lesson a module's docstring names on its first line, '(lesson NN)' or '(lessons NN-MM)';
    a module of a package without one belongs to its package's lesson."""
    path = SHARED / (module.replace(".", "/") + ".py")
    path = path if path.exists() else SHARED / module.replace(".", "/") / "__init__.py"
    first = ((ast.get_docstring(ast.parse(path.read_text())) or "").splitlines() or [""])[0]
    found = re.search(r"\(lessons? (\d\d)", first)
    if not found and "." in module:
        return lesson_of(module.rpartition(".")[0])
    assert found, f"shared.{module}'s docstring should name its lesson on its first line, e.g. (lesson 05)"
    return int(found.group(1))


def test_every_lesson_module_names_its_lesson():
    for module in MODULES:
        if floor(module) < 3:
            lesson_of(module)


NOTEBOOKS = sorted(ROOT.glob("lessons/[0-9][0-9]_*/lesson.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_a_notebook_imports_nothing_from_a_later_lesson(notebook):
    lesson = int(notebook.parent.name[:2])
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    for module in sorted(imported(ast.parse(code))):
        assert lesson_of(module) <= lesson, \
            f"lesson {lesson:02d}'s notebook imports shared.{module}, introduced in lesson {lesson_of(module):02d}"
