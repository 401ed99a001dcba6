"""Wrong build (lesson 03): the activations use the weights' rules plus the batch, so under FSDP
the residual stream's E is split over data as well, which its batch dimension already uses."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_activation_spec_valid", "names mesh axis 'data' twice")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/03_sharding_collectives/build_specs.py")
param_specs = _m.param_specs


def activation_spec(logical, strategy):
    rules = {**_m._rules(_m._PARAM_RULES, strategy), "batch": "data"}
    if strategy == "tp":
        rules.pop("batch")
    return _m._spec(logical, rules)
