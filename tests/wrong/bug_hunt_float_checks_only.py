"""Wrong answer (lesson 06, exercise 6.10): runs checkify with its float checks only. JAX's
gather clamps an index past the table instead of failing, so without checkify's index checks a
token id the vocabulary lacks goes unnoticed."""

from pathlib import Path

import jax
import jax.extend.core as jex
from jax.experimental import checkify

from shared.course.pytest_plugin import load_module

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_first_nan_out_of_bounds", "check indices, not only floats")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/bug_hunt.py")
recompiles = _m.recompiles


def first_nan(fn, *args):
    closed = jax.make_jaxpr(fn)(*args)
    checked = checkify.checkify(jex.jaxpr_as_fun(closed), errors=checkify.float_checks)
    error, _ = jax.jit(checked)(*jax.tree.leaves(args))
    exc = error.get_exception()
    if exc is None:
        return None
    stack = _m._name_stack(closed.jaxpr, exc.traceback_info) or ""
    return stack, str(exc)
