"""Exercise 1.7, answered."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sample_with_temperature(logits: jax.Array, key: jax.Array, temperature: float) -> jax.Array:
    """Exercise 1.7: one token per row from softmax(logits / T); T == 0 is argmax. [B, V] -> [B]."""
    if temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, logits.astype(jnp.float32) / temperature,
                                  axis=-1).astype(jnp.int32)
