"""Lesson 03 exercises: collectives built from ppermute, run inside jax.shard_map.

Each function is the per-device body of a shard_map over a mesh axis named `axis`
with n devices: it receives this device's block and may use jax.lax.ppermute and
jax.lax.axis_index, but not the collective it implements. Check with
`python -m pytest exercises/03_sharding_collectives`.
"""

from __future__ import annotations

import jax


def ring_all_gather(block: jax.Array, axis: str, n: int) -> jax.Array:
    """Exercise 3.4: all-gather around a ring, with n - 1 ppermutes to the right neighbour.

    block: [k, ...], this device's block. Returns [n * k, ...]: every device's block in
    device order, as jax.lax.all_gather(block, axis, tiled=True) does.
    """
    raise NotImplementedError("Exercise 3.4: ring all-gather from ppermute")


def ring_reduce_scatter(block: jax.Array, axis: str, n: int) -> jax.Array:
    """Exercise 3.5: reduce-scatter around a ring, with n - 1 ppermutes of partial sums.

    block: [n * k, ...], this device's unreduced array. Returns [k, ...]: block i (this
    device's index) of the sum over devices, as jax.lax.psum_scatter(block, axis,
    tiled=True) does. Each step adds this device's contribution to the partial sum
    that arrives and passes it on.
    """
    raise NotImplementedError("Exercise 3.5: ring reduce-scatter from ppermute")
