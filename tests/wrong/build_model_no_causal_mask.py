"""Wrong build (lesson 01): no causal mask (segments still kept apart)."""

import jax.numpy as jnp

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_causal", "causal mask")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/01_llm_from_scratch/build_model.py")
_m._mask = lambda S, seg: jnp.ones((1, S, S), bool) if seg is None else seg[:, :, None] == seg[:, None, :]
init, forward, loss_sums = _m.init, _m.forward, _m.loss_sums
