"""Wrong answer (lesson 06, exercise 6.11): counts no compilations; reports every call in which
an argument's value changed. jit's cache looks at a traced argument's shape, dtype and weak
type, not its value: a new learning rate passed as a Python float reuses the program."""

from pathlib import Path

import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_recompiles_calls", "call 1 compiled nothing (only the value of lr")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/bug_hunt.py")
first_nan = _m.first_nan


def _same(a, b) -> bool:
    return type(a) is type(b) and np.shape(a) == np.shape(b) and bool(np.all(np.asarray(a) == np.asarray(b)))


def recompiles(fn, calls):
    found = []
    for i, call in enumerate(calls):
        fn(**call)
        changed = [k for k in call if i > 0 and not _same(call[k], calls[i - 1][k])]
        if i == 0 or changed:
            found.append((i, changed[0] if changed else ""))
    return found
