"""Wrong answer (lesson 06, exercise 6.10): looks the failing equation up among the top-level
equations of the traced program only. An op inside a jitted function (here the MLP), a scan's
body or a custom_vjp lives in a jaxpr inside one of those equations, so its scope is never found."""

from pathlib import Path

import jax
import jax.extend.core as jex
from jax.experimental import checkify

from shared.course.pytest_plugin import load_module

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_first_nan_hidden", "a NaN was made in layer1/mlp")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/bug_hunt.py")
recompiles = _m.recompiles


def first_nan(fn, *args):
    closed = jax.make_jaxpr(fn)(*args)
    checked = checkify.checkify(jex.jaxpr_as_fun(closed),
                                errors=checkify.float_checks | checkify.index_checks)
    error, _ = jax.jit(checked)(*jax.tree.leaves(args))
    exc = error.get_exception()
    if exc is None:
        return None
    stacks = [str(e.source_info.name_stack) for e in closed.jaxpr.eqns
              if e.source_info.traceback is exc.traceback_info]
    return (stacks[0] if stacks else ""), str(exc)
