"""Wrong build (lesson 02): cost counted by hand from the jaxpr: 2 M K N per matmul, one FLOP per
element of every other op, and the program's inputs and outputs as its bytes."""

import math
from pathlib import Path

import jax

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_cost_compiled", "as written")

_SOLUTION = Path(__file__).resolve().parents[2] / "solutions/02_single_chip_performance/build_roofline.py"
_m = load_module(_SOLUTION)
timeit, roofline_point = _m.timeit, _m.roofline_point


def _size(v):
    return math.prod(v.aval.shape)


def _flops(jaxpr) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
        subs = [p.jaxpr if hasattr(p, "jaxpr") else p for p in eqn.params.values() if hasattr(p, "eqns")
                or hasattr(p, "jaxpr")]
        if subs:
            total += sum(_flops(getattr(s, "jaxpr", s)) for s in subs)
        elif eqn.primitive.name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            a = eqn.invars[0].aval.shape
            total += 2 * _size(eqn.outvars[0]) * math.prod(a[d] for d in contract)
        else:
            total += sum(_size(v) for v in eqn.outvars)
    return total


def cost(fn, *args):
    closed = jax.make_jaxpr(fn)(*args)
    nbytes = sum(_size(v) * v.aval.dtype.itemsize for v in (*closed.jaxpr.invars, *closed.jaxpr.outvars))
    return _m.Cost(float(_flops(closed.jaxpr)), float(nbytes))
