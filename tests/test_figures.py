"""Lessons' figures: each quick figure draws into a temporary folder and gives a PNG.

Figures that measure for longer (a training run, a timed sweep, many compilations) are in
each module's SLOW set: `python -m shared.figures` draws them, this test leaves them out.
"""

from __future__ import annotations

import importlib

import pytest

PNG = b"\x89PNG\r\n\x1a\n"


def _quick(lessons: list[str]) -> list:
    cases = []
    for number in lessons:
        module = importlib.import_module(f"shared.figures.lesson{number}")
        for name in module.FIGURES:
            if name not in getattr(module, "SLOW", set()):
                cases.append(pytest.param(number, name, id=f"{number}/{name}"))
    return cases


@pytest.mark.parametrize("number, name", _quick(["01", "02", "03", "04", "05"]))
def test_figures_lessons_01_to_05(tmp_path, number, name):
    import matplotlib

    matplotlib.use("Agg")
    module = importlib.import_module(f"shared.figures.lesson{number}")
    path = tmp_path / name
    module.FIGURES[name](path)
    assert path.read_bytes()[:8] == PNG, f"lesson {number}: {name} did not write a PNG"
    assert path.stat().st_size < 200_000, f"lesson {number}: {name} is {path.stat().st_size} bytes"


@pytest.mark.parametrize("number, name", _quick(["06", "07", "08", "09", "10"]))
def test_figures_lessons_06_to_10(tmp_path, number, name):
    import matplotlib

    matplotlib.use("Agg")
    module = importlib.import_module(f"shared.figures.lesson{number}")
    path = tmp_path / name
    module.FIGURES[name](path)
    assert path.read_bytes()[:8] == PNG, f"lesson {number}: {name} did not write a PNG"
    assert path.stat().st_size < 200_000, f"lesson {number}: {name} is {path.stat().st_size} bytes"
