"""Wrong build (lesson 06): the step never casts the weights to the compute dtype and counts on
the model to do it; a model that computes in its weights' dtype then runs in float32."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_make_step_mixed_precision", "no matmul takes bfloat16 inputs")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/build_step.py")
_m._compute_params = lambda params, dtype: params
make_step, remat = _m.make_step, _m.remat
