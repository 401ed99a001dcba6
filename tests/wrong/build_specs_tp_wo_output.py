"""Wrong build (lesson 03): tensor parallelism splits the attention's output projection wo
[L, H, D, E] along its output E, as if it were one more projection into heads, instead of
along its input heads H."""

from pathlib import Path

from jax.sharding import PartitionSpec as P

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_param_specs_tp_attention", "extra collectives: all-gather")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/03_sharding_collectives/build_specs.py")
activation_spec = _m.activation_spec


def param_specs(params, strategy):
    specs = _m.param_specs(params, strategy)
    if strategy == "tp":
        specs["blocks"]["wo"] = P(None, None, None, "model")
    return specs
