"""Flag checks the benchmarks run first, before any JAX work: a bad value is a one-line
config.Error (python -m shared.bench prints it and exits 2), never a traceback or a
silent default after minutes of work. (The leading underscore keeps it out of the list
of benchmarks.)"""

from __future__ import annotations

import math
from pathlib import Path

from shared.config import ConfigError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def at_least(args, minimum: int, *names: str) -> None:
    """Each named flag that was given (not None) is >= minimum; a list flag, each entry."""
    for name in names:
        value = getattr(args, name, None)
        for v in value if isinstance(value, list) else [value]:
            if v is not None and v < minimum:
                raise ConfigError(f"{flag(name)} must be >= {minimum}, got {v}")


def in_range(args, name: str, low: float, high: float, *, low_open: bool = False) -> None:
    """A float flag that was given lies in [low, high] ((low, high] with low_open); NaN never does."""
    v = getattr(args, name, None)
    if v is None:
        return
    ok = math.isfinite(v) and (low < v if low_open else low <= v) and v <= high
    if not ok:
        raise ConfigError(f"{flag(name)} must be in {'(' if low_open else '['}{low}, {high}], got {v}")


def power_of_two(args, name: str, low: int, high: int) -> None:
    v = getattr(args, name, None)
    if v is not None and not (low <= v <= high and v & (v - 1) == 0):
        allowed = ", ".join(str(2**i) for i in range(int(math.log2(low)), int(math.log2(high)) + 1))
        raise ConfigError(f"{flag(name)} must be a power of two from {low} to {high} ({allowed}), got {v}")


def run_folder(args, name: str = "checkpoint") -> None:
    """A --checkpoint that was given is a run folder (config.json in it), checked at once."""
    path = getattr(args, name, None)
    if path is None:
        return
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{flag(name)} {path} does not exist (a run folder, e.g. runs/tiny)")
    if not (path / "config.json").is_file():
        raise ConfigError(f"{flag(name)} {path} is not a run folder (no config.json in it)")


def writable_file(args, name: str) -> None:
    """A file flag that was given names a file, not a folder, in a folder that exists or can be made."""
    path = getattr(args, name, None)
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag(name)} {path} is a folder; give a file name")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise ConfigError(f"{flag(name)} {path}: {parent} is a file, not a folder")
