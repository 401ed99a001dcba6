"""Wrong build (lesson 06): with grad_accum, the step averages the micro-batches' mean losses
and mean gradients, so a micro-batch of few counted tokens weighs as much as one of many."""

import jax
import jax.numpy as jnp

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_make_step_accumulates", "with grad_accum=2 against one big step")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/build_step.py")
_sums = _m._gradients


def _gradients(loss_sums, params, batch, mc, k):
    if k == 1:
        return _sums(loss_sums, params, batch, mc, 1)

    def add(acc, micro):
        (total, count), grads = _sums(loss_sums, params, micro, mc, 1)
        means = (total / count, jax.tree.map(lambda g: g / count, grads))
        return jax.tree.map(lambda a, b: a + b / k, acc, means), None

    zeros = (jnp.zeros(()), jax.tree.map(jnp.zeros_like, params))
    mean, grads = jax.lax.scan(add, zeros, _m._micro_batches(batch, k))[0]
    return (mean, jnp.ones(())), grads  # the step's division by the count is then a no-op


_m._gradients = _gradients
make_step, remat = _m.make_step, _m.remat
