"""Checks for overlap.py on simulated CPU devices: against the unsharded matmul; the compiled
program must move x with n - 1 collective-permutes and no all-gather; and the jaxpr must
interleave them with the partial matmuls, each on one [B, E/n] block of x.

The compiled program cannot show the interleaving (XLA's scheduler reorders independent ops),
so the order is read from the jaxpr of the shard_map's body, as the answer wrote it.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong answers (tests/wrong/overlap_*.py) and proves each is rejected by
the check about its mistake; the test_* functions at the bottom are thin wrappers over them.
"""

import functools
import math

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import collectives
from shared.sharding import make_mesh

TASK = "collective_matmul_block"
CASES = [(2, 8, 16, 8), (4, 16, 32, 16), (8, 16, 64, 32)]  # (n, B, E, F)


@functools.cache
def _mesh(n):
    return make_mesh({"x": n}, jax.devices("cpu")[:n])


def _program(m, n, B, E, F):
    """(jit(shard_map(answer)), x, w placed by columns, x, w as numpy)."""
    rng = np.random.default_rng(n)
    x, w = rng.normal(size=(B, E)).astype(np.float32), rng.normal(size=(E, F)).astype(np.float32)
    mesh = _mesh(n)
    cols = NamedSharding(mesh, P(None, "x"))
    f = jax.jit(jax.shard_map(lambda a, b: m.collective_matmul_block(a, b, "x", n), mesh=mesh,
                              in_specs=(P(None, "x"), P(None, "x")), out_specs=P(None, "x")))
    return f, jax.device_put(x, cols), jax.device_put(w, cols), x, w


def check_collective_matmul_block(m):
    for n, B, E, F in CASES:
        f, xs, ws, x, w = _program(m, n, B, E, F)
        # float32 dot products of E <= 64 terms of size ~1: summation order moves them by < 1e-4.
        err = float(np.abs(np.asarray(f(xs, ws)) - x @ w).max())
        assert err < 1e-4 * max(1.0, float(np.abs(x @ w).max())), \
            f"{TASK} on {n} devices: max |error| {err:.2e} against x @ w"
        kinds = [c.kind for c in collectives.compiled_collectives(f, xs, ws)]
        assert kinds == ["collective-permute"] * (n - 1), (f"{TASK} on {n} devices: want {n - 1} "
                                                           "collective-permutes and nothing else, the "
                                                           f"compiled program has {kinds}")


def _body(jaxpr):
    """The jaxpr of the first shard_map in jaxpr (or the jaxprs inside it)."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "shard_map":
            return getattr(eqn.params["jaxpr"], "jaxpr", eqn.params["jaxpr"])
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns") and (found := _body(sub)) is not None:
                    return found
    return None


def _in_order(jaxpr) -> list:
    """Every equation of jaxpr and of the jaxprs inside it, in program order."""
    out = []
    for eqn in jaxpr.eqns:
        out.append(eqn)
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    out += _in_order(sub)
    return out


def check_collective_matmul_block_interleaved(m):
    n, B, E, F = CASES[1]
    f, xs, ws, _, _ = _program(m, n, B, E, F)
    body = _body(jax.make_jaxpr(f)(xs, ws).jaxpr)
    steps = [e for e in _in_order(body) if e.primitive.name in ("ppermute", "dot_general")
             or e.primitive.name.startswith("all_gather")]
    gathers = [e.primitive.name for e in steps if e.primitive.name.startswith("all_gather")]
    assert not gathers, f"{TASK}: the jaxpr has {gathers[0]}: the exercise gathers x with ppermute steps"
    permutes = [i for i, e in enumerate(steps) if e.primitive.name == "ppermute"]
    assert len(permutes) == n - 1, \
        f"{TASK} on {n} devices: {len(permutes)} ppermutes in the jaxpr, want one per step of the ring, {n - 1}"
    for k, (a, b) in enumerate(zip(permutes, permutes[1:]), start=1):
        assert any(e.primitive.name == "dot_general" for e in steps[a + 1:b]), (
            f"{TASK} on {n} devices: ppermutes {k} and {k + 1} of {n - 1} have no matmul between them: "
            "the exercise interleaves each ring step with the partial matmul on the block already held")
    for e in steps:
        if e.primitive.name == "dot_general":
            (contract, _), _ = e.params["dimension_numbers"]
            size = math.prod(e.invars[0].aval.shape[d] for d in contract)
            assert size == E // n, (f"{TASK} on {n} devices: a matmul contracts over {size} of x's {E} "
                                    f"columns, not one device's block of {E // n}: the partial matmuls "
                                    "are one per block as it arrives")


def test_collective_matmul_block(answers):
    check_collective_matmul_block(answers)


def test_collective_matmul_block_interleaved(answers):
    check_collective_matmul_block_interleaved(answers)
