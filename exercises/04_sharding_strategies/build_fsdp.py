"""Build exercise (4.6-4.8): fully sharded data parallelism, and a matmul whose reduce-scatter
runs around a ring, with every collective written by hand in jax.shard_map.

You write FSDP the way the compiler would: each of n devices keeps 1/n of every weight (its
rows), gathers the whole weight just before the matmul that needs it, and in the backward pass
keeps only its own rows of the weight's gradient. `fsdp_forward` has the contract of the
course core's FSDP stack, shared.sharding.stack_forward(x, ws, "fsdp", mesh), so it is a
drop-in replacement. Then `matmul_reduce_scatter`, the partner of exercise 4.4's collective
matmul: a row-split weight's partial sums, reduce-scattered by a ring of ppermutes while the
next partial product is computed; it has the contract of shared.collectives.collective_matmul
except that W is split by rows. Once the tests pass,

    python -m shared.bench sharding --mine

runs the sharding benchmark's FSDP and collective-matmul rows on your code, with the
collectives found in each compiled program beside the ring model's prediction. Check it with
`python -m pytest exercises/04_sharding_strategies/test_build_fsdp.py`.

Letters (the course's NOTATION.md): n devices on the mesh axis; x [B, E], B rows (tokens);
a weight W [E, F]; L layers (len(ws)). A split dimension is subscripted by the mesh axis that
splits it: W[E_data, F] has its rows split over "data", each device holding E / n of them,
device i rows i E/n to (i + 1) E/n - 1.

Imports: jax, numpy, the standard library and shared.config, nothing else from the course.
The tests read this file's imports and fail on shared.collectives and shared.sharding: they
hold the course's collectives, collective matmul and FSDP stack, which this exercise writes.
Helper functions are yours to add; name them with a leading underscore.
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh


def fsdp_matmul(x: jax.Array, w_shard: jax.Array, axis: str) -> jax.Array:
    """Exercise 4.6: one device's part of x @ W, for x[B_axis, E] and W[E_axis, F].

    The per-device body of a jax.shard_map over mesh axis `axis` (n devices): x [B/n, E] is
    this device's rows of the batch and w_shard [E/n, F] this device's rows of W. Returns this
    device's rows of x @ W, [B/n, F], in x's dtype.

    The contract, which makes it FSDP rather than data parallelism:
    - the forward pass gathers W explicitly (jax.lax) just before the matmul;
    - a hand-written backward pass (jax.custom_vjp) that returns dx [B/n, E] in x's dtype and
      the gradient for w_shard: [E/n, F] in w_shard's dtype, this device's rows of the
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
    x[B_axis, E] is placed split by rows over mesh axis `axis` (PartitionSpec(axis, None)),
    and so is every weight W_l[E_axis, E] in the list ws. Returns
    relu(... relu(x @ W_0) ... @ W_{L-1}), [B_axis, E] in x's dtype, split like x. Other mesh
    axes (the benchmark's mesh also has a "model" axis of size 1) split nothing.

    Each layer gathers its own weight when it runs and drops it after, in the forward and
    in the backward pass: a device never holds all L weights whole at once, and between the
    two passes it keeps only its shards. Its weight gradients come out split by rows like
    the weights.
    """
    raise NotImplementedError("Exercise 4.7: the FSDP stack of layers in one shard_map")


def matmul_reduce_scatter(x: jax.Array, w: jax.Array, mesh: Mesh, axis: str) -> jax.Array:
    """Exercise 4.8: x @ w for x[B, E_axis] and w[E_axis, F]; returns [B, F_axis], x's dtype.

    Both inputs are split over mesh axis `axis` (n devices) along E, the contracting
    dimension: device i holds x's columns and w's rows i E/n to (i + 1) E/n - 1, so its
    product is a partial sum of the whole [B, F] output. The output comes back split by
    columns (PartitionSpec(None, axis)), device i holding columns i F/n to (i + 1) F/n - 1 of
    the sum over all devices: the layout of shared.collectives.collective_matmul, whose x
    and output are split the same way (only w differs: split by rows here).

    The contract, which makes it a collective matmul:
    - one jax.shard_map; inside it, n - 1 jax.lax.ppermute steps around the ring and no
      other collective (no reduce-scatter, all-reduce or all-gather). What travels is a
      partial sum for one block of output columns, [B, F/n], in x's dtype; each device adds
      its own product for that block before passing it on, so that the next step's matmul
      can run while the sum travels;
    - E and F are multiples of n; the matmuls accumulate in float32.
    """
    raise NotImplementedError("Exercise 4.8: a matmul whose reduce-scatter is a ring of ppermutes")
