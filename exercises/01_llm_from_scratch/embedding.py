"""Exercises 1.1-1.2: turning token ids into vectors, and telling the model where they are."""

from __future__ import annotations

import jax


def embed(tokens: jax.Array, token_table: jax.Array, position_table: jax.Array) -> jax.Array:
    """Exercise 1.1: token embedding plus learned position embedding (GPT-2 style).

    tokens: int [B, S] with values in [0, V); token_table: [V, E]; position_table:
    [P, E] with P >= S, row s holding the vector added at position s. Returns
    [B, S, E] (dtype of the tables): out[b, s] = token_table[tokens[b, s]] + position_table[s].
    """
    raise NotImplementedError("Exercise 1.1: the input embeddings of a batch of tokens")


def rotate(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Exercise 1.2: rotary position embedding (RoPE), the course model's convention.

    x: [B, S, N, D] (N heads, D even); positions: int [B, S]. Split the last axis in
    halves x1 = x[..., :D/2], x2 = x[..., D/2:]; pair i (x1[i], x2[i]) is rotated by the
    angle positions * base ** (-2i / D), i = 0 .. D/2-1:
        x1' = x1 cos - x2 sin,   x2' = x2 cos + x1 sin.
    Returns [B, S, N, D] in x's dtype (compute the angles in float32). A rotated query
    and key then have a dot product that depends only on the distance between them.
    """
    raise NotImplementedError("Exercise 1.2: rotary position embeddings (RoPE) of queries or keys")
