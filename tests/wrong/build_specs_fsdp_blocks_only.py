"""Wrong build (lesson 03): FSDP splits the transformer blocks' weights but leaves the embedding
and unembedding tables whole on every device (they are not in the blocks)."""

from pathlib import Path

from jax.sharding import PartitionSpec as P

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_param_specs_fsdp_memory", "memory not reduced")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/03_sharding_collectives/build_specs.py")
activation_spec = _m.activation_spec


def param_specs(params, strategy):
    specs = _m.param_specs(params, strategy)
    for name in ("embed", "unembed"):  # drop the data axis, keep TP's split
        specs[name] = P(*(None if axis == "data" else axis for axis in specs[name]))
    return specs
