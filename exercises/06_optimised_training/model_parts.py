"""Exercises 6.4-6.5: what positions do, and how FSDP splits the parameters."""

from __future__ import annotations

import jax

from shared.config import ModelConfig


def forward_without_positions(params: dict, tokens: jax.Array, config: ModelConfig) -> jax.Array:
    """Exercise 6.4: the model's logits with all positional information removed.

    tokens: [B, S] int. Run the same computation as shared.model.forward (embedding,
    the L pre-norm blocks, final norm, unembedding) but with no RoPE on queries and keys
    and no causal mask (attention over the whole sequence): nothing then tells the model
    where a token sits. Use shared.model's pieces (rms_norm, mlp) and
    shared.attention.attention. Returns float32 logits [B, S, V].
    """
    raise NotImplementedError("Exercise 6.4: forward without RoPE and without the causal mask")


def fsdp_spec(name: str) -> tuple[str | None, ...]:
    """Exercise 6.5: the PartitionSpec entries of parameter `name` under FSDP.

    FSDP splits every parameter along its model-width axis E over the mesh axis "data"
    and keeps the other axes whole. name is a path as shared.train.param_names gives it
    ("embed", "blocks/wq", "final_norm", ...); the layouts are in shared/model.py's
    docstring. Returns one entry per axis: "data" on the E axis, None elsewhere, e.g.
    ("data", None) for a [E, V] array.
    """
    raise NotImplementedError("Exercise 6.5: the PartitionSpec of a parameter under FSDP")
