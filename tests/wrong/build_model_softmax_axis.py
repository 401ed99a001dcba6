"""Wrong build (lesson 01): softmax over the queries instead of the keys."""

import jax

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_weights_sum_to_one", "softmax's axis")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/01_llm_from_scratch/build_model.py")
_m._softmax = lambda scores: jax.nn.softmax(scores, axis=-2)  # [B, H, S, T]: -2 is S
init, forward, loss_sums = _m.init, _m.forward, _m.loss_sums
