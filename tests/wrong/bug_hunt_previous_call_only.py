"""Wrong answer (lesson 06, exercise 6.11): counts no compilations; reports a call as compiling
whenever an argument's shape, dtype or weak type differs from the call just before. jit's cache
keeps every program it compiled: a shape seen two calls ago is still there."""

from pathlib import Path

import jax

from shared.course.pytest_plugin import load_module

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_recompiles_calls", "which jit's cache still holds")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/bug_hunt.py")
first_nan = _m.first_nan


def recompiles(fn, calls):
    found = [(0, "")]
    fn(**calls[0])
    for i in range(1, len(calls)):
        fn(**calls[i])
        changed = [k for k in calls[i] if _m._signature(calls[i][k]) != _m._signature(calls[i - 1][k])]
        if changed:
            found.append((i, changed[0]))
    return found
