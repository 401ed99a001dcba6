"""Course tooling, not the model: your exercise progress (`check`, run as
`python -m shared.check`), the pytest plugin behind `--solutions` (`pytest_plugin`,
registered in pyproject.toml), and your model (`mine`: the build exercises you wrote,
which `--mine` plugs into the real jobs)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (this file: shared/course/__init__.py)
