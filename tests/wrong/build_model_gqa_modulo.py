"""Wrong build (lesson 01): query head h reads key/value head h % K instead of h // G."""

import jax.numpy as jnp

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_gqa", "which key/value head each query head reads")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/01_llm_from_scratch/build_model.py")
_m._expand_kv = lambda x, H: jnp.tile(x, (1, 1, H // x.shape[2], 1))  # heads 0, 1, .., K-1, 0, 1, ..
init, forward, loss_sums = _m.init, _m.forward, _m.loss_sums
