"""Wrong build (lesson 09): the mask lets every new token read the whole chunk, its future
included (the row's filled positions, not the query's own position)."""

from pathlib import Path

import jax.numpy as jnp

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_extend_causal", "at or before its own")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")
_m._allowed = lambda positions, T: jnp.arange(T)[None, None, :] <= positions[:, -1:, None]
extend, admit, retire = _m.extend, _m.admit, _m.retire
