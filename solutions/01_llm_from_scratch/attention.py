"""Exercise 1.3, answered."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def attention_head(x: jax.Array, wq: jax.Array, wk: jax.Array, wv: jax.Array) -> jax.Array:
    """Exercise 1.3: a single causal self-attention head; x [B, S, E], w* [E, D] -> [B, S, D]."""
    q = jnp.einsum("BSE,ED->BSD", x, wq)
    k = jnp.einsum("BTE,ED->BTD", x, wk)
    v = jnp.einsum("BTE,ED->BTD", x, wv)
    S, D = x.shape[1], wq.shape[1]
    scores = jnp.einsum("BSD,BTD->BST", q, k) / jnp.sqrt(D).astype(jnp.float32)
    allowed = jnp.tril(jnp.ones((S, S), bool))  # [S, T]: key t at or before query s
    scores = jnp.where(allowed, scores, -jnp.inf)
    weights = jax.nn.softmax(scores, axis=-1)  # every row has t = s allowed, so no empty row
    return jnp.einsum("BST,BTD->BSD", weights, v).astype(jnp.float32)
