"""Lesson 03 reference answers: collectives built from ppermute."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def ring_all_gather(block: jax.Array, axis: str, n: int) -> jax.Array:
    """Exercise 3.4: pass blocks right; after t steps we hold the block of device i - t."""
    me = jax.lax.axis_index(axis)
    to_right = [(i, (i + 1) % n) for i in range(n)]
    out = jnp.zeros((n,) + block.shape, block.dtype)  # [n, k, ...]
    current = block
    for step in range(n):
        out = out.at[(me - step) % n].set(current)
        if step < n - 1:
            current = jax.lax.ppermute(current, axis, to_right)
    return out.reshape((n * block.shape[0],) + block.shape[1:])  # [n * k, ...]


def ring_reduce_scatter(block: jax.Array, axis: str, n: int) -> jax.Array:
    """Exercise 3.5: the partial sum of block j starts at device j + 1 and ends at device j."""
    me = jax.lax.axis_index(axis)
    to_right = [(i, (i + 1) % n) for i in range(n)]
    blocks = block.reshape((n, block.shape[0] // n) + block.shape[1:])  # [n, k, ...]
    partial = blocks[(me - 1) % n]
    for step in range(1, n):
        partial = jax.lax.ppermute(partial, axis, to_right) + blocks[(me - 1 - step) % n]
    return partial
