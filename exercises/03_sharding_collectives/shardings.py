"""Lesson 03 exercises: what each device holds, which collective jit inserts, what it costs.

Specs are tuples with one entry per array dimension, as in jax.sharding.PartitionSpec:
None (not split), a mesh axis name, or a tuple of mesh axis names (split over their
product, the first name outermost). Check with
`python -m pytest exercises/03_sharding_collectives`.
"""

from __future__ import annotations


def shard_shape(shape: tuple[int, ...], mesh_shape: dict[str, int],
                spec: tuple) -> tuple[int, ...]:
    """Exercise 3.1: the shape of the block each device holds.

    shape: the global array's shape; mesh_shape: axis name -> size, e.g.
    {"data": 4, "model": 2}; spec: one entry per dimension of `shape` (see above;
    dimensions beyond len(spec) are not split). Every split divides evenly.
    Returns the per-device shape, e.g. (8, 6) split ("data", None) on data=4 -> (2, 6).
    """
    raise NotImplementedError("Exercise 3.1: the shape of each device's shard")


def matmul_collective(x_spec: tuple, w_spec: tuple, out_spec: tuple) -> str:
    """Exercise 3.2: the collective jit inserts to compute x @ w with these shardings.

    x: [B, E], w: [E, F], out: [B, F], all three specs over one mesh axis named "x"
    (8 devices). Returns the cheapest of:
      "none"        every device can compute its block of the output from what it holds;
      "all-reduce"  devices hold partial sums over a split E that must be added up;
      "all-to-all"  one operand is split along E and the other is whole, and the output
                    is split along the first operand's other dimension: moving that
                    operand's split from E to its other dimension suffices;
      "all-gather"  otherwise: a device must collect blocks of an operand (or of the
                    output) that other devices hold.
    """
    raise NotImplementedError("Exercise 3.2: which collective jit inserts for a sharded matmul")


def ring_bytes_sent(kind: str, nbytes: float, n: int) -> float:
    """Exercise 3.3: bytes each of n devices sends in a ring collective.

    kind: "all-gather" (nbytes = the gathered array), "reduce-scatter" (nbytes = each
    device's unreduced input) or "all-reduce" (nbytes = the array summed). In a ring,
    each step every device sends one block of nbytes / n to its neighbour.
    """
    raise NotImplementedError("Exercise 3.3: bytes per device of a ring collective")
