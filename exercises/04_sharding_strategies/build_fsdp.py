"""Build exercise (4.6-4.7): a fully sharded data-parallel (FSDP) layer, collectives by hand.

You write FSDP the way the compiler would, in `jax.shard_map`: each of N devices keeps 1/N
of every weight (its rows), gathers the whole weight just before the matmul that needs it,
and in the backward pass keeps only its own rows of the weight's gradient. `fsdp_forward`
has the contract of the course core's FSDP stack, shared.sharding.stack_forward(x, ws,
"fsdp", mesh), so it is a drop-in replacement: once the tests pass,

    python -m shared.bench sharding --mine

runs the sharding benchmark's FSDP row on your code, with the collectives found in its
compiled program beside the ring model's prediction. Check it with
`python -m pytest exercises/04_sharding_strategies/test_build_fsdp.py`.

Letters, in every shape below:

    N  devices along the mesh axis    B  batch rows (tokens), b = B / N on each device
    E  a weight's rows (input width)  F  a weight's columns (output width)
    L  layers (len(ws))

Imports: jax, numpy, the standard library and shared.config, nothing else from the course.
The tests read this file's imports and fail on shared.collectives and shared.sharding: they
hold the course's collectives and its FSDP stack, which this exercise writes.
Helper functions are yours to add; name them with a leading underscore.
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh


def fsdp_matmul(x: jax.Array, w_shard: jax.Array, axis: str) -> jax.Array:
    """Exercise 4.6: one device's part of x @ W, for a W whose rows are split over the devices.

    The per-device body of a jax.shard_map over mesh axis `axis` (N devices), in which x
    [B, E] and W [E, F] are both split by rows: x [b, E] is this device's rows of the batch
    and w_shard [E/N, F] is this device's rows of W (device i holds rows i E/N to
    (i + 1) E/N - 1). Returns this device's rows of x @ W, [b, F], in x's dtype.

    The contract, which makes it FSDP rather than data parallelism:
    - the forward pass gathers W explicitly (jax.lax) just before the matmul;
    - a hand-written backward pass (jax.custom_vjp) that returns dx [b, E] in x's dtype and
      the gradient for w_shard: [E/N, F] in w_shard's dtype, this device's rows of the
      gradient of the whole W over the whole batch (the loss adds over all B rows). Move
      only what that needs: no all-reduce of a whole [E, F] gradient;
    - between the forward and the backward pass, a device keeps only what it holds (x and
      its shard), never the gathered [E, F] weight: the memory FSDP exists to save.

    One thing the tests cannot see on a CPU: when the forward and the backward pass compile
    into one program, XLA merges identical operations on identical operands (common-
    subexpression elimination), a gather in the backward pass included.
    """
    raise NotImplementedError("Exercise 4.6: an FSDP matmul with a hand-written backward pass")


def fsdp_forward(x: jax.Array, ws: list[jax.Array], mesh: Mesh, axis: str = "data") -> jax.Array:
    """Exercise 4.7: the stack of L layers x = relu(x @ W_l) under FSDP, in one jax.shard_map.

    The contract of shared.sharding.stack_forward(x, ws, "fsdp", mesh), used under jax.jit:
    x [B, E] is placed split by rows over mesh axis `axis` (PartitionSpec(axis, None)), and
    so is every weight W_l [E, E] in the list ws. Returns relu(... relu(x @ W_0) ... @ W_{L-1})
    [B, E] in x's dtype, split by rows over `axis` in the same way. Other mesh axes (the
    benchmark's mesh also has a "model" axis of size 1) split nothing.

    Each layer gathers its own weight when it runs and drops it after, in the forward and
    in the backward pass: a device never holds all L weights whole at once, and between the
    two passes it keeps only its shards. Its weight gradients come out split by rows like
    the weights.
    """
    raise NotImplementedError("Exercise 4.7: the FSDP stack of layers in one shard_map")
