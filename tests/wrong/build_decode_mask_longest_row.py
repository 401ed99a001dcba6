"""Wrong build (lesson 09): one mask for the whole batch, from the longest row's positions, so a
shorter row reads cache positions past its own length."""

from pathlib import Path

import jax.numpy as jnp

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_extend_own_row", "past its own length")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")
_m._allowed = lambda positions, T: jnp.arange(T)[None, None, :] <= positions.max(axis=0)[None, :, None]
extend, admit, retire = _m.extend, _m.admit, _m.retire
