"""Exercises 1.1-1.2, answered."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def embed(tokens: jax.Array, token_table: jax.Array, position_table: jax.Array) -> jax.Array:
    """Exercise 1.1: token embedding plus learned position embedding (GPT-2 style).

    tokens: int [B, S]; token_table: [V, E]; position_table: [P, E], P >= S.
    Returns [B, S, E].
    """
    S = tokens.shape[1]
    return token_table[tokens] + position_table[:S]  # [B, S, E] + [S, E] broadcasts over B


def rotate(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Exercise 1.2: rotary position embedding; x [B, S, N, D], positions [B, S] -> [B, S, N, D]."""
    D = x.shape[-1]
    freqs = base ** (-2 * jnp.arange(D // 2, dtype=jnp.float32) / D)  # [D/2]
    angle = positions.astype(jnp.float32)[:, :, None, None] * freqs  # [B, S, 1, D/2]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    x1, x2 = x[..., : D // 2].astype(jnp.float32), x[..., D // 2:].astype(jnp.float32)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)  # [B, S, N, D]
    return out.astype(x.dtype)
