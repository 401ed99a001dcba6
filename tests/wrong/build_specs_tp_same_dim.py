"""Wrong build (lesson 03): tensor parallelism splits both MLP matrices along their output
dimension (column-parallel twice): w_down is split along E instead of along its input F."""

from pathlib import Path

from jax.sharding import PartitionSpec as P

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_param_specs_tp_mlp", "extra collectives: all-gather")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/03_sharding_collectives/build_specs.py")
activation_spec = _m.activation_spec


def param_specs(params, strategy):
    specs = _m.param_specs(params, strategy)
    if strategy in ("tp", "fsdp_tp"):
        L, F, E = specs["blocks"]["w_down"]  # w_down [L, F, E]: the mesh axes swap dimensions
        specs["blocks"]["w_down"] = P(L, E, F)
    return specs
