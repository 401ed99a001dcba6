"""Exercises 6.8-6.9, answered: a mixture of experts' router (section 12)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def keep_within_capacity(choice: jax.Array, capacity: int) -> jax.Array:
    """Exercise 6.8: the routing choices that get a slot, the rest dropped."""
    B, S, k, X = choice.shape
    # All first choices in sequence order, then all second choices: [B, k*S, X]
    order = jnp.swapaxes(choice, 1, 2).reshape(B, k * S, X)
    # The slot each choice would take in its expert: how many took one before it
    slot = jnp.cumsum(order, axis=1) - 1
    slot = jnp.swapaxes(slot.reshape(B, k, S, X), 1, 2)  # back to [B, S, k, X]
    return choice * (slot < capacity)


def balance_loss(probs: jax.Array, choice: jax.Array) -> jax.Array:
    """Exercise 6.9: Switch Transformer's load-balancing loss."""
    X, k = probs.shape[-1], choice.shape[-2]
    f = choice.sum(-2).reshape(-1, X).mean(0) / k  # [X] share of all choices
    P = probs.reshape(-1, X).mean(0)  # [X] mean router probability
    return X * jnp.sum(f * P)
