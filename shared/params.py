"""Every weight of the model, described once (lesson 01).

One row per weight: its shape in the course's letters (top of shared/model.py), the logical axis
of each dimension, how it is initialised, and how many of its leading axes a matmul
sums over. `shared.model.init` builds the parameters from these rows, the sharding
rules (lessons 03-04) read the logical axes, and int8 quantization (lesson 09) reads
the contracted axes. Adding a weight (say, the gate of a gated MLP) is one row here
and one line in the block that uses it.

Weights of a transformer block are stacked over the L layers: their arrays get a
leading L (logical axis "layers") that the rows below leave out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.config import ModelConfig


@dataclass(frozen=True)
class Weight:
    shape: str  # one letter per dimension (E, H, K, D, F, V, X), without the layers' L
    axes: tuple[str | None, ...]  # logical axis per dimension; None: never split
    init: str  # "normal": N(0, 0.02); "residual": N(0, 0.02 / sqrt(2L)), GPT-2's scaling of
    #            the projections that add into the residual stream; "ones": a norm's scale
    contracted: int = 0  # leading dimensions a matmul sums over; 0 for weights not multiplied

    def dims(self, config: ModelConfig) -> tuple[int, ...]:
        c = config
        size = {"V": c.vocab_size, "E": c.d_model, "H": c.n_heads, "K": c.kv_heads,
                "D": c.head_dim, "F": c.d_ff, "X": c.n_experts}
        return tuple(size[letter] for letter in self.shape)

    def std(self, config: ModelConfig) -> float:
        return 0.02 / math.sqrt(2 * config.n_layers) if self.init == "residual" else 0.02


# Insertion order is the order init draws random keys in: keep it.
TOP = {
    "embed": Weight("VE", ("vocab", "embed"), "normal"),  # a lookup table, not a matmul
    "final_norm": Weight("E", (None,), "ones"),
    "unembed": Weight("EV", ("embed", "vocab"), "normal", contracted=1),  # not tied to embed
}
BLOCK = {
    "attn_norm": Weight("E", (None,), "ones"),
    "wq": Weight("EHD", ("embed", "heads", "head_dim"), "normal", contracted=1),
    "wk": Weight("EKD", ("embed", "kv_heads", "head_dim"), "normal", contracted=1),
    "wv": Weight("EKD", ("embed", "kv_heads", "head_dim"), "normal", contracted=1),
    "wo": Weight("HDE", ("heads", "head_dim", "embed"), "residual", contracted=2),
    "mlp_norm": Weight("E", (None,), "ones"),
    "w_up": Weight("EF", ("embed", "mlp"), "normal", contracted=1),
    "w_down": Weight("FE", ("mlp", "embed"), "residual", contracted=1),
}
# With config.n_experts > 0 (shared.moe) the MLP's two weights become X stacked experts, each
# initialised like the dense weight it replaces, and a router scores the experts for each token.
# The experts' dimension X takes the data axis under FSDP (expert parallelism), so their E is
# left whole: one mesh axis cannot split two dimensions of an array.
MOE = {
    "w_router": Weight("EX", ("embed", None), "normal", contracted=1),
    "w_up": Weight("XEF", ("experts", None, "mlp"), "normal", contracted=1),
    "w_down": Weight("XFE", ("experts", "mlp", None), "residual", contracted=1),
}


def block_rows(config: ModelConfig | None = None) -> dict[str, Weight]:
    """BLOCK, or with config.n_experts > 0 its MLP weights replaced by MOE's (router first)."""
    if config is None or not config.n_experts:
        return BLOCK
    out = {}
    for name, w in BLOCK.items():
        if name == "w_up":
            out["w_router"] = MOE["w_router"]
        out[name] = MOE.get(name, w)
    return out


def rows(config: ModelConfig | None = None) -> list[tuple[tuple[str, ...], Weight, bool]]:
    """(path in the parameter tree, row, stacked over layers) for every weight, in init's order.
    config matters only for a mixture of experts (n_experts > 0); None: the dense model."""
    top = [((name,), w, False) for name, w in TOP.items()]
    return (top[:1] + [(("blocks", name), w, True) for name, w in block_rows(config).items()]
            + top[1:])


def logical_axes(config: ModelConfig | None = None) -> dict:
    """The parameter tree with each array replaced by its logical axes ("layers" first in blocks)."""
    tree: dict = {"blocks": {}}
    for path, w, stacked in rows(config):
        node = tree["blocks"] if stacked else tree
        node[path[-1]] = (("layers",) if stacked else ()) + w.axes
    return tree
