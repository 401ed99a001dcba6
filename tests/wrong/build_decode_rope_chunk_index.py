"""Wrong build (lesson 09): RoPE rotates the new tokens by their index in this call's chunk
(0..S-1) instead of their position in the sequence: right for a prefill from an empty cache,
wrong for every decode step."""

from pathlib import Path

import jax.numpy as jnp

from shared.course.pytest_plugin import load_module
from shared.model import rope

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_extend_greedy", "the position each new token takes")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")


def _rope(q, k, positions, config):
    index = jnp.broadcast_to(jnp.arange(q.shape[1]), positions.shape)  # [B, S]
    return rope(q, index, config.rope_base), rope(k, index, config.rope_base)


_m._rope = _rope
extend, admit, retire = _m.extend, _m.admit, _m.retire
