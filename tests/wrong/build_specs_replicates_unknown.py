"""Wrong build (lesson 03): a weight without a rule is silently replicated instead of refused,
so a new weight (a gated MLP's w_gate, say) would sit whole on every device under FSDP."""

from pathlib import Path

import jax

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_param_specs_unknown", "replicated by accident")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/03_sharding_collectives/build_specs.py")
activation_spec = _m.activation_spec


def param_specs(params, strategy):
    rules = _m._rules(_m._PARAM_RULES, strategy)

    def spec(path, leaf):
        name = tuple(key.key for key in path)
        return _m._spec(_m._AXES.get(name, (None,) * leaf.ndim), rules)  # unknown: not split

    return jax.tree_util.tree_map_with_path(spec, params)
