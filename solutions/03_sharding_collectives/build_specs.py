"""Exercises 3.6-3.7, answered: the partition spec of every weight and every activation.

A drop-in for shared.sharding.param_specs and shared.sharding.activation_spec. Each weight's
dimensions get logical names (vocab, embed, heads, kv_heads, mlp, or None for a dimension never
split), and each strategy is two small tables from logical name to mesh axis, one for the
weights and one for the activations; a spec is then the table looked up dimension by dimension.
"""

from __future__ import annotations

from typing import Sequence

import jax
from jax.sharding import PartitionSpec

DATA, MODEL = "data", "model"  # the mesh axes of shared.sharding (the tests check the names)
STRATEGIES = ("dp", "fsdp", "tp", "fsdp_tp")


# Logical axes of each weight, one name per dimension: the rules below say which mesh axis
# splits each name. Block weights also have the stacked layers' leading L, never split.
_TOP = {"embed": ("vocab", "embed"), "final_norm": (None,), "unembed": ("embed", "vocab")}
_BLOCK = {
    "attn_norm": (None,),
    "wq": ("embed", "heads", None),  # [E, H, D]: a head's width D stays whole
    "wk": ("embed", "kv_heads", None),
    "wv": ("embed", "kv_heads", None),
    "wo": ("heads", None, "embed"),  # [H, D, E]: heads are its input, summed over
    "mlp_norm": (None,),
    "w_up": ("embed", "mlp"),  # [E, F]: TP splits its output ...
    "w_down": ("mlp", "embed"),  # [F, E]: ... and this one's input, so one all-reduce ends the MLP
}
_AXES = {**{(name,): axes for name, axes in _TOP.items()},
         **{("blocks", name): (None,) + axes for name, axes in _BLOCK.items()}}

# Logical axis -> mesh axis. Weights and activations need separate rules: FSDP splits the
# weights' E over data, while the activations' batch already takes data.
_TP = {"heads": MODEL, "kv_heads": MODEL, "mlp": MODEL, "vocab": MODEL}
_PARAM_RULES = {"dp": {}, "fsdp": {"embed": DATA}, "tp": _TP, "fsdp_tp": {"embed": DATA, **_TP}}
_ACTIVATION_RULES = {"dp": {"batch": DATA}, "fsdp": {"batch": DATA}, "tp": _TP,
                     "fsdp_tp": {"batch": DATA, **_TP}}


def _rules(table: dict, strategy: str) -> dict:
    if strategy not in table:
        raise ValueError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    return table[strategy]


def _spec(logical: Sequence[str | None], rules: dict) -> PartitionSpec:
    return PartitionSpec(*(rules.get(name) if name else None for name in logical))


def param_specs(params: dict, strategy: str) -> dict:
    """Exercise 3.6: the PartitionSpec of every weight of the model under `strategy`."""
    rules = _rules(_PARAM_RULES, strategy)

    def spec(path, leaf):
        name = tuple(str(getattr(key, "key", key)) for key in path)
        axes = _AXES.get(name)
        if axes is None or len(axes) != leaf.ndim:
            raise ValueError(f"no partition rule for weight {'/'.join(name)} of shape "
                             f"{tuple(leaf.shape)}")
        return _spec(axes, rules)

    return jax.tree_util.tree_map_with_path(spec, params)


def activation_spec(logical: Sequence[str | None], strategy: str) -> PartitionSpec:
    """Exercise 3.7: the PartitionSpec of an activation whose dimensions have these logical names."""
    return _spec(logical, _rules(_ACTIVATION_RULES, strategy))
