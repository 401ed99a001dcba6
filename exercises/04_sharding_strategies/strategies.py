"""Lesson 04 exercises: costs of parallelism strategies for a stack of square layers.

Each layer computes x @ W with x: [B, E] (B tokens) and W: [E, E]. A matmul [M, K] @
[K, N] does 2*M*K*N FLOPs. "Bytes" are the bytes a chip receives or sends over its
links (a ring: a gather of V bytes over N chips moves V * (N - 1) / N per chip).
Check with `python -m pytest exercises/04_sharding_strategies`.
"""

from __future__ import annotations


def fsdp_flops_per_chip(B: int, E: int, N: int) -> float:
    """Exercise 4.1: FLOPs one chip does for one layer under FSDP on N chips.

    FSDP splits the batch over the N chips (each holds B / N rows of x) and gathers the
    whole weight before the layer. Returns the FLOPs of this chip's matmul.
    """
    raise NotImplementedError("Exercise 4.1: FLOPs per chip per layer under FSDP")


def fsdp_gather_bytes(E: int, N: int, bytes_per_param: int) -> float:
    """Exercise 4.2: bytes one chip receives to all-gather one layer's weight under FSDP.

    Each of the N chips holds E / N rows of W; before the layer, every chip needs all
    of W. Returns the bytes each chip receives in a ring all-gather.
    """
    raise NotImplementedError("Exercise 4.2: bytes per chip of FSDP's weight all-gather")


def comm_hidden(flops: float, comm_bytes: float, peak_flops: float, link_bw: float) -> bool:
    """Exercise 4.3: can this communication hide behind this compute?

    A chip does `flops` at `peak_flops` FLOP/s while it moves `comm_bytes` at `link_bw`
    bytes/s, the two overlapping perfectly. Returns True when communication takes no
    longer than compute (so the step runs at compute speed).
    """
    raise NotImplementedError("Exercise 4.3: is communication hidden behind compute?")


def least_communication(B: int, E: int, N: int) -> str:
    """Exercise 4.5: the weight-sharding strategy that moves fewer bytes per chip per layer.

    The forward pass of the stack on N chips, with weights too large for one chip:
      "fsdp": x split by batch, each weight all-gathered before its layer;
      "tp":   x whole, weights in pairs split by columns then by rows (Megatron), one
              all-reduce of the [B, E] activations after every second layer.
    Returns "fsdp" or "tp", whichever sends fewer bytes per chip per layer ("fsdp" on a tie).
    """
    raise NotImplementedError("Exercise 4.5: FSDP or TP, whichever communicates less")
