"""Wrong build (lesson 06): the two remat policies swapped: "full" keeps the weight matmuls'
outputs and "matmuls" keeps nothing."""

import jax

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_remat_policies", "'full' keeps only the layer's inputs")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/build_step.py")
_m.POLICIES = {"full": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
               "matmuls": jax.checkpoint_policies.nothing_saveable}
make_step, remat = _m.make_step, _m.remat
