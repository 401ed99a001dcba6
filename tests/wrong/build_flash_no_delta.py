"""Wrong build (lesson 05): the backward pass leaves out delta = rowsum(dO * O)."""

import jax.numpy as jnp

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_backward_matches_reference", "rowsum(dO * O)")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/05_attention/build_flash.py")
_m._delta = lambda out, d_out: jnp.zeros((out.shape[0], *out.shape[2:4], out.shape[1]), jnp.float32)
flash_attention = _m.flash_attention
