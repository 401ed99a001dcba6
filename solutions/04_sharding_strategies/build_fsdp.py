"""Exercises 4.6-4.8, answered: FSDP, and a matmul with its reduce-scatter around a ring.

fsdp_forward is a drop-in for shared.sharding.stack_forward(x, ws, "fsdp", mesh). Each device
keeps 1/n of every weight. The forward pass gathers a layer's weight just before the matmul
that needs it; the backward pass (jax.custom_vjp) gathers it again and reduce-scatters the
weight's gradient, so between the two passes, and after them, a device holds only its shards.

Autodiff alone would get the collectives right (the transpose of all_gather is psum_scatter),
but it would save the gathered [E, F] weight for the backward pass: n times the memory FSDP
exists to save. The custom backward keeps only the shard and pays a second all-gather.

matmul_reduce_scatter is the partner of the collective matmul (exercise 4.4): there x's
blocks travel and are gathered; here partial sums travel and are reduced.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P


def _gather(w_shard: jax.Array, axis: str) -> jax.Array:
    """[E/n, F] -> [E, F]: every device's rows, in device order."""
    return jax.lax.all_gather(w_shard, axis, tiled=True)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _fsdp_matmul(x, w_shard, axis):
    return jnp.matmul(x, _gather(w_shard, axis), preferred_element_type=jnp.float32).astype(x.dtype)


def _fsdp_matmul_fwd(x, w_shard, axis):
    return _fsdp_matmul(x, w_shard, axis), (x, w_shard)  # the shard, not the gathered weight


def _fsdp_matmul_bwd(axis, saved, dy):
    x, w_shard = saved  # [B/n, E], [E/n, F]; dy: [B/n, F]
    # In one compiled program XLA would merge this gather with the forward's identical one
    # (common-subexpression elimination) and keep the whole weight alive in between. Tying it
    # to dy makes it a second gather that can only run once dy exists, as jax.checkpoint does
    # for what it recomputes. (The CPU compiler drops the barrier first and merges them anyway.)
    w_shard, dy = jax.lax.optimization_barrier((w_shard, dy))
    w = _gather(w_shard, axis)  # [E, F] again, alive only during this layer's backward
    dx = jnp.matmul(dy, w.T, preferred_element_type=jnp.float32).astype(x.dtype)  # [B/n, E]
    # This device's batch rows' share of the whole gradient, [E, F]; the gradient is the sum
    # of every device's share, and each device needs only its own rows of that sum.
    dw = jnp.matmul(x.T, dy, preferred_element_type=jnp.float32).astype(w_shard.dtype)
    return dx, jax.lax.psum_scatter(dw, axis, scatter_dimension=0, tiled=True)  # [E/n, F]


_fsdp_matmul.defvjp(_fsdp_matmul_fwd, _fsdp_matmul_bwd)


def fsdp_matmul(x: jax.Array, w_shard: jax.Array, axis: str) -> jax.Array:
    """Exercise 4.6: this device's rows of x @ W, W gathered for the matmul and nowhere else."""
    return _fsdp_matmul(x, w_shard, axis)


def fsdp_forward(x: jax.Array, ws: list[jax.Array], mesh: Mesh, axis: str = "data") -> jax.Array:
    """Exercise 4.7: the stack relu(x @ W_l), batch and weights split by rows over `axis`."""
    rows = P(axis, None)

    def local(x, ws):  # x: [B/n, E], each of ws: [E/n, E]
        for w in ws:  # each layer gathers its own weight, just before it is used
            x = jax.nn.relu(fsdp_matmul(x, w, axis))
        return x

    return jax.shard_map(local, mesh=mesh, in_specs=(rows, [rows] * len(ws)), out_specs=rows)(x, ws)


def _ring_to_right(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)]


def matmul_reduce_scatter(x: jax.Array, w: jax.Array, mesh: Mesh, axis: str) -> jax.Array:
    """Exercise 4.8: at step t, device i adds its product for column block (i - t - 1) mod n
    to the partial sum that arrived from its left, and passes it right; the block's sum thus
    starts at device j + 1, visits every device, and ends at device j after n - 1 steps."""
    n = mesh.shape[axis]

    def local(x_cols, w_rows):  # x_cols [B, E/n], w_rows [E/n, F]
        me, width = jax.lax.axis_index(axis), w_rows.shape[1] // n  # width: F/n
        acc = None  # the travelling partial sum, [B, F/n]
        for step in range(n):
            block = (me - step - 1) % n
            w_block = jax.lax.dynamic_slice_in_dim(w_rows, block * width, width, axis=1)  # [E/n, F/n]
            part = jnp.matmul(x_cols, w_block, preferred_element_type=jnp.float32)  # [B, F/n]
            acc = (part if acc is None else acc.astype(jnp.float32) + part).astype(x.dtype)
            if step < n - 1:  # the next step's matmul does not wait for this transfer
                acc = jax.lax.ppermute(acc, axis, _ring_to_right(n))
        return acc

    return jax.shard_map(local, mesh=mesh, in_specs=(P(None, axis), P(axis, None)),
                         out_specs=P(None, axis))(x, w)
