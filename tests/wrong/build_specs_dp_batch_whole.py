"""Wrong build (lesson 03): under data parallelism the batch is left whole (only FSDP's rules
split it), so every device computes the whole batch."""

from pathlib import Path

from jax.sharding import PartitionSpec as P

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_activation_spec_batch", "the batch is split over data")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/03_sharding_collectives/build_specs.py")
param_specs = _m.param_specs


def activation_spec(logical, strategy):
    if strategy == "dp":
        return P(*(None for _ in logical))
    return _m.activation_spec(logical, strategy)
