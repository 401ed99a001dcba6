"""Exercises 4.6-4.7, answered: a fully sharded (FSDP) layer and stack, collectives by hand.

A drop-in for shared.sharding.stack_forward(x, ws, "fsdp", mesh). Each device keeps 1/N of
every weight. The forward pass gathers a layer's weight just before the matmul that needs it;
the backward pass (jax.custom_vjp) gathers it again and reduce-scatters the weight's gradient,
so between the two passes, and after them, a device holds only its shards.

Autodiff alone would get the collectives right (the transpose of all_gather is psum_scatter),
but it would save the gathered [E, F] weight for the backward pass: N times the memory FSDP
exists to save. The custom backward keeps only the shard and pays a second all-gather.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P


def _gather(w_shard: jax.Array, axis: str) -> jax.Array:
    """[E/N, F] -> [E, F]: every device's rows, in device order."""
    return jax.lax.all_gather(w_shard, axis, tiled=True)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _fsdp_matmul(x, w_shard, axis):
    return jnp.matmul(x, _gather(w_shard, axis), preferred_element_type=jnp.float32).astype(x.dtype)


def _fsdp_matmul_fwd(x, w_shard, axis):
    return _fsdp_matmul(x, w_shard, axis), (x, w_shard)  # the shard, not the gathered weight


def _fsdp_matmul_bwd(axis, saved, dy):
    x, w_shard = saved  # [b, E], [E/N, F]; dy: [b, F]
    # In one compiled program XLA would merge this gather with the forward's identical one
    # (common-subexpression elimination) and keep the whole weight alive in between. Tying it
    # to dy makes it a second gather that can only run once dy exists, as jax.checkpoint does
    # for what it recomputes. (The CPU compiler drops the barrier first and merges them anyway.)
    w_shard, dy = jax.lax.optimization_barrier((w_shard, dy))
    w = _gather(w_shard, axis)  # [E, F] again, alive only during this layer's backward
    dx = jnp.matmul(dy, w.T, preferred_element_type=jnp.float32).astype(x.dtype)  # [b, E]
    # This device's batch rows' share of the whole gradient, [E, F]; the gradient is the sum
    # of every device's share, and each device needs only its own rows of that sum.
    dw = jnp.matmul(x.T, dy, preferred_element_type=jnp.float32).astype(w_shard.dtype)
    return dx, jax.lax.psum_scatter(dw, axis, scatter_dimension=0, tiled=True)  # [E/N, F]


_fsdp_matmul.defvjp(_fsdp_matmul_fwd, _fsdp_matmul_bwd)


def fsdp_matmul(x: jax.Array, w_shard: jax.Array, axis: str) -> jax.Array:
    """Exercise 4.6: this device's rows of x @ W, W gathered for the matmul and nowhere else."""
    return _fsdp_matmul(x, w_shard, axis)


def fsdp_forward(x: jax.Array, ws: list[jax.Array], mesh: Mesh, axis: str = "data") -> jax.Array:
    """Exercise 4.7: the stack relu(x @ W_l), batch and weights split by rows over `axis`."""
    rows = P(axis, None)

    def local(x, ws):  # x: [B/N, E], each of ws: [E/N, E]
        for w in ws:  # each layer gathers its own weight, just before it is used
            x = jax.nn.relu(fsdp_matmul(x, w, axis))
        return x

    return jax.shard_map(local, mesh=mesh, in_specs=(rows, [rows] * len(ws)), out_specs=rows)(x, ws)
