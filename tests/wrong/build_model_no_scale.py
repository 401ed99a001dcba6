"""Wrong build (lesson 01): attention scores without the 1/sqrt(D) scale."""

import jax.numpy as jnp

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_scale", "1/sqrt(D) scale is missing")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/01_llm_from_scratch/build_model.py")
_m._scores = lambda q, k: jnp.einsum("BSHD,BTHD->BHST", q, k, preferred_element_type=jnp.float32)
init, forward, loss_sums = _m.init, _m.forward, _m.loss_sums
