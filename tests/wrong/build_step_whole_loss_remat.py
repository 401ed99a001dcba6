"""Wrong build (lesson 06): remat as jax.checkpoint around the whole loss instead of each layer:
the backward pass recomputes the whole forward at once, keeping every layer's activations again."""

import dataclasses

import jax

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_make_step_remat", "every layer's activations at once")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/build_step.py")
_sums = _m._gradients


def _gradients(loss_sums, params, batch, mc, k):
    whole = jax.checkpoint(loss_sums, policy=_m.POLICIES.get(mc.remat), static_argnums=(2,))
    return _sums(whole, params, batch, dataclasses.replace(mc, remat="none"), k)


_m._gradients = _gradients
make_step, remat = _m.make_step, _m.remat
