"""Lesson 04 exercise: overlap an all-gather with the matmul that needs it.

Check with `python -m pytest exercises/04_sharding_strategies`.
"""

from __future__ import annotations

import jax


def collective_matmul_block(x_block: jax.Array, w_cols: jax.Array, axis: str, n: int) -> jax.Array:
    """Exercise 4.4: one device's part of x @ w, gathering x around a ring as it multiplies.

    The per-device body of a shard_map over mesh axis `axis` (n devices) for x: [B, E]
    and w: [E, F], both split by columns. x_block: [B, E/n], this device's columns of x;
    w_cols: [E, F/n], this device's columns of w. Returns [B, F/n], this device's
    columns of x @ w. Use n - 1 jax.lax.ppermute calls to pass x's blocks to the right
    neighbour, multiplying the block you hold by the matching rows of w_cols while the
    next one travels; no all_gather.
    """
    raise NotImplementedError("Exercise 4.4: collective matmul from ppermute")
