"""Wrong build (lesson 03): FSDP splits dimension 0 of every weight over data, whatever that
dimension is: for the stacked block weights it is the layers' L, which 8 devices do not divide."""

from pathlib import Path

from jax.sharding import PartitionSpec as P

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_param_specs_valid", "which does not divide it")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/03_sharding_collectives/build_specs.py")
activation_spec = _m.activation_spec


def param_specs(params, strategy):
    specs = _m.param_specs(params, strategy)
    if strategy == "fsdp":
        return {"blocks": {k: P("data") for k in specs["blocks"]},
                **{k: P("data") for k in specs if k != "blocks"}}
    return specs
