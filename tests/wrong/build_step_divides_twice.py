"""Wrong build (lesson 06): with grad_accum, the summed gradient is divided by the number of
micro-batches as well as by the token count: k times too small."""

import jax

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_make_step_accumulates", "grad_norm")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/build_step.py")
_sums = _m._gradients


def _gradients(loss_sums, params, batch, mc, k):
    (total, count), grads = _sums(loss_sums, params, batch, mc, k)
    return (total, count), jax.tree.map(lambda g: g / k, grads)


_m._gradients = _gradients
make_step, remat = _m.make_step, _m.remat
