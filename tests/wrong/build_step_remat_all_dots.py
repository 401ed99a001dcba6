"""Wrong build (lesson 06): "matmuls" keeps every matmul's output (jax's dots_saveable), attention's
batched [S, T] scores included, instead of the weight matmuls' only."""

import jax

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_remat_policies", "attention's batched matmuls are recomputed")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/build_step.py")
_m.POLICIES = dict(_m.POLICIES, matmuls=jax.checkpoint_policies.dots_saveable)
make_step, remat = _m.make_step, _m.remat
