"""Lesson 04 exercises 4.10-4.11: FSDP within a slice, DP across slices (section 7).

A slice (TPU) or node (GPU) is n_within chips joined by fast links (ICI, NVLink); n_across
slices are joined by a slow network (DCN, InfiniBand). The plan: lesson 04's stack of L
square layers W [E, E], each weight split by rows over the chips of a slice (FSDP) and whole
in every slice (DP across); the batch split over all n = n_within * n_across chips. Bandwidths
are bytes/s one way per chip; b = itemsize bytes per element; ring collectives as in lesson
03 (a gather or reduce-scatter of V bytes over k chips sends V (k-1)/k per chip, an all-reduce
twice that). A training step does 6 FLOPs per weight per token (forward 2, backward 4).
Check with `python -m pytest exercises/04_sharding_strategies/test_hierarchy.py`.
"""

from __future__ import annotations


def hybrid_tokens_per_chip(peak: float, fast_bw: float, network_bw: float, n_within: int,
                           n_across: int, itemsize: int) -> float:
    """Exercise 4.10: the fewest tokens per chip B/n at which both levels' traffic hides.

    Within a slice, FSDP gathers each layer's weight before its forward matmul over the
    fast links (fast_bw: all of a chip's fast links together). Across slices, each weight's
    gradient is all-reduced once per step over the network (network_bw: the chip's share of
    its host's cards), overlapping the whole step's compute. Returns B/n such that each
    level's communication takes no longer than the compute it hides behind.
    """
    raise NotImplementedError("Exercise 4.10: tokens per chip for FSDP within and DP across to hide")


def hybrid_bytes_per_level(E: int, L: int, n_across: int, n_within: int, itemsize: int,
                           grad_reduce: str) -> dict[str, float]:
    """Exercise 4.11: bytes each chip sends per training step, per level.

    Per layer, within a slice: the forward all-gather of W, and the reduction of W's
    gradient so that each chip ends with its rows: grad_reduce = "reduce-scatter" (what GPU
    and TPU compilers emit) or "all-reduce" (what XLA emits on the CPU, then keeps its rows).
    Across slices: the all-reduce of the gradient rows each chip holds. Returns
    {"fast": bytes within a slice, "network": bytes across slices}.
    """
    raise NotImplementedError("Exercise 4.11: bytes per chip per step within and across slices")
