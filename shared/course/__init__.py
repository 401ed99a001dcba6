"""Course tooling, not the model: your exercise progress (`check`, run as
`python -m shared.check`) and the pytest plugin behind `--solutions` (`pytest_plugin`,
registered in pyproject.toml)."""
