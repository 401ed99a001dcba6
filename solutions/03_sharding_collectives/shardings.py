"""Lesson 03 reference answers: what each device holds, which collective, what it costs."""

from __future__ import annotations

import math


def shard_shape(shape: tuple[int, ...], mesh_shape: dict[str, int],
                spec: tuple) -> tuple[int, ...]:
    """Exercise 3.1: divide each dimension by the product of the mesh axes it is split over."""
    spec = tuple(spec) + (None,) * (len(shape) - len(spec))
    ways = [1 if s is None else mesh_shape[s] if isinstance(s, str)
            else math.prod(mesh_shape[a] for a in s) for s in spec]
    return tuple(d // w for d, w in zip(shape, ways))


def matmul_collective(x_spec: tuple, w_spec: tuple, out_spec: tuple) -> str:
    """Exercise 3.2: partial sums need an all-reduce; a missing operand block needs a gather."""
    (b, e_x), (e_w, f), (b_out, f_out) = x_spec, w_spec, out_spec
    if e_x and e_w:
        return "all-reduce"  # each device multiplies its slice of E: a partial sum of every output
    if e_x and not (e_w or f) and b_out:
        return "all-to-all"  # w is whole: move x's split from E to B, then multiply locally
    if e_w and not (e_x or b) and f_out:
        return "all-to-all"  # x is whole: move w's split from E to F
    if e_x or e_w:
        return "all-gather"  # one operand's E is split and the other's is not: gather the split one
    # E is whole on both: a device can make out[its rows of x, its columns of w], and slice
    # from that any block where an operand is whole; where an operand is split but the
    # output is not, the blocks must be gathered.
    if (b and not b_out) or (f and not f_out):
        return "all-gather"
    return "none"


def ring_bytes_sent(kind: str, nbytes: float, n: int) -> float:
    """Exercise 3.3: n - 1 steps of nbytes / n each; an all-reduce is two such passes."""
    passes = {"all-gather": 1, "reduce-scatter": 1, "all-reduce": 2}[kind]
    return passes * (n - 1) * nbytes / n
